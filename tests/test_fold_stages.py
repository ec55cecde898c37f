"""utils/fold_stages.sh's stage 6 in a multi-stage run: a refused alignment is a logged skip."""

import subprocess

import pytest

from tests.conftest import REPO


@pytest.fixture
def recipe(tmp_path):
    (tmp_path / "utils").symlink_to(REPO / "utils")
    local = tmp_path / "local"
    local.mkdir()
    # Stands in for local/align.py refusing a CTC head that has not learnt.
    stub = local / "align.py"
    stub.write_text("#!/usr/bin/env bash\necho 'ERROR: CTC head PER 99.5 % > 50 %' >&2\nexit 1\n")
    stub.chmod(0o755)
    return tmp_path


def stage6(recipe, tasks, stop_stage):
    script = (
        f"set -euo pipefail; . utils/log.sh; corpus=emodb; exp_name=m; label_preset=all; device=cpu; "
        f"tasks={tasks}; stop_stage={stop_stage}; . utils/fold_stages.sh; align_fold 0; echo 'stage 7 runs'"
    )
    return subprocess.run(["bash", "-c", script], cwd=recipe, capture_output=True, text=True, timeout=60)


def test_refused_alignment_is_a_logged_skip_when_the_run_goes_on(recipe):
    r = stage6(recipe, "emotion,ctc,gender", 8)
    assert r.returncode == 0 and "stage 7 runs" in r.stdout
    assert (
        "ERROR: CTC head PER 99.5" in r.stderr and "stage 6 skipped: alignment refused or failed (exit 1)" in r.stdout
    )


def test_refused_alignment_fails_a_run_that_ends_at_stage_6(recipe):
    r = stage6(recipe, "emotion,ctc,gender", 6)
    assert r.returncode == 1 and "stage 7 runs" not in r.stdout


def test_a_model_without_ctc_skips_stage_6(recipe):
    r = stage6(recipe, "emotion,gender", 6)
    assert r.returncode == 0 and "stage 6 skipped: the model has no ctc task" in r.stderr + r.stdout
