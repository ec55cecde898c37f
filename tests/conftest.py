"""Shared fixtures: generated audio (never corpus audio in the repository) and the RAVDESS location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
RAVDESS_DIR = Path(os.environ.get("SPEECHEQ_RAVDESS_DIR", REPO.parent / "shared" / "data" / "ravdess"))


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 220.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voiced-like signal: a harmonic tone with a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    x = x * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)) * 0.2 + 0.005 * rng.standard_normal(t.shape)
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_wav(path: Path, data: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


@pytest.fixture
def ravdess_dir() -> Path:
    if not (RAVDESS_DIR / "Actor_01").is_dir():
        pytest.skip(f"RAVDESS not found at {RAVDESS_DIR} (set SPEECHEQ_RAVDESS_DIR)")
    return RAVDESS_DIR
