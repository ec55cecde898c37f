#!/usr/bin/env python3
"""Inference speed and memory on CPU: real-time factor and peak RSS, eager vs TorchScript vs ONNX.

    python bench/infer.py                       # default + small presets, untrained, 10 min of audio
    python bench/infer.py --package PKG.pt      # a real package instead

Audio: espeak-ng speech from speecheq.corpora.synth (tones and noise when espeak-ng
is missing), joined into files of about --file-seconds, --minutes in total. Models:
untrained packages of each --presets entry (4 categories, 41 CTC symbols, like a
4-class English model), so no trained model is needed; speed does not depend on
the weights. Every (preset, engine, threads) runs in its own process, so that its
peak RSS is its own; RTF is the processing time (read + fbank + model, after
loading and one warm-up batch) over the audio duration. CPU-time RTF is the
process's CPU time over the audio duration: with one thread it is what an idle
core would take, whatever else the machine runs (with N threads it is the summed
cost, not the latency). Not part of the test suite.

A second table gives each front end's own RTF on one thread (--front-ends): fbank and
fbank + pitch extraction, and the ssl front end's encoder (a tiny randomly initialised
WavLM, hidden size 32 and 2 layers with the published CNN, or --ssl-model DIR), each on
the same audio, one file at a time. ``--presets ...,ssl`` adds a packaged model on the ssl
front end (the tiny preset over that encoder) to the engine table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of audio")
    p.add_argument("--file-seconds", type=float, default=8.0, help="approximate length of each file")
    p.add_argument(
        "--presets",
        default="default,small",
        help="untrained model presets to package; 'ssl': the tiny preset on the ssl front end (--ssl-model)",
    )
    p.add_argument("--package", type=Path, default=None, help="benchmark this package instead of untrained presets")
    p.add_argument("--engines", default="eager,torchscript,onnx")
    p.add_argument(
        "--threads",
        default="1,default",
        help="comma list of thread counts; 'all' = every CPU core, 'default' = torch's own choice "
        "(no OMP_NUM_THREADS, no set_num_threads: what a user gets without --num-threads)",
    )
    p.add_argument(
        "--front-ends",
        default="fbank,fbank-pitch,ssl",
        help="comma list of front ends whose own RTF to measure on one thread ('' for none)",
    )
    p.add_argument(
        "--ssl-model", type=Path, default=None, help="the ssl front end's model folder (default: a tiny random WavLM)"
    )
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per batch")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/speecheq-bench"), help="audio and packages (cached)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--engine", default="eager", help=argparse.SUPPRESS)
    p.add_argument("--front-end", default=None, help=argparse.SUPPRESS)
    p.add_argument("--num-threads", type=int, default=1, help=argparse.SUPPRESS)  # 0: torch's default
    return p


# --------------------------------------------------------------------- audio


def make_audio(work: Path, minutes: float, file_seconds: float) -> Path:
    """Files of about ``file_seconds`` seconds, ``minutes`` in total (cached by parameters)."""
    import shutil

    import numpy as np
    import soundfile as sf

    out = work / f"audio-{minutes:g}min-{file_seconds:g}s"
    if (out / "done").is_file():
        return out
    target = minutes * 60
    pieces = []
    if shutil.which("espeak-ng"):
        from speecheq.corpora.synth import generate_synth

        # About 1.6 s per utterance, 110 utterances per sentence and language.
        n = max(1, int(np.ceil(target / 1.6 / 110)))
        corpus = generate_synth(work / f"synth-{n}", sentences_per_language=n, progress=False)
        for wav in sorted((corpus / "wav").rglob("*.wav")):
            pieces.append(sf.read(str(wav), dtype="float32")[0])
        source = f"espeak-ng speech (synth corpus, {len(pieces)} utterances)"
    else:
        rng = np.random.default_rng(0)
        t = np.arange(32000) / 16000
        for k in range(int(target / 2) + 1):
            f0 = 100 + 150 * rng.random()
            x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
            pieces.append((0.1 * x + 0.01 * rng.standard_normal(t.shape)).astype(np.float32))
        source = "harmonic tones with a syllable-rate envelope (espeak-ng not found)"
    out.mkdir(parents=True, exist_ok=True)
    total, k, i, buf = 0.0, 0, 0, []
    while total < target:
        buf.append(pieces[i % len(pieces)])
        i += 1
        if sum(len(b) for b in buf) / 16000 >= file_seconds:
            x = np.concatenate(buf)[: int(min(file_seconds * 1.5, target - total + 0.01) * 16000)]
            sf.write(str(out / f"bench_{k:04d}.wav"), x, 16000, subtype="PCM_16")
            total += len(x) / 16000
            k, buf = k + 1, []
    (out / "done").write_text(json.dumps({"files": k, "seconds": round(total, 2), "source": source}))
    return out


# ------------------------------------------------------------------ packages


def ssl_package(work: Path, ssl_model: Path | None) -> tuple:
    """(name, path) of an untrained tiny-preset package on the ssl front end, the encoder's weights inside."""
    import torch

    from speecheq.features import FrontEnd
    from speecheq.model import SpeechEQModel, config_from_preset
    from speecheq.model.ssl import SSLEncoder
    from speecheq.package import package_from_model, save_package

    folder = ssl_folder(work, ssl_model)
    d = work / f"untrained-ssl-{folder.name}"
    d.mkdir(parents=True, exist_ok=True)
    encoder = SSLEncoder.from_pretrained(folder)
    torch.manual_seed(0)
    config = config_from_preset(
        "tiny", num_emotions=4, vocab_size=41, num_mel_bins=encoder.output_dim, ssl=encoder.to_settings()
    )
    model = SpeechEQModel(config).eval()
    model.ssl.load_state_dict(encoder.state_dict())
    package = package_from_model(
        model,
        categories=["neutral", "happy", "sad", "angry"],
        label_preset="4class",
        tokens=["<blk>", *[f"P{i}" for i in range(40)]],
        features=FrontEnd(encoder.frames_config(), "audio").feature_config(),
    )
    save_package(package, d / "speecheq-package.pt")
    return f"ssl ({folder.name}, tiny)", d / "speecheq-package.pt"


def make_packages(work: Path, presets, package: Path | None, engines, ssl_model: Path | None = None) -> dict:
    """One folder per model with speecheq-package.pt (+ model.ts.pt, model.onnx); returns {name: path}."""
    import shutil

    import torch

    from speecheq.export import export_engines
    from speecheq.model import SpeechEQModel, config_from_preset
    from speecheq.package import package_from_model, save_package

    out = {}
    if package is not None:
        d = work / "given"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(package, d / "speecheq-package.pt")  # engines are written next to a copy, not the user's file
        out[package.name] = d / "speecheq-package.pt"
    else:
        for preset in presets:
            if preset == "ssl":
                name, path = ssl_package(work, ssl_model)
                out[name] = path
                continue
            d = work / f"untrained-{preset}"
            d.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(0)
            model = SpeechEQModel(config_from_preset(preset, num_emotions=4, vocab_size=41)).eval()
            # Plausible log-mel statistics, so that activations are in a realistic range.
            model.set_normalization(torch.full((80,), -8.0), torch.full((80,), 3.0))
            tokens = ["<blk>", *[f"P{i}" for i in range(40)]]
            save_package(
                package_from_model(
                    model, categories=["neutral", "happy", "sad", "angry"], label_preset="4class", tokens=tokens
                ),
                d / "speecheq-package.pt",
            )
            out[preset] = d / "speecheq-package.pt"
    from speecheq.errors import SpeechEQError
    from speecheq.infer import make_engine
    from speecheq.package import load_package

    for name, path in out.items():
        pkg = load_package(path)
        missing = []
        for engine in ("torchscript", "onnx"):
            try:
                if engine in engines:
                    make_engine(pkg, engine)  # an engine file of these very weights is reused
            except SpeechEQError:
                missing.append(engine)
        t0 = time.perf_counter()
        export_engines(path, torchscript="torchscript" in missing, onnx="onnx" in missing)
        print(
            f"# exported {name}: {', '.join(missing) or 'nothing (cached)'} in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    return out


# -------------------------------------------------------------------- worker


def worker(args) -> None:
    """One measurement in a fresh process: load, warm up, run every file, print JSON stats."""
    from speecheq.options import set_num_threads

    set_num_threads(args.num_threads)
    from speecheq.infer import Inferencer, collect_sources, make_engine
    from speecheq.package import load_package

    t0 = time.perf_counter()
    pkg = load_package(args.package)
    runner = Inferencer(pkg, make_engine(pkg, args.engine, "cpu", args.num_threads), max_duration=args.max_duration)
    sources = collect_sources([args.work_dir])
    load_seconds = time.perf_counter() - t0
    for _ in runner.run(sources[:1]):  # warm-up: first-call allocations and kernel selection
        pass
    runner.stats = type(runner.stats)()
    cpu0 = time.process_time()
    n = sum(1 for _ in runner.run(sources))
    cpu = time.process_time() - cpu0
    s = runner.stats
    print(
        json.dumps(
            {
                "records": n,
                "audio_seconds": s.audio_seconds,
                "seconds": s.seconds,
                "read": s.read_seconds,
                "fbank": s.feature_seconds,
                "model": s.model_seconds,
                "load": load_seconds,
                "cpu": cpu,
                "failed": s.failed,
            }
        )
    )


def front_end_worker(args) -> None:
    """One front end on every file, one at a time, in a fresh one-thread process: JSON stats."""
    import soundfile as sf

    from speecheq.options import set_num_threads

    set_num_threads(1)
    import torch

    from speecheq.features import make_extractor
    from speecheq.model.ssl import SSLEncoder

    t0 = time.perf_counter()
    if args.front_end == "ssl":
        encoder = SSLEncoder.from_pretrained(args.ssl_model).eval()
        frame_shift, dim = encoder.frame_shift, encoder.output_dim

        def run(samples):
            with torch.inference_mode():
                return encoder(torch.from_numpy(samples)[None], torch.tensor([len(samples)]))[0]

    else:
        extractor = make_extractor(args.front_end)
        frame_shift, dim = extractor.frame_shift, extractor.feature_dim(16000)

        def run(samples):
            return extractor.extract(samples, 16000)

    load_seconds = time.perf_counter() - t0
    files = [sf.read(str(wav), dtype="float32")[0] for wav in sorted(args.work_dir.glob("*.wav"))]
    run(files[0])  # warm-up
    seconds = 0.0
    for samples in files:
        t = time.perf_counter()
        run(samples)
        seconds += time.perf_counter() - t
    audio_seconds = sum(len(x) for x in files) / 16000
    print(
        json.dumps(
            {
                "audio_seconds": audio_seconds,
                "seconds": seconds,
                "load": load_seconds,
                "frame_shift": frame_shift,
                "dim": dim,
            }
        )
    )


def ssl_folder(work: Path, ssl_model: Path | None) -> Path:
    """--ssl-model, or a tiny random WavLM written once into the work folder."""
    if ssl_model is not None:
        return ssl_model
    from speecheq.model.ssl import write_random_model

    folder = work / "tiny-wavlm"
    if not (folder / "config.json").is_file():
        write_random_model(folder, "wavlm")
    return folder


def front_end_table(work: Path, audio: Path, names, ssl_model: Path | None) -> None:
    if "ssl" in names:
        ssl_model = ssl_folder(work, ssl_model)
    print("\n| front end | threads | RTF | frame shift ms | dim | load s |")
    print("|---|---|---|---|---|---|", flush=True)
    for name in names:
        cmd = [sys.executable, __file__, "--worker", "--front-end", name, "--work-dir", str(audio)]
        if name == "ssl":
            cmd += ["--ssl-model", str(ssl_model)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"worker failed: {shlex.join(cmd)}\n{r.stderr[-3000:]}")
        stats = json.loads(r.stdout.strip().splitlines()[-1])
        label = f"ssl ({ssl_model.name})" if name == "ssl" else name
        print(
            f"| {label} | 1 | {stats['seconds'] / stats['audio_seconds']:.4f} | {1000 * stats['frame_shift']:g} | "
            f"{stats['dim']} | {stats['load']:.1f} |",
            flush=True,
        )


def peak_rss_kb() -> int:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over fork + exec, so a child would report the parent's peak when that is larger."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    args = get_parser().parse_args()
    if args.worker and args.front_end:
        front_end_worker(args)
        return
    if args.worker:
        worker(args)
        print(f"PEAK_RSS_KB {peak_rss_kb()}", file=sys.stderr)
        return
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    import platform

    import torch

    engines = [e for e in args.engines.split(",") if e]
    threads = sorted(
        {(os.cpu_count() or 1) if t == "all" else 0 if t == "default" else int(t) for t in args.threads.split(",") if t}
    )
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.2f} (other jobs on the machine slow every figure)",
        flush=True,
    )
    t0 = time.perf_counter()
    audio = make_audio(args.work_dir, args.minutes, args.file_seconds)
    info = json.loads((audio / "done").read_text())
    print(
        f"# audio: {info['files']} files, {info['seconds'] / 60:.1f} min, {info['source']} "
        f"({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    front_ends = [f for f in args.front_ends.split(",") if f]
    if front_ends:
        front_end_table(args.work_dir, audio, front_ends, args.ssl_model)
    presets = [p for p in args.presets.split(",") if p]
    packages = make_packages(args.work_dir, presets, args.package, engines, args.ssl_model)
    print()
    print(
        "| model | engine | threads | RTF | RTF model only | CPU-time RTF | fbank s | model s | load s | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    ratios = []
    for name, package in packages.items():
        for engine in engines:
            seconds = {}
            for n in threads:
                r = run_worker(package, audio, engine, n, args.max_duration)
                seconds[n] = (r["seconds"], r["fbank"], r["model"])
                print(
                    f"| {name} | {engine} | {n or 'default'} | {r['seconds'] / r['audio_seconds']:.4f} | "
                    f"{r['model'] / r['audio_seconds']:.4f} | {r['cpu'] / r['audio_seconds']:.4f} | {r['fbank']:.2f} | {r['model']:.2f} | {r['load']:.1f} | "
                    f"{r['peak_rss_kb'] / 1024:.0f} |",
                    flush=True,
                )
            if 0 in seconds and 1 in seconds:
                (d, df, dm), (o, of, om) = seconds[0], seconds[1]
                ratios.append(
                    f"{name} {engine}: total {d / o:.2f}x, fbank {df / max(of, 1e-9):.2f}x, "
                    f"model {dm / max(om, 1e-9):.2f}x"
                )
    if ratios:
        # The before/after of the stage scripts' --num-threads 1: how much longer torch's
        # default thread count takes than one thread, in the same run on the same machine.
        print(f"\nbefore/after (time with torch's default threads / time with one thread): {'; '.join(ratios)}")
    print(f"\n# total {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f}")


def run_worker(package: Path, audio: Path, engine: str, threads: int, max_duration: float) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--package",
        str(package),
        "--work-dir",
        str(audio),
        "--engine",
        engine,
        "--num-threads",
        str(threads),
        "--max-duration",
        str(max_duration),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"worker failed: {shlex.join(cmd)}\n{r.stderr[-3000:]}")
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    stats["peak_rss_kb"] = next(
        int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("PEAK_RSS_KB")
    )
    return stats


if __name__ == "__main__":
    main()
