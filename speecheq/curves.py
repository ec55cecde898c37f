"""Learning curves read back from training logs: the evidence that a run has converged.

``train.py`` logs one ``epoch N done ... train losses {...}`` and one ``epoch N
validation: {...}`` line per epoch. A resumed run writes a new log file; the newest
line for an epoch wins, so a curve is the run as it finally went.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike

_TRAIN = re.compile(r"epoch (\d+) done in ([0-9.]+) s.* train losses (\{.*\})")
_VALID = re.compile(r"epoch (\d+) validation: (\{.*\})")


def read_curves(exp_dir: Pathlike) -> Dict[int, dict]:
    """{epoch: {"train": {task: loss}, "valid": {metric: value}, "seconds": training time}} from ``exp_dir/log``."""
    logs = sorted(Path(exp_dir).glob("log/log-train-*-rank0.txt"))  # names carry the start time
    if not logs:
        raise SpeechEQError(f"{exp_dir}: no training log (log/log-train-*-rank0.txt)")
    curves: Dict[int, dict] = {}
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            m = _TRAIN.search(line)
            if m:
                curves.setdefault(int(m.group(1)), {}).update(train=json.loads(m.group(3)), seconds=float(m.group(2)))
            m = _VALID.search(line)
            if m:
                curves.setdefault(int(m.group(1)), {})["valid"] = json.loads(m.group(2))
    return dict(sorted(curves.items()))


def series(curves: Dict[int, dict], key: str, name: str) -> np.ndarray:
    """One value per epoch (NaN where the log has none)."""
    return np.array([curves[e].get(key, {}).get(name, np.nan) for e in curves], dtype=float)


def convergence(fold_curves: Sequence[Dict[int, dict]], window: int = 5, loss: str = "emotion") -> dict:
    """Compare the last ``window`` epochs with the ``window`` before them, averaged over folds.

    A run whose dev UA no longer rises and whose training loss has flattened has used its
    budget; one whose best dev epochs all sit at the very end has not.
    """
    if not fold_curves:
        raise SpeechEQError("convergence: no runs")
    epochs = min(len(c) for c in fold_curves)
    if epochs < 2 * window:
        raise SpeechEQError(f"convergence: {epochs} epochs, need at least {2 * window}")
    ua = np.stack([series(c, "valid", "UA")[:epochs] for c in fold_curves]).mean(axis=0)
    tl = np.stack([series(c, "train", loss)[:epochs] for c in fold_curves]).mean(axis=0)
    best = [int(np.nanargmax(series(c, "valid", "UA"))) + 1 for c in fold_curves]
    return {
        "epochs": epochs,
        "best_dev_epochs": best,
        "train_minutes_per_run": round(
            float(np.mean([sum(e.get("seconds", 0.0) for e in c.values()) for c in fold_curves])) / 60, 1
        ),
        "dev_ua_last": round(float(np.nanmean(ua[-window:])), 2),
        "dev_ua_previous": round(float(np.nanmean(ua[-2 * window : -window])), 2),
        f"train_{loss}_loss_last": round(float(np.nanmean(tl[-window:])), 4),
        f"train_{loss}_loss_previous": round(float(np.nanmean(tl[-2 * window : -window])), 4),
    }


def fold_dirs(run_dir: Pathlike) -> List[Path]:
    """The fold runs of an experiment: a glob (``exp/unified_fold*``), the ``fold*/`` folders
    of a recipe's experiment, or the run itself."""
    text = str(run_dir)
    if any(ch in text for ch in "*?["):
        parent = Path(text).parent
        folds = sorted(p for p in parent.glob(Path(text).name) if p.is_dir())
        if not folds:
            raise SpeechEQError(f"no run folder matches {text}")
        return folds
    run_dir = Path(run_dir)
    folds = sorted(p for p in run_dir.glob("fold*") if p.is_dir())
    return folds or [run_dir]


def plot_curves(runs: Dict[str, Sequence[Dict[int, dict]]], path: Pathlike, loss: str = "emotion") -> None:
    """Dev UA and training loss per epoch, mean over folds with the fold range shaded."""
    from speecheq.plots import new_figure, save_figure_atomically

    fig = new_figure(11, 4)
    ax_ua, ax_loss = fig.subplots(1, 2)
    for name, curves in runs.items():
        epochs = min(len(c) for c in curves)
        x = np.arange(1, epochs + 1)
        for ax, key, metric in ((ax_ua, "valid", "UA"), (ax_loss, "train", loss)):
            values = np.stack([series(c, key, metric)[:epochs] for c in curves])
            (line,) = ax.plot(x, values.mean(axis=0), label=name)
            ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    ax_ua.set(xlabel="epoch", ylabel="dev UA %", title="dev UA (mean over folds, range shaded)")
    ax_loss.set(xlabel="epoch", ylabel=f"train {loss} loss", title=f"training {loss} loss")
    ax_ua.legend(fontsize=8)
    save_figure_atomically(fig, path)
