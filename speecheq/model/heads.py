"""Task heads on top of the shared encoder.

The phoneme head reads every encoder frame (CTC); the utterance-level tasks of
speecheq.tasks (emotion, intensity, gender, ...) share one utterance embedding from
attentive statistics pooling, each through a head of the kind its table entry names.
"""

from __future__ import annotations

import torch
from torch import nn

from speecheq.tasks import utterance_tasks

# Keeps the pooled standard deviation differentiable where a channel is constant.
_MIN_VARIANCE = 1e-5


class PhonemeHead(nn.Module):
    """CTC log-probabilities, ``upsample`` output frames per encoder frame (ModelConfig.ctc_upsample)."""

    def __init__(self, d_model: int, vocab_size: int, upsample: int = 1):
        super().__init__()
        self.vocab_size, self.upsample = vocab_size, upsample
        self.proj = nn.Linear(d_model, vocab_size * upsample)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, T', D) -> (B, T' * upsample, V) log-probabilities."""
        logits = self.proj(encoded)
        if self.upsample > 1:
            logits = logits.unflatten(-1, (self.upsample, self.vocab_size)).flatten(1, 2)
        return logits.log_softmax(dim=-1)


class AttentiveStatisticsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over valid frames (Okabe et al. 2018)."""

    def __init__(self, d_model: int, attention_dim: int):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(d_model, attention_dim),
            nn.Tanh(),
            nn.Linear(attention_dim, 1),
        )

    def forward(self, encoded: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T', D), (B, T') -> (B, 2 * D)."""
        scores = self.attention(encoded).squeeze(-1)
        # The smallest finite value instead of -inf: exp() still gives exactly 0
        # next to a valid frame, and an all-padded row cannot turn into NaN.
        scores = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1).unsqueeze(-1)
        frames = torch.where(valid.unsqueeze(-1), encoded, 0.0)
        mean = (weights * frames).sum(dim=1)
        second_moment = (weights * frames.square()).sum(dim=1)
        std = (second_moment - mean.square()).clamp(min=_MIN_VARIANCE).sqrt()
        return torch.cat([mean, std], dim=-1)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


class GradientReversal(nn.Module):
    """Identity forward, gradient times -scale backward (Ganin & Lempitsky 2015): the head
    after it learns to tell speakers apart while the encoder learns to make that hard."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGradient.apply(x, self.scale)


def build_head(kind: str, pooled_dim: int, hidden_dim: int, num_outputs: int) -> nn.Module:
    """The head kinds a task of speecheq.tasks can name (Task.head)."""
    if kind == "classifier":
        return nn.Linear(pooled_dim, num_outputs)
    if kind == "regressor":  # a score in [0, 1]
        return nn.Sequential(nn.Linear(pooled_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1), nn.Sigmoid())
    if kind == "adversary":
        return nn.Sequential(
            GradientReversal(), nn.Linear(pooled_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_outputs)
        )
    raise ValueError(f"unknown head kind {kind!r}")


class UtteranceHeads(nn.Module):
    """One head per utterance-level task of speecheq.tasks on one pooled embedding: emotion
    logits, intensity in [0, 1], gender logits and, with ``num_speakers`` > 0, a training-only
    speaker adversary behind gradient reversal."""

    def __init__(self, config):
        super().__init__()
        d_model, pooling_dim = config.d_model, config.pooling_dim
        self.pooling = AttentiveStatisticsPooling(d_model, pooling_dim)
        pooled_dim = 2 * d_model
        self.dropout = nn.Dropout(config.dropout)
        # Attributes named after the tasks, built in table order: the parameter names and the
        # random initialisation stay those of checkpoints written before the table existed.
        self.tasks = []
        for task in utterance_tasks():
            width = task.num_outputs(config)
            if width > 0:
                setattr(self, task.name, build_head(task.head, pooled_dim, pooling_dim, width))
                self.tasks.append(task)

    def forward(self, encoded: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(self.pooling(encoded, valid))
        out = {}
        for task in self.tasks:
            y = getattr(self, task.name)(pooled)
            out[task.output] = y.squeeze(-1) if task.head == "regressor" else y
        return out
