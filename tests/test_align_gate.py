"""Stage 6 refuses a CTC head that has not learnt (issue #13): its "alignments" give every
phone the same few frames and look as valid as real ones. The tiny model of the shared
fixture, 2 epochs on the small synthetic corpus, is such a head (dev PER near 100 %)."""

import gzip
import json
import subprocess
import sys

import pytest
import torch

from speecheq.align import AlignmentError, align_corpus, head_per
from tests.conftest import REPO


def _cuts(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def _aligned_sups(path):
    return [s for c in _cuts(path) for s in c["supervisions"] if (s.get("alignment") or {}).get("phone")]


def test_checkpoints_store_the_dev_per_of_their_epoch(trained_exp):
    for name, epoch in (("epoch-1.pt", 1), ("epoch-2.pt", 2)):
        per, source = head_per(torch.load(trained_exp / name, weights_only=False))
        assert per is not None and 0 <= per <= 100 and source == f"dev set, epoch {epoch}"


def test_untrained_head_is_refused_with_one_line_and_nothing_written(trained_exp, synth_data, tmp_path):
    out = tmp_path / "ali/synth_cuts_test.jsonl.gz"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "local/align.py"),
            "--exp-dir",
            str(trained_exp),
            "--checkpoint",
            "best-valid.pt",
            "--cuts",
            str(synth_data / "fbank/synth_cuts_test.jsonl.gz"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[-1].startswith("ERROR: ") and "PER" in lines[-1] and "--allow-untrained" in lines[-1], lines[-1]
    assert "dev set, epoch" in lines[-1]
    assert not out.exists() and not list(tmp_path.rglob("*.summary.json"))


def test_allow_untrained_warns_marks_every_aligned_cut_and_says_so_in_the_summary(
    trained_exp, synth_data, tmp_path, caplog
):
    out = tmp_path / "ali/synth_cuts_test.jsonl.gz"
    summary = align_corpus(
        trained_exp,
        synth_data / "fbank/synth_cuts_test.jsonl.gz",
        out,
        checkpoint="best-valid.pt",
        allow_untrained=True,
    )
    assert summary["trusted"] is False and summary["per"] > summary["max_per"] == 50.0
    assert summary["per_source"].startswith("dev set, epoch")
    written = json.loads((tmp_path / "ali/synth_cuts_test.summary.json").read_text())
    assert written["trusted"] is False and written["per"] == summary["per"]
    sups = _aligned_sups(out)
    assert len(sups) == summary["aligned"] > 0
    assert all("PER" in s["custom"]["alignment_untrusted"] for s in sups)
    assert any("UNTRUSTED ALIGNMENTS" in r.getMessage() for r in caplog.records)


def test_head_below_the_threshold_is_trusted_and_unmarked(trained_exp, synth_data, tmp_path):
    out = tmp_path / "ali/synth_cuts_test.jsonl.gz"
    summary = align_corpus(
        trained_exp, synth_data / "fbank/synth_cuts_test.jsonl.gz", out, checkpoint="best-valid.pt", max_per=100.0
    )
    assert summary["trusted"] is True and summary["aligned"] > 0
    assert not any("alignment_untrusted" in s["custom"] for s in _aligned_sups(out))


def test_without_a_stored_dev_per_the_aligned_cuts_measure_it(trained_exp, synth_data, tmp_path):
    exp = tmp_path / "old"
    exp.mkdir()
    ckpt = torch.load(trained_exp / "best-valid.pt", weights_only=False)
    ckpt.pop("valid_metrics")  # as written before checkpoints kept it, or trained without --dev-cuts
    torch.save(ckpt, exp / "best-valid.pt")
    with pytest.raises(AlignmentError, match="cuts being aligned"):
        align_corpus(
            exp, synth_data / "fbank/synth_cuts_test.jsonl.gz", tmp_path / "ali.jsonl.gz", checkpoint="best-valid.pt"
        )
    assert not (tmp_path / "ali.jsonl.gz").exists()
