"""PNG figures for reports: confusion matrices, phone alignments, cross-corpus heatmaps.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never
through pyplot: no global figure state, no GUI backend, nothing to close, and
safe to call from worker processes. Every file is written to
``path + ".tmp.png"`` first and then renamed, so a crash never leaves a
truncated PNG behind that a later stage would take as done.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Alignment labels alternate between these heights (axis fraction) so that
# neighbouring short phones do not print on top of each other.
_LABEL_HEIGHTS = (0.95, 0.86)


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure_atomically(figure: Figure, path) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    temporary = path + ".tmp.png"
    try:
        figure.savefig(temporary, format="png", dpi=100)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _check_matrix(matrix, row_labels: Sequence[str], col_labels: Sequence[str]) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"matrix shape {matrix.shape} does not match {len(row_labels)} row labels "
            f"and {len(col_labels)} column labels"
        )
    return matrix


def _draw_matrix(axes, matrix: np.ndarray, row_labels, col_labels, cell_text, cmap="Blues") -> None:
    """Heatmap with one annotation per cell; NaN cells are grey and unlabelled."""
    shown = np.ma.masked_invalid(matrix)
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="lightgrey")
    image = axes.imshow(shown, cmap=colormap, aspect="auto")
    axes.set_xticks(range(len(col_labels)), labels=col_labels, rotation=45, ha="right")
    axes.set_yticks(range(len(row_labels)), labels=row_labels)
    for (row, col), value in np.ndenumerate(matrix):
        if not math.isfinite(value):
            continue
        red, green, blue, _ = colormap(image.norm(value))
        # Light text on dark cells, whatever the colormap's direction.
        colour = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"
        axes.text(col, row, cell_text(value), ha="center", va="center", color=colour, fontsize=8)
    axes.figure.colorbar(image, ax=axes, shrink=0.8)


def plot_confusion(confusion, labels: Sequence[str], path, title: str | None = None) -> None:
    """Two panels: raw counts and row-normalised percent (rows = true class)."""
    counts = _check_matrix(confusion, labels, labels)
    row_totals = counts.sum(axis=1, keepdims=True)
    # A class with no test utterance has an undefined row; NaN shows it as grey.
    with np.errstate(invalid="ignore", divide="ignore"):
        row_percent = np.where(row_totals > 0, 100 * counts / row_totals, np.nan)
    size = 2.5 + 0.6 * len(labels)
    figure = new_figure(2 * size + 1, size)
    count_axes, percent_axes = figure.subplots(1, 2)
    _draw_matrix(count_axes, counts, labels, labels, lambda v: f"{v:.0f}")
    _draw_matrix(percent_axes, row_percent, labels, labels, lambda v: f"{v:.1f}")
    count_axes.set_title("counts")
    percent_axes.set_title("row-normalised (%)")
    for axes in (count_axes, percent_axes):
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
    if title:
        figure.suptitle(title)
    save_figure_atomically(figure, path)


def plot_alignment(
    fbank, segments: Sequence[tuple[str, float, float]], path, frame_shift: float, title: str | None = None
) -> None:
    """Fbank (T, F) image with phone boundaries and labels; segments are (symbol, start_s, duration_s)."""
    fbank = np.asarray(fbank, dtype=np.float64)
    if fbank.ndim != 2 or 0 in fbank.shape:
        raise ValueError(f"fbank must be a non-empty (T, F) array, got shape {fbank.shape}")
    if not frame_shift > 0:
        raise ValueError(f"frame_shift must be > 0, got {frame_shift}")
    num_frames, num_bins = fbank.shape
    duration = num_frames * frame_shift
    for segment in segments:
        if len(segment) != 3:
            raise ValueError(f"segments must be (symbol, start_s, duration_s), got {segment!r}")
        _, start, length = segment
        # One frame of slack: alignments round to frames, fbank drops a partial last frame.
        if start < 0 or length < 0 or start + length > duration + frame_shift + 1e-9:
            raise ValueError(f"segment {segment!r} is not inside the {duration:.2f} s of fbank")
    figure = new_figure(min(max(6.0, 3.0 * duration), 40.0), 4.0)
    axes = figure.subplots()
    axes.imshow(fbank.T, origin="lower", aspect="auto", cmap="viridis", extent=(0.0, duration, 0.0, num_bins))
    for index, (symbol, start, length) in enumerate(segments):
        for boundary in (start, start + length):
            axes.axvline(boundary, color="white", linewidth=0.8)
        axes.text(
            start + length / 2,
            _LABEL_HEIGHTS[index % 2] * num_bins,
            str(symbol),
            ha="center",
            va="center",
            color="white",
            fontsize=8,
            fontweight="bold",
        )
    axes.set_xlim(0.0, duration)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("mel bin")
    if title:
        axes.set_title(title)
    save_figure_atomically(figure, path)


def plot_heatmap(
    matrix, row_labels: Sequence[str], col_labels: Sequence[str], path, title: str | None = None, fmt: str = "{:.1f}"
) -> None:
    """Annotated heatmap, e.g. train corpus (rows) x test corpus (columns) UA; NaN cells grey."""
    matrix = _check_matrix(matrix, row_labels, col_labels)
    figure = new_figure(3.0 + 0.9 * len(col_labels), 2.0 + 0.5 * len(row_labels))
    axes = figure.subplots()
    _draw_matrix(axes, matrix, row_labels, col_labels, fmt.format, cmap="viridis")
    if title:
        axes.set_title(title)
    save_figure_atomically(figure, path)
