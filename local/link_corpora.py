#!/usr/bin/env python3
"""Stage 0 of egs/unified: link the manifests and features that each corpus's own recipe prepared.

Every corpus must have been prepared with the same --feature-type into the same --feat-dir
(a folder relative to its recipe folder, e.g. data/fbank_pitch); a corpus that was not stops
the stage with one line before anything is linked (speecheq.unified.link_prepared)."""

import argparse
from pathlib import Path

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", nargs="+", required=True, help="corpus recipes whose prepared data to link")
    p.add_argument("--egs-dir", type=Path, default=Path(".."), help="folder holding the corpus recipes")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="this recipe's data folder, where the links go")
    p.add_argument(
        "--feat-dir",
        type=Path,
        default=Path("data/fbank"),
        help="features folder, relative to each recipe folder (this one: the current folder), e.g. data/fbank_pitch",
    )
    p.add_argument(
        "--feature-type", default="fbank", help="the features every corpus must hold there: fbank, fbank-pitch"
    )
    args = p.parse_args()

    from speecheq.unified import link_prepared

    link_prepared(args.corpora, args.egs_dir, args.data_dir, args.feat_dir, args.feature_type)


if __name__ == "__main__":
    script(main)
