#!/usr/bin/env python3
"""Stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all.jsonl.gz"""

import argparse

from speecheq.cli import script
from speecheq.corpora import add_stage_options, get_corpus, prepare_corpus


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True, help="registered corpus name (speecheq.corpora.CORPORA)")
    p.add_argument("--corpus-dir", required=True, help="the corpus as distributed (its own layout)")
    p.add_argument("--output-dir", default="data/manifests", help="where the recordings and supervisions manifests go")
    p.add_argument(
        "--on-error", default="skip", choices=["skip", "stop"], help="per-file faults: skip and count, or stop"
    )
    p.add_argument("--nj", type=int, default=1, help="processes for the per-file audio checks")
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "dask"],
        help="where the per-file checks run: local processes, or a dask cluster (docs/scaling.md)",
    )
    p.add_argument(
        "--dask-scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster of --nj workers)",
    )
    p.add_argument("--force", action="store_true", help="redo even if marked done")
    add_stage_options(p, "prepare")  # each corpus declares its own (speecheq/corpora/<corpus>.py)
    args = p.parse_args()

    from speecheq.executors import executor_scope
    from speecheq.text import G2P

    options = get_corpus(args.corpus).given_options("prepare", args)

    with executor_scope(args.executor, args.nj, args.dask_scheduler) as executor:
        prepare_corpus(
            args.corpus,
            args.corpus_dir,
            args.output_dir,
            force=args.force,
            on_error=args.on_error,
            executor=executor,
            g2p=G2P(),
            **options,
        )


if __name__ == "__main__":
    script(main)
