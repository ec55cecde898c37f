"""Learning-rate schedules as functions of the batch, and the names decode gives the weights."""

from __future__ import annotations

import pytest


def test_cosine_warms_up_then_anneals_to_the_final_ratio():
    from speecheq.train import lr_lambda

    f = lr_lambda(10, "cosine", total=110, final_ratio=0.01)
    assert f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.505)  # half-way: the cosine's midpoint
    assert f(110) == pytest.approx(0.01) and f(500) == pytest.approx(0.01)
    values = [f(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_noam_decays_as_inverse_square_root():
    from speecheq.train import lr_lambda

    f = lr_lambda(100)
    assert f(50) == pytest.approx(0.5) and f(100) == 1.0 and f(400) == pytest.approx(0.5)


def test_cosine_without_a_length_is_one_clear_error():
    from speecheq.errors import SpeechEQError
    from speecheq.train import lr_lambda

    with pytest.raises(SpeechEQError, match="number of training batches"):
        lr_lambda(10, "cosine", total=0)


def test_cosine_training_counts_its_batches_and_ends_at_the_final_rate(synth_data, tmp_path):
    import torch

    from conftest import train_args
    from speecheq.train import Trainer, batches_per_epoch

    args = train_args(synth_data, tmp_path / "exp", "--lr-schedule", "cosine", "--final-lr-ratio", "0.1")
    trainer = Trainer(args)
    trainer.build()
    per_epoch = batches_per_epoch(trainer.sampler)
    assert per_epoch == sum(1 for _ in trainer.sampler)  # the probe left the real sampler untouched
    from speecheq.train import train

    train(args)
    ckpt = torch.load(tmp_path / "exp/epoch-2.pt", weights_only=False)
    assert ckpt["batch_idx_train"] == 2 * per_epoch
    assert ckpt["scheduler"]["_last_lr"][0] == pytest.approx(args.lr * 0.1)


@pytest.mark.parametrize(
    "weights, tag",
    [
        ("--checkpoint best-valid.pt", "best-valid"),
        ("--epoch 25 --avg 5", "epoch-25-avg-5"),
        ("--epoch 9 --avg 3 --use-averaged-model", "epoch-9-avg-3-use-averaged"),
    ],
)
def test_weights_tag_names_the_decode_folders(weights, tag):
    # The recipes read these names back from local/decode.py's --metrics-list (utils/stages.sh).
    from speecheq.checkpoint import weights_tag

    words = weights.split()
    option = lambda name, default: words[words.index(name) + 1] if name in words else default  # noqa: E731
    assert (
        weights_tag(
            int(option("--epoch", 0)),
            int(option("--avg", 1)),
            "--use-averaged-model" in words,
            option("--checkpoint", None),
        )
        == tag
    )
