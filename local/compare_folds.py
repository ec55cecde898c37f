#!/usr/bin/env python3
"""Paired comparison of two runs over the same folds: B minus A per fold, mean and std of the
differences, and how many folds B wins. Patterns name each fold's metrics.json with {k}, e.g.
  --a 'exp/cat_all/fold{k}/decode/ravdess_fold{k}_test-epoch-25-avg-5/metrics.json'"""

import argparse
import json
from pathlib import Path

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="metrics.json pattern of run A, with {k} for the fold")
    p.add_argument("--b", required=True, help="metrics.json pattern of run B, with {k} for the fold")
    p.add_argument("--folds", nargs="+", default=["0", "1", "2", "3"], help="the values of {k}")
    p.add_argument("--metric", default="UA", help="a headline key: UA, WA, macro_F1, CCC, gender_acc, PER")
    p.add_argument("--names", nargs=2, default=["A", "B"], help="column names of the two runs")
    args = p.parse_args()

    from speecheq.decode import paired_difference
    from speecheq.errors import SpeechEQError

    for pattern in (args.a, args.b):
        if "{k}" not in pattern:
            raise SpeechEQError(f"pattern {pattern!r} has no {{k}} for the fold")
    files = {side: [Path(pattern.format(k=k)) for k in args.folds] for side, pattern in (("a", args.a), ("b", args.b))}
    r = paired_difference(files["a"], files["b"], args.metric)
    a, b = args.names
    print(f"| fold | {a} | {b} | {b} - {a} |\n|---|---|---|---|")
    for k, x, y, d in zip(args.folds, r["a"], r["b"], r["difference"]):
        print(f"| {k} | {x:.2f} | {y:.2f} | {d:+.2f} |")
    print(
        f"| mean ± std | | | {r['mean']:+.2f} ± {r['std']:.2f} ({b} better on {r['b_better']} of {r['folds']} folds) |"
    )
    print(json.dumps(r))


if __name__ == "__main__":
    script(main)
