#!/usr/bin/env python3
"""Cross-corpus table and heat map: each model (row) decoded on each test set (column).

Cells are <exp-root>/<model>/decode/<test-set>-<tag>/metrics.json, written by local/decode.py."""

import argparse
from pathlib import Path

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-root", type=Path, default=Path("exp"), help="folder holding the --models exp folders")
    p.add_argument("--models", nargs="+", required=True, help="exp folder names (rows)")
    p.add_argument("--test-sets", nargs="+", required=True, help="decode set names, e.g. ravdess_fold0_test (columns)")
    p.add_argument("--tag", default="best-valid", help="the weights tag in the decode folder names")
    p.add_argument(
        "--metric", default="UA", help="a headline key of metrics.json: UA, WA, macro_F1, CCC, gender_acc, PER"
    )
    p.add_argument(
        "--out-dir", type=Path, default=Path("exp/cross_corpus"), help="where the matrix (Markdown, JSON, PNG) goes"
    )
    args = p.parse_args()

    from speecheq.decode import cross_corpus_matrix

    cells = {
        m: {t: args.exp_root / m / "decode" / f"{t}-{args.tag}" / "metrics.json" for t in args.test_sets}
        for m in args.models
    }
    cross_corpus_matrix(cells, args.out_dir, args.metric)


if __name__ == "__main__":
    script(main)
