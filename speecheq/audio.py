"""Reading and checking audio: every corpus goes through here, so each fault is handled once.

``inspect_audio`` decides whether a file is usable and how (which channel, whether
it needs resampling) before it enters a manifest; ``read_audio`` is what inference
uses on arbitrary user files (down-mix, resample). Both raise :class:`AudioError`
with a one-line reason that names the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from speecheq.errors import AudioError

# Below this the fbank front-end (25 ms window) and the encoder's 4x subsampling
# have too few frames to produce one output frame.
MIN_DURATION = 0.1
# Peak amplitude (full scale 1.0) under which a file is digital silence.
SILENCE_PEAK = 1e-4


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sampling_rate: int
    num_channels: int
    num_samples: int
    channel: int  # the channel the supervision uses (see inspect_audio)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate


# Extensions of what libsndfile reads, by the names files carry: inference searches folders
# for them, preparation counts the other files next to a corpus's audio as stray.
_FORMAT_EXTENSIONS = {
    "WAV": (".wav", ".wave"),
    "WAVEX": (".wav",),
    "FLAC": (".flac",),
    "OGG": (".ogg", ".oga", ".opus"),
    "MP3": (".mp3",),
    "AIFF": (".aif", ".aiff", ".aifc"),
    "AU": (".au", ".snd"),
    "CAF": (".caf",),
    "W64": (".w64",),
    "RF64": (".rf64",),
    "NIST": (".sph", ".nist"),
    "VOC": (".voc",),
}


def audio_extensions() -> Tuple[str, ...]:
    import soundfile as sf

    formats = sf.available_formats()
    return tuple(sorted({ext for fmt, exts in _FORMAT_EXTENSIONS.items() if fmt in formats for ext in exts}))


def _read(path: Path):
    import soundfile as sf

    try:
        if path.is_symlink() and not path.exists():
            raise AudioError(f"{path}: broken symbolic link", "broken symbolic link")
        if not path.exists():
            raise AudioError(f"{path}: file not found", "file not found")
        if not os.access(path, os.R_OK):  # libsndfile would only say "System error"
            raise PermissionError
        empty = path.stat().st_size == 0
    except PermissionError:  # also a folder on the way without search (x) permission
        raise AudioError(f"{path}: permission denied", "permission denied") from None
    if empty:
        raise AudioError(f"{path}: unreadable audio (empty file, 0 bytes)", "empty file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except PermissionError:
        raise AudioError(f"{path}: permission denied", "permission denied") from None
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AudioError(f"{path}: unreadable audio ({reason})", "not audio") from None
    return data, int(sr)


def check_samples(name, samples: np.ndarray, sampling_rate: int, min_duration: float = MIN_DURATION) -> None:
    """The faults every source of samples shares (file, manifest, memory): empty, non-finite, too short."""
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: empty audio (0 samples)", "empty audio")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: audio contains NaN or Inf samples", "non-finite samples")
    if samples.shape[0] / sampling_rate < min_duration:
        raise AudioError(
            f"{name}: too short ({samples.shape[0] / sampling_rate:.3f} s < {min_duration} s)", "too short"
        )


def signal_problem(samples: np.ndarray) -> Optional[Tuple[str, str]]:
    """(reason, detail) when finite samples carry no signal: digital silence, or a DC offset alone.
    Preparation skips such a file; inference warns (a model still gives it a confident category)."""
    peak = float(np.abs(samples).max())
    if peak < SILENCE_PEAK:
        return "silent", f"silent (peak {peak:.2e})"
    centred = samples - samples.mean(axis=0, keepdims=True)
    if float(np.abs(centred).max()) < SILENCE_PEAK:
        return "DC offset only", f"no signal, only a DC offset ({float(samples.mean()):.3f})"
    return None


# What inference says for each signal_problem: fixed phrases, so records can be filtered by them.
SIGNAL_WARNINGS = {"silent": "silent input", "DC offset only": "no signal, only a DC offset"}


def inspect_audio(path, min_duration: float = MIN_DURATION) -> AudioInfo:
    """Check a file and choose its channel.

    Multi-channel files: identical channels (RAVDESS's 5 stereo files) use
    channel 0; otherwise the channel with the most energy, since a second
    channel in emotion corpora is usually a far microphone or silence.
    """
    path = Path(path)
    data, sr = _read(path)
    check_samples(path, data, sr, min_duration)
    problem = signal_problem(data)
    if problem is not None:
        raise AudioError(f"{path}: {problem[1]}", problem[0])
    channel = 0
    if data.shape[1] > 1 and not all(np.array_equal(data[:, 0], data[:, c]) for c in range(1, data.shape[1])):
        centred = data - data.mean(axis=0, keepdims=True)
        channel = int(np.argmax((centred**2).sum(axis=0)))
    return AudioInfo(str(path), sr, int(data.shape[1]), int(data.shape[0]), channel)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // g, from_rate // g, axis=-1).astype(np.float32)


def read_audio(
    path, sampling_rate: int = 16000, min_duration: float = MIN_DURATION, warnings: Optional[List[str]] = None
) -> np.ndarray:
    """Mono float32 samples at ``sampling_rate``: down-mixed, resampled, checked.

    What is usable but worth telling (see :func:`input_warnings`) is appended to ``warnings``.
    """
    path = Path(path)
    data, sr = _read(path)
    check_samples(path, data, sr, min_duration)
    mono = data.mean(axis=1)
    if warnings is not None:
        warnings += input_warnings(mono, sr, sampling_rate)
    return resample(mono, sr, sampling_rate)


def input_warnings(mono: np.ndarray, from_rate: int, to_rate: int) -> List[str]:
    """Why a result for these samples deserves less trust: no signal, or a band the model expects
    that the recording never had (upsampled)."""
    out = []
    problem = signal_problem(mono)
    if problem is not None:
        out.append(SIGNAL_WARNINGS[problem[0]])
    if from_rate < to_rate:
        out.append(f"upsampled from {from_rate} Hz")
    return out
