#!/usr/bin/env python3
"""Feature-stage benchmark: the fbank stage against the bare extractor loop, in one run.

Prints the real-time factor of both, their throughput ratio (pipeline / bare; goal
>= 0.7: manifests, lilcom storage and bookkeeping cost at most 30 %), and the
peak RSS of the stage at 1x and 4x corpus size (goal: ratio < 1.2). The 4x corpus
reuses the generated audio files under new recording ids, so disk stays small.
Each measurement runs in a fresh process so its peak RSS is its own.

    python bench/fbank.py [--work-dir DIR] [--sentences 8] [--nj 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaled_corpus import make_corpus  # noqa: E402  (shared with bench/scale.py)


def run_pipeline(manifests: Path, out: Path, nj: int) -> dict:
    import lhotse  # noqa: F401  (import time is not feature extraction; the bare loop pays it before its timer too)

    from speecheq.features import compute_corpus_fbank

    t0 = time.perf_counter()
    compute_corpus_fbank("synth", manifests, out, nj=nj, force=True)
    return {"seconds": time.perf_counter() - t0}


def run_bare(manifests: Path) -> dict:
    """Read each file and extract fbank in a plain loop: no manifests, no storage."""
    import soundfile as sf
    from lhotse import load_manifest_lazy

    from speecheq.features import make_extractor

    extractor = make_extractor()
    t0 = time.perf_counter()
    for rec in load_manifest_lazy(manifests / "synth_recordings_all.jsonl.gz"):
        samples, sr = sf.read(rec.sources[0].source, dtype="float32")
        extractor.extract(samples, sr)
    return {"seconds": time.perf_counter() - t0}


def child(args) -> None:
    import torch

    torch.set_num_threads(1)
    manifests = Path(args.manifests)
    if args.child == "pipeline":
        result = run_pipeline(manifests, Path(args.out), args.nj)
    else:
        result = run_bare(manifests)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, manifests: Path, out: Path, nj: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--manifests", str(manifests), "--out", str(out), "--nj", str(nj)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(r.stdout.strip().splitlines()[-1])


def audio_hours(manifests: Path) -> float:
    from lhotse import load_manifest_lazy

    return sum(r.duration for r in load_manifest_lazy(manifests / "synth_recordings_all.jsonl.gz")) / 3600


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--sentences", type=int, default=8, help="sentences per language of the generated corpus")
    p.add_argument("--nj", type=int, default=1, help="worker processes of the pipeline (1: same as the bare loop)")
    p.add_argument("--child", choices=["pipeline", "bare"], help=argparse.SUPPRESS)
    p.add_argument("--manifests", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-fbank-"))
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    m1, m4 = make_corpus(work, args.sentences, 1), make_corpus(work, args.sentences, 4)
    h1, h4 = audio_hours(m1), audio_hours(m4)
    bare = measure("bare", m1, work / "unused", args.nj)
    pipe1 = measure("pipeline", m1, work / "fbank-1x", args.nj)
    pipe4 = measure("pipeline", m4, work / "fbank-4x", args.nj)
    rtf_bare = bare["seconds"] / (h1 * 3600)
    rtf_pipe = pipe1["seconds"] / (h1 * 3600)
    print(f"audio: 1x {h1 * 60:.1f} min, 4x {h4 * 60:.1f} min; pipeline nj={args.nj}, bare loop 1 process, 1 thread")
    print(f"bare extractor loop: RTF {rtf_bare:.4f} ({bare['seconds']:.1f} s)")
    print(f"fbank stage 1x:      RTF {rtf_pipe:.4f} ({pipe1['seconds']:.1f} s), peak RSS {pipe1['peak_rss_mb']:.0f} MB")
    print(
        f"fbank stage 4x:      RTF {pipe4['seconds'] / (h4 * 3600):.4f} ({pipe4['seconds']:.1f} s), "
        f"peak RSS {pipe4['peak_rss_mb']:.0f} MB"
    )
    print(f"pipeline/bare throughput ratio: {bare['seconds'] / pipe1['seconds']:.2f} (goal >= 0.7)")
    print(f"peak RSS ratio 4x/1x: {pipe4['peak_rss_mb'] / pipe1['peak_rss_mb']:.2f} (goal < 1.2)")


if __name__ == "__main__":
    main()
