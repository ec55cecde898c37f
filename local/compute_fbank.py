#!/usr/bin/env python3
"""Stage 2: 80-dim fbank for a corpus -> data/fbank/<corpus>_cuts_<split>.jsonl.gz"""
import argparse

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True)
    p.add_argument("--manifest-dir", default="data/manifests")
    p.add_argument("--output-dir", default="data/fbank")
    p.add_argument("--split", default="all")
    p.add_argument("--nj", type=int, default=2, help="CPU worker processes (ignored on CUDA)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda for batched GPU extraction")
    p.add_argument("--extractor", default="fbank", choices=["fbank", "kaldifeat"])
    p.add_argument("--batch-duration", type=float, default=600.0, help="seconds per batch on CUDA")
    p.add_argument("--force", action="store_true")
    args = p.parse_args()

    from speecheq.features import compute_corpus_fbank

    compute_corpus_fbank(args.corpus, args.manifest_dir, args.output_dir, args.split, force=args.force,
                         extractor=args.extractor, device=args.device, nj=args.nj, batch_duration=args.batch_duration)


if __name__ == "__main__":
    script(main)
