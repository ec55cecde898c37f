"""A pretrained GE2E speaker encoder as an utterance-level feature set of the classic stage.

Speaker-model pretraining is the largest single lever of ``../shared/docs/ser-evidence.md``
(an x-vector network fine-tuned for emotion: +8.6 UA on CREMA-D), and the only speaker
encoder whose weights come inside a PyPI wheel is Resemblyzer's GE2E model (Wan et al.,
ICASSP 2018; Apache-2.0): a 3-layer LSTM (256 units) on 40 mel bands, trained on
VoxCeleb 1/2 and LibriSpeech (thousands of speakers). Nothing is downloaded at run time:
``--speaker-encoder`` names the weights file, e.g. the ``pretrained.pt`` of the wheel::

    pip download --no-deps resemblyzer==0.1.4 && unzip Resemblyzer-0.1.4-py3-none-any.whl 'resemblyzer/pretrained.pt'

Only the network is re-implemented here (``torch`` is all it needs; Resemblyzer itself
pulls librosa and webrtcvad): the mel spectrogram of ``librosa.feature.melspectrogram``
(400-point periodic Hann window, 160-sample hop, centred frames with zero padding, power
spectrum, 40 Slaney-normalised mel bands from 0 to 8 kHz, no log), the volume
normalisation to -30 dBFS (raised only), the 1.6 s partial windows at 1.3 per second with
the last one kept at 75 % coverage, and the utterance embedding as the L2-normalised mean of
the L2-normalised partial embeddings. Resemblyzer also cuts pauses longer than 180 ms with
webrtcvad; the cuts here are already trimmed at both ends by the validate stage, and pauses
inside an utterance are kept (they are part of its prosody).

The feature vector of an utterance (768 values, the choice fixed before any fold was scored):
the 256-dim speaker embedding, and the mean and standard deviation over frames of the last
LSTM layer's states on the whole utterance. The embedding is trained to forget everything
but the speaker; the frame states keep what the LSTM tracks on the way there (level, pitch
range, rate), which is what emotion moves.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
from torch import nn

from speecheq.errors import SpeechEQError

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
HIDDEN = 256
LAYERS = 3
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_RATE = 1.3  # partial windows per second
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
FEATURE_NAMES: List[str] = (
    [f"ge2e_embedding_{i}" for i in range(HIDDEN)]
    + [f"ge2e_state_mean_{i}" for i in range(HIDDEN)]
    + [f"ge2e_state_std_{i}" for i in range(HIDDEN)]
)


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, log above.
HZ_PER_MEL = 200.0 / 3
MIN_LOG_HZ = 1000.0
MIN_LOG_MEL = MIN_LOG_HZ / HZ_PER_MEL
LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    log_part = MIN_LOG_MEL + np.log(np.maximum(f, 1e-10) / MIN_LOG_HZ) / LOG_STEP
    return np.where(f >= MIN_LOG_HZ, log_part, f / HZ_PER_MEL)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= MIN_LOG_MEL, MIN_LOG_HZ * np.exp(LOG_STEP * (m - MIN_LOG_MEL)), HZ_PER_MEL * m)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, each scaled to unit area (Slaney)."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]


@lru_cache(maxsize=1)
def _mel_basis() -> torch.Tensor:
    return torch.from_numpy(mel_filterbank().astype(np.float32))


def mel_spectrogram(samples: np.ndarray) -> torch.Tensor:
    """(frames, 40) mel power spectrogram of 16 kHz samples, frames centred every 10 ms."""
    x = torch.from_numpy(np.asarray(samples, dtype=np.float32))
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP,
        window=torch.hann_window(N_FFT, periodic=True),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real.pow(2) + spec.imag.pow(2)
    return (_mel_basis() @ power).T.contiguous()


def normalise_volume(samples: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the level to target_dbfs RMS, as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if rms <= 0:
        return samples
    change = target_dbfs - 20 * np.log10(rms)
    return samples * np.float32(10 ** (change / 20)) if change > 0 else samples


def partial_windows(n_samples: int) -> List[slice]:
    """Frame slices of the 1.6 s partial utterances (Resemblyzer's compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / PARTIAL_RATE) / HOP))
    windows = [slice(i, i + PARTIAL_FRAMES) for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)]
    last = windows[-1]
    coverage = (n_samples - last.start * HOP) / ((last.stop - last.start) * HOP)
    if coverage < MIN_COVERAGE and len(windows) > 1:
        windows = windows[:-1]
    return windows


class GE2EEncoder(nn.Module):
    """Resemblyzer's VoiceEncoder network: LSTM(40 -> 256, 3 layers) -> Linear -> ReLU -> L2 norm."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)

    @classmethod
    def load(cls, path) -> "GE2EEncoder":
        path = Path(path)
        if not path.is_file():
            raise SpeechEQError(
                f"speaker encoder weights not found: {path} (the pretrained.pt of the resemblyzer wheel; "
                "see speecheq/ge2e.py)"
            )
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file: one line, not torch's traceback
            raise SpeechEQError(f"{path}: not a readable torch checkpoint ({type(e).__name__})") from None
        state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
        encoder = cls()
        if not isinstance(state, dict):
            raise SpeechEQError(f"{path}: no state dict in the checkpoint")
        state = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
        expected = encoder.state_dict()
        wrong = sorted(k for k in expected if k not in state or tuple(state[k].shape) != tuple(expected[k].shape))
        if wrong:
            raise SpeechEQError(
                f"{path}: not a GE2E speaker encoder of 3 x {HIDDEN} LSTM units on {N_MELS} mel bands "
                f"(missing or mis-shaped: {', '.join(wrong[:3])})"
            )
        encoder.load_state_dict(state)
        return encoder.eval()

    def embed(self, mels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(batch, frames, 40) -> L2-normalised embeddings (batch, 256) and last-layer states (batch, frames, 256)."""
        states, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12), states


class GE2EFeatures:
    """The classic stage's extractor interface: ``feature_names`` and ``process(samples, rate)``."""

    def __init__(self, weights):
        self.encoder = GE2EEncoder.load(weights)
        self.feature_names = list(FEATURE_NAMES)
        self.source = file_digest(weights)

    @torch.no_grad()
    def process(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        if sampling_rate != SAMPLE_RATE:
            from speecheq.audio import resample

            samples = resample(samples, sampling_rate, SAMPLE_RATE)
        samples = normalise_volume(np.asarray(samples, dtype=np.float32))
        windows = partial_windows(len(samples))
        # As Resemblyzer: zeros appended to the samples (not the frames) up to the last window's end.
        # Frames are centred and zero-padded, so the utterance's own frames are the first
        # len // HOP + 1 of the padded samples' (the same values): one spectrogram serves both.
        padded = np.pad(samples, (0, max(0, windows[-1].stop * HOP - len(samples))))
        mels = mel_spectrogram(padded)
        partial_embeddings, _ = self.encoder.embed(torch.stack([mels[w] for w in windows]))
        embedding = partial_embeddings.mean(dim=0)
        embedding = embedding / embedding.norm().clamp_min(1e-12)
        _, states = self.encoder.embed(mels[None, : len(samples) // HOP + 1])
        states = states[0]
        return torch.cat([embedding, states.mean(dim=0), states.std(dim=0, unbiased=False)]).double().numpy()


def file_digest(path) -> str:
    """Names the weights in the feature cache, so other weights never reuse its rows."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
