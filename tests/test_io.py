import gzip
import subprocess
import sys

import pytest

from speecheq import io
from speecheq.errors import SpeechEQError


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl.gz"
    with pytest.raises(RuntimeError):
        with io.atomic_output(target) as tmp:
            assert tmp.name.endswith(".jsonl.gz") and tmp.name.startswith(".tmp.")
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with io.atomic_output(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"


def test_done_markers(tmp_path):
    p = tmp_path / "x.txt"
    assert not io.is_done(p)
    io.write_text_atomic(p, "a")
    assert not io.is_done(p)
    io.mark_done(p, {"n": 1})
    assert io.is_done(p)
    p.unlink()
    assert not io.is_done(p), "a marker without its output is not done"


def test_truncated_manifest_is_one_clear_error(tmp_path):
    p = tmp_path / "cuts.jsonl.gz"
    with gzip.open(p, "wt") as f:
        f.write('{"id": "a"}\n' * 1000)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpeechEQError, match="corrupt or truncated"):
        io.check_readable_manifest(p)
    with pytest.raises(SpeechEQError, match="not found"):
        io.check_readable_manifest(tmp_path / "missing.jsonl.gz")


def test_second_run_on_a_locked_folder_stops_with_one_line(tmp_path):
    code = (
        "import sys, time; from speecheq.io import folder_lock\n"
        f"with folder_lock({str(tmp_path)!r}): print('locked', flush=True); time.sleep(5)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SpeechEQError, match=r"could not take lock .*\.lock"):
            with io.folder_lock(tmp_path, "training"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with io.folder_lock(tmp_path):  # released when the holder died (kill -9 safe)
        pass


def test_remove_stale_temporaries(tmp_path):
    (tmp_path / ".tmp.123.cuts.jsonl.gz").write_text("x")
    (tmp_path / "keep.txt").write_text("x")
    assert io.remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
