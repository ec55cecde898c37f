"""Sizes of the SpeechEQ model, kept in one JSON-serialisable dataclass.

The paper gives no layer sizes; the reasons for each default are in
docs/model.md. Every size lives here so that a checkpoint can rebuild its
model from the stored dict alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class ModelConfig:
    num_mel_bins: int = 80
    d_model: int = 256
    num_layers: int = 6
    num_heads: int = 4
    ff_dim: int = 1024
    conv_kernel: int = 31
    # Channels of the two stride-2 convolutions in front of the Conformer;
    # they dominate the compute at short frame shifts, hence a separate knob.
    subsampling_channels: int = 128
    dropout: float = 0.1
    num_emotions: int = 4
    # CTC vocabulary including the blank symbol at id 0.
    vocab_size: int = 2
    pooling_dim: int = 128
    # Training speakers for the gradient-reversal adversary (0: no adversary head).
    num_speakers: int = 0
    # CTC output frames per encoder frame. At 40 ms a CTC path needs a frame per phone plus a
    # blank between repeats; EmoDB's read German has a median 1.8 encoder frames per phone
    # (RAVDESS 3.0), too few for the head to leave the all-blank plateau. 2 gives 20 ms.
    ctc_upsample: int = 1
    num_freq_masks: int = 2
    freq_mask_width: int = 15
    num_time_masks: int = 2
    time_mask_ratio: float = 0.05
    # Subtract each utterance's own mean fbank (over its valid frames) after the global
    # normalisation: Kaldi's per-utterance CMN (apply-cmvn --norm-vars=false), SpeechBrain's
    # "sentence" input normalisation. It removes a fixed channel and speaker spectral offset with
    # the utterance alone, so unlike per-speaker CMVN it needs no other audio of the test speaker.
    # Off by default: it also removes the utterance's loudness level and spectral tilt, and cost
    # 7.6 dev UA on RAVDESS and more on EmoDB (RESULTS.md, "Per-utterance CMN").
    utterance_cmn: bool = False
    # The ssl front end's SSLEncoder.to_settings() (speecheq.model.ssl): the model then takes
    # (B, N) audio samples and the encoder's frames replace normalisation and subsampling;
    # num_mel_bins is then the encoder's output width. None: fbank-like frames.
    ssl: Optional[dict] = None

    def __post_init__(self) -> None:
        self._check_types()
        if self.ssl is not None and not isinstance(self.ssl, dict):
            raise ValueError(f"ModelConfig.ssl must be a dict (SSLEncoder.to_settings()) or None, got {self.ssl!r}")
        if self.ssl is not None and self.utterance_cmn:
            raise ValueError("ModelConfig.utterance_cmn applies to fbank features, not to an ssl front end's frames")
        positive = (
            "num_mel_bins",
            "d_model",
            "num_layers",
            "num_heads",
            "ff_dim",
            "conv_kernel",
            "subsampling_channels",
            "pooling_dim",
            "ctc_upsample",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_speakers < 0:
            raise ValueError(f"ModelConfig.num_speakers must be >= 0, got {self.num_speakers}")
        if self.num_emotions < 2:
            raise ValueError(f"ModelConfig.num_emotions must be >= 2, got {self.num_emotions}")
        if self.vocab_size < 2:
            raise ValueError(f"ModelConfig.vocab_size must be >= 2 (blank + at least one phone), got {self.vocab_size}")
        if self.d_model % self.num_heads:
            raise ValueError(f"ModelConfig.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.conv_kernel % 2 == 0:
            # An even kernel cannot be centred, so outputs would shift by half a frame.
            raise ValueError(f"ModelConfig.conv_kernel must be odd, got {self.conv_kernel}")
        # The two valid 3x3 stride-2 convolutions shrink the frequency axis to
        # ((F - 1) // 2 - 1) // 2 bins, which must stay positive.
        if self.num_mel_bins < 7:
            raise ValueError(f"ModelConfig.num_mel_bins must be >= 7, got {self.num_mel_bins}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        for name in ("num_freq_masks", "freq_mask_width", "num_time_masks"):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.time_mask_ratio <= 1.0:
            raise ValueError(f"ModelConfig.time_mask_ratio must be in [0, 1], got {self.time_mask_ratio}")

    def _check_types(self) -> None:
        # A config read back from JSON or a command line must not smuggle in
        # strings or bools, which would only fail deep inside a layer constructor.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"ModelConfig.{field.name} must be an int, got {value!r}")
            elif field.type == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"ModelConfig.{field.name} must be a number, got {value!r}")
                setattr(self, field.name, float(value))
            elif field.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"ModelConfig.{field.name} must be true or false, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        # Options off are left out, so the configs of models trained before they existed stay as
        # they were: their checkpoints resume and compare equal.
        if values["ssl"] is None:
            del values["ssl"]
        if not values["utterance_cmn"]:
            del values["utterance_cmn"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        if not isinstance(values, dict):
            raise ValueError(f"model config must be a dict, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)


PRESETS: dict[str, dict[str, Any]] = {
    # Architecture sizes only; task sizes (num_emotions, vocab_size) come from the data.
    "default": {
        "d_model": 256,
        "num_layers": 6,
        "num_heads": 4,
        "ff_dim": 1024,
        "conv_kernel": 31,
        "subsampling_channels": 128,
        "pooling_dim": 128,
    },
    # Under 0.5 M parameters for corpora of a few hundred utterances per fold (RAVDESS,
    # EmoDB, CASIA), where the best from-scratch results come from models of this size.
    "tiny": {
        "d_model": 96,
        "num_layers": 3,
        "num_heads": 4,
        "ff_dim": 160,
        "conv_kernel": 15,
        "subsampling_channels": 32,
        "pooling_dim": 64,
    },
    # Sized for CPU demos and tests: one training step on 16 x 3 s stays well
    # under a second on two cores (measured figures in docs/model.md).
    "small": {
        "d_model": 144,
        "num_layers": 4,
        "num_heads": 4,
        "ff_dim": 576,
        "conv_kernel": 15,
        "subsampling_channels": 64,
        "pooling_dim": 64,
    },
}


def config_from_preset(name: str, **overrides: Any) -> ModelConfig:
    """Build the preset ``name`` with ``overrides`` (e.g. num_emotions, vocab_size) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return ModelConfig.from_dict({**PRESETS[name], **overrides})
