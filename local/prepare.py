#!/usr/bin/env python3
"""Stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all.jsonl.gz"""
import argparse

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True, help="registered corpus name (speecheq.corpora.CORPORA)")
    p.add_argument("--corpus-dir", required=True)
    p.add_argument("--output-dir", default="data/manifests")
    p.add_argument("--on-error", default="skip", choices=["skip", "stop"], help="per-file faults: skip and count, or stop")
    p.add_argument("--nj", type=int, default=1, help="processes for the per-file audio checks")
    p.add_argument("--force", action="store_true", help="redo even if marked done")
    args = p.parse_args()

    from speecheq.corpora import prepare_corpus
    from speecheq.text import G2P

    executor = None
    if args.nj > 1:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(args.nj)
    prepare_corpus(args.corpus, args.corpus_dir, args.output_dir, force=args.force,
                   on_error=args.on_error, executor=executor, g2p=G2P())


if __name__ == "__main__":
    script(main)
