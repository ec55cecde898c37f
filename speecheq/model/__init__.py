"""The SpeechEQ multitask model (Conformer encoder + CTC, emotion, intensity, gender heads)."""

from speecheq.model.config import PRESETS, ModelConfig, config_from_preset

# The torch modules load on first use: the option parsers (speecheq.options) read PRESETS
# for --help, which must not wait for torch's import.
_LAZY = {
    "MIN_EXPORT_FRAMES": "encoder",
    "MIN_INPUT_FRAMES": "encoder",
    "SUBSAMPLING_FACTOR": "encoder",
    "output_lengths": "encoder",
    "SpecAugment": "specaugment",
    "OUTPUT_KEYS": "speecheq",
    "SpeechEQModel": "speecheq",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"speecheq.model.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
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
