"""An epoch is finished only when its checkpoint, best-valid.pt and the summary agree, even
when a kill -9 lands between writing them (issue: kill between epoch-N.pt and best-valid.pt)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch

from conftest import REPO, train_args


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raise point runs, no handler catches it."""


def _rising_validation(monkeypatch):
    """Dev UA equal to the epoch number: every epoch is the new best, so each epoch writes best-valid.pt."""
    from speecheq.train import Trainer

    monkeypatch.setattr(Trainer, "validate", lambda self, epoch, tb: {"UA": float(epoch)})


def _weights(path):
    from speecheq.checkpoint import load_checkpoint

    return load_checkpoint(path)["model"]


def test_kill_right_after_the_last_epoch_checkpoint_is_repaired_on_resume(synth_data, tmp_path, monkeypatch):
    from speecheq.train import Trainer, train

    _rising_validation(monkeypatch)
    exp = tmp_path / "exp"
    real_save = Trainer.save

    def save_then_die(self, path, *a, **k):
        real_save(self, path, *a, **k)
        if path.name == "epoch-2.pt":
            raise Killed()

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(Killed):
        train(train_args(synth_data, exp))
    assert (exp / "epoch-2.pt").is_file() and not (exp / "train-summary.json").exists()
    # The recipe does not take a run without its summary for finished ...
    done = subprocess.run(["bash", str(REPO / "utils/trained.sh"), str(exp), "2"])
    assert done.returncode != 0
    # ... and resuming after the last epoch finishes it.
    monkeypatch.setattr(Trainer, "save", real_save)
    train(train_args(synth_data, exp, "--start-epoch", "3"))
    summary = json.loads((exp / "train-summary.json").read_text())
    assert summary["best_valid_epoch"] == 2
    for name, tensor in _weights(exp / "epoch-2.pt").items():
        assert torch.equal(tensor, _weights(exp / "best-valid.pt")[name])
    assert subprocess.run(["bash", str(REPO / "utils/trained.sh"), str(exp), "2"]).returncode == 0


def test_stale_best_valid_is_restored_from_the_recorded_best_epoch(synth_data, tmp_path, monkeypatch):
    from speecheq.train import train

    _rising_validation(monkeypatch)
    exp = tmp_path / "exp"
    train(train_args(synth_data, exp))
    # What the old save order left after a kill: best-valid.pt one epoch behind the record.
    shutil.copyfile(exp / "epoch-1.pt", exp / "best-valid.pt")
    (exp / "train-summary.json").unlink()
    train(train_args(synth_data, exp, "--start-epoch", "3"))
    for name, tensor in _weights(exp / "epoch-2.pt").items():
        assert torch.equal(tensor, _weights(exp / "best-valid.pt")[name])
