"""The classic baseline (openSMILE functionals + SVM) and late fusion, on generated audio only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, tone, write_wav

SR = 16000
LEAD = 0.3  # seconds of near-silence before each clip: the cut starts after it, as a trimmed cut does
CLASSES = ("neutral", "happy", "angry")
SPEAKERS = ("s1", "s2", "s3", "s4", "s5", "s6")
# fold -> split -> speakers (speaker-independent, as the recipes' protocols)
FOLDS = {
    "fold0": {"train": SPEAKERS[:4], "dev": ("s5",), "test": ("s6",)},
    "fold1": {"train": SPEAKERS[2:], "dev": ("s1",), "test": ("s2",)},
}


def _clip(emotion: str, speaker: int, n: int) -> np.ndarray:
    """Classes differ in pitch and noisiness; speakers in level and a pitch factor, so that
    per-speaker normalisation has something to remove."""
    rng = np.random.default_rng(100 * speaker + n)
    factor, gain = 1.0 + 0.08 * speaker, 0.5 + 0.25 * speaker
    if emotion == "neutral":
        x = tone(0.6, freq=110 * factor, seed=n)
    elif emotion == "happy":
        x = tone(0.6, freq=330 * factor, seed=n)
    else:
        x = tone(0.6, freq=180 * factor, seed=n) + 0.08 * rng.standard_normal(int(0.6 * SR)).astype(np.float32)
    quiet = (1e-4 * rng.standard_normal(int(LEAD * SR))).astype(np.float32)
    return np.concatenate([quiet, gain * x]).astype(np.float32)


def _cut(path: Path, cut_id: str, speaker: str, emotion: str):
    from lhotse import MonoCut, Recording, SupervisionSegment

    rec = Recording.from_file(path, recording_id=cut_id)
    duration = round(rec.duration - LEAD, 4)
    sup = SupervisionSegment(
        cut_id, cut_id, 0.0, duration, speaker=speaker, gender="F", custom={"corpus": "synth", "emotion": emotion}
    )
    return MonoCut(cut_id, LEAD, duration, 0, recording=rec, supervisions=[sup])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A recipe-layout data/fbank with two speaker-independent folds of generated clips."""
    from lhotse import CutSet
    from lhotse.utils import fastcopy

    root = tmp_path_factory.mktemp("baseline")
    cuts = {}
    for s, speaker in enumerate(SPEAKERS):
        for emotion in CLASSES:
            for n in range(3):
                cut_id = f"{speaker}_{emotion}_{n}"
                wav = write_wav(root / "wav" / f"{cut_id}.wav", _clip(emotion, s, n))
                cuts[cut_id] = _cut(wav, cut_id, speaker, emotion)
    for fold, splits in FOLDS.items():
        for split, speakers in splits.items():
            # New ids in every fold, as the validate stage gives its trimmed cuts.
            subset = [fastcopy(c, id=f"{fold}-{c.id}") for c in cuts.values() if c.supervisions[0].speaker in speakers]
            (root / "data/fbank").mkdir(parents=True, exist_ok=True)
            CutSet.from_cuts(subset).to_file(root / "data/fbank" / f"synth_cuts_{fold}_{split}.jsonl.gz")
    return root


def _run(tiny: Path, exp: Path, **options):
    from speecheq.baseline import run_baseline

    defaults = dict(
        featset="eGeMAPSv02",
        label_preset="4class",
        fbank_dir=tiny / "data/fbank",
        functionals_dir=tiny / "data/functionals",
        exp_dir=exp,
        cs=(0.01, 1.0),
        calibration_folds=3,
        progress=False,
    )
    return run_baseline("synth", ["0", "1"], **{**defaults, **options})


def test_baseline_writes_decode_format_above_chance(tiny, tmp_path, monkeypatch):
    from speecheq import baseline
    from speecheq.decode import fold_summary

    out = _run(tiny, tmp_path / "exp")
    assert set(out) == {"0", "1"} and all(set(v) == {"dev", "test"} for v in out.values())
    test_files = [out[k]["test"] for k in ("0", "1")]
    assert test_files[0] == tmp_path / "exp/fold0/decode/synth_fold0_test-svm/metrics.json"
    for f in test_files + [out["0"]["dev"]]:
        m = json.loads(f.read_text())
        assert set(m["headline"]) == {"UA", "WA", "macro_F1"}
        assert m["category"]["UA"] == m["headline"]["UA"] and m["utterances"] == 9
        assert m["headline"]["UA"] > 2 * 100 / len(CLASSES)  # chance is 33 %
        header = (f.parent / "predictions.tsv").read_text().splitlines()[0].split("\t")
        assert header[:4] == ["cut_id", "corpus", "emotion_true", "emotion_pred"]
        assert header[4:8] == ["p_neutral", "p_happy", "p_sad", "p_angry"]  # the 4class preset, sad never trained
        rows = [r.split("\t") for r in (f.parent / "predictions.tsv").read_text().splitlines()[1:]]
        probs = np.array([[float(v) for v in r[4:8]] for r in rows])
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=2e-4)
        assert np.all(probs[:, 2] == 0)
    summary = fold_summary(test_files)
    assert summary["UA"]["folds"] == 2
    svm = json.loads((tmp_path / "exp/fold0/svm.json").read_text())
    assert svm["kernel"] in ("linear", "rbf") and svm["C"] in (0.01, 1.0)
    assert len(svm["selection"]["grid"]) == 4
    with np.load(tiny / "data/functionals/synth_eGeMAPSv02.npz") as cache:  # each clip once, whatever its ids
        assert cache["features"].shape == (len(SPEAKERS) * len(CLASSES) * 3, 88)
    assert (out["1"]["dev"].parent / "confusion.png").is_file()

    # The functionals are cached: a second configuration computes none.
    monkeypatch.setattr(baseline, "make_extractor", lambda *a, **k: pytest.fail("functionals recomputed"))
    monkeypatch.setattr("speecheq.plots.plot_confusion", lambda *a, **k: None)  # 1 s each, drawn above already
    _run(tiny, tmp_path / "exp_norm", speaker_norm=True)
    assert json.loads((tmp_path / "exp_norm/fold1/svm.json").read_text())["speaker_norm"] is True


def test_inner_model_selection_never_sees_test_or_dev_speakers(tiny, tmp_path, monkeypatch):
    from speecheq import baseline

    seen = []
    real = baseline.select_svm

    def spy(x, y, groups, *args, **kwargs):
        seen.append(list(groups))
        return real(x, y, groups, *args, **kwargs)

    monkeypatch.setattr(baseline, "select_svm", spy)
    monkeypatch.setattr("speecheq.plots.plot_confusion", lambda *a, **k: None)
    splits = []
    real_splits = baseline.inner_splits
    monkeypatch.setattr(baseline, "inner_splits", lambda g, n=0: splits.append(np.asarray(g)) or real_splits(g, n))
    _run(tiny, tmp_path / "exp")
    for groups, (fold, protocol) in zip(seen, FOLDS.items()):
        assert set(groups) == set(protocol["train"])
        assert not set(groups) & (set(protocol["test"]) | set(protocol["dev"]))
        svm = json.loads((tmp_path / "exp" / fold / "svm.json").read_text())
        assert svm["selection"]["inner_speakers"] == sorted(protocol["train"])
        assert svm["selection"]["scheme"] == "leave-one-speaker-out"
        assert svm["selection"]["inner_splits"] == len(protocol["train"])
    # Leave-one-speaker-out: each inner validation fold is exactly one training speaker.
    for train, val in real_splits(splits[0]):
        assert len(set(splits[0][val])) == 1 and not set(splits[0][val]) & set(splits[0][train])


def test_fit_on_train_and_dev_evaluates_test_only(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr("speecheq.plots.plot_confusion", lambda *a, **k: None)
    out = _run(tiny, tmp_path / "exp", fit_on="train+dev")
    assert all(set(v) == {"test"} for v in out.values())
    for fold, protocol in FOLDS.items():
        svm = json.loads((tmp_path / "exp" / fold / "svm.json").read_text())
        assert svm["selection"]["inner_speakers"] == sorted(protocol["train"] + protocol["dev"])
        assert not (tmp_path / "exp" / fold / "decode" / f"synth_{fold}_dev-svm").exists()


def test_speaker_normalisation_uses_each_speakers_own_statistics():
    from speecheq.baseline import speaker_normalise

    rng = np.random.default_rng(0)
    speakers = np.repeat(["a", "b", "c"], 20)
    offset = {"a": 0.0, "b": 50.0, "c": -7.0}
    scale = {"a": 1.0, "b": 10.0, "c": 0.1}
    x = np.stack([rng.standard_normal(3) * scale[s] + offset[s] for s in speakers])
    x[:, 2] = 4.0  # a constant feature is only centred, never divided by zero
    z = speaker_normalise(x, speakers)
    for s in offset:
        rows = speakers == s
        np.testing.assert_allclose(z[rows, :2].mean(axis=0), 0, atol=1e-9)
        np.testing.assert_allclose(z[rows, :2].std(axis=0), 1, atol=1e-9)
    assert np.all(z[:, 2] == 0)
    # A speaker's normalised rows depend on that speaker only.
    np.testing.assert_allclose(speaker_normalise(x[speakers == "b"], speakers[speakers == "b"]), z[speakers == "b"])


def test_precomputed_kernels_give_the_svc_solution():
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from speecheq.baseline import _scaled_gram, kernel_from_gram

    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 30)) * rng.uniform(0.1, 20, 30)
    y = (x[:, 0] / x[:, 0].std() + x[:, 1] / x[:, 1].std() + 0.5 * rng.standard_normal(60) > 0).astype(int)
    train, val = np.arange(45), np.arange(45, 60)
    z = StandardScaler().fit(x[train]).transform(x)
    _, _, gram, norms, gamma = _scaled_gram(x, train)
    for kind in ("linear", "rbf"):
        ref = SVC(kernel=kind, C=1.0, gamma="scale").fit(z[train], y[train])
        ours = SVC(kernel="precomputed", C=1.0).fit(kernel_from_gram(kind, gram, train, train, norms, gamma), y[train])
        np.testing.assert_allclose(
            ours.decision_function(kernel_from_gram(kind, gram, val, train, norms, gamma)),
            ref.decision_function(z[val]),
            atol=1e-6,
        )


def test_functionals_of_a_cut_read_its_own_audio_and_downmix():
    from speecheq.baseline import cut_functionals, make_extractor

    smile = make_extractor("eGeMAPSv02")
    x = tone(0.8, freq=200)

    class Stereo:  # a cut whose audio comes back (channels, samples)
        sampling_rate = SR

        def load_audio(self):
            return np.stack([x, x])

    values, reason = cut_functionals(smile, Stereo())
    assert reason == "" and values.shape == (88,)
    np.testing.assert_allclose(values, smile.smile.process_signal(x, SR).to_numpy()[0], rtol=1e-5)

    class Short(Stereo):
        def load_audio(self):
            return x[None, :100]

    values, reason = cut_functionals(smile, Short())
    assert values is None and "too short" in reason


def test_unknown_feature_set_is_one_line(tiny, tmp_path):
    from speecheq.errors import SpeechEQError

    with pytest.raises(SpeechEQError, match="unknown feature set"):
        _run(tiny, tmp_path / "exp", featset="IS09")
    with pytest.raises(SpeechEQError, match="fold manifest not found"):
        _run(tiny, tmp_path / "exp", fbank_dir=tmp_path)


def test_ge2e_feature_set_runs_the_stage_and_keys_its_cache_by_the_weights(tiny, tmp_path, caplog):
    """--feature-set GE2E: a speaker encoder's 768 utterance features through the same SVM stage;
    other weights never reuse the cached rows."""
    import torch

    from speecheq.errors import SpeechEQError
    from speecheq.ge2e import GE2EEncoder

    with pytest.raises(SpeechEQError, match="needs --speaker-encoder"):
        _run(tiny, tmp_path / "exp", featset="GE2E")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"w{seed}.pt")
        torch.save({"model_state": GE2EEncoder().state_dict()}, paths[-1])
    functionals = tmp_path / "functionals"
    out = _run(tiny, tmp_path / "exp", featset="GE2E", speaker_encoder=paths[0], functionals_dir=functionals)
    m = json.loads(out["0"]["test"].read_text())
    # Random weights carry no emotion, so only the run itself is checked here; the real encoder's
    # accuracy is a RESULTS.md row.
    assert m["utterances"] == 9 and m["baseline"]["featset"] == "GE2E"
    assert json.loads((tmp_path / "exp/fold1/svm.json").read_text())["featset"] == "GE2E"
    with np.load(functionals / "synth_GE2E.npz") as cache:
        assert cache["features"].shape == (len(SPEAKERS) * len(CLASSES) * 3, 768)
        first, source = cache["features"].copy(), str(cache["source"])
    with caplog.at_level("WARNING", logger="speecheq"):
        _run(tiny, tmp_path / "exp1", featset="GE2E", speaker_encoder=paths[1], functionals_dir=functionals)
    assert "recomputing it" in caplog.text
    with np.load(functionals / "synth_GE2E.npz") as cache:
        assert str(cache["source"]) != source and not np.allclose(cache["features"], first)


def test_ge2e_without_weights_is_one_line_from_the_command_line(tiny, tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "local/baseline_functionals.py"), "--corpus", "synth", "--folds", "0",
         "--feature-set", "GE2E", "--speaker-encoder", str(tmp_path / "missing.pt"),
         "--fbank-dir", str(tiny / "data/fbank"), "--functionals-dir", str(tmp_path / "f"),
         "--exp-dir", str(tmp_path / "exp"), "--label-preset", "4class"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "speaker encoder weights not found" in r.stderr and not (tmp_path / "exp").exists()


# ---------------------------------------------------------------- fusion


def _decode_dir(path: Path, truth: np.ndarray, probs: np.ndarray, ids=None):
    from speecheq.baseline import write_decode_dir
    from speecheq.labels import LabelScheme

    scheme = LabelScheme.from_preset("4class")
    ids = ids or [f"c{i}" for i in range(len(truth))]
    recs = [
        {
            "cut_id": c,
            "corpus": "synth",
            "emotion_true": int(t),
            "emotion_pred": int(p.argmax()),
            "emotion_probs": p,
            "intensity_true": float("nan"),
            "intensity_pred": float("nan"),
            "gender_true": -1,
            "gender_pred": -1,
            "gender_prob": float("nan"),
            "phones_true": None,
            "phones_pred": [],
        }
        for c, t, p in zip(ids, truth, probs)
    ]
    write_decode_dir(path, recs, scheme, {}, path.name, plot=False)
    return path


def _informative(truth: np.ndarray, rng) -> np.ndarray:
    """Soft posteriors whose argmax is right 90 % of the time, by a small margin."""
    p = np.full((len(truth), 4), 0.22) + 0.01 * rng.random((len(truth), 4))
    right = rng.random(len(truth)) < 0.9
    p[np.arange(len(truth)), np.where(right, truth, (truth + 1) % 4)] = 0.30
    return p / p.sum(axis=1, keepdims=True)


def _confident_noise(truth: np.ndarray, rng) -> np.ndarray:
    p = np.full((len(truth), 4), 0.01)
    p[np.arange(len(truth)), rng.integers(0, 4, len(truth))] = 0.97
    return p


@pytest.mark.parametrize("case", ["svm_uniform", "svm_noise", "net_noise"])
def test_fusion_weight_chosen_on_dev(tmp_path, case, monkeypatch):
    from speecheq.fusion import fuse_folds

    monkeypatch.setattr("speecheq.plots.plot_confusion", lambda *a, **k: None)
    rng = np.random.default_rng(3)
    for k in (0, 1):
        for split in ("dev", "test"):
            truth = np.tile(np.arange(4), 10)
            good = _informative(truth, rng)
            bad = np.full_like(good, 0.25) if case == "svm_uniform" else _confident_noise(truth, rng)
            net, svm = (good, bad) if case.startswith("svm") else (bad, good)
            _decode_dir(tmp_path / f"net/fold{k}/synth_fold{k}_{split}-epoch-2-avg-1", truth, net)
            _decode_dir(tmp_path / f"svm/fold{k}/synth_fold{k}_{split}-svm", truth, svm)
    out = fuse_folds(
        str(tmp_path / "net/fold{k}/synth_fold{k}_{split}-epoch-2-avg-1"),
        str(tmp_path / "svm/fold{k}/synth_fold{k}_{split}-svm"),
        ["0", "1"],
        tmp_path / "fusion",
    )
    assert out[0] == tmp_path / "fusion/fold0/decode/synth_fold0_test-fused/metrics.json"
    expected_w = 0.0 if case == "net_noise" else 1.0
    for k, f in enumerate(out):
        info = json.loads((tmp_path / f"fusion/fold{k}/fusion.json").read_text())
        assert info["w"] == expected_w, info["dev_UA_by_w"]
        assert len(info["dev_UA_by_w"]) == 11
        metrics = json.loads(f.read_text())
        assert set(metrics["headline"]) == {"UA", "WA", "macro_F1"} and metrics["fusion"]["w"] == expected_w
        # w = 0 or 1 reproduces one side's test predictions exactly.
        side = "net" if expected_w == 1.0 else "svm"
        tag = "epoch-2-avg-1" if side == "net" else "svm"
        ref = json.loads((tmp_path / f"{side}/fold{k}/synth_fold{k}_test-{tag}/metrics.json").read_text())
        assert metrics["headline"] == ref["headline"]


def test_refitted_models_are_fused_with_the_weights_the_train_only_pair_chose(tmp_path, monkeypatch):
    """fit_on=train+dev: no dev set is left to choose on, so each fold's w comes from the fusion of the
    pair trained on train only, and only the refitted test sets are read."""
    from speecheq.errors import SpeechEQError
    from speecheq.fusion import fuse_folds

    monkeypatch.setattr("speecheq.plots.plot_confusion", lambda *a, **k: None)
    rng = np.random.default_rng(5)
    truth = np.tile(np.arange(4), 10)
    for k, net_is_good in ((0, True), (1, False)):  # fold 0 chooses w = 1, fold 1 w = 0
        for split in ("dev", "test"):
            good, bad = _informative(truth, rng), _confident_noise(truth, rng)
            _decode_dir(tmp_path / f"net/fold{k}/s_fold{k}_{split}-t", truth, good if net_is_good else bad)
            _decode_dir(tmp_path / f"svm/fold{k}/s_fold{k}_{split}-svm", truth, bad if net_is_good else good)
        # the refitted pair: test sets only, posteriors unlike the train-only pair's
        _decode_dir(tmp_path / f"net_r/fold{k}/s_fold{k}_test-t", truth, _informative(truth, rng))
        _decode_dir(tmp_path / f"svm_r/fold{k}/s_fold{k}_test-svm", truth, _confident_noise(truth, rng))
    pattern = {
        side: str(tmp_path / side / ("fold{k}/s_fold{k}_{split}-" + tag))
        for side, tag in (("net", "t"), ("svm", "svm"), ("net_r", "t"), ("svm_r", "svm"))
    }
    fuse_folds(pattern["net"], pattern["svm"], ["0", "1"], tmp_path / "fusion")
    out = fuse_folds(
        pattern["net_r"], pattern["svm_r"], ["0", "1"], tmp_path / "fusion_r", weights_from=tmp_path / "fusion"
    )
    for k, (w, side) in enumerate(((1.0, "net_r/fold0/s_fold0_test-t"), (0.0, "svm_r/fold1/s_fold1_test-svm"))):
        info = json.loads((tmp_path / f"fusion_r/fold{k}/fusion.json").read_text())
        assert info["w"] == w and info["weights_from"] == str(tmp_path / f"fusion/fold{k}/fusion.json")
        assert info["chosen_on"] == str(tmp_path / f"net/fold{k}/s_fold{k}_dev-t")
        ref = json.loads((tmp_path / side / "metrics.json").read_text())
        assert json.loads(out[k].read_text())["headline"] == ref["headline"]
    with pytest.raises(SpeechEQError, match="no fusion weight to reuse.*run that fusion first"):
        fuse_folds(pattern["net_r"], pattern["svm_r"], ["0"], tmp_path / "f2", weights_from=tmp_path / "nowhere")
    with pytest.raises(SpeechEQError, match="is the output folder itself"):
        fuse_folds(pattern["net_r"], pattern["svm_r"], ["0"], tmp_path / "fusion", weights_from=tmp_path / "fusion")


def test_fusion_refuses_different_cuts_in_one_line(tmp_path):
    truth = np.arange(4)
    probs = np.full((4, 4), 0.25)
    for split in ("dev", "test"):
        _decode_dir(tmp_path / f"a/fold0/x_{split}-t", truth, probs)
        _decode_dir(tmp_path / f"b/fold0/x_{split}-svm", truth, probs, ids=["c0", "c1", "c2", "other"])
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "local/fuse.py"),
            "--a",
            str(tmp_path / "a/fold{k}/x_{split}-t"),
            "--b",
            str(tmp_path / "b/fold{k}/x_{split}-svm"),
            "--folds",
            "0",
            "--out-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "hold different cuts" in errors[0] and "'other'" in errors[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_baseline_help_imports_neither_torch_nor_opensmile():
    script = str(REPO / "local/baseline_functionals.py")
    code = (
        f"import runpy, sys; sys.argv = [{script!r}, '--help']\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('torch', 'opensmile', 'sklearn') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "usage:" in r.stdout and "LOADED []" in r.stdout, r.stdout + r.stderr


def test_cli_feature_sets_are_the_baselines():
    """speecheq/cli.py repeats the names so that --help needs no import of the stage; they must not drift."""
    from speecheq import baseline, cli

    assert cli.FEATURE_SETS == baseline.FEATURE_SETS
