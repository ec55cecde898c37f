"""Time and frequency masking (Park et al. 2019), without time warping.

Masks are drawn per utterance and vectorised over the batch. Time masks stay
inside each utterance's valid frames and scale with its length, so a short
utterance next to a long one is not wiped out. Masked cells are set to 0,
which is the global mean once the features are normalised.
"""

from __future__ import annotations

import torch
from torch import nn

from speecheq.model.encoder import lengths_to_mask


def _random_spans(
    num_spans: int, max_width: torch.Tensor, extent: torch.Tensor, axis_len: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, axis_len) bool, True inside any of ``num_spans`` random spans per row.

    A span has a width drawn uniformly from [0, max_width] and lies inside
    [0, extent); both limits are (B,) tensors.
    """
    batch = extent.shape[0]
    device = extent.device
    shape = (batch, num_spans)
    max_width = torch.minimum(max_width, extent).unsqueeze(1)
    widths = (torch.rand(shape, generator=generator, device=device) * (max_width + 1)).floor()
    starts = (torch.rand(shape, generator=generator, device=device) * (extent.unsqueeze(1) - widths + 1)).floor()
    positions = torch.arange(axis_len, device=device).view(1, 1, -1)
    inside = (positions >= starts.unsqueeze(-1)) & (positions < (starts + widths).unsqueeze(-1))
    return inside.any(dim=1)


class SpecAugment(nn.Module):
    def __init__(
        self, num_freq_masks: int = 2, freq_mask_width: int = 15, num_time_masks: int = 2, time_mask_ratio: float = 0.05
    ):
        super().__init__()
        self.num_freq_masks = num_freq_masks
        self.freq_mask_width = freq_mask_width
        self.num_time_masks = num_time_masks
        self.time_mask_ratio = time_mask_ratio

    @property
    def masks_frequencies(self) -> bool:
        return self.num_freq_masks > 0 and self.freq_mask_width > 0

    @property
    def masks_time(self) -> bool:
        return self.num_time_masks > 0 and self.time_mask_ratio > 0

    def forward(
        self, features: torch.Tensor, feature_lens: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Mask (B, T, F) ``features`` in training mode; identity in eval mode."""
        if not self.training or not (self.masks_frequencies or self.masks_time):
            return features
        batch, num_frames, num_bins = features.shape
        masked = torch.zeros(batch, num_frames, num_bins, dtype=torch.bool, device=features.device)
        # Padding is left as it is so that callers can rely on what they put there.
        lens = feature_lens.to(features.device)
        if self.masks_frequencies:
            bins = torch.full((batch,), num_bins, device=features.device)
            width = torch.full((batch,), self.freq_mask_width, device=features.device)
            masked |= _random_spans(self.num_freq_masks, width, bins, num_bins, generator).unsqueeze(1)
        if self.masks_time:
            width = (lens * self.time_mask_ratio).floor()
            masked |= _random_spans(self.num_time_masks, width, lens, num_frames, generator).unsqueeze(2)
        valid_frames = lengths_to_mask(lens, num_frames).unsqueeze(2)
        return features.masked_fill(masked & valid_frames, 0.0)
