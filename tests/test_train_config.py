"""The library runs from configs built in Python (TrainConfig, DecodeConfig); the parsers fill
the same configs, and checkpoints keep the options under the names they always had."""

import math
from pathlib import Path

import pytest
import torch

from speecheq.errors import SpeechEQError
from speecheq.options import DecodeConfig, TrainConfig, decode_parser, train_parser
from tests.conftest import TINY_MODEL, train_args


def test_train_args_keep_the_parsers_names_and_values():
    # Every flag lands in a field, and back under its old name: older checkpoints and newer ones agree.
    argv = ["--train-cuts", "a.jsonl.gz", "b.jsonl.gz", "--exp-dir", "exp", "--gender-weight", "0.5", "--balanced"]
    parsed = train_parser().parse_args(argv)
    config = TrainConfig.from_args(parsed)
    assert list(config.as_options().items()) == list(vars(parsed).items())
    assert config.task_weights["gender"] == 0.5 and config.train_cuts == [Path("a.jsonl.gz"), Path("b.jsonl.gz")]


def test_a_config_built_in_python_is_the_command_lines():
    assert TrainConfig(train_cuts="a.jsonl.gz", exp_dir="exp") == TrainConfig.from_args(
        train_parser().parse_args(["--train-cuts", "a.jsonl.gz", "--exp-dir", "exp"])
    )
    partial = TrainConfig(train_cuts=["a.jsonl.gz"], exp_dir="exp", task_weights={"gender": 0.0})
    assert partial.task_weights["gender"] == 0.0 and partial.task_weights["emotion"] == 1.0
    with pytest.raises(SpeechEQError, match="unknown task"):
        TrainConfig(train_cuts=["a.jsonl.gz"], exp_dir="exp", task_weights={"valence": 1.0})
    assert DecodeConfig(exp_dir="exp", cuts="t.jsonl.gz", epoch=3) == DecodeConfig.from_args(
        decode_parser().parse_args(["--exp-dir", "exp", "--cuts", "t.jsonl.gz", "--epoch", "3"])
    )


def test_the_library_trains_from_a_config_built_in_python(synth_data, tmp_path):
    from speecheq.train import train

    fbank, exp = synth_data / "fbank", tmp_path / "exp"
    config = TrainConfig(
        train_cuts=[fbank / "synth_cuts_train.jsonl.gz"],
        dev_cuts=[fbank / "synth_cuts_dev.jsonl.gz"],
        lang_dir=synth_data / "lang",
        exp_dir=exp,
        label_preset="6class",
        model_config=TINY_MODEL,
        max_duration=30.0,
        warmup_batches=5,
        tensorboard=0,
        num_epochs=1,
    )
    assert config == train_args(synth_data, exp, "--num-epochs", "1")
    train(config)
    ckpt = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert ckpt["batch_idx_train"] > 0 and (exp / "best-valid.pt").is_file()
    assert ckpt["train_args"]["exp_dir"] == str(exp) and ckpt["train_args"]["emotion_weight"] == 1.0
    with pytest.raises(TypeError, match="TrainConfig.from_args"):
        train(train_parser().parse_args(["--train-cuts", "a.jsonl.gz", "--exp-dir", str(tmp_path / "other")]))


def test_loss_totals_average_per_labelled_utterance():
    from speecheq.train import LossTotals

    totals = LossTotals()
    totals.add({"emotion": {"loss": 6.0, "count": 3}, "ctc": {"loss": 0.0, "count": 0}})
    totals.add(
        {"emotion": {"loss": 1.0, "count": 1}, "ctc": {"loss": 0.0, "count": 0}, "gender": {"loss": 2.0, "count": 4}}
    )
    means = totals.means()
    assert means["emotion"] == pytest.approx(7.0 / 4)  # not the mean of the batches' means (1.5)
    assert means["gender"] == pytest.approx(0.5)
    assert math.isnan(means["ctc"])  # no label: nothing measured
    assert totals.means(unlabelled=0.0)["ctc"] == 0.0
    assert list(means) == ["emotion", "ctc", "gender"]  # the order the logs print
