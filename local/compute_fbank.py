#!/usr/bin/env python3
"""Stage 2: 80-dim fbank (or fbank + 4 pitch dims) for a corpus -> <output-dir>/<corpus>_cuts_<split>.jsonl.gz"""

import argparse

from speecheq.cli import script
from speecheq.options import add_num_threads, set_num_threads


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--corpus",
        required=True,
        help="corpus name: reads <manifest-dir>/<corpus>_{recordings,supervisions}_<split>.jsonl.gz",
    )
    p.add_argument("--manifest-dir", default="data/manifests", help="folder of the stage-0 manifests")
    p.add_argument(
        "--output-dir",
        default="data/fbank",
        help="features folder; give each --extractor its own (e.g. data/fbank_pitch) so both can coexist",
    )
    p.add_argument("--split", default="all", help="which manifests: the <split> in their names (stage 0 writes 'all')")
    p.add_argument(
        "--nj",
        type=int,
        default=2,
        help="CPU worker processes, or feature chunks with --executor dask (ignored on CUDA)",
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "dask"],
        help="where the CPU chunks run: local processes, or a dask cluster (docs/scaling.md)",
    )
    p.add_argument(
        "--dask-scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster of --nj workers)",
    )
    p.add_argument("--device", default="cpu", help="cpu, or cuda for batched GPU extraction")
    p.add_argument(
        "--extractor",
        "--feature-type",
        dest="extractor",
        default="fbank",
        choices=["fbank", "kaldifeat", "fbank-pitch"],
        help="fbank-pitch: lhotse's fbank + log F0, voicing and their deltas (84 dims; speecheq.pitch)",
    )
    p.add_argument("--batch-duration", type=float, default=600.0, help="seconds per batch on CUDA")
    p.add_argument("--force", action="store_true", help="recompute even when the output is marked done")
    add_num_threads(p)
    args = p.parse_args()
    set_num_threads(args.num_threads)  # the main process extracts too (--nj 1, CUDA batches)

    from speecheq.executors import executor_scope
    from speecheq.features import compute_corpus_fbank

    # local: compute_fbank starts its own nj spawned processes; dask: the chunks go to the cluster
    kind = args.executor if not args.device.startswith("cuda") else "local"
    with executor_scope(kind, args.nj if kind == "dask" else 1, args.dask_scheduler) as executor:
        compute_corpus_fbank(
            args.corpus,
            args.manifest_dir,
            args.output_dir,
            args.split,
            force=args.force,
            extractor=args.extractor,
            device=args.device,
            nj=args.nj,
            batch_duration=args.batch_duration,
            executor=executor,
        )


if __name__ == "__main__":
    script(main)
