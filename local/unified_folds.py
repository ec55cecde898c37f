#!/usr/bin/env python3
"""egs/unified: how the corpora's folds pair into unified models (speecheq/unified.py, docs/unified.md).

Without --model: checks the pairing on the split files (no test or dev speaker of a corpus in
the training set of a model tested on it; every test speaker tested once by a primary model),
writes it to --plan-out and prints the model indices. With --model K --split S --corpus C...:
prints the cut manifests that unified model K uses for those corpora's split S."""

import argparse
from pathlib import Path

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", nargs="+", required=True, help="a list or one quoted string")
    p.add_argument(
        "--fbank-dir",
        type=Path,
        default=Path("data/fbank"),
        help="features folder holding every corpus's split files (<corpus>_cuts_fold<k>_<split>)",
    )
    p.add_argument("--model", type=int, default=None, help="a unified model's index")
    p.add_argument("--corpus", nargs="+", default=None, help="with --model: print these corpora's files, in this order")
    p.add_argument(
        "--split", choices=["train", "dev", "test"], default=None, help="with --model: which split's files to print"
    )
    p.add_argument("--plan-out", type=Path, default=None, help="write the pairing here (JSON)")
    args = p.parse_args()

    from speecheq.errors import SpeechEQError
    from speecheq.io import write_json_atomic
    from speecheq.unified import check_pairing, fold_plan, select_models

    corpora = [c for item in args.corpora for c in item.split()]
    plan = fold_plan(corpora, args.fbank_dir)
    if args.model is None:
        counts = check_pairing(plan)
        if args.plan_out:
            write_json_atomic(args.plan_out, {"models": plan, "speakers": counts})
        print(" ".join(str(m) for m in range(len(plan))))
        return
    if not args.corpus or not set(args.corpus) <= set(corpora) or args.split is None:
        raise SpeechEQError(f"with --model give --split and --corpus (of {corpora})")
    select_models(plan, [args.model])
    print(" ".join(plan[args.model][c][args.split] for c in args.corpus))


if __name__ == "__main__":
    script(main)
