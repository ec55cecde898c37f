#!/usr/bin/env python3
"""Pitch-tracker comparison that chose the tracker of ``speecheq.pitch``: praat-parselmouth
(autocorrelation and cross-correlation) against pyworld (DIO + StoneMask, and Harvest).

Measured, on one thread:

- RTF: tracking CPU seconds / audio seconds over the real files;
- synthetic tones of known F0 (120 and 220 Hz, five harmonics, clean and at 10 dB SNR):
  voiced-frame recall, median absolute F0 error and gross errors (more than 20 % off,
  which is where octave errors land) among voiced frames;
- silence and white noise: frames wrongly called voiced;
- real files (every n-th RAVDESS file, both genders, all emotions): files that raised or
  gave NaN or no voiced frame at all, octave jumps (consecutive voiced frames whose F0
  ratio is beyond 1.8 either way, per 100 voiced frames), voiced fraction, and gross
  disagreement with Harvest on frames both call voiced.

pyworld is not a dependency of speecheq (it has only an sdist and needs a C++ compiler);
its rows are skipped when it is not importable.

    OMP_NUM_THREADS=1 python bench/pitch.py [--corpus-dir /work/shared/data/ravdess] [--files 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speecheq.pitch import F0_MAX, F0_MIN  # noqa: E402  (the range the feature stage uses)

SR = 16000
SHIFT = 0.01
KINDS = ("clean", "10 dB", "no F0")
GROSS = 0.2  # relative error beyond which a frame counts as a gross (octave-like) error
JUMP = 1.8


def _parselmouth(method: str):
    from speecheq.pitch import track_pitch

    def track(x, sr):
        f0, _ = track_pitch(x, sr, SHIFT, F0_MIN, F0_MAX, method=method)
        return f0

    return track


def _import_pyworld():
    """pyworld 0.3.5's __init__ reads its version through pkg_resources, which setuptools >= 81 no
    longer ships; a stub lets the compiled tracker itself be measured."""
    import importlib.metadata
    import types

    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            stub = types.ModuleType("pkg_resources")
            stub.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
            sys.modules["pkg_resources"] = stub
    import pyworld

    return pyworld


def _pyworld(method: str):
    pyworld = _import_pyworld()

    def track(x, sr):
        x = np.ascontiguousarray(x, dtype=np.float64)
        if method == "harvest":
            f0, t = pyworld.harvest(x, sr, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=SHIFT * 1000)
        else:
            f0, t = pyworld.dio(x, sr, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=SHIFT * 1000)
            f0 = pyworld.stonemask(x, f0, t, sr)
        return f0

    return track


def trackers() -> dict:
    found = {"parselmouth-ac": _parselmouth("ac"), "parselmouth-cc": _parselmouth("cc")}
    try:
        _import_pyworld()
        found.update({"pyworld-dio": _pyworld("dio"), "pyworld-harvest": _pyworld("harvest")})
    except ImportError as e:
        print(f"pyworld not importable ({e}): its rows are skipped", file=sys.stderr)
    return found


def tone(f0: float, seconds: float = 1.0, snr_db: float = None, seed: int = 0, first: int = 1) -> np.ndarray:
    """Harmonics ``first``..``first + 4`` of ``f0`` (first=2: the fundamental is missing, as after a
    telephone band or a weak glottal source; trackers then tend to jump an octave up)."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(first, first + 5))
    x = 0.3 * x / np.abs(x).max()
    if snr_db is not None:
        noise = np.random.default_rng(seed).standard_normal(len(x))
        x = x + noise * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))
    return x.astype(np.float32)


def tone_scores(f0, true_f0):
    f0 = np.asarray(f0, dtype=np.float64)
    core = f0[10:-10]  # the tracker's edge frames see half a window
    voiced = core[core > 0]
    if len(voiced) == 0:
        return 0.0, float("nan"), float("nan")
    rel = np.abs(voiced - true_f0) / true_f0
    return len(voiced) / len(core) * 100, float(np.median(rel) * 100), float(np.mean(rel > GROSS) * 100)


def real_files(corpus_dir: Path, n: int):
    files = sorted(corpus_dir.rglob("*.wav"))
    if not files:
        raise SystemExit(f"no .wav files under {corpus_dir}")
    step = max(len(files) // n, 1)
    return files[::step][:n]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, default=REPO.parent / "shared/data/ravdess")
    p.add_argument("--files", type=int, default=50)
    args = p.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: set OMP_NUM_THREADS=1 for one-thread timings", file=sys.stderr)

    import soundfile as sf

    audio = []
    for path in real_files(args.corpus_dir, args.files):
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        if sr != SR:
            raise SystemExit(f"{path}: {sr} Hz; this benchmark expects {SR} Hz audio")
        audio.append(x.mean(axis=1))
    total = sum(len(x) for x in audio) / SR

    found = trackers()
    synth = {}
    real = {}
    for name, track in found.items():
        row = {}
        for f0 in (120.0, 220.0):
            for kind in KINDS:
                x = tone(f0, snr_db=10.0 if kind == "10 dB" else None, first=2 if kind == "no F0" else 1)
                row[(f0, kind)] = tone_scores(track(x, SR), f0)
        silence = track(np.zeros(SR, dtype=np.float32), SR)
        noise = track((0.1 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32), SR)
        row["false"] = (float(np.mean(silence > 0) * 100), float(np.mean(noise > 0) * 100))
        synth[name] = row

        tracks, failed, nan_files, seconds = [], 0, 0, 0.0
        for x in audio:
            t0 = time.process_time()  # CPU seconds: the cores are shared, wall time would measure the neighbours
            try:
                f0 = np.asarray(track(x, SR), dtype=np.float64)
            except Exception as e:  # a tracker that raises on a file is what we count
                print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
                failed += 1
                tracks.append(None)
                continue
            finally:
                seconds += time.process_time() - t0
            if np.isnan(f0).any():
                nan_files += 1
                failed += 1
            elif not (f0 > 0).any():
                failed += 1
            tracks.append(np.nan_to_num(f0))
        jumps = voiced = frames = 0
        for f0 in tracks:
            if f0 is None:
                continue
            frames += len(f0)
            v = f0 > 0
            voiced += int(v.sum())
            both = v[1:] & v[:-1]
            ratio = f0[1:][both] / f0[:-1][both]
            jumps += int(np.sum((ratio > JUMP) | (ratio < 1 / JUMP)))
        real[name] = dict(
            rtf=seconds / total,
            failed=failed,
            nan=nan_files,
            voiced=voiced / max(frames, 1) * 100,
            jumps=jumps / max(voiced, 1) * 100,
            tracks=tracks,
        )

    reference = real.get("pyworld-harvest")
    for name, r in real.items():
        r["gross_vs_harvest"] = float("nan")
        if reference is None or name == "pyworld-harvest":
            continue
        bad = both = 0
        for a, b in zip(r["tracks"], reference["tracks"]):
            if a is None or b is None:
                continue
            n = min(len(a), len(b))  # the trackers' frame counts differ by a frame or two at the end
            a, b = a[:n], b[:n]
            m = (a > 0) & (b > 0)
            both += int(m.sum())
            bad += int(np.sum(np.abs(a[m] - b[m]) / b[m] > GROSS))
        r["gross_vs_harvest"] = bad / max(both, 1) * 100

    print(
        f"{len(audio)} real files ({total:.1f} s) from {args.corpus_dir}; F0 range {F0_MIN:.0f}-{F0_MAX:.0f} Hz, "
        f"{SHIFT * 1000:.0f} ms frames, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n"
    )
    print(
        "Synthetic tones (5 harmonics; 10 dB: white noise; no F0: harmonics 2-6 only): "
        "voiced % / median |error| % / gross (>20 %) errors % of voiced frames"
    )
    labels = [f"{f0} Hz {kind}" for f0 in (120, 220) for kind in KINDS]
    head = f"{'tracker':<17}" + "".join(f"{label:>22}" for label in labels)
    print(head + f"{'voiced in silence/noise %':>28}")
    for name, row in synth.items():
        cells = "".join(
            f"{f'{v:.0f} / {m:.2f} / {g:.1f}':>22}"
            for (v, m, g) in (row[(f0, kind)] for f0 in (120.0, 220.0) for kind in KINDS)
        )
        silence, noise = row["false"]
        print(f"{name:<17}{cells}{f'{silence:.0f} / {noise:.0f}':>28}")
    print(
        "\nReal files: RTF (one thread), failed files (raised, NaN or never voiced), NaN files, voiced %, "
        "octave jumps per 100 voiced frames, gross disagreement with Harvest %"
    )
    print(f"{'tracker':<17}{'RTF':>8}{'failed':>8}{'NaN':>6}{'voiced %':>10}{'jumps':>8}{'vs harvest %':>14}")
    for name, r in real.items():
        print(
            f"{name:<17}{r['rtf']:>8.4f}{r['failed']:>8d}{r['nan']:>6d}{r['voiced']:>10.1f}{r['jumps']:>8.2f}"
            f"{r['gross_vs_harvest']:>14.1f}"
        )


if __name__ == "__main__":
    main()
