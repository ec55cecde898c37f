"""The multitask SpeechEQ model: normalisation, SpecAugment, Conformer, task heads."""

from __future__ import annotations

import torch
from torch import nn

from speecheq.model.config import ModelConfig
from speecheq.model.encoder import (
    MIN_INPUT_FRAMES,
    SUBSAMPLING_FACTOR,
    ConformerEncoder,
    lengths_to_mask,
    output_lengths,
)
from speecheq.model.heads import PhonemeHead, UtteranceHeads
from speecheq.model.specaugment import SpecAugment
from speecheq.tasks import utterance_tasks

# "encoder_lens" counts the valid frames of "ctc_log_probs" (encoder frames x ctc_upsample); then one
# output per utterance head that every model has (the training-only adversary's only with num_speakers > 0).
OUTPUT_KEYS = ("ctc_log_probs", "encoder_lens", *(t.output for t in utterance_tasks() if t.evaluated))


def _is_graph_capture() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()


class SpeechEQModel(nn.Module):
    """Shared Conformer encoder with CTC phoneme, emotion, intensity and gender heads.

    ``forward(features, feature_lens)`` takes raw (B, T, num_mel_bins) log-mel
    fbank and the (B,) number of valid frames, and returns a dict with
    OUTPUT_KEYS. Every utterance needs at least MIN_INPUT_FRAMES frames.
    """

    output_lengths = staticmethod(output_lengths)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.ssl = None
        if config.ssl is not None:
            from speecheq.model.ssl import SSLEncoder

            # Random weights of the recorded shapes: training copies the pre-trained ones in,
            # checkpoints and packages carry them in the state dict.
            self.ssl = SSLEncoder(**config.ssl)
            if self.ssl.output_dim != config.num_mel_bins:
                raise ValueError(
                    f"ModelConfig.num_mel_bins ({config.num_mel_bins}) must be the ssl encoder's width "
                    f"({self.ssl.output_dim})"
                )
        # Global statistics from the training set travel with the weights, so
        # a checkpoint or an exported graph takes raw fbank.
        self.register_buffer("feature_mean", torch.zeros(config.num_mel_bins))
        self.register_buffer("feature_std", torch.ones(config.num_mel_bins))
        self.specaugment = SpecAugment(
            num_freq_masks=config.num_freq_masks,
            freq_mask_width=config.freq_mask_width,
            num_time_masks=config.num_time_masks,
            time_mask_ratio=config.time_mask_ratio,
        )
        self.encoder = ConformerEncoder(
            num_mel_bins=config.num_mel_bins,
            d_model=config.d_model,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            ff_dim=config.ff_dim,
            conv_kernel=config.conv_kernel,
            subsampling_channels=config.subsampling_channels,
            dropout=config.dropout,
            subsample=self.ssl is None,
        )
        self.phoneme_head = PhonemeHead(config.d_model, config.vocab_size, config.ctc_upsample)
        self.utterance_heads = UtteranceHeads(config)

    def set_normalization(self, mean, std) -> None:
        """Store the per-bin training-set mean and standard deviation (arrays, lists or tensors)."""
        bins = self.config.num_mel_bins
        mean = torch.as_tensor(mean, dtype=torch.float32).detach().cpu()
        std = torch.as_tensor(std, dtype=torch.float32).detach().cpu()
        if mean.shape != (bins,) or std.shape != (bins,):
            raise ValueError(
                f"normalisation statistics must have shape ({bins},), "
                f"got mean {tuple(mean.shape)} and std {tuple(std.shape)}"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("normalisation statistics contain NaN or inf")
        if (std <= 0).any():
            raise ValueError("normalisation std must be > 0 in every bin")
        with torch.no_grad():
            self.feature_mean.copy_(mean)
            self.feature_std.copy_(std)

    @property
    def ctc_subsampling(self) -> float:
        """Input frames per frame of ``ctc_log_probs``; with the front end's frame shift
        (``FrontEnd.output_frame_shift``) the seconds alignment times are counted in."""
        return (1 if self.ssl is not None else SUBSAMPLING_FACTOR) / self.config.ctc_upsample

    @property
    def min_input_length(self) -> int:
        """The shortest input for one encoder frame, in the input's own steps: fbank frames,
        or audio samples for an ssl model."""
        return self.ssl.min_input_samples if self.ssl is not None else MIN_INPUT_FRAMES

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _check_inputs(self, features: torch.Tensor, feature_lens: torch.Tensor) -> None:
        # Checks are Python branches on shapes and values, which export and
        # trace cannot record; eager calls (training, evaluation) still get them.
        if _is_graph_capture():
            return
        if self.ssl is not None:
            if features.dim() != 2:
                raise ValueError(f"an ssl model takes audio samples of shape (B, N), got {tuple(features.shape)}")
            if feature_lens.shape != features.shape[:1]:
                raise ValueError(
                    f"feature_lens must have shape ({features.shape[0]},), got {tuple(feature_lens.shape)}"
                )
            self.ssl.check_lengths(feature_lens)
            if feature_lens.numel() and int(feature_lens.max()) > features.shape[1]:
                raise ValueError(
                    f"feature_lens max {int(feature_lens.max())} exceeds the {features.shape[1]} samples given"
                )
            return
        if features.dim() != 3 or features.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"expected features of shape (B, T, {self.config.num_mel_bins}), got {tuple(features.shape)}"
            )
        if feature_lens.shape != features.shape[:1]:
            raise ValueError(f"feature_lens must have shape ({features.shape[0]},), got {tuple(feature_lens.shape)}")
        if feature_lens.numel() and int(feature_lens.min()) < MIN_INPUT_FRAMES:
            raise ValueError(
                f"every utterance needs >= {MIN_INPUT_FRAMES} input frames "
                f"for the {SUBSAMPLING_FACTOR}x subsampling; "
                f"shortest has {int(feature_lens.min())}"
            )
        if feature_lens.numel() and int(feature_lens.max()) > features.shape[1]:
            raise ValueError(f"feature_lens max {int(feature_lens.max())} exceeds the {features.shape[1]} frames given")

    def forward(self, features: torch.Tensor, feature_lens: torch.Tensor) -> dict[str, torch.Tensor]:
        self._check_inputs(features, feature_lens)
        feature_lens = feature_lens.long()
        if self.ssl is not None:
            # The encoder normalises each waveform itself (as it was pre-trained), so training
            # leaves the global statistics at 0 and 1; SpecAugment masks its frames and hidden dims.
            features, feature_lens = self.ssl(features, feature_lens)
        valid_frames = lengths_to_mask(feature_lens, features.shape[1]).unsqueeze(-1)
        x = (features - self.feature_mean) / self.feature_std
        # Padding may hold anything (even NaN); where() rather than a multiply
        # keeps it from leaking into SpecAugment or the convolutions.
        x = torch.where(valid_frames, x, 0.0)
        if self.config.utterance_cmn:
            # Padding is zero here, so the sum over time is the sum over valid frames.
            utterance_mean = x.sum(dim=1, keepdim=True) / feature_lens.clamp(min=1).to(x.dtype).view(-1, 1, 1)
            x = torch.where(valid_frames, x - utterance_mean, 0.0)
        x = self.specaugment(x, feature_lens)
        encoded, encoder_lens, valid = self.encoder(x, feature_lens)
        return {
            "ctc_log_probs": self.phoneme_head(encoded),
            "encoder_lens": encoder_lens * self.config.ctc_upsample,
            **self.utterance_heads(encoded, valid),
        }
