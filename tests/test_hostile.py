"""Faults a hostile user found (issue #13) that no other test file shows: damaged weights,
off-by-one provenance, inference that should warn, tracebacks instead of one line,
skips counted per reason, split files left by a failed stage, recipe arguments."""

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from speecheq.errors import SpeechEQError
from tests.conftest import REPO, tone, write_wav

ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def damage_largest_tensor(path: Path, nbytes: int = 500) -> None:
    """Overwrite ``nbytes`` in the middle of the largest tensor of a torch.save zip, in place:
    the zip stays readable (torch.load checks no CRC), only the weights change."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    assert info.compress_type == zipfile.ZIP_STORED and info.file_size > 2 * nbytes
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), dtype="<u2")
        start = info.header_offset + 30 + int(name_len) + int(extra_len) + info.file_size // 2 - nbytes // 2
        f.seek(start)
        old = f.read(nbytes)
        f.seek(start)
        f.write(bytes(255 - b for b in old))


# ----------------------------------------------------------------------------- weights


def test_checkpoint_damaged_inside_a_tensor_is_one_line_naming_it(trained_exp, tmp_path):
    from speecheq.checkpoint import load_checkpoint
    from speecheq.package import load_model

    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(trained_exp / "epoch-1.pt", exp / "epoch-1.pt")
    damage_largest_tensor(exp / "epoch-1.pt")
    torch.load(exp / "epoch-1.pt", weights_only=False)  # the fault torch.load does not see
    with pytest.raises(SpeechEQError, match=r"epoch-1\.pt: the model weights do not match their stored fingerprint") as e:
        load_model(exp, epoch=1)
    assert "\n" not in str(e.value)
    with pytest.raises(SpeechEQError, match="damaged"):
        load_checkpoint(exp / "epoch-1.pt")


def test_checkpoint_without_a_fingerprint_still_loads_with_a_note(trained_exp, tmp_path, caplog):
    from speecheq.checkpoint import HASH_KEY, load_checkpoint

    ckpt = torch.load(trained_exp / "epoch-1.pt", weights_only=False)
    assert set(ckpt[HASH_KEY]) == {"model", "model_avg"}
    del ckpt[HASH_KEY]
    torch.save(ckpt, tmp_path / "old.pt")
    with caplog.at_level(logging.INFO, logger="speecheq"):
        loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["batch_idx_train"] == ckpt["batch_idx_train"]
    assert "no weight fingerprint" in caplog.text


def test_package_damaged_inside_a_tensor_is_one_line_naming_it(trained_exp, tmp_path):
    from speecheq.package import load_package, package_from_exp, save_package

    path = save_package(package_from_exp(trained_exp, checkpoint="best-valid.pt"), tmp_path / "pkg.pt")
    load_package(path)
    damage_largest_tensor(path)
    with pytest.raises(SpeechEQError, match=r"pkg\.pt: the model weights do not match their stored fingerprint"):
        load_package(path)
    r = subprocess.run([sys.executable, "-c", "from speecheq.cli import main; main()", "infer", "--model", str(path), str(tmp_path)],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith(f"ERROR: {path}: the model weights do not match")


def test_package_provenance_names_the_epoch_of_its_weights(trained_exp):
    from speecheq.package import package_from_exp

    best = torch.load(trained_exp / "best-valid.pt", weights_only=False)
    assert package_from_exp(trained_exp, checkpoint="best-valid.pt")["source"]["epoch"] == best["best_valid_epoch"]
    assert package_from_exp(trained_exp, epoch=2)["source"]["epoch"] == 2
    assert package_from_exp(trained_exp, epoch=1)["source"]["epoch"] == 1
