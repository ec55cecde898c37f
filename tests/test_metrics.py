import json
import math
import warnings

import numpy as np
import pytest

from speecheq.metrics import (
    ccc,
    classification_report,
    confusion_matrix,
    edit_distance,
    macro_f1,
    mae,
    mean_std,
    pearson,
    per_class_recall,
    phone_error_rate,
    regression_report,
    unweighted_accuracy,
    weighted_accuracy,
)

# 3 classes; class 2 never occurs in y_true but is predicted once.
Y_TRUE = [0, 0, 0, 0, 1, 1]
Y_PRED = [0, 0, 0, 1, 1, 2]


def test_confusion_matrix_rows_are_true_classes():
    expected = [[3, 1, 0], [0, 1, 1], [0, 0, 0]]
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == expected
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix([0, 1], [0], 3)


def test_accuracies_and_recall():
    # WA: 4 correct of 6.
    assert weighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    # Recall: class 0 = 3/4, class 1 = 1/2, class 2 absent -> NaN.
    recall = per_class_recall(Y_TRUE, Y_PRED, 3)
    assert recall[:2].tolist() == [0.75, 0.5] and math.isnan(recall[2])
    # UA over present classes: (3/4 + 1/2) / 2 = 0.625.
    assert unweighted_accuracy(Y_TRUE, Y_PRED, 3) == pytest.approx(0.625)


def test_macro_f1_counts_classes_only_predicted():
    # F1 = 2TP / (row + column sums): class 0: 6/(4+3) = 6/7; class 1: 2/(2+2) = 1/2;
    # class 2: 0/(0+1) = 0. Mean = (6/7 + 1/2 + 0) / 3.
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((6 / 7 + 0.5) / 3)
    # With 4 classes, class 3 is in neither list and stays out of the mean.
    assert macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx((6 / 7 + 0.5) / 3)


def test_regression_metrics():
    true = [1.0, 2.0, 3.0]
    pred = [2.0, 2.0, 5.0]
    # MAE = (1 + 0 + 2) / 3 = 1.
    assert mae(true, pred) == pytest.approx(1.0)
    # Centred: true (-1, 0, 1), pred (-1, -1, 2); sum of products 1 + 0 + 2 = 3;
    # norms sqrt(2) and sqrt(1 + 1 + 4) = sqrt(6) -> r = 3 / sqrt(12).
    assert pearson(true, pred) == pytest.approx(3 / math.sqrt(12))
    # Population moments: cov = 3/3 = 1, var_true = 2/3, var_pred = 6/3 = 2,
    # means 2 and 3 -> CCC = 2 * 1 / (2/3 + 2 + 1) = 6 / 11.
    assert ccc(true, pred) == pytest.approx(6 / 11)
    assert ccc([0.1, 0.5, 0.9], [0.1, 0.5, 0.9]) == pytest.approx(1.0)


def test_degenerate_inputs_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(weighted_accuracy([], []))
        assert math.isnan(unweighted_accuracy([], []))
        assert math.isnan(macro_f1([], []))
        assert math.isnan(mae([], []))
        assert math.isnan(pearson([1.0], [2.0]))
        assert math.isnan(pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
        assert math.isnan(ccc([0.5, 0.5], [0.5, 0.5]))
        # Constant prediction against varying targets: cov 0 -> CCC 0, not NaN.
        assert ccc([0.0, 1.0], [0.5, 0.5]) == 0.0
        assert math.isnan(phone_error_rate([[]], [["a"]]))
        # A missing (NaN) label is dropped; one remaining pair has no CCC.
        report = regression_report([float("nan"), 1.0], [0.5, 0.5])
        assert report["count"] == 1 and report["MAE"] == 0.5 and math.isnan(report["CCC"])


def test_edit_distance_and_phone_error_rate():
    assert edit_distance([], []) == 0
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance([], ["a"]) == 1
    # kitten -> sitting: 2 substitutions + 1 insertion.
    assert edit_distance(list("kitten"), list("sitting")) == 3
    # 1 substitution over 3 ref tokens + 1 deletion over 2 ref tokens = 2 / 5.
    refs = [["AH", "B", "K"], ["S", "IY"]]
    hyps = [["AH", "P", "K"], ["S"]]
    assert phone_error_rate(refs, hyps) == pytest.approx(2 / 5)
    with pytest.raises(ValueError):
        phone_error_rate(refs, hyps[:1])


def test_classification_report_is_in_percent_and_json_ready():
    labels = ["neu", "hap", "sad"]
    report = classification_report(Y_TRUE, Y_PRED, labels)
    assert report["WA"] == pytest.approx(100 * 4 / 6)
    assert report["UA"] == pytest.approx(62.5)
    assert report["macro_F1"] == pytest.approx(100 * (6 / 7 + 0.5) / 3)
    assert report["per_class_recall"]["neu"] == pytest.approx(75.0)
    assert report["per_class_recall"]["hap"] == pytest.approx(50.0)
    assert math.isnan(report["per_class_recall"]["sad"])
    assert report["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 0]]
    assert report["support"] == {"neu": 4, "hap": 2, "sad": 0}
    json.dumps(report)
    with pytest.raises(ValueError, match="unique"):
        classification_report(Y_TRUE, Y_PRED, ["a", "a", "b"])


def test_regression_report_and_mean_std():
    report = regression_report([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])
    assert report["count"] == 3
    assert report["MAE"] == pytest.approx(1.0)
    assert report["CCC"] == pytest.approx(6 / 11)
    # Mean of (1, 2, 3, 4) = 2.5; sample variance = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
    mean, std = mean_std([1, 2, 3, 4])
    assert mean == pytest.approx(2.5) and std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std([7.0]) == (7.0, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))
    assert mean_std(np.array([[1.0], [3.0]])) == pytest.approx((2.0, math.sqrt(2)))


def _levenshtein(ref, hyp):
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def test_library_backed_metrics_equal_the_plain_formulas():
    # The swap to scikit-learn and kaldialign must not move a single reported number.
    rng = np.random.default_rng(0)
    for trial in range(200):
        n, k = int(rng.integers(1, 40)), int(rng.integers(2, 8))
        y_true = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, k, n))
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, (y_true, y_pred), 1)
        assert confusion_matrix(y_true, y_pred, k).tolist() == counts.tolist()
        assert weighted_accuracy(y_true, y_pred) == pytest.approx(np.mean(y_true == y_pred))
        support = counts.sum(1)
        assert unweighted_accuracy(y_true, y_pred, k) == pytest.approx(
            np.mean(np.diag(counts)[support > 0] / support[support > 0])
        )
        denominator = counts.sum(1) + counts.sum(0)
        assert macro_f1(y_true, y_pred, k) == pytest.approx(
            np.mean(2 * np.diag(counts)[denominator > 0] / denominator[denominator > 0])
        )
        ref = list(rng.integers(1, 6, int(rng.integers(0, 12))))
        hyp = list(rng.integers(1, 6, int(rng.integers(0, 12))))
        assert edit_distance(ref, hyp) == _levenshtein(ref, hyp)
