"""The model has a head for every task whatever it trained; decoding and validation read out only
the heads its checkpoint trained (speecheq.tasks.was_trained), so a category-only model reports no
gender accuracy, PER or CCC instead of the noise of heads that never learnt."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from speecheq import tasks
from speecheq.errors import SpeechEQError
from tests.conftest import train_args

UNTRAINED = {"gender_acc", "PER", "CCC"}


def decode_exp(exp, synth_data, *extra):
    from speecheq.decode import decode
    from speecheq.options import DecodeConfig, decode_parser

    argv = ["--exp-dir", str(exp), "--cuts", str(synth_data / "fbank/synth_cuts_test.jsonl.gz"), "--epoch", "1"]
    [metrics_json] = decode(DecodeConfig.from_args(decode_parser().parse_args([*argv, *extra])))
    with open(metrics_json.parent / "predictions.tsv", newline="") as f:
        header = next(csv.reader(f, delimiter="\t"))
    return json.loads(metrics_json.read_text()), header


def trained_for(tmp_path_factory, synth_data, name, task_list):
    from speecheq.train import train

    exp = tmp_path_factory.mktemp(name) / "exp"
    train(train_args(synth_data, exp, "--tasks", task_list, "--num-epochs", "1"))
    return exp


@pytest.fixture(scope="module")
def category_only(synth_data, tmp_path_factory):
    return trained_for(tmp_path_factory, synth_data, "catonly", "emotion")


@pytest.fixture(scope="module")
def with_gender(synth_data, tmp_path_factory):
    return trained_for(tmp_path_factory, synth_data, "gender", "emotion,gender")


def validation(exp) -> dict:
    from speecheq.curves import read_curves

    return read_curves(exp)[1]["valid"]


def test_the_rule_reads_the_recorded_weights_and_every_head_of_an_old_checkpoint():
    evaluated = [t.name for t in tasks.readout_order()]
    assert [t.name for t in tasks.trained_readout(None)] == evaluated
    assert [t.name for t in tasks.trained_readout({"emotion": 1.0})] == ["emotion"]
    assert [t.name for t in tasks.trained_readout({"emotion": 1.0, "gender": 0.0, "ctc": 0.1})] == ["emotion", "ctc"]
    # The category is the main task: read out even where the weights leave it out.
    assert [t.name for t in tasks.trained_readout({"intensity": 0.5})] == ["emotion", "intensity"]
    assert not tasks.was_trained({"emotion": 1.0}, "gender") and tasks.was_trained(None, "gender")


def test_category_only_model_reports_only_the_category(category_only, synth_data, tmp_path):
    ckpt = torch.load(category_only / "epoch-1.pt", map_location="cpu", weights_only=False)
    assert ckpt["tasks"] == {"emotion": 1.0} and ckpt["tokens"], "the lang folder's tokens are recorded all the same"
    assert not UNTRAINED & set(ckpt["valid_metrics"]) and "UA" in ckpt["valid_metrics"]

    valid = validation(category_only)
    assert "UA" in valid and not UNTRAINED & set(valid), valid

    results = tmp_path / "RESULTS.md"
    summary, header = decode_exp(category_only, synth_data, "--results", str(results))
    assert set(summary["headline"]) == {"UA", "WA", "macro_F1"}, summary["headline"]
    assert not {"gender", "phones", "intensity"} & set(summary)
    assert header[:4] == ["cut_id", "corpus", "emotion_true", "emotion_pred"]
    assert [h for h in header[4:] if not h.startswith("p_")] == [], header
    # The RESULTS.md row shows the absent tasks as absent, not as 0.
    row = results.read_text().splitlines()[-1]
    assert row.count("| — ") == 3 and " 0.00 " not in row, row


def test_a_model_with_the_gender_task_reports_it(with_gender, synth_data):
    valid = validation(with_gender)
    assert "gender_acc" in valid and not {"PER", "CCC"} & set(valid), valid
    summary, header = decode_exp(with_gender, synth_data)
    assert set(summary["headline"]) == {"UA", "WA", "macro_F1", "gender_acc"}, summary["headline"]
    assert header[-3:] == ["gender_true", "gender_pred", "gender_prob"] and "phones_pred" not in header


def test_a_checkpoint_without_its_tasks_reads_every_head_as_before(category_only, synth_data, tmp_path):
    ckpt = torch.load(category_only / "epoch-1.pt", map_location="cpu", weights_only=False)
    del ckpt["tasks"]
    old = tmp_path / "old"
    old.mkdir()
    torch.save(ckpt, old / "epoch-1.pt")
    summary, header = decode_exp(old, synth_data)
    assert set(summary["headline"]) == {"UA", "WA", "macro_F1", "CCC", "gender_acc", "PER"}
    assert "gender_pred" in header and "phones_pred" in header


def test_readers_of_a_category_only_decode_say_what_is_absent(category_only, synth_data, tmp_path):
    from speecheq.align import AlignmentError, align_corpus
    from speecheq.decode import fold_summary, fold_values
    from speecheq.unified import intensity_by_category

    decode_exp(category_only, synth_data)
    metrics_json = category_only / "decode/synth_test-epoch-1-avg-1/metrics.json"
    assert set(fold_summary([metrics_json])) == {"UA", "WA", "macro_F1"}
    with pytest.raises(SpeechEQError, match="did not train"):
        fold_values([metrics_json], "PER")
    with pytest.raises(SpeechEQError, match="without the intensity task"):
        intensity_by_category({"0": metrics_json.parent / "predictions.tsv"})
    # Its tokens are the lang folder's; the CTC head never learnt: the stage's own message, not a PER gate.
    with pytest.raises(AlignmentError, match="trained without the ctc task"):
        align_corpus(category_only, synth_data / "fbank/synth_cuts_test.jsonl.gz", tmp_path / "ali.jsonl.gz", epoch=1)


def test_a_package_of_a_category_only_model_has_only_its_task(category_only, tmp_path):
    from speecheq.package import load_package, package_from_exp, save_package

    pkg = load_package(save_package(package_from_exp(category_only, epoch=1), tmp_path / "model.pt"))
    assert pkg.has_task("emotion") and not pkg.has_task("gender") and not pkg.has_task("ctc")
