#!/usr/bin/env python3
"""Stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all.jsonl.gz"""

import argparse
import inspect

from speecheq.cli import script

# corpus-specific options: flag -> keyword of prepare_<corpus>() (passed only when given)
OPTIONS = {
    "--transcripts": ("transcripts", "casia: <nnn><TAB>text file (characters or tone-numbered pinyin)"),
    "--language": ("language", "esd: zh, en or all speakers"),
    "--speaker-table": ("speaker_table", "esd: speaker<TAB>M|F file (else gender is unknown)"),
    "--tsv": ("tsv", "custom: metadata TSV (default <corpus-dir>/metadata.tsv)"),
    "--mapping": ("mapping", "custom: label-mapping YAML (default <corpus-dir>/labels.yaml)"),
}


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
    for flag, (dest, help) in OPTIONS.items():
        p.add_argument(flag, dest=dest, default=None, help=help)
    args = p.parse_args()

    from speecheq.corpora import get_corpus, prepare_corpus
    from speecheq.errors import SpeechEQError
    from speecheq.text import G2P

    options = {dest: getattr(args, dest) for dest, _ in OPTIONS.values() if getattr(args, dest) is not None}
    accepted = inspect.signature(get_corpus(args.corpus).prepare).parameters
    for flag, (dest, _) in OPTIONS.items():
        if dest in options and dest not in accepted:
            raise SpeechEQError(f"corpus {args.corpus} takes no {flag}")
    from speecheq.executors import executor_scope

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
