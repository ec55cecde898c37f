"""Learning curves read back from a real training run's logs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def test_curves_have_every_epoch_of_the_run(trained_exp):
    from speecheq.curves import convergence, read_curves

    curves = read_curves(trained_exp)
    assert list(curves) == [1, 2]
    assert all("emotion" in c["train"] and "UA" in c["valid"] and c["seconds"] > 0 for c in curves.values())
    table = convergence([curves, curves], window=1)
    assert table["epochs"] == 2 and len(table["best_dev_epochs"]) == 2
    assert table["train_minutes_per_run"] == pytest.approx(sum(c["seconds"] for c in curves.values()) / 60, abs=0.06)
    assert table["dev_ua_last"] == pytest.approx(curves[2]["valid"]["UA"], abs=0.01)
    with pytest.raises(Exception, match="need at least 10"):
        convergence([curves], window=5)


def test_a_resumed_runs_newer_log_wins(trained_exp, tmp_path):
    from speecheq.curves import read_curves

    exp = tmp_path / "exp"
    shutil.copytree(trained_exp / "log", exp / "log")
    old = sorted((exp / "log").glob("log-train-*-rank0.txt"))[-1]
    text = old.read_text().replace('epoch 2 validation: {"UA": ', 'epoch 2 validation: {"UA": 99.5, "was": ')
    (exp / "log" / "log-train-9999-12-31-23-59-59-rank0.txt").write_text(
        "\n".join(line for line in text.splitlines() if "epoch 2 validation" in line)
    )
    assert read_curves(exp)[2]["valid"]["UA"] == 99.5
    assert read_curves(exp)[1] == read_curves(trained_exp)[1]


def test_curves_script_writes_png_and_table(trained_exp, tmp_path):
    out = tmp_path / "curves.png"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "local/curves.py"),
            "--runs",
            f"tiny={trained_exp}",
            "--out",
            str(out),
            "--window",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.with_suffix(".json").is_file()
    assert "| tiny | 2 | " in r.stdout
    bad = subprocess.run(
        [sys.executable, str(REPO / "local/curves.py"), "--runs", str(tmp_path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode != 0 and "NAME=EXP_DIR" in bad.stderr and "Traceback" not in bad.stderr


def test_fold_dirs_takes_a_folder_of_folds_or_a_glob(tmp_path):
    from speecheq.curves import fold_dirs

    for name in ("exp/cat_all/fold0", "exp/cat_all/fold1", "exp/unified_fold0", "exp/unified_fold1", "exp/other"):
        (tmp_path / name).mkdir(parents=True)
    assert [p.name for p in fold_dirs(tmp_path / "exp/cat_all")] == ["fold0", "fold1"]
    assert [p.name for p in fold_dirs(tmp_path / "exp/unified_fold*")] == ["unified_fold0", "unified_fold1"]
    assert fold_dirs(tmp_path / "exp/other") == [tmp_path / "exp/other"]
    with pytest.raises(Exception, match="no run folder matches"):
        fold_dirs(tmp_path / "exp/nothing_fold*")
