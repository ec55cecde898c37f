#!/usr/bin/env python3
"""Stage 3: validate cuts (lhotse + manifest contract) and write the protocol's splits."""
import argparse

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True)
    p.add_argument("--fbank-dir", default="data/fbank")
    p.add_argument("--label-preset", default="4class")
    p.add_argument("--folds", nargs="*", default=None, help="only these folds (default: all of the protocol)")
    args = p.parse_args()

    from speecheq.corpora import validate_and_split

    validate_and_split(args.corpus, args.fbank_dir, args.label_preset, args.folds)


if __name__ == "__main__":
    script(main)
