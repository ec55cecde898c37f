"""Evaluation metrics for SER: scikit-learn's and kaldialign's, with SER's conventions.

Counting is delegated to maintained libraries (confusion, accuracy, balanced accuracy and
macro-F1 to scikit-learn, edit distance to kaldialign); this module owns the conventions
below, which they do not give by default. Pearson and CCC stay here: scipy's pearsonr warns
and scikit-learn has no CCC. tests/test_metrics.py checks each against a plain formula.

Conventions:
- The plain functions return fractions in [0, 1] (accuracies, recall, F1) or
  raw values (MAE, correlations); ``classification_report`` converts WA, UA,
  macro-F1 and per-class recall to percent, the unit SER papers report.
- Undefined values are ``float('nan')``, never a warning: an empty input, the
  recall of a class absent from y_true, a correlation with a constant vector.
- WA (weighted accuracy) is plain accuracy; UA (unweighted accuracy) is the
  mean recall over the classes present in y_true, so a class missing from a
  test set neither counts as 0 nor is averaged in.
- Macro-F1 averages over classes present in y_true *or* y_pred: a class that
  is only ever predicted (wrongly) scores F1 = 0 and lowers the mean, while a
  class absent from both is undefined and left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import warnings

import numpy as np

NAN = float("nan")


def _as_labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.all(np.isfinite(array)) and np.all(array == np.round(array))):
            raise ValueError(f"{name} must hold integer class indices")
    return array.astype(np.int64)


def _paired_labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} vs {y_pred.size}")
    return y_true, y_pred


def _paired_values(true, pred) -> tuple[np.ndarray, np.ndarray]:
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if true.ndim != 1 or true.shape != pred.shape:
        raise ValueError(f"expected two 1-D arrays of equal length, got {true.shape} and {pred.shape}")
    return true, pred


def _check_class_range(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> None:
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} has class indices outside [0, {num_classes})")


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows are true classes, columns predictions."""
    y_true, y_pred = _paired_labels(y_true, y_pred)
    _check_class_range(y_true, y_pred, num_classes)
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    if not y_true.size:  # scikit-learn refuses empty input
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return sk_confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)).astype(np.int64)


def _num_classes(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int | None) -> int:
    if num_classes is not None:
        return num_classes
    return int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1


def weighted_accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions (WA); NaN for empty input."""
    y_true, y_pred = _paired_labels(y_true, y_pred)
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred)) if y_true.size else NAN


def per_class_recall(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class; NaN for classes absent from y_true."""
    y_true, y_pred = _paired_labels(y_true, y_pred)
    counts = confusion_matrix(y_true, y_pred, _num_classes(y_true, y_pred, num_classes))
    support = counts.sum(axis=1)
    recall = np.full(len(support), NAN)
    present = support > 0
    recall[present] = np.diag(counts)[present] / support[present]
    return recall


def unweighted_accuracy(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean recall over the classes present in y_true (UA); NaN for empty input."""
    from sklearn.metrics import balanced_accuracy_score

    y_true, y_pred = _paired_labels(y_true, y_pred)
    if num_classes is not None:
        _check_class_range(y_true, y_pred, num_classes)
    if not y_true.size:
        return NAN
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": by design, see above
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y_true, y_pred))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean F1 over classes present in y_true or y_pred; NaN for empty input."""
    from sklearn.metrics import f1_score

    y_true, y_pred = _paired_labels(y_true, y_pred)
    if num_classes is not None:
        _check_class_range(y_true, y_pred, num_classes)
    if not y_true.size:
        return NAN
    present = np.union1d(y_true, y_pred)
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0.0))


def mae(true, pred) -> float:
    true, pred = _paired_values(true, pred)
    return float(np.mean(np.abs(true - pred))) if true.size else NAN


def pearson(true, pred) -> float:
    """Pearson correlation; NaN for fewer than 2 points or a constant vector."""
    true, pred = _paired_values(true, pred)
    if true.size < 2:
        return NAN
    true_centred, pred_centred = true - true.mean(), pred - pred.mean()
    denominator = np.sqrt(np.sum(true_centred**2) * np.sum(pred_centred**2))
    if denominator == 0:
        return NAN
    return float(np.sum(true_centred * pred_centred) / denominator)


def ccc(true, pred) -> float:
    """Lin's concordance correlation coefficient with population moments.

    NaN for fewer than 2 points or when both vectors are the same constant
    (0 / 0); a constant prediction against varying targets gives 0.
    """
    true, pred = _paired_values(true, pred)
    if true.size < 2:
        return NAN
    true_mean, pred_mean = true.mean(), pred.mean()
    covariance = np.mean((true - true_mean) * (pred - pred_mean))
    denominator = true.var() + pred.var() + (true_mean - pred_mean) ** 2
    if denominator == 0:
        return NAN
    return float(2 * covariance / denominator)


#: CTC units -> the name of the token error rate of their headline (speecheq.text.units): phones
#: keep "PER" as before units existed; character and BPE-piece rates are not PERs.
TOKEN_ERROR_RATES = {"phone": "PER", "char": "CER", "bpe": "TER"}

#: headline metrics where a smaller value is the better model (an error rate)
LOWER_IS_BETTER = frozenset(TOKEN_ERROR_RATES.values())


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    import kaldialign

    # kaldialign compares hashable symbols of any type; strings keep ids and phones alike.
    return int(kaldialign.edit_distance([str(t) for t in ref], [str(t) for t in hyp])["total"])


def phone_error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> float:
    """Total edits over total reference tokens (a fraction; NaN with no reference tokens)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    total_ref = sum(len(ref) for ref in refs)
    if total_ref == 0:
        return NAN
    return sum(edit_distance(ref, hyp) for ref, hyp in zip(refs, hyps)) / total_ref


def classification_report(y_true, y_pred, labels: list[str]) -> dict:
    """WA, UA, macro-F1 and per-class recall in percent, plus confusion counts and support.

    Indices in y_true / y_pred refer to ``labels``. The dict is JSON-ready
    (lists and floats; undefined values are NaN).
    """
    num_classes = len(labels)
    if len(set(labels)) != num_classes:
        raise ValueError(f"labels must be unique, got {labels}")
    counts = confusion_matrix(y_true, y_pred, num_classes)
    recall = per_class_recall(y_true, y_pred, num_classes)
    return {
        "WA": 100 * weighted_accuracy(y_true, y_pred),
        "UA": 100 * unweighted_accuracy(y_true, y_pred, num_classes),
        "macro_F1": 100 * macro_f1(y_true, y_pred, num_classes),
        "per_class_recall": {label: 100 * float(r) for label, r in zip(labels, recall)},
        "confusion": counts.tolist(),
        "support": {label: int(n) for label, n in zip(labels, counts.sum(axis=1))},
    }


def regression_report(true, pred) -> dict:
    """MAE, Pearson and CCC over the pairs where both values are finite.

    Missing labels (NaN) are dropped rather than propagated; ``count`` says
    how many pairs were scored.
    """
    true, pred = _paired_values(true, pred)
    scored = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[scored], pred[scored]
    return {"MAE": mae(true, pred), "Pearson": pearson(true, pred), "CCC": ccc(true, pred), "count": int(scored.sum())}


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1), e.g. over folds or seeds.

    Sample std because the values are a few draws (folds, seeds) from a larger
    population. One value gives std 0; no value gives (NaN, NaN).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not values.size:
        return NAN, NAN
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(values.std(ddof=1))
