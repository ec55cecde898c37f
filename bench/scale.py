#!/usr/bin/env python3
"""Scaling benchmark: preparation, fbank and one decoding pass at 1x, 4x and 16x corpus size.

The 1x corpus is the generated synthetic corpus; larger ones list its audio files
again under new utterance ids (bench/scaled_corpus.py), so disk stays small and
every stage sees 4x / 16x the utterances. Each stage at each size runs in a fresh
process, so its peak RSS is its own (``ru_maxrss`` of that process; worker
processes with --nj > 1 are reported separately). Throughput is seconds of audio
per wall-clock second of the stage (imports excluded).

Goals: peak RSS 16x / 1x at most 1.2 (memory flat in corpus size) and throughput at
16x within 10 % of 1x. Because the 1x peak is mostly the interpreter, torch and
lhotse, the table also prints the growth in MB per 1000 added utterances: that is
what decides a 100x corpus.

Decoding: an untrained model of --model-preset (the weights do not change the
cost) run with speecheq.predict over the cut manifest, the records kept and
summarised as the decode stage does.

    python bench/scale.py [--sentences 4] [--scales 1 4 16] [--nj 1] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaled_corpus import make_corpus_dir  # noqa: E402

STAGES = ("prepare", "fbank", "decode")


def run_prepare(work: Path, scale: int, nj: int) -> dict:
    from speecheq.corpora import prepare_corpus
    from speecheq.executors import executor_scope
    from speecheq.text import G2P

    corpus = work / ("corpus" if scale == 1 else f"corpus-{scale}x")
    with executor_scope("local", nj) as ex:
        t0 = time.perf_counter()
        summary = prepare_corpus(
            "synth", corpus, work / f"manifests-{scale}x", force=True, executor=ex, g2p=G2P(), progress=False
        )
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "audio_seconds": summary.seconds, "utterances": summary.kept}


def run_fbank(work: Path, scale: int, nj: int) -> dict:
    from lhotse import load_manifest_lazy

    from speecheq.features import compute_corpus_fbank

    t0 = time.perf_counter()
    compute_corpus_fbank("synth", work / f"manifests-{scale}x", work / f"fbank-{scale}x", nj=nj, force=True)
    seconds = time.perf_counter() - t0
    n, audio = 0, 0.0
    for c in load_manifest_lazy(work / f"fbank-{scale}x/synth_cuts_all.jsonl.gz"):
        n += 1
        audio += c.duration
    return {"seconds": seconds, "audio_seconds": audio, "utterances": n}


def run_decode(work: Path, scale: int, preset: str) -> dict:
    import torch

    from speecheq.data import SpeechEQDataset, make_eval_sampler, make_loader
    from speecheq.io import load_cuts_lazy
    from speecheq.labels import LabelScheme
    from speecheq.model import SpeechEQModel, config_from_preset
    from speecheq.predict import headline, predict_batches, summarize

    torch.manual_seed(0)
    scheme = LabelScheme.from_preset("6class")
    model = SpeechEQModel(config_from_preset(preset, num_emotions=scheme.num_classes, vocab_size=64)).eval()
    cuts = load_cuts_lazy(work / f"fbank-{scale}x/synth_cuts_all.jsonl.gz")
    loader = make_loader(SpeechEQDataset(scheme, None), make_eval_sampler(cuts, 200.0))
    t0 = time.perf_counter()
    records = list(predict_batches(model, loader, scheme, "cpu"))
    headline(summarize(records, scheme))
    seconds = time.perf_counter() - t0
    audio = sum(c.duration for c in load_cuts_lazy(work / f"fbank-{scale}x/synth_cuts_all.jsonl.gz"))
    return {"seconds": seconds, "audio_seconds": audio, "utterances": len(records)}


def child(args) -> None:
    import torch

    torch.set_num_threads(1)
    work = Path(args.work_dir)
    if args.child == "prepare":
        result = run_prepare(work, args.scale, args.nj)
    elif args.child == "fbank":
        result = run_fbank(work, args.scale, args.nj)
    else:
        result = run_decode(work, args.scale, args.model_preset)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["workers_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))


def measure(stage: str, work: Path, scale: int, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        stage,
        "--work-dir",
        str(work),
        "--scale",
        str(scale),
        "--nj",
        str(args.nj),
        "--model-preset",
        args.model_preset,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if r.returncode != 0:
        sys.exit(f"ERROR: {stage} at {scale}x failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=None, help="default: a new temporary folder")
    p.add_argument(
        "--sentences", type=int, default=4, help="sentences per language of the 1x corpus (110 utterances each)"
    )
    p.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument(
        "--nj", type=int, default=1, help="worker processes of preparation and fbank (1: all in one process)"
    )
    p.add_argument("--model-preset", default="small", help="model of the decoding pass")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    p.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"work dir: {work}; nj={args.nj}; torch threads 1; decode model preset {args.model_preset}")
    for scale in args.scales:
        make_corpus_dir(work, args.sentences, scale)
    results = {}
    for stage in STAGES:  # later stages read what earlier ones wrote
        for scale in args.scales:
            if stage in args.stages or (stage != "decode" and not _have_outputs(work, stage, scale)):
                results[(stage, scale)] = measure(stage, work, scale, args)
    base = min(args.scales)
    print(
        f"\n| stage | size | utterances | audio min | wall s | audio s/s | peak RSS MB | RSS / {base}x | "
        f"throughput / {base}x | MB per 1000 added utts |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    figures = {}
    for stage in args.stages:
        b = results[(stage, base)]
        b_tp = b["audio_seconds"] / b["seconds"]
        for scale in args.scales:
            r = results[(stage, scale)]
            tp = r["audio_seconds"] / r["seconds"]
            added = r["utterances"] - b["utterances"]
            growth = (r["peak_rss_mb"] - b["peak_rss_mb"]) / added * 1000 if added else 0.0
            print(
                f"| {stage} | {scale}x | {r['utterances']} | {r['audio_seconds'] / 60:.1f} | {r['seconds']:.1f} | "
                f"{tp:.0f} | {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / b['peak_rss_mb']:.2f} | "
                f"{tp / b_tp:.2f} | {growth:.1f} |"
            )
            figures[f"{stage}-{scale}x"] = {**r, "audio_seconds_per_second": tp}
    top = max(args.scales)
    print(
        f"\ngoals at {top}x vs {base}x: peak RSS ratio <= 1.2, throughput not more than 10 % lower "
        "(a higher one is fixed costs spread over more audio)"
    )
    for stage in args.stages:
        b, r = results[(stage, base)], results[(stage, top)]
        rss = r["peak_rss_mb"] / b["peak_rss_mb"]
        tp = (r["audio_seconds"] / r["seconds"]) / (b["audio_seconds"] / b["seconds"])
        verdict = "ok" if rss <= 1.2 and tp >= 0.9 else "NOT FLAT"
        growth = (r["peak_rss_mb"] - b["peak_rss_mb"]) / max(r["utterances"] - b["utterances"], 1) * 1000
        print(
            f"  {stage:8s} RSS x{rss:.2f} ({growth:+.1f} MB per 1000 utterances), throughput x{tp:.2f}: {verdict}; "
            f"{3600 / (r['audio_seconds'] / r['seconds']):.1f} s per hour of audio at {top}x "
            f"(nj={args.nj}, 1 thread)"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _have_outputs(work: Path, stage: str, scale: int) -> bool:
    if stage == "prepare":
        return (work / f"manifests-{scale}x/synth_recordings_all.jsonl.gz.done").exists()
    return (work / f"fbank-{scale}x/synth_cuts_all.jsonl.gz.done").exists()


if __name__ == "__main__":
    main()
