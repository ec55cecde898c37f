#!/usr/bin/env python3
"""Late fusion of two runs over the same folds: p = w * p_A + (1 - w) * p_B, w chosen per fold
on that fold's dev set (UA, grid 0, 0.1, ..., 1; ties: the larger w), then applied to its test
set. A and B are decode folders given as patterns with {k} (fold) and {split} (dev, test), e.g.
  --a 'exp/all4_all/fold{k}/decode/ravdess_fold{k}_{split}-epoch-25-avg-5'
  --b 'exp/baseline_ComParE_2016_spknorm_all/fold{k}/decode/ravdess_fold{k}_{split}-svm'
The neural run's dev sets must be decoded too (local/decode.py --cuts ..._fold<k>_dev.jsonl.gz).
Writes OUT_DIR/fold<k>/decode/<set>-fused/{predictions.tsv,metrics.json} and fold<k>/fusion.json
(the chosen w); summarise with local/decode.py --folds OUT_DIR/fold*/decode/*-fused/metrics.json."""

import argparse
from pathlib import Path

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="decode folder pattern of run A (weight w), with {k} and {split}")
    p.add_argument("--b", required=True, help="decode folder pattern of run B (weight 1 - w), with {k} and {split}")
    p.add_argument("--folds", nargs="+", default=["0", "1", "2", "3"], help="fold numbers substituted for {k}")
    p.add_argument("--out-dir", type=Path, required=True, help="output folder, e.g. exp/fusion_all4_compare")
    p.add_argument("--names", nargs=2, default=["net", "svm"], help="names of A and B in fusion.json")
    args = p.parse_args()

    from speecheq.fusion import fuse_folds

    for path in fuse_folds(args.a, args.b, args.folds, args.out_dir, names=args.names):
        print(path)


if __name__ == "__main__":
    script(main)
