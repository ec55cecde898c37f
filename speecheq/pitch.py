"""Kaldi's fbank + pitch convention: 80-dim log-mel fbank with 4 prosody dims per frame.

Feature ``fbank-pitch`` (registered with lhotse, so cut manifests and ``from_dict`` find it):
columns 0-79 are exactly lhotse's ``Fbank`` of the inner config, columns 80-83 are

- log F0, interpolated through unvoiced frames and normalised per utterance by subtracting
  the mean log F0 of its voiced frames (speaker and recording level drop out; the contour
  and its range stay),
- voicing: the Praat autocorrelation strength of the chosen candidate on voiced frames, 0 on
  unvoiced ones,
- deltas of both (Kaldi's ``compute-deltas`` regression over +-2 frames),

each multiplied by a scale (Kaldi's ``process-kaldi-pitch-feats`` defaults: 2 for log F0 and
voicing, 10 for the delta of log F0; 10 for the delta of voicing too). The model normalises
every dim anyway; the scales are there for storage: lilcom rounds to multiples of 1/32, which
unscaled would swallow most of the deltas (typical std 0.03).

F0 comes from Praat's tracker (praat-parselmouth); ``bench/pitch.py`` holds the comparison
with pyworld that chose it. The pitch track is sampled at the fbank frames' centres, so
both streams have the same number of frames for any audio length. Audio without voicing
gives zeros, never NaN.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
from lhotse.features.base import FeatureExtractor, register_extractor

from speecheq.errors import SpeechEQError

log = logging.getLogger("speecheq")

NAME = "fbank-pitch"
PITCH_DIMS = 4
F0_MIN = 60.0  # Hz: Praat's window is 3 periods of this (50 ms); RAVDESS voiced frames: 1st percentile 82 Hz
F0_MAX = 600.0  # Hz: not Kaldi's 400: 8.5 % of RAVDESS voiced frames are above it (99th percentile 539 Hz)
METHODS = ("ac", "cc")  # Praat's autocorrelation and cross-correlation trackers
DELTA_WINDOW = 2
PITCH_SCALE, POV_SCALE, DELTA_PITCH_SCALE, DELTA_POV_SCALE = 2.0, 2.0, 10.0, 10.0


def default_fbank_config(num_mel_bins: int = 80) -> Dict[str, Any]:
    """lhotse's FbankConfig as the project uses it, without the device (a run-time choice)."""
    from lhotse import FbankConfig

    cfg = FbankConfig(num_mel_bins=num_mel_bins).to_dict()
    cfg.pop("device", None)
    return cfg


def track_pitch(
    samples: np.ndarray,
    sampling_rate: int,
    frame_shift: float,
    f0_min: float = F0_MIN,
    f0_max: float = F0_MAX,
    num_frames: Optional[int] = None,
    method: str = "ac",
) -> Tuple[np.ndarray, np.ndarray]:
    """Raw F0 in Hz (0: unvoiced) and voicing strength in [0, 1], one value per frame.

    Frame ``i`` is centred at ``(i + 0.5) * frame_shift``, where lhotse's Fbank (no
    snip_edges) centres its windows; ``num_frames`` defaults to lhotse's frame count for
    the audio's length. Frames the tracker cannot see (its first and last half window)
    and audio too short for one analysis window are unvoiced. Raises SpeechEQError when
    Praat fails for another reason.
    """
    import parselmouth

    if method not in METHODS:
        raise SpeechEQError(f"unknown pitch method {method!r}; choose from {METHODS}")
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if num_frames is None:
        from lhotse.utils import compute_num_frames_from_samples

        num_frames = compute_num_frames_from_samples(len(x), frame_shift, sampling_rate)
    f0 = np.zeros(num_frames)
    strength = np.zeros(num_frames)
    # Praat needs three periods of the floor F0 for one analysis window.
    if num_frames == 0 or len(x) < 3.0 / f0_min * sampling_rate or not np.isfinite(x).all():
        return f0, strength
    sound = parselmouth.Sound(x, sampling_frequency=float(sampling_rate))
    try:
        to_pitch = sound.to_pitch_ac if method == "ac" else sound.to_pitch_cc
        pitch = to_pitch(time_step=frame_shift, pitch_floor=f0_min, pitch_ceiling=f0_max)
    except parselmouth.PraatError as e:
        raise SpeechEQError(f"pitch tracker failed: {str(e).strip().splitlines()[0]}") from None
    selected = pitch.selected_array
    if pitch.n_frames == 0:
        return f0, strength
    centres = (np.arange(num_frames) + 0.5) * frame_shift
    index = np.rint((centres - pitch.xs()[0]) / pitch.time_step).astype(int)
    seen = (index >= 0) & (index < pitch.n_frames)
    f0[seen] = np.nan_to_num(selected["frequency"][index[seen]])
    strength[seen] = np.nan_to_num(selected["strength"][index[seen]])
    strength = np.where(f0 > 0, np.clip(strength, 0.0, 1.0), 0.0)
    return f0, strength


def deltas(x: np.ndarray, window: int = DELTA_WINDOW) -> np.ndarray:
    """Kaldi's delta regression over +-``window`` frames, edge frames repeated."""
    if len(x) == 0:
        return np.zeros_like(x)
    padded = np.pad(x, (window, window), mode="edge")
    n = len(x)
    out = sum(
        k * (padded[window + k : window + k + n] - padded[window - k : window - k + n]) for k in range(1, window + 1)
    )
    return out / (2 * sum(k * k for k in range(1, window + 1)))


def pitch_stream(
    f0: np.ndarray,
    voicing: np.ndarray,
    window: int = DELTA_WINDOW,
    scales=(PITCH_SCALE, POV_SCALE, DELTA_PITCH_SCALE, DELTA_POV_SCALE),
) -> np.ndarray:
    """(frames, 4): normalised interpolated log F0, voicing, and their deltas, each times its scale (float32)."""
    f0 = np.asarray(f0, dtype=np.float64)
    voicing = np.asarray(voicing, dtype=np.float64)
    voiced = np.flatnonzero(f0 > 0)
    log_f0 = np.zeros(len(f0))
    if len(voiced):
        lv = np.log(f0[voiced])
        # Linear in log F0 across unvoiced gaps, held flat before the first and after the last voiced frame.
        log_f0 = np.interp(np.arange(len(f0)), voiced, lv) - lv.mean()
    out = np.stack([log_f0, voicing, deltas(log_f0, window), deltas(voicing, window)], axis=1)
    return (out * np.asarray(scales, dtype=np.float64)).astype(np.float32)


@dataclass
class FbankPitchConfig:
    fbank: Dict[str, Any] = field(default_factory=default_fbank_config)
    f0_min: float = F0_MIN
    f0_max: float = F0_MAX
    method: str = "ac"
    delta_window: int = DELTA_WINDOW
    pitch_scale: float = PITCH_SCALE
    pov_scale: float = POV_SCALE
    delta_pitch_scale: float = DELTA_PITCH_SCALE
    delta_pov_scale: float = DELTA_POV_SCALE
    device: str = "cpu"

    def __post_init__(self):
        from lhotse import FbankConfig

        # Through FbankConfig: missing keys (a config of an older lhotse) take the project's defaults,
        # and lhotse's own aliases (num_mel_bins -> num_filters) are resolved.
        self.fbank = FbankConfig.from_dict({**default_fbank_config(), **dict(self.fbank)}).to_dict()
        self.fbank.pop("device", None)
        if self.method not in METHODS:
            raise SpeechEQError(f"unknown pitch method {self.method!r}; choose from {METHODS}")
        if not 0 < self.f0_min < self.f0_max:
            raise SpeechEQError(f"pitch range must satisfy 0 < f0_min < f0_max, got {self.f0_min}-{self.f0_max}")

    @property
    def frame_shift(self) -> float:
        return float(self.fbank["frame_shift"])

    @property
    def frame_length(self) -> float:
        return float(self.fbank["frame_length"])

    @property
    def sampling_rate(self) -> int:
        return int(self.fbank["sampling_rate"])

    @property
    def num_mel_bins(self) -> int:
        return int(self.fbank["num_filters"])

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: Dict[str, Any]) -> "FbankPitchConfig":
        return FbankPitchConfig(**data)


@register_extractor
class FbankPitch(FeatureExtractor):
    """lhotse's Fbank with the pitch stream appended; the pitch part always runs on CPU."""

    name = NAME
    config_type = FbankPitchConfig

    def __init__(self, config: Optional[FbankPitchConfig] = None):
        super().__init__(config=config)
        from lhotse import Fbank, FbankConfig

        self.fbank = Fbank(FbankConfig.from_dict({**self.config.fbank, "device": self.config.device}))
        # Per-process counts that the feature stage logs: utterances with pitch zeroed by a tracker fault, or never voiced.
        self.stats = {"utterances": 0, "failed": 0, "unvoiced": 0}

    @property
    def device(self):
        return self.config.device

    @property
    def frame_shift(self) -> float:
        return self.config.frame_shift

    def feature_dim(self, sampling_rate: int) -> int:
        return self.config.num_mel_bins + PITCH_DIMS

    def extract(self, samples, sampling_rate: int) -> np.ndarray:
        if sampling_rate != self.config.sampling_rate:
            raise SpeechEQError(
                f"fbank-pitch is configured for {self.config.sampling_rate} Hz audio, "
                f"got {sampling_rate} Hz (resample the cuts first)"
            )
        if hasattr(samples, "detach"):
            samples = samples.detach().cpu().numpy()
        samples = np.asarray(samples, dtype=np.float32)
        feats = self.fbank.extract(samples, sampling_rate)
        if hasattr(feats, "detach"):
            feats = feats.detach().cpu().numpy()
        # Fbank keeps the first channel of a (channels, samples) array; the pitch follows the same channel.
        mono = samples[0] if samples.ndim == 2 else samples
        cfg = self.config
        self.stats["utterances"] += 1
        try:
            f0, voicing = track_pitch(
                mono,
                sampling_rate,
                cfg.frame_shift,
                cfg.f0_min,
                cfg.f0_max,
                num_frames=feats.shape[0],
                method=cfg.method,
            )
        except SpeechEQError as e:
            # One bad utterance should not stop a corpus: its prosody dims become "unvoiced", and the stage counts it.
            log.warning("%s (%.2f s of audio); its pitch dims are zeros", e, len(mono) / sampling_rate)
            self.stats["failed"] += 1
            f0 = voicing = np.zeros(feats.shape[0])
        if not (f0 > 0).any():
            self.stats["unvoiced"] += 1
        scales = (cfg.pitch_scale, cfg.pov_scale, cfg.delta_pitch_scale, cfg.delta_pov_scale)
        return np.concatenate([feats, pitch_stream(f0, voicing, cfg.delta_window, scales)], axis=1).astype(np.float32)
