"""Conv2d subsampling by 4 followed by a Conformer stack (Gulati et al. 2020).

Padding never reaches a valid frame: the subsampling convolutions use no
padding (so a valid output frame only sees valid input frames), attention masks
padded keys, and the depthwise convolution zeroes padded frames before it
slides over them. Everything is written without Python branches on tensor
values so that ``torch.export`` and ``torch.jit.trace`` can follow it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Input frames per encoder frame; the seconds per frame follow from the front end's frame shift
# (speecheq.features.FrontEnd.output_frame_shift).
SUBSAMPLING_FACTOR = 4
# Two valid 3x3 stride-2 convolutions need 7 input frames for one output frame.
MIN_INPUT_FRAMES = 7
# torch.export specialises a dimension of size 1, so an exported graph needs
# at least 2 encoder frames, i.e. 11 fbank frames (see docs/model.md).
MIN_EXPORT_FRAMES = 11


def output_lengths(feature_lens):
    """Encoder frames for ``feature_lens`` fbank frames (int or tensor).

    Each valid 3x3 stride-2 convolution maps n frames to (n - 1) // 2, so the
    result is >= 1 exactly when the input has >= MIN_INPUT_FRAMES frames.
    Shorter inputs give 0 (or less): the model rejects them before this point.
    """
    return ((feature_lens - 1) // 2 - 1) // 2


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True on valid frames."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


class Conv2dSubsampling(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, frequency), then a projection."""

    def __init__(self, num_mel_bins: int, channels: int, d_model: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2),
            nn.ReLU(),
        )
        subsampled_bins = output_lengths(num_mel_bins)
        self.proj = nn.Linear(channels * subsampled_bins, d_model)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, output_lengths(T), d_model)."""
        x = self.conv(features.unsqueeze(1))  # (B, C, T', F')
        return self.proj(x.transpose(1, 2).contiguous().flatten(2))


def sinusoidal_positions(num_frames: int, d_model: int, device, dtype) -> torch.Tensor:
    """(num_frames, d_model) absolute sinusoidal encoding (Vaswani et al. 2017).

    Computed on the fly rather than sliced from a fixed table so that no
    maximum duration is baked into an exported graph.
    """
    half = d_model // 2
    inv_freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / half))
    angles = torch.arange(num_frames, device=device, dtype=torch.float32).unsqueeze(1) * inv_freq
    encoding = torch.cat([angles.sin(), angles.cos()], dim=1)
    if d_model % 2:
        encoding = F.pad(encoding, (0, 1))
    return encoding.to(dtype)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ff_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, ff_dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.attention_dropout = dropout
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        head_dim = x.shape[-1] // self.num_heads
        # (B, T, 3 * D) -> 3 x (B, H, T, head_dim)
        qkv = self.qkv(self.norm(x)).unflatten(-1, (3, self.num_heads, head_dim))
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Padded queries still see the valid keys, so no softmax row is empty.
        key_mask = valid[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=key_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        return self.dropout(self.out(attended.transpose(1, 2).flatten(2)))


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, LayerNorm, SiLU, pointwise conv.

    LayerNorm instead of the original BatchNorm: the output for an utterance
    must not depend on what else is in the batch or on padding.
    """

    def __init__(self, d_model: int, kernel_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.depthwise_norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pointwise_in(self.norm(x)), dim=-1)
        # The depthwise kernel reaches across the end of the utterance; zeros
        # there match what an unpadded utterance sees from the conv's own padding.
        x = torch.where(valid.unsqueeze(-1), x, 0.0)
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        x = F.silu(self.depthwise_norm(x))
        return self.dropout(self.pointwise_out(x))


class ConformerBlock(nn.Module):
    """Macaron block: half FF, self-attention, convolution, half FF, LayerNorm."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, conv_kernel: int, dropout: float):
        super().__init__()
        self.ff_first = FeedForward(d_model, ff_dim, dropout)
        self.attention = MultiHeadSelfAttention(d_model, num_heads, dropout)
        self.conv = ConvolutionModule(d_model, conv_kernel, dropout)
        self.ff_second = FeedForward(d_model, ff_dim, dropout)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff_first(x)
        x = x + self.attention(x, valid)
        x = x + self.conv(x, valid)
        x = x + 0.5 * self.ff_second(x)
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    """(B, T, F) normalised fbank -> (B, T', d_model) with T' = output_lengths(T)."""

    def __init__(
        self,
        num_mel_bins: int,
        d_model: int,
        num_layers: int,
        num_heads: int,
        ff_dim: int,
        conv_kernel: int,
        subsampling_channels: int,
        dropout: float,
        subsample: bool = True,
    ):
        super().__init__()
        self.d_model = d_model
        # An ssl front end's frames are already 20 ms apart: a projection to d_model, no subsampling.
        self.subsample = subsample
        self.subsampling = (
            Conv2dSubsampling(num_mel_bins, subsampling_channels, d_model)
            if subsample
            else nn.Linear(num_mel_bins, d_model)
        )
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(d_model, num_heads, ff_dim, conv_kernel, dropout) for _ in range(num_layers)
        )

    def forward(self, features: torch.Tensor, feature_lens: torch.Tensor):
        """Returns (encoded, encoder_lens, valid) where valid is the (B, T') frame mask."""
        x = self.subsampling(features)
        encoder_lens = output_lengths(feature_lens) if self.subsample else feature_lens
        valid = lengths_to_mask(encoder_lens, x.shape[1])
        x = x + sinusoidal_positions(x.shape[1], self.d_model, x.device, x.dtype)
        x = self.input_dropout(x)
        for block in self.blocks:
            x = block(x, valid)
        return x, encoder_lens, valid
