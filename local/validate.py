#!/usr/bin/env python3
"""Stage 3: validate cuts (lhotse + manifest contract) and write the protocol's splits."""

import argparse
import importlib
import inspect

from speecheq.cli import script

# corpus-specific protocol options: flag -> keyword of the corpus's protocol() (passed only when given)
OPTIONS = {
    "--protocol": (
        "kind",
        "esd: si or official; custom: split or si (default: split when the TSV has one); "
        "casia: texts (default: dev = held-out texts of the training speakers) or speaker",
    ),
    "--language": ("language", "esd: zh, en or all speakers"),
    "--corpus-dir": ("corpus_dir", "cremad: genders for balanced folds; custom: folder of metadata.tsv"),
    "--tsv": ("tsv", "custom: metadata TSV (speakers, split column)"),
}


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
    for flag, (dest, help) in OPTIONS.items():
        p.add_argument(flag, dest=dest, default=None, help=help)
    args = p.parse_args()

    from speecheq.corpora import get_corpus, validate_and_split
    from speecheq.errors import SpeechEQError

    options = {dest: getattr(args, dest) for dest, _ in OPTIONS.values() if getattr(args, dest) is not None}
    module = importlib.import_module(f"speecheq.corpora.{get_corpus(args.corpus).module}")
    accepted = inspect.signature(module.protocol).parameters
    for flag, (dest, _) in OPTIONS.items():
        if dest in options and dest not in accepted:
            raise SpeechEQError(f"corpus {args.corpus} takes no {flag} in the validate stage")
    validate_and_split(args.corpus, args.fbank_dir, args.label_preset, args.folds, args.trim_silence_db, **options)


if __name__ == "__main__":
    script(main)
