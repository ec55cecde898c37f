#!/usr/bin/env python3
"""The classic baseline on a recipe's folds: openSMILE functionals (cached per corpus) + SVM,
kernel and C chosen by leave-one-speaker-out on each fold's training speakers, fitted on the
training speakers, evaluated on the fold's dev and test sets. Writes
EXP_DIR/fold<k>/decode/<corpus>_fold<k>_{dev,test}-svm/{predictions.tsv,metrics.json} (the
decode layout: summarise with local/decode.py --folds) and EXP_DIR/fold<k>/svm.json (the
chosen kernel and C). --speaker-norm uses each test speaker's own unlabelled utterances."""

import argparse
from pathlib import Path

from speecheq.cli import script

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")  # speecheq.baseline.FEATURE_SETS, without importing it for --help


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", required=True, help="corpus name of the fold manifests (<corpus>_cuts_fold<k>_<split>)")
    p.add_argument(
        "--folds",
        nargs="+",
        default=["0", "1", "2", "3"],
        help="folds as the recipe names them: k, fold<k>, or official (the corpus's single split)",
    )
    p.add_argument("--feature-set", choices=FEATURE_SETS, default="eGeMAPSv02", help="openSMILE functionals")
    p.add_argument(
        "--speaker-norm",
        action="store_true",
        help="z-score each speaker's functionals by that speaker's own mean and std (uses the test "
        "speakers' unlabelled audio)",
    )
    p.add_argument("--label-preset", default="all", help="category preset of the task (as in training)")
    p.add_argument("--fbank-dir", type=Path, default=Path("data/fbank"), help="folder of the fold cut manifests")
    p.add_argument(
        "--functionals-dir",
        type=Path,
        default=Path("data/functionals"),
        help="cache of functionals per corpus and feature set, shared by all folds",
    )
    p.add_argument(
        "--exp-dir",
        type=Path,
        default=None,
        help="output folder; default exp/baseline_<feature-set>[_spknorm][_traindev]_<label-preset>",
    )
    p.add_argument("--kernels", nargs="+", default=["linear", "rbf"], help="SVM kernels to choose from")
    p.add_argument(
        "--c-grid",
        type=float,
        nargs="+",
        default=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0],
        help="SVM C values to choose from",
    )
    p.add_argument(
        "--inner-folds",
        type=int,
        default=0,
        help="speaker-grouped folds of the inner model selection (0: leave one training speaker out)",
    )
    p.add_argument(
        "--calibration-folds",
        type=int,
        default=5,
        help="speaker-grouped folds of the out-of-fold decision values the probabilities are calibrated on",
    )
    p.add_argument(
        "--fit-on",
        choices=["train", "train+dev"],
        default="train",
        help="speakers the SVM is fitted on; train+dev (the reference protocol of ../shared/docs/paper.md) "
        "evaluates the test set only, in EXP_DIR ..._traindev_<label-preset>",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar while computing functionals")
    args = p.parse_args()

    from speecheq.baseline import run_baseline

    run_baseline(
        args.corpus,
        args.folds,
        featset=args.feature_set,
        label_preset=args.label_preset,
        fbank_dir=args.fbank_dir,
        functionals_dir=args.functionals_dir,
        exp_dir=args.exp_dir,
        speaker_norm=args.speaker_norm,
        kernels=args.kernels,
        cs=args.c_grid,
        inner_folds=args.inner_folds,
        calibration_folds=args.calibration_folds,
        fit_on=args.fit_on,
        progress=not args.no_progress,
    )


if __name__ == "__main__":
    script(main)
