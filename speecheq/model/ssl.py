"""A self-supervised speech encoder (WavLM, HuBERT, wav2vec 2.0) as a front end.

The encoder comes from Hugging Face ``transformers`` (the optional extra ``speecheq[ssl]``) and
is read from a local folder only: these machines cannot download weights, and a run that
silently fetched 1 GB would not be reproducible either (docs/ssl.md says how to fetch them).
Two ways to use it, as in the SUPERB / EmoBox recipes:

- frozen (``finetune_top=0``): only a softmax-weighted sum of its hidden states learns;
- the top ``finetune_top`` transformer layers train, the rest (CNN feature encoder included)
  stays frozen. The weighted sum stays, so the heads can still lean on the frozen lower layers.

Its output frame shift is the product of the CNN strides over the sample rate: 20 ms for
every published WavLM / HuBERT / wav2vec 2.0 model.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lhotse.features.base import FeatureExtractor, register_extractor

import torch
from torch import nn

from speecheq.errors import SpeechEQError

MODEL_TYPES = ("wavlm", "hubert", "wav2vec2")
INSTALL_HINT = "pip install 'speecheq[ssl]' (Hugging Face transformers)"
FETCH_HINT = "weights are never downloaded at run time; docs/ssl.md says how to fetch them"
# HF's zero-mean unit-variance normalisation adds this to the variance.
_NORM_EPS = 1e-7
#: lhotse's feature type of the ssl front end (SSLFrames).
FEATURE_TYPE = "ssl"


def _check_model_type(model_type, where: str = "") -> None:
    if model_type not in MODEL_TYPES:
        raise SpeechEQError(
            f"{where}ssl model type {model_type!r} is not supported; choose one of {', '.join(MODEL_TYPES)}"
        )


def _transformers():
    try:
        import transformers
    except ImportError:
        raise SpeechEQError(f"the ssl front end needs transformers: {INSTALL_HINT}") from None
    # A bar per load would fill training logs; a whole model loads in seconds anyway.
    transformers.utils.logging.disable_progress_bar()
    return transformers


def preprocessing_of(model_dir: Path, hf_config: dict[str, Any]) -> dict[str, Any]:
    """What the model's own processor does to a waveform, from its preprocessor_config.json.

    Without that file, HF's rule: models with a layer-norm feature encoder (the "large" ones)
    were trained with attention masks and normalised input; group-norm ("base") models without
    a mask, because their GroupNorm spans the padding anyway.
    """
    layer_norm = hf_config.get("feat_extract_norm") == "layer"
    settings = {"sample_rate": 16000, "normalize": layer_norm, "attention_mask": layer_norm}
    path = Path(model_dir) / "preprocessor_config.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeError) as e:
            raise SpeechEQError(f"{path}: not JSON ({e})") from None
        settings["sample_rate"] = int(stored.get("sampling_rate", settings["sample_rate"]))
        settings["normalize"] = bool(stored.get("do_normalize", settings["normalize"]))
        settings["attention_mask"] = bool(stored.get("return_attention_mask", settings["attention_mask"]))
    return settings


class SSLEncoder(nn.Module):
    """(B, N) waveforms at ``sample_rate`` -> (B, T', output_dim) at ``frame_shift`` seconds.

    ``settings`` (``to_settings()``) rebuilds the network without its folder: the HF config,
    the waveform preprocessing and ``finetune_top``; the weights then come from a state dict.
    """

    def __init__(
        self,
        hf_config: dict[str, Any],
        finetune_top: int = 0,
        sample_rate: int = 16000,
        normalize: bool = False,
        attention_mask: bool = False,
        model: nn.Module | None = None,
    ):
        super().__init__()
        transformers = _transformers()
        _check_model_type(hf_config.get("model_type"))
        if model is None:
            # Random weights of the right shapes; the caller loads the real ones (a checkpoint).
            config = transformers.AutoConfig.for_model(**hf_config)
            model = transformers.AutoModel.from_config(config)
        self.model = model.float()
        config = self.model.config
        self.hf_config = config.to_dict()
        self.sample_rate = int(sample_rate)
        self.normalize = bool(normalize)
        self.attention_mask = bool(attention_mask)
        num_layers = config.num_hidden_layers
        if isinstance(finetune_top, bool) or not isinstance(finetune_top, int) or not 0 <= finetune_top <= num_layers:
            raise SpeechEQError(
                f"--ssl-finetune-top must be an integer from 0 to {num_layers} (the model's layers), got {finetune_top!r}"
            )
        self.finetune_top = finetune_top
        self.output_dim = config.hidden_size
        self.frame_shift = math.prod(config.conv_stride) / self.sample_rate
        # The CNN's receptive field: the shortest input that gives one frame.
        field = 1
        for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
            field = (field - 1) * stride + kernel
        self.min_input_samples = field
        # One weight per hidden state (the CNN projection, then each layer); zeros give the mean.
        self.layer_weights = nn.Parameter(torch.zeros(num_layers + 1))
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        for module in self._tuned_modules():
            for parameter in module.parameters():
                parameter.requires_grad_(True)
        self.train(self.training)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, finetune_top: int = 0) -> "SSLEncoder":
        """Load config and weights from ``model_dir`` (a Hugging Face model folder), offline."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise SpeechEQError(f"--ssl-model {model_dir}: no such folder ({FETCH_HINT})")
        if not (model_dir / "config.json").is_file():
            raise SpeechEQError(
                f"--ssl-model {model_dir}: no config.json, not a Hugging Face model folder ({FETCH_HINT})"
            )
        transformers = _transformers()
        try:
            hf_config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True).to_dict()
            _check_model_type(hf_config.get("model_type"), f"--ssl-model {model_dir}: ")
            model = transformers.AutoModel.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SpeechEQError(f"--ssl-model {model_dir}: cannot load it: {first_line}") from None
        return cls(hf_config, finetune_top, **preprocessing_of(model_dir, hf_config), model=model)

    def to_settings(self) -> dict[str, Any]:
        """JSON-serialisable: ``SSLEncoder(**settings)`` rebuilds this network (random weights)."""
        return {
            "hf_config": self.hf_config,
            "finetune_top": self.finetune_top,
            "sample_rate": self.sample_rate,
            "normalize": self.normalize,
            "attention_mask": self.attention_mask,
        }

    def _tuned_modules(self) -> list[nn.Module]:
        if not self.finetune_top:
            return []
        encoder = self.model.encoder
        modules = list(encoder.layers[-self.finetune_top :])
        # Pre-LN ("stable") models normalise after the last layer, which then belongs to the top.
        if self.model.config.do_stable_layer_norm:
            modules.append(encoder.layer_norm)
        return modules

    def train(self, mode: bool = True) -> "SSLEncoder":
        super().train(mode)
        # The frozen part stays in eval mode: its dropout, LayerDrop and HF's own time masking
        # would otherwise change the features under the heads from one epoch to the next.
        self.model.eval()
        for module in self._tuned_modules():
            module.train(mode)
        return self

    def frames_config(self) -> dict[str, Any]:
        """The front end's description (lhotse's ``to_dict()`` of :class:`SSLFrames`, with its
        ``feature_type``): how long the frames the heads see last, and how many numbers each holds."""
        config = SSLFramesConfig(
            model_type=self.hf_config["model_type"],
            feature_dim=self.output_dim,
            frame_shift=self.frame_shift,
            frame_length=self.min_input_samples / self.sample_rate,
            sampling_rate=self.sample_rate,
        )
        described = {**config.to_dict(), "feature_type": FEATURE_TYPE}
        described.pop("device")  # a run-time choice of the reader, as for every extractor
        return described

    def output_lengths(self, num_samples):
        """Frames for ``num_samples`` input samples (int or tensor); 0 below ``min_input_samples``."""
        lengths = self.model._get_feat_extract_output_lengths(torch.as_tensor(num_samples))
        lengths = lengths.clamp(min=0)
        return int(lengths) if isinstance(num_samples, int) else lengths

    def check_lengths(self, lengths: torch.Tensor) -> None:
        """Refuse an utterance too short for one frame (it would pool nothing). Not part of
        ``forward``: the model's eager input checks call it, and export cannot record it."""
        if lengths.numel() and int(lengths.min()) < self.min_input_samples:
            raise ValueError(
                f"every utterance needs >= {self.min_input_samples} samples "
                f"({1000 * self.min_input_samples / self.sample_rate:g} ms) for one ssl frame; "
                f"shortest has {int(lengths.min())}"
            )

    def layer_distribution(self) -> list[float]:
        """The weighted sum's weights per hidden state (index 0: the CNN projection)."""
        return self.layer_weights.detach().softmax(-1).tolist()

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) float waveforms and (B,) valid samples -> ((B, T', output_dim), (B,) valid frames)."""
        lengths = lengths.long()
        valid = torch.arange(waveforms.shape[1], device=waveforms.device).unsqueeze(0) < lengths.unsqueeze(1)
        x = torch.where(valid, waveforms.float(), 0.0)
        if self.normalize:
            count = lengths.clamp(min=1).unsqueeze(1).to(x.dtype)
            mean = x.sum(1, keepdim=True) / count
            variance = torch.where(valid, x - mean, 0.0).square().sum(1, keepdim=True) / count
            x = torch.where(valid, (x - mean) / torch.sqrt(variance + _NORM_EPS), 0.0)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune_top > 0), warnings.catch_warnings():
            # torch warns about WavLM's float position bias next to a bool padding mask; harmless.
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            hidden_states = self.model(
                x,
                attention_mask=valid.long() if self.attention_mask else None,
                output_hidden_states=True,
            ).hidden_states
        weights = self.layer_weights.softmax(-1)
        features = sum(weight * state for weight, state in zip(weights, hidden_states))
        return features, self.output_lengths(lengths)


# The CNN strides of every published WavLM / HuBERT / wav2vec 2.0 checkpoint: their product
# over the sample rate is the frame shift of an SSL front end described without its model.
PUBLISHED_CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)


@dataclass
class SSLFramesConfig:
    model_type: str = "wavlm"
    feature_dim: int = 768
    frame_shift: float = math.prod(PUBLISHED_CONV_STRIDES) / 16000
    # The CNN's receptive field: what the first frame needs.
    frame_length: float = 0.025
    sampling_rate: int = 16000
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "SSLFramesConfig":
        return SSLFramesConfig(**data)


@register_extractor
class SSLFrames(FeatureExtractor):
    """The ssl front end as lhotse sees it: a description of the encoder's output frames.

    Registered so that a checkpoint's or package's front end (``speecheq.features.FrontEnd``)
    can name it like any extractor. It computes nothing: the encoder is part of the model (its
    layer weights, and its top layers when fine-tuned, train with the heads), so batches carry
    the audio samples and the model makes the frames.
    """

    name = FEATURE_TYPE
    config_type = SSLFramesConfig

    @property
    def frame_shift(self) -> float:
        return float(self.config.frame_shift)

    def feature_dim(self, sampling_rate: int) -> int:
        return int(self.config.feature_dim)

    def extract(self, samples, sampling_rate: int):
        raise SpeechEQError(
            "the ssl front end has no stored features: its frames come from the model, which reads audio"
        )


def write_random_model(
    folder: str | Path,
    model_type: str = "wavlm",
    hidden_size: int = 32,
    num_layers: int = 2,
    preprocessor: dict[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Save a randomly initialised, tiny ``model_type`` into ``folder`` (tests, benchmarks).

    The CNN keeps the published strides (product 320), so its frames are 20 ms at 16 kHz
    like the real models'; only the widths shrink. ``preprocessor`` is written as the
    folder's preprocessor_config.json when given; ``overrides`` are more config fields
    (``feat_extract_norm="layer", do_stable_layer_norm=True`` for the "large" layout).
    """
    transformers = _transformers()
    _check_model_type(model_type)
    config = transformers.AutoConfig.for_model(
        model_type,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        **overrides,
    )
    folder = Path(folder)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2), encoding="utf-8")
    return folder
