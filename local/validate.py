#!/usr/bin/env python3
"""Stage 3: validate cuts (lhotse + manifest contract) and write the protocol's splits."""

import argparse

from speecheq.cli import script
from speecheq.corpora import add_stage_options, get_corpus


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True, help="corpus name: reads <fbank-dir>/<corpus>_cuts_all.jsonl.gz")
    p.add_argument(
        "--fbank-dir",
        "--feat-dir",
        dest="fbank_dir",
        default="data/fbank",
        help="features folder of stage 2 (reads <corpus>_cuts_all there, writes the splits next to it)",
    )
    p.add_argument(
        "--label-preset",
        default="4class",
        help="the unified categories (docs/unified-metric.md) the split summaries count labels in",
    )
    p.add_argument("--folds", nargs="*", default=None, help="only these folds (default: all of the protocol)")
    p.add_argument(
        "--trim-silence-db",
        type=float,
        default=0.0,
        help="cut leading/trailing frames more than this many dB below each cut's peak (0: keep all)",
    )
    add_stage_options(p, "validate")  # each corpus declares its own (speecheq/corpora/<corpus>.py)
    args = p.parse_args()

    from speecheq.splits import validate_and_split

    options = get_corpus(args.corpus).given_options("validate", args)
    validate_and_split(args.corpus, args.fbank_dir, args.label_preset, args.folds, args.trim_silence_db, **options)


if __name__ == "__main__":
    script(main)
