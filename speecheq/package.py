"""Loading trained models: from a recipe's exp folder (epoch averaging) and, later,
from a self-contained package file."""

from __future__ import annotations

from pathlib import Path

from speecheq.checkpoint import load_model_state, resolve_model_weights
from speecheq.errors import SpeechEQError
from speecheq.model import ModelConfig, SpeechEQModel


def load_model(exp_dir: Path, epoch: int = 0, avg: int = 1, use_averaged_model: bool = False, checkpoint: str = "",
               device="cpu"):
    """Build the model from the configuration stored in its checkpoint; returns (model, meta, tag)."""
    meta, weights, tag = resolve_model_weights(exp_dir, epoch or None, avg, use_averaged_model, checkpoint or None)
    try:
        config = ModelConfig.from_dict(meta["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise SpeechEQError(f"{exp_dir}: checkpoint has no usable model configuration ({e})") from None
    model = SpeechEQModel(config)
    load_model_state(model, weights, f"checkpoint {tag} in {exp_dir}")
    return model.to(device).eval(), meta, tag
