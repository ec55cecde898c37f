#!/usr/bin/env python3
"""Learning curves of finished runs: a PNG (dev UA and training loss per epoch, mean over folds)
and a convergence table (last 5 epochs against the 5 before, best dev epoch per fold)."""

import argparse
from pathlib import Path

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--runs",
        nargs="+",
        required=True,
        help="NAME=EXP_DIR: EXP_DIR holding fold*/ runs, one run, or a glob of runs ('exp/unified_fold*')",
    )
    p.add_argument("--out", type=Path, required=True, help="PNG path; the table goes next to it as .json")
    p.add_argument(
        "--window", type=int, default=5, help="convergence: the last WINDOW epochs against the WINDOW before them"
    )
    args = p.parse_args()

    from speecheq.curves import convergence, fold_dirs, plot_curves, read_curves
    from speecheq.errors import SpeechEQError
    from speecheq.io import write_json_atomic

    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep:
            raise SpeechEQError(f"--runs: expected NAME=EXP_DIR, got {item!r}")
        runs[name] = [read_curves(d) for d in fold_dirs(path)]
    table = {name: convergence(curves, args.window) for name, curves in runs.items()}
    plot_curves(runs, args.out)
    write_json_atomic(args.out.with_suffix(".json"), table)
    print(
        "| run | epochs | training min per fold | best dev epoch per fold | dev UA, last 5 | dev UA, 5 before | "
        "train loss, last 5 | 5 before |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, t in table.items():
        print(
            f"| {name} | {t['epochs']} | {t['train_minutes_per_run']} | {', '.join(map(str, t['best_dev_epochs']))} | {t['dev_ua_last']} | "
            f"{t['dev_ua_previous']} | {t['train_emotion_loss_last']} | {t['train_emotion_loss_previous']} |"
        )


if __name__ == "__main__":
    script(main)
