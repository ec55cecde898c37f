"""Late fusion of two runs' class probabilities, fold by fold.

p = w * p_a + (1 - w) * p_b (a: the neural run, b: the SVM baseline), with w chosen per fold
on that fold's **dev** set (UA over the grid 0, 0.1, ..., 1; ties go to the larger w, i.e.
towards the neural run) and then applied unchanged to the fold's test set. Both runs read
from their decode folders (``predictions.tsv`` of dev and test, ``p_<category>`` columns),
and the fused test set is written in the same layout:
``<out-dir>/<fold>/decode/<set>-fused/{predictions.tsv,metrics.json}`` plus
``<out-dir>/<fold>/fusion.json`` with the chosen w and the dev UA of every w.

A model refitted on train + dev (the recipes' ``fit_on=train+dev``) has no unseen dev set to choose w
on: ``weights_from`` then names the fusion of the same pair trained on train only, and each fold's w is
read from its ``fusion.json`` (chosen on dev there) and applied to the refitted pair's test set.

A seed ensemble (:func:`average_runs`, :func:`average_folds`) reads the same folders: the
equal-weight mean of N >= 2 runs' probabilities on one set, written as
``<out-dir>/<fold>/decode/<set>-ens/{predictions.tsv,metrics.json}``.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from speecheq import metrics
from speecheq.errors import SpeechEQError
from speecheq.io import write_json_atomic
from speecheq.labels import LabelScheme

log = logging.getLogger("speecheq")

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
TAG = "fused"
ENSEMBLE_TAG = "ens"


@dataclass
class Predictions:
    """One decode folder's predictions.tsv: cut ids in file order, truths, probabilities."""

    path: Path
    categories: List[str]
    cut_ids: List[str]
    corpora: List[str]
    truth: np.ndarray  # class index, -1 where unknown
    probs: np.ndarray  # (cuts, categories)


def read_predictions(decode_dir: Path) -> Predictions:
    path = Path(decode_dir) / "predictions.tsv"
    if not path.is_file():
        raise SpeechEQError(f"predictions not found: {path} (decode that set first)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or "cut_id" not in rows[0]:
        raise SpeechEQError(f"{path}: not a decode predictions.tsv (no header with cut_id)")
    header = rows[0]
    prob_cols = [i for i, h in enumerate(header) if h.startswith("p_")]
    if not prob_cols:
        raise SpeechEQError(f"{path}: no p_<category> probability columns")
    categories = [header[i][2:] for i in prob_cols]
    col = {h: i for i, h in enumerate(header)}
    try:
        body = [r for r in rows[1:] if r]
        truth = np.array(
            [categories.index(r[col["emotion_true"]]) if r[col["emotion_true"]] in categories else -1 for r in body],
            dtype=np.int64,
        )
        probs = np.array([[float(r[i]) for i in prob_cols] for r in body], dtype=np.float64).reshape(len(body), -1)
        ids, corpora = [r[col["cut_id"]] for r in body], [r[col["corpus"]] for r in body]
    except (IndexError, KeyError, ValueError) as e:
        raise SpeechEQError(f"{path}: malformed row ({e})") from None
    if len(set(ids)) != len(ids):
        raise SpeechEQError(f"{path}: repeated cut ids")
    if not np.all(np.isfinite(probs)):
        raise SpeechEQError(f"{path}: non-finite probabilities")
    return Predictions(path, categories, ids, corpora, truth, probs)


def aligned(a: Predictions, b: Predictions) -> Predictions:
    """``b`` reordered to ``a``'s cut order; one clear line where the two do not match."""
    if a.categories != b.categories:
        raise SpeechEQError(f"{a.path} and {b.path} have different categories: {a.categories} vs {b.categories}")
    if set(a.cut_ids) != set(b.cut_ids):
        only_a, only_b = sorted(set(a.cut_ids) - set(b.cut_ids)), sorted(set(b.cut_ids) - set(a.cut_ids))
        raise SpeechEQError(
            f"{a.path} and {b.path} hold different cuts ({len(only_a)} only in the first, e.g. "
            f"{only_a[:2]}; {len(only_b)} only in the second, e.g. {only_b[:2]})"
        )
    row = {c: i for i, c in enumerate(b.cut_ids)}
    order = [row[c] for c in a.cut_ids]
    if not np.array_equal(a.truth, b.truth[order]):
        raise SpeechEQError(f"{a.path} and {b.path} disagree on the true category of some cuts")
    return Predictions(b.path, b.categories, a.cut_ids, a.corpora, b.truth[order], b.probs[order])


def fused_ua(a: Predictions, b: Predictions, w: float) -> float:
    labelled = a.truth >= 0
    if not labelled.any():
        raise SpeechEQError(f"{a.path}: no cut with a known category to choose the fusion weight on")
    pred = (w * a.probs + (1 - w) * b.probs).argmax(axis=1)
    return metrics.unweighted_accuracy(a.truth[labelled], pred[labelled], len(a.categories)) * 100


def choose_weight(a: Predictions, b: Predictions, weights: Sequence[float] = WEIGHTS) -> Dict[str, object]:
    """The w with the highest UA on these (dev) predictions; ties: the larger w."""
    table = {float(w): fused_ua(a, b, float(w)) for w in weights}
    best = max(table, key=lambda w: (table[w], w))
    return {"w": best, "dev_UA": table[best], "dev_UA_by_w": {f"{w:.1f}": ua for w, ua in table.items()}}


def check_patterns(patterns: Sequence[str]) -> None:
    """Each pattern names a decode folder with {k} (the fold) and {split} (dev or test)."""
    for pattern in patterns:
        for key in ("{k}", "{split}"):
            if key not in pattern:
                raise SpeechEQError(f"pattern {pattern!r} has no {key}")


def fold_name(k: str) -> str:
    """The output folder of fold ``k``: as the recipes name it (k, fold<k> or official)."""
    return k if str(k).startswith("fold") or k == "official" else f"fold{k}"


def set_of(decode_dir: Path) -> str:
    """``<set>`` of a decode folder ``<set>-<tag>``."""
    return Path(decode_dir).name.split("-", 1)[0]


def chosen_weight(fusion_dir: Path) -> Dict[str, object]:
    """The w an earlier fusion chose for one fold (its ``fusion.json``), with where it was chosen."""
    path = Path(fusion_dir) / "fusion.json"
    try:
        info = json.loads(path.read_text())
        w = float(info["w"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpeechEQError(
            f"{path}: no fusion weight to reuse ({type(e).__name__}: {e}); run that fusion first"
        ) from e
    if not 0.0 <= w <= 1.0:
        raise SpeechEQError(f"{path}: fusion weight {w} is not in [0, 1]")
    return {"w": w, "dev_UA": info.get("dev_UA"), "chosen_on": info.get("chosen_on"), "weights_from": str(path)}


def fuse_fold(
    a_dev: Optional[Path],
    b_dev: Optional[Path],
    a_test: Path,
    b_test: Path,
    out_dir: Path,
    *,
    weights: Sequence[float] = WEIGHTS,
    names: Sequence[str] = ("net", "svm"),
    weights_from: Optional[Path] = None,
) -> Path:
    """Choose w on dev (or read it from ``weights_from``, an earlier fusion's fold folder), fuse
    test, write the decode folder; returns its metrics.json."""
    from speecheq.baseline import category_records, write_decode_dir

    if weights_from is not None:
        choice = chosen_weight(weights_from)
    else:
        da = read_predictions(a_dev)
        db = aligned(da, read_predictions(b_dev))
        choice = {**choose_weight(da, db, weights), "chosen_on": str(a_dev)}
    ta = read_predictions(a_test)
    tb = aligned(ta, read_predictions(b_test))
    probs = choice["w"] * ta.probs + (1 - choice["w"]) * tb.probs
    scheme = LabelScheme("fused", tuple(ta.categories))
    recs = category_records(ta.cut_ids, ta.corpora, ta.truth, probs)
    set_name = set_of(b_test)
    decode_dir = Path(out_dir) / "decode" / f"{set_name}-{TAG}"
    info = {
        "w": choice["w"],
        "formula": f"w * p_{names[0]} + (1 - w) * p_{names[1]}",
        "chosen_on": choice["chosen_on"],
        "dev_UA": choice["dev_UA"],
        names[0]: {"test": str(a_test)},
        names[1]: {"test": str(b_test)},
    }
    if weights_from is None:
        info["dev_UA_by_w"] = choice["dev_UA_by_w"]
        info[names[0]]["dev"], info[names[1]]["dev"] = str(a_dev), str(b_dev)
    else:
        info["weights_from"] = choice["weights_from"]
    summary = write_decode_dir(decode_dir, recs, scheme, {"corpus_aware": True, "fusion": info}, set_name)
    write_json_atomic(Path(out_dir) / "fusion.json", {**info, "test_headline": summary["headline"]})
    log.info(
        "%s: w = %.1f (%s); test UA %.2f",
        out_dir,
        choice["w"],
        f"from {weights_from}" if weights_from is not None else f"dev UA {choice['dev_UA']:.2f}",
        summary["headline"].get("UA", float("nan")),
    )
    return decode_dir / "metrics.json"


def fuse_folds(
    a_pattern: str,
    b_pattern: str,
    folds: Sequence[str],
    out_dir: Path,
    *,
    weights: Sequence[float] = WEIGHTS,
    names: Sequence[str] = ("net", "svm"),
    weights_from: Optional[Path] = None,
) -> List[Path]:
    """Patterns name a decode folder with {k} (the fold) and {split} (dev or test). With
    ``weights_from`` (an earlier fusion's output folder) each fold's w is read from it and only the
    test sets are read."""
    check_patterns([a_pattern, b_pattern])
    if weights_from is not None and Path(weights_from).resolve() == Path(out_dir).resolve():
        raise SpeechEQError(f"--weights-from {weights_from} is the output folder itself")
    out = []
    for k in folds:
        paths = {
            (side, split): Path(p.format(k=k, split=split))
            for side, p in (("a", a_pattern), ("b", b_pattern))
            for split in ("dev", "test")
        }
        out.append(
            fuse_fold(
                None if weights_from is not None else paths["a", "dev"],
                None if weights_from is not None else paths["b", "dev"],
                paths["a", "test"],
                paths["b", "test"],
                Path(out_dir) / fold_name(k),
                weights=weights,
                names=names,
                weights_from=None if weights_from is None else Path(weights_from) / fold_name(k),
            )
        )
    return out


def average_runs(decode_dirs: Sequence[Path], out_dir: Path) -> Path:
    """The equal-weight mean of N >= 2 runs' class probabilities on one set (a seed ensemble).

    Every member is aligned to the first by cut id, so members that differ in cuts, categories
    or true categories stop with one line. Writes ``<out_dir>/decode/<set>-ens/`` (the set from
    the first member's folder name) with the members recorded in metrics.json; returns its
    metrics.json. Like fusion, the ensemble row carries the emotion category metrics only: the
    other tasks' outputs are not averaged.
    """
    from speecheq.baseline import category_records, write_decode_dir

    if len(decode_dirs) < 2:
        raise SpeechEQError(f"an ensemble averages at least 2 runs (got {len(decode_dirs)})")
    first = read_predictions(decode_dirs[0])
    members = [first] + [aligned(first, read_predictions(d)) for d in decode_dirs[1:]]
    probs = np.mean([m.probs for m in members], axis=0)
    scheme = LabelScheme("ensemble", tuple(first.categories))
    recs = category_records(first.cut_ids, first.corpora, first.truth, probs)
    set_name = set_of(decode_dirs[0])
    decode_dir = Path(out_dir) / "decode" / f"{set_name}-{ENSEMBLE_TAG}"
    info = {"members": [str(d) for d in decode_dirs], "rule": "mean of p"}
    summary = write_decode_dir(decode_dir, recs, scheme, {"corpus_aware": True, "ensemble": info}, set_name)
    log.info("%s: mean of %d runs, UA %.2f", decode_dir, len(members), summary["headline"].get("UA", float("nan")))
    return decode_dir / "metrics.json"


def average_folds(patterns: Sequence[str], folds: Sequence[str], splits: Sequence[str], out_dir: Path) -> List[Path]:
    """:func:`average_runs` of every fold and split; patterns as in :func:`fuse_folds`.

    Writes ``<out_dir>/fold<k>/decode/<set>-ens/``; returns the metrics.json files, fold by fold.
    """
    if len(patterns) < 2:
        raise SpeechEQError(f"an ensemble averages at least 2 runs (got {len(patterns)})")
    check_patterns(patterns)
    return [
        average_runs([Path(p.format(k=k, split=split)) for p in patterns], Path(out_dir) / fold_name(k))
        for k in folds
        for split in splits
    ]
