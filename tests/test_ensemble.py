"""Seed ensembles (issue #11, lever 5): the mean posterior of several runs' decode folders, from the
library, from `speecheq ensemble` / local/ensemble.py, and from the recipe stages (utils/stages.sh)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speecheq.errors import SpeechEQError
from tests.conftest import REPO

CATEGORIES = ["angry", "happy", "neutral", "sad"]
TRUTH = np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 2])
IDS = [f"spk{i % 3}-utt{i}" for i in range(len(TRUTH))]


def _write(folder: Path, probs: np.ndarray, order, categories=CATEGORIES, ids=IDS, truth=TRUTH) -> Path:
    """A decode folder's predictions.tsv, rows in ``order``, as local/decode.py writes its columns."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "predictions.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["cut_id", "corpus", "emotion_true", "emotion_pred", *[f"p_{c}" for c in categories]])
        for i in order:
            labels = [categories[truth[i]], categories[probs[i].argmax()]]
            w.writerow([ids[i], "synth", *labels, *(repr(float(p)) for p in probs[i])])
    return folder


def _members(root: Path, n: int, seed: int = 0, k: int = 0, split: str = "test"):
    """n runs' posteriors on one set, each file in its own shuffled cut order."""
    rng = np.random.default_rng(seed)
    probs = [rng.dirichlet(np.ones(4), size=len(TRUTH)) for _ in range(n)]
    dirs = [
        _write(root / f"run{m}/fold{k}/decode/synth_fold{k}_{split}-epoch-3-avg-1", p, rng.permutation(len(TRUTH)))
        for m, p in enumerate(probs)
    ]
    return dirs, probs


def _ua(truth: np.ndarray, pred: np.ndarray) -> float:
    return 100 * np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)])


def _read(decode_dir: Path):
    with open(decode_dir / "predictions.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {r["cut_id"]: np.array([float(r[f"p_{c}"]) for c in CATEGORIES]) for r in rows}


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch):
    monkeypatch.setattr("speecheq.plots.plot_confusion", lambda *a, **k: None)


def test_the_ensemble_is_the_mean_of_the_members_posteriors(tmp_path):
    from speecheq.fusion import average_runs

    dirs, probs = _members(tmp_path, 3)
    mean = np.mean(probs, axis=0)
    assert _ua(TRUTH, mean.argmax(1)) != _ua(TRUTH, probs[0].argmax(1))  # the data can tell them apart
    out = average_runs(dirs, tmp_path / "ens/fold0")
    assert out == tmp_path / "ens/fold0/decode/synth_fold0_test-ens/metrics.json"
    written = _read(out.parent)
    assert sorted(written) == sorted(IDS)
    for i, cut in enumerate(IDS):
        np.testing.assert_allclose(written[cut], mean[i], rtol=0, atol=5e-5)  # written with 4 decimals
    metrics = json.loads(out.read_text())
    assert metrics["headline"]["UA"] == pytest.approx(_ua(TRUTH, mean.argmax(1)))
    assert metrics["ensemble"] == {"members": [str(d) for d in dirs], "rule": "mean of p"}
    assert set(metrics["headline"]) == {"UA", "WA", "macro_F1"}  # emotion category only


def test_the_members_order_of_cuts_and_of_runs_does_not_matter(tmp_path):
    from speecheq.fusion import average_runs

    dirs, probs = _members(tmp_path, 2)
    # the first member rewritten in sorted cut order: the same ensemble
    resorted = _write(tmp_path / "sorted/synth_fold0_test-x", probs[0], range(len(TRUTH)))
    a = average_runs(dirs, tmp_path / "a")
    b = average_runs([dirs[1], resorted], tmp_path / "b")
    pa, pb = _read(a.parent), _read(b.parent)
    for cut in IDS:
        np.testing.assert_array_equal(pa[cut], pb[cut])
    assert json.loads(a.read_text())["headline"] == json.loads(b.read_text())["headline"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ids": IDS[:-1] + ["other"]}, "hold different cuts"),
        ({"categories": ["angry", "happy", "neutral", "calm"]}, "different categories"),
        ({"truth": np.roll(TRUTH, 1)}, "disagree on the true category"),
    ],
)
def test_a_member_that_does_not_match_fails_with_one_line(tmp_path, change, message):
    from speecheq.fusion import average_runs

    dirs, probs = _members(tmp_path, 2)
    bad = _write(tmp_path / "bad/synth_fold0_test-x", probs[1], range(len(TRUTH)), **change)
    with pytest.raises(SpeechEQError, match=message) as e:
        average_runs([dirs[0], dirs[1], bad], tmp_path / "ens")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "ens").exists()


def test_one_run_or_a_pattern_without_its_keys_is_refused(tmp_path):
    from speecheq.fusion import average_folds, average_runs

    dirs, _ = _members(tmp_path, 1)
    with pytest.raises(SpeechEQError, match="at least 2 runs"):
        average_runs(dirs, tmp_path / "ens")
    with pytest.raises(SpeechEQError, match="has no {split}"):
        average_folds(["a/fold{k}", "b/fold{k}/{split}"], ["0"], ["test"], tmp_path / "ens")


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120, env=env, cwd=REPO
    )


def test_local_ensemble_writes_every_fold_and_split(tmp_path):
    expected = {}
    for k in (0, 1):
        for split in ("test", "dev"):
            _, probs = _members(tmp_path, 2, seed=10 * k + len(split), k=k, split=split)
            expected[k, split] = _ua(TRUTH, np.mean(probs, axis=0).argmax(1))
    patterns = [str(tmp_path / f"run{m}/fold{{k}}/decode/synth_fold{{k}}_{{split}}-epoch-3-avg-1") for m in (0, 1)]
    r = _cli(REPO / "local/ensemble.py", "--runs", *patterns, "--folds", "0", "1", "--out-dir", tmp_path / "ens")
    assert r.returncode == 0, r.stderr
    printed = r.stdout.split()
    assert len(printed) == 4
    for (k, split), ua in expected.items():
        path = tmp_path / f"ens/fold{k}/decode/synth_fold{k}_{split}-ens/metrics.json"
        assert str(path) in printed
        assert json.loads(path.read_text())["headline"]["UA"] == pytest.approx(ua)
    # a missing member set: one ERROR line
    speecheq = ("-c", "from speecheq.cli import main; main()", "ensemble")
    r = _cli(*speecheq, "--runs", *patterns, "--folds", "2", "--out-dir", tmp_path / "x")
    errors = [line for line in r.stderr.splitlines() if line.startswith("ERROR")]
    assert r.returncode == 1 and len(errors) == 1 and "predictions not found" in errors[0], r.stderr
