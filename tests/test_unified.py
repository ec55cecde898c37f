"""egs/unified: several prepared corpora, one model, the cross-corpus matrix."""

import json
import os
import subprocess

from tests.conftest import REPO, TINY_MODEL, tone, write_wav


def recipe_copy(egs, name):
    d = egs / name
    d.mkdir(parents=True)
    for item in ("run.sh", "local", "utils", "path.sh"):
        (d / item).symlink_to((REPO / "egs" / name / item).resolve())
    return d


def run(cwd, *args, timeout=600):
    # One epoch of a tiny model: its CTC head has not learnt, and stage 6 refuses such a head unless told
    env = {**os.environ, "allow_untrained_alignment": "true"}
    r = subprocess.run(["bash", "run.sh", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def test_unified_recipe_trains_decodes_and_writes_the_matrix(synth_data, tmp_path):
    egs = tmp_path / "egs"
    # synth: already prepared by the session fixture; link its data where its recipe would have it.
    synth = egs / "synth" / "data"
    synth.mkdir(parents=True)
    for sub in ("manifests", "fbank", "lang"):
        (synth / sub).symlink_to(synth_data / sub)
    # ravdess: a small stand-in in the real layout (2 files per actor, all 24 actors), stages 0-3.
    corpus = tmp_path / "ravdess_corpus"
    for a in range(1, 25):
        for e, inten in (("01", "01"), ("05", "02"), ("03", "01"), ("04", "02")):
            write_wav(corpus / f"Actor_{a:02d}" / f"03-01-{e}-{inten}-01-01-{a:02d}.wav", tone(1.0, freq=100 + 5 * a, seed=a))
    ravdess = recipe_copy(egs, "ravdess")
    run(ravdess, "--stop-stage", "3", "--corpus-dir", str(corpus), "--label-preset", "4class")
    # The corpus's own stages 4-6 (shared fold stages): one fold, one epoch, tiny model.
    run(ravdess, "--stage", "4", "--fold", "1", "--label-preset", "4class", "--num-epochs", "1",
        "--max-duration", "30", "--model-config", TINY_MODEL)
    # The recipe decodes the last min(5, num_epochs) epochs averaged unless told otherwise.
    assert (ravdess / "exp/multitask_4class/fold1/decode/ravdess_fold1_test-epoch-1-avg-1/metrics.json").is_file()
    rows = (ravdess / "RESULTS.md").read_text().splitlines()
    row = next(r for r in rows if r.startswith("| ravdess 4class multitask (emotion,intensity,ctc,gender) epoch-1-avg-1 folds: 1 |"))
    assert "local/decode.py" in row
    assert any(r.startswith("| ravdess 4class multitask epoch-1-avg-1 + ComParE_2016 SVM, fused (w on dev) folds: 1 |") for r in rows)
    assert (ravdess / "data/fbank_ali/ravdess_cuts_fold1_test.jsonl.gz").is_file()
    # Stages 7-8: the classic baseline on the same fold, then the network fused with its ComParE row.
    assert (ravdess / "exp/baseline_ComParE_2016_4class/fold1/decode/ravdess_fold1_test-svm/metrics.json").is_file()
    fusion = json.loads((ravdess / "exp/fusion_multitask_ComParE_2016_4class/fold1/fusion.json").read_text())
    assert 0.0 <= fusion["w"] <= 1.0 and "ravdess_fold1_dev" in fusion["chosen_on"]
    assert (ravdess / "exp/fusion_multitask_ComParE_2016_4class/fold1/decode/ravdess_fold1_test-fused/metrics.json").is_file()

    unified = recipe_copy(egs, "unified")
    run(unified, "--corpora", "synth ravdess", "--num-epochs", "1", "--max-duration", "30",
        "--model-config", TINY_MODEL, "--corpus-weights", "synth=1,ravdess=1")
    tokens = (unified / "data/lang/tokens.txt").read_text().split("\n")
    assert any(t.startswith("AA ") for t in tokens), "English phones from RAVDESS"
    assert any(t.startswith("iou4 ") or t.startswith("i4 ") for t in tokens), "Mandarin phones from synth"
    matrix = json.loads((unified / "exp/cross_corpus_fold0/cross_corpus.json").read_text())
    assert set(matrix) == {"unified_fold0", "single_synth_fold0", "single_ravdess_fold0"}
    for row in matrix.values():
        assert set(row) == {"synth_test", "ravdess_fold0_test"}
        assert all(0 <= v <= 100 for v in row.values())
    assert (unified / "exp/cross_corpus_fold0/cross_corpus.png").stat().st_size > 1000
    # The corpus-aware decision: RAVDESS test predictions stay inside the 4 shared categories.
    pred = (unified / "exp/unified_fold0/decode/ravdess_fold0_test-best-valid/predictions.tsv").read_text()
    assert pred.count("\n") == 6 * 4 + 1


def test_unprepared_corpus_is_one_clear_error(tmp_path):
    egs = tmp_path / "egs"
    unified = recipe_copy(egs, "unified")
    r = subprocess.run(["bash", "run.sh", "--corpora", "ravdess", "--stop-stage", "0"], cwd=unified,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "ERROR: ravdess is not prepared: run egs/ravdess/run.sh --stop-stage 3 first" in r.stderr
