#!/usr/bin/env python3
"""egs/unified/run_folds.sh's report, after stage 5 of every unified model: per corpus the mean
and std over its folds (each fold tested once; repeated folds on a separate row), the cross-corpus
matrix over folds on the categories all corpora share (with --single, each corpus's own fold models
next to the unified one; missing decodes are run), and the mean predicted intensity per category
on --intensity-on corpora."""

import argparse
import sys
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
    p.add_argument("--exp-root", type=Path, default=Path("exp"), help="folder of the unified models and of the report")
    p.add_argument("--name", default="unified", help="unified models are <exp-root>/<name>_fold<m>")
    p.add_argument("--models", nargs="*", type=int, default=None, help="model indices (default: all)")
    p.add_argument("--label-preset", default="all", help="label scheme the models were trained with")
    p.add_argument(
        "--epoch",
        type=int,
        default=0,
        help="decode the weights of this epoch (with --avg), unless --checkpoint is given",
    )
    p.add_argument("--avg", type=int, default=1, help="average the last AVG epochs up to --epoch")
    p.add_argument("--checkpoint", default="", help="e.g. best-valid.pt instead of --epoch/--avg")
    p.add_argument(
        "--single",
        nargs="*",
        default=[],
        help="CORPUS=EXP_PATTERN with {k} for the fold, e.g. ravdess=../ravdess/exp/multitask_all/fold{k}",
    )
    p.add_argument("--intensity-on", nargs="*", default=[], help="corpora to report the intensity scale on, e.g. emodb")
    p.add_argument("--results", type=Path, default=None, help="append the fold rows to this RESULTS.md")
    p.add_argument("--device", default="cpu", help="cpu or cuda for the decodes run on demand")
    args = p.parse_args()

    from speecheq.unified import parse_single, report

    corpora = [c for item in args.corpora for c in item.split()]
    weights = {"checkpoint": args.checkpoint} if args.checkpoint else {"epoch": args.epoch, "avg": args.avg}
    report(
        corpora,
        args.fbank_dir,
        args.exp_root,
        args.name,
        weights,
        args.label_preset,
        args.models,
        parse_single(args.single, corpora),
        args.intensity_on,
        args.results,
        " ".join(["local/unified_report.py", *sys.argv[1:]]),
        args.device,
    )


if __name__ == "__main__":
    script(main)
