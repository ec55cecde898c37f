"""Splitting long recordings at pauses, so that no model input is longer than ``max_segment``.

The energy contour here is smoothed waveform RMS, searched for its minimum: it chooses
where to cut, unlike :func:`speecheq.features.speech_bounds`, which thresholds fbank
energy to decide what is silence at the edges of an utterance.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

ENERGY_WINDOW = 0.025
ENERGY_HOP = 0.01
# A pause is a stretch of low energy, not one quiet frame inside a stop closure: smooth first.
ENERGY_SMOOTHING = 0.2
# Cuts are searched in the last third of each window, so no segment but the last is shorter than 2/3 of it.
SEARCH_FRACTION = 1 / 3
# Never leave a last segment shorter than this (its category would rest on almost nothing).
MIN_LAST_SEGMENT = 1.0
MIN_MAX_SEGMENT = 3.0


def frame_energy_db(
    samples: np.ndarray,
    sr: int,
    window: float = ENERGY_WINDOW,
    hop: float = ENERGY_HOP,
    smoothing: float = ENERGY_SMOOTHING,
) -> np.ndarray:
    """Smoothed frame RMS in dB, one value per ``hop`` (frame i centred at i * hop)."""
    win, step = max(1, int(round(window * sr))), max(1, int(round(hop * sr)))
    n = max(1, 1 + (len(samples) - 1) // step)
    padded = np.pad(samples.astype(np.float64), (win // 2, win))
    # Power per frame from a cumulative sum: O(n) and no (n, win) matrix for an hour of audio.
    csum = np.concatenate([[0.0], np.cumsum(padded**2)])
    starts = np.arange(n) * step
    power = (csum[starts + win] - csum[starts]) / win
    k = max(1, int(round(smoothing / hop)))
    if k > 1:
        power = np.convolve(power, np.ones(k) / k, mode="same")
    return 10 * np.log10(power + 1e-10)


def split_at_pauses(samples: np.ndarray, sr: int, max_segment: float) -> List[Tuple[int, int]]:
    """Sample bounds [start, end) of segments no longer than ``max_segment`` seconds.

    Each cut is placed at the lowest-energy frame in the last third of the window
    that starts at the previous cut, so a pause is preferred to a word and no
    segment but the last is shorter than 2/3 of ``max_segment``.
    """
    total = len(samples)
    if max_segment <= 0 or total <= max_segment * sr:
        return [(0, total)]
    energy = frame_energy_db(samples, sr)
    hop = int(round(ENERGY_HOP * sr))
    bounds, start = [], 0
    while total - start > max_segment * sr:
        lo = start + int((1 - SEARCH_FRACTION) * max_segment * sr)
        hi = min(start + int(max_segment * sr), total - int(MIN_LAST_SEGMENT * sr))
        if hi <= lo:
            hi = start + int(max_segment * sr)
        f_lo, f_hi = -(-lo // hop), hi // hop  # frames whose centre lies in [lo, hi]
        cut = (f_lo + int(np.argmin(energy[f_lo : f_hi + 1]))) * hop if f_hi >= f_lo else hi
        cut = min(max(cut, lo), hi)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds
