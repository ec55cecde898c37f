"""Train, decode, align and resume on a small generated corpus, plus the stage's bad inputs."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from speecheq.errors import SpeechEQError
from tests.conftest import TINY_MODEL, train_args


def test_training_writes_checkpoints_logs_and_tensorboard_scalars(trained_exp):
    names = {p.name for p in trained_exp.iterdir()}
    assert {"epoch-1.pt", "epoch-2.pt", "best-valid.pt", "train-summary.json", "log"} <= names
    log_text = next((trained_exp / "log").glob("log-train-*.txt")).read_text()
    assert '"torch": "' in log_text and '"git_commit"' in log_text, "environment at the top of the log"
    ckpt = torch.load(trained_exp / "epoch-2.pt", weights_only=False)
    assert ckpt["categories"] == ["neutral", "happy", "sad", "angry", "fear", "surprise"]
    assert ckpt["tokens"][0] == "<blk>" and ckpt["batch_idx_train"] > 0
    assert not torch.equal(ckpt["model"]["feature_mean"], torch.zeros(80)), "normalisation stats stored"


def test_decode_writes_predictions_metrics_and_confusion(trained_exp, synth_data):
    from speecheq.decode import decode, get_parser
    from speecheq.options import DecodeConfig

    results = trained_exp / "RESULTS.md"
    test_cuts = synth_data / "fbank/synth_cuts_test.jsonl.gz"
    written = decode(
        DecodeConfig.from_args(
            get_parser().parse_args(
                [
                    "--exp-dir",
                    str(trained_exp),
                    "--epoch",
                    "2",
                    "--avg",
                    "2",
                    "--cuts",
                    str(test_cuts),
                    "--results",
                    str(results),
                ]
            )
        )
    )
    out = trained_exp / "decode/synth_test-epoch-2-avg-2"
    assert written == [out / "metrics.json"]  # what local/decode.py --metrics-list writes for the recipes
    m = json.loads((out / "metrics.json").read_text())
    from lhotse import load_manifest_lazy

    n = sum(1 for _ in load_manifest_lazy(test_cuts))
    assert m["utterances"] == n and m["category"]["support"] and 0 <= m["headline"]["UA"] <= 100
    assert set(m["headline"]) == {"UA", "WA", "macro_F1", "CCC", "gender_acc", "PER"}
    rows = list(csv.DictReader(open(out / "predictions.tsv"), delimiter="\t"))
    assert len(rows) == n
    probs = [float(rows[0][f"p_{c}"]) for c in ("neutral", "happy", "sad", "angry", "fear", "surprise")]
    assert math.isclose(sum(probs), 1.0, abs_tol=1e-3)
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "local/decode.py" in results.read_text() and "| " in results.read_text()


def test_fold_summary_is_mean_and_sample_std(tmp_path):
    from speecheq.decode import fold_summary

    files = []
    for k, ua in enumerate([40.0, 50.0, 60.0]):
        f = tmp_path / f"m{k}.json"
        f.write_text(json.dumps({"headline": {"UA": ua}}))
        files.append(f)
    s = fold_summary(files)
    assert s["UA"]["mean"] == pytest.approx(50.0) and s["UA"]["std"] == pytest.approx(10.0) and s["UA"]["folds"] == 3


def test_paired_fold_difference_and_its_script(tmp_path):
    import subprocess
    import sys

    from speecheq.decode import paired_difference
    from speecheq.errors import SpeechEQError

    for run, uas in (("a", [40.0, 50.0, 60.0]), ("b", [44.0, 49.0, 66.0])):
        for k, ua in enumerate(uas):
            (tmp_path / f"{run}{k}.json").write_text(json.dumps({"headline": {"UA": ua, "PER": None}}))
    a = [tmp_path / f"a{k}.json" for k in range(3)]
    b = [tmp_path / f"b{k}.json" for k in range(3)]
    r = paired_difference(a, b)
    assert r["difference"] == [4.0, -1.0, 6.0] and r["b_better"] == 2
    assert r["mean"] == pytest.approx(3.0) and r["std"] == pytest.approx(3.6056, abs=1e-4)
    with pytest.raises(SpeechEQError, match="same folds"):
        paired_difference(a, b[:2])
    with pytest.raises(SpeechEQError, match="no 'PER'"):
        paired_difference(a, b, "PER")
    for run, pers in (("pa", [10.0, 20.0, 30.0]), ("pb", [12.0, 15.0, 25.0])):  # an error rate: lower is better
        for k, per in enumerate(pers):
            (tmp_path / f"{run}{k}.json").write_text(json.dumps({"headline": {"UA": 50.0, "PER": per}}))
    per_a, per_b = ([tmp_path / f"{run}{k}.json" for k in range(3)] for run in ("pa", "pb"))
    assert paired_difference(per_a, per_b, "PER")["b_better"] == 2
    script = Path(__file__).resolve().parents[1] / "local/compare_folds.py"
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--a",
            str(tmp_path / "a{k}.json"),
            "--b",
            str(tmp_path / "b{k}.json"),
            "--folds",
            "0",
            "1",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "| 2 | 60.00 | 66.00 | +6.00 |" in out.stdout and "+3.00 ± 3.61 (B better on 2 of 3 folds)" in out.stdout
    bad = subprocess.run(
        [sys.executable, str(script), "--a", "x.json", "--b", "y.json"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "no {k}" in bad.stderr and "Traceback" not in bad.stderr


def test_align_writes_phone_alignments_into_cuts(trained_exp, synth_data, tmp_path):
    from lhotse import load_manifest_lazy

    from speecheq.align import align_corpus

    out = tmp_path / "ali" / "synth_cuts_test.jsonl.gz"
    # max_per=100: the tiny 2-epoch head has not learnt; this test is about the plumbing (tests/test_align_gate.py)
    summary = align_corpus(
        trained_exp,
        synth_data / "fbank/synth_cuts_test.jsonl.gz",
        out,
        checkpoint="best-valid.pt",
        plot_path=tmp_path / "ali.png",
        max_per=100.0,
    )
    assert summary["aligned"] + summary["failed"] + summary["no_phones"] == summary["total"] > 0
    assert summary["aligned"] > 0
    cut = next(c for c in load_manifest_lazy(out) if c.supervisions[0].alignment)
    items = cut.supervisions[0].alignment["phone"]
    assert [i.symbol for i in items] == cut.supervisions[0].custom["phones"]
    starts = [i.start for i in items]
    assert starts == sorted(starts) and items[-1].start + items[-1].duration <= cut.duration + 1e-6
    assert all(0 <= i.score <= 1 for i in items)
    assert (tmp_path / "ali.png").stat().st_size > 1000


def test_killed_training_resumes_to_the_same_weights(synth_data, tmp_path):
    from speecheq.train import train

    full = tmp_path / "full"
    train(train_args(synth_data, full, "--deterministic", "--seed", "3"))
    part = tmp_path / "part"
    # "Killed" after batch 5, with batch checkpoints every 3: resume from checkpoint-3 as a user would.
    train(
        train_args(
            synth_data, part, "--deterministic", "--seed", "3", "--save-every-n", "3", "--stop-after-batches", "5"
        )
    )
    assert (part / "checkpoint-3.pt").is_file() and not (part / "epoch-2.pt").exists()
    train(train_args(synth_data, part, "--deterministic", "--seed", "3", "--save-every-n", "3", "--start-batch", "3"))
    a = torch.load(full / "epoch-2.pt", weights_only=False)
    b = torch.load(part / "epoch-2.pt", weights_only=False)
    assert a["batch_idx_train"] == b["batch_idx_train"]
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-5, rtol=0), k
    for k in a["model_avg"]:
        assert torch.allclose(a["model_avg"][k].float(), b["model_avg"][k].float(), atol=1e-5, rtol=0), k


def test_checkpoint_from_another_configuration_is_one_clear_error(trained_exp, synth_data, tmp_path):
    import shutil

    from speecheq.train import train

    exp = tmp_path / "other"
    shutil.copytree(trained_exp, exp)
    bigger = TINY_MODEL.replace('"d_model": 32', '"d_model": 48')
    args = train_args(synth_data, exp, "--start-epoch", "3", "--num-epochs", "3")
    args.model_config = bigger
    with pytest.raises(SpeechEQError, match="another model configuration"):
        train(args)


def test_truncated_checkpoint_and_missing_tokens(trained_exp, synth_data, tmp_path):
    from speecheq.checkpoint import load_model
    from speecheq.train import train

    bad = tmp_path / "bad"
    bad.mkdir()
    data = (trained_exp / "epoch-1.pt").read_bytes()
    (bad / "epoch-1.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(SpeechEQError, match="corrupt or truncated"):
        load_model(bad, epoch=1)
    args = train_args(synth_data, tmp_path / "exp")
    args.lang_dir = tmp_path / "nolang"
    with pytest.raises(SpeechEQError, match="token table not found"):
        train(args)


def test_empty_training_set_after_filtering(synth_data, tmp_path):
    from speecheq.train import train

    args = train_args(synth_data, tmp_path / "exp", "--max-utterance-duration", "0.2")
    with pytest.raises(SpeechEQError, match="no cuts after filtering"):
        train(args)


def test_cut_without_features_is_one_clear_error(synth_data, tmp_path):
    from lhotse import CutSet, load_manifest_lazy

    from speecheq.train import train

    cuts = CutSet.from_cuts(
        c.drop_features() for c in load_manifest_lazy(synth_data / "fbank/synth_cuts_train.jsonl.gz")
    )
    path = tmp_path / "nofeats.jsonl.gz"
    cuts.to_file(path)
    args = train_args(synth_data, tmp_path / "exp")
    args.train_cuts = [path]
    with pytest.raises(SpeechEQError, match="has no features"):
        train(args)


def test_non_finite_batch_is_skipped_and_counted(synth_data, tmp_path, monkeypatch):
    from speecheq import data as data_module
    from speecheq.train import train

    original = data_module.SpeechEQDataset.__getitem__
    calls = {"n": 0}

    def poisoned(self, cuts):
        batch = original(self, cuts)
        calls["n"] += 1
        if calls["n"] == 2:
            batch["features"][0, 0, 0] = float("nan")
        return batch

    monkeypatch.setattr(data_module.SpeechEQDataset, "__getitem__", poisoned)
    exp = tmp_path / "exp"
    train(train_args(synth_data, exp, "--num-epochs", "1"))
    summary = json.loads((exp / "train-summary.json").read_text())
    assert summary["skipped_nonfinite_batches"] == 1
    ckpt = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_import_mfa_textgrids_and_htk_labels_into_cuts(synth_data, tmp_path):
    from lhotse import load_manifest_lazy
    from praatio import textgrid

    from speecheq.align import import_alignments

    cuts_path = synth_data / "fbank/synth_cuts_test.jsonl.gz"
    cuts = list(load_manifest_lazy(cuts_path))
    first, second = cuts[0], cuts[1]
    tg = textgrid.Textgrid()
    tg.addTier(
        textgrid.IntervalTier("phones", [(0.0, 0.1, "sil"), (0.1, 0.25, "AA"), (0.25, 0.4, "B")], 0, first.duration)
    )
    (tmp_path / "tg").mkdir()
    tg.save(str(tmp_path / "tg" / f"{first.recording_id}.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    out = tmp_path / "tg_cuts.jsonl.gz"
    summary = import_alignments(cuts_path, out, textgrid_dir=tmp_path / "tg")
    assert summary == {"cuts": len(cuts), "alignments": 1, "missing": len(cuts) - 1}
    got = {c.id: c for c in load_manifest_lazy(out)}
    items = got[first.id].supervisions[0].alignment["phone"]
    assert [(i.symbol, round(i.start, 3), round(i.duration, 3)) for i in items] == [
        ("AA", 0.1, 0.15),
        ("B", 0.25, 0.15),
    ]
    assert not got[second.id].supervisions[0].alignment

    (tmp_path / "htk").mkdir()
    (tmp_path / "htk" / f"{second.recording_id}.lab").write_text(
        "0 1000000 sil\n1000000 2500000 K\n2500000 3000000 AE\n"
    )
    out = tmp_path / "htk_cuts.jsonl.gz"
    import_alignments(cuts_path, out, htk_dir=tmp_path / "htk")
    items = {c.id: c for c in load_manifest_lazy(out)}[second.id].supervisions[0].alignment["phone"]
    assert [(i.symbol, round(i.start, 3), round(i.duration, 3)) for i in items] == [
        ("sil", 0.0, 0.1),
        ("K", 0.1, 0.15),
        ("AE", 0.25, 0.05),
    ]


def test_speaker_cmvn_trains_and_decodes(synth_data, tmp_path):
    from speecheq.decode import decode, get_parser
    from speecheq.options import DecodeConfig
    from speecheq.train import train

    exp = tmp_path / "cmvn"
    train(train_args(synth_data, exp, "--speaker-cmvn", "--num-epochs", "1"))
    ckpt = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert ckpt["speaker_cmvn"] is True
    assert torch.equal(ckpt["model"]["feature_mean"], torch.zeros(80)), "features arrive speaker-normalised"
    decode(
        DecodeConfig.from_args(
            get_parser().parse_args(
                ["--exp-dir", str(exp), "--cuts", str(synth_data / "fbank/synth_cuts_test.jsonl.gz")]
            )
        )
    )
    m = json.loads((exp / "decode/synth_test-epoch-1-avg-1/metrics.json").read_text())
    assert m["speaker_cmvn"] is True and m["utterances"] > 0
