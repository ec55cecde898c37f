"""The demo's table repeats run to run on one machine (issue #13): with one torch thread per
process (the stage scripts' --num-threads default) and a fixed seed, training on CPU gives
the same weights bit for bit, without --deterministic, as the recipe runs it."""

import json

import torch

from speecheq.checkpoint import fingerprint
from tests.conftest import train_args


def test_training_twice_with_one_thread_gives_the_same_weights_and_dev_metrics(trained_exp, synth_data, tmp_path):
    from speecheq.train import train

    args = train_args(synth_data, tmp_path / "again")
    assert args.num_threads == 1, "the stage scripts' default"
    train(args)
    for name in ("epoch-1.pt", "epoch-2.pt", "best-valid.pt"):
        a = torch.load(trained_exp / name, weights_only=False)
        b = torch.load(tmp_path / "again" / name, weights_only=False)
        assert fingerprint(a["model"]) == fingerprint(b["model"]), f"{name}: weights differ between two runs"
        assert fingerprint(a["model_avg"]) == fingerprint(b["model_avg"]), f"{name}: averaged weights differ"
        assert json.dumps(a["valid_metrics"]) == json.dumps(b["valid_metrics"]), name  # NaN-safe
