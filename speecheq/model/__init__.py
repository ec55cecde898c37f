"""The SpeechEQ multitask model (Conformer encoder + CTC, emotion, intensity, gender heads)."""

from speecheq.model.config import PRESETS, ModelConfig, config_from_preset
from speecheq.model.encoder import (
    FRAME_SHIFT_SECONDS,
    MIN_EXPORT_FRAMES,
    MIN_INPUT_FRAMES,
    SUBSAMPLING_FACTOR,
    output_lengths,
)
from speecheq.model.heads import GENDER_LABELS
from speecheq.model.specaugment import SpecAugment
from speecheq.model.speecheq import OUTPUT_KEYS, SpeechEQModel

__all__ = [
    "FRAME_SHIFT_SECONDS",
    "GENDER_LABELS",
    "MIN_EXPORT_FRAMES",
    "MIN_INPUT_FRAMES",
    "OUTPUT_KEYS",
    "PRESETS",
    "SUBSAMPLING_FACTOR",
    "ModelConfig",
    "SpecAugment",
    "SpeechEQModel",
    "config_from_preset",
    "output_lengths",
]
