#!/usr/bin/env python3
"""Stage 0 of egs/synth: generate the embedded emotional speech corpus with espeak-ng."""

import argparse

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--corpus-dir", required=True, help="where the generated corpus goes (wav/<voice>/*.wav and its transcripts)"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the per-utterance prosody jitter and noise")
    p.add_argument(
        "--sentences-per-language",
        type=int,
        default=8,
        help="sentences per language, each spoken in every voice and emotion",
    )
    p.add_argument("--force", action="store_true", help="generate again even if marked done (replaces the folder)")
    args = p.parse_args()

    from speecheq.corpora.synth import generate_synth

    generate_synth(
        args.corpus_dir, seed=args.seed, sentences_per_language=args.sentences_per_language, force=args.force
    )


if __name__ == "__main__":
    script(main)
