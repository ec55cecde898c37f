"""kill -9 at random moments, two runs on one folder, a full disk: each stage recovers (utils/kill_test.py).

One kill per stage here (the tool takes --trials 5 and more by hand); the reference
run of the recipe's stages is shared by every test of this module.
"""

import random

import pytest

from tests.conftest import kill_test


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return kill_test.make_reference(tmp_path_factory.mktemp("kill"), sentences=1, log=lambda *_: None)


@pytest.mark.parametrize("stage", kill_test.STAGE_NAMES)
def test_killed_stage_reruns_to_the_reference_outputs(reference, stage, tmp_path):
    trial = kill_test.kill_trial(reference, stage, tmp_path / "trial", random.Random(f"kill-{stage}"))
    assert trial.kill_after is not None, f"{stage} finished before every kill"
    assert trial.problems == []
    if stage == "4-train":  # killed after its first batch checkpoint: resumed from the logged one
        assert "--start-batch" in trial.rerun


# make test kills right after the writes that once went wrong (best-valid.pt after epoch-N.pt,
# issue #13) and one of each other kind; the same kinds of window again are `make test-exhaustive`.
SAME_KIND_AGAIN = {"exp/tiny/epoch-1.pt", "exp/tiny/best-valid.pt#2", "exp/tiny/train-summary.json"}
WINDOWS = [
    pytest.param(
        s.name, w, id=f"{s.name}:{w.rsplit('/', 1)[-1]}", marks=pytest.mark.exhaustive if w in SAME_KIND_AGAIN else ()
    )
    for s in kill_test.stages(1)
    for w in s.windows
]


@pytest.mark.parametrize("stage,window", WINDOWS)
def test_kill_right_after_an_output_is_written_recovers_as_the_recipe_does(reference, stage, window, tmp_path):
    # Issue #13: a kill between epoch-N.pt and best-valid.pt left a stale best-valid.pt
    # that the resumed run trusted (exit 0, wrong weights decoded).
    if window.endswith("best-valid.pt#2"):
        import torch

        best = torch.load(reference.recipe / "exp/tiny/best-valid.pt", weights_only=False)["best_valid_epoch"]
        if best != 2:
            pytest.skip(f"the reference's best epoch is {best}: best-valid.pt was written once")
    trial = kill_test.aimed_trial(reference, stage, window, tmp_path / "trial")
    assert trial.kill_after is not None, f"{window} was never written"
    assert trial.problems == []


@pytest.mark.parametrize("stage", [pytest.param("0-prepare", marks=pytest.mark.exhaustive), "2-fbank", "4-train"])
def test_second_run_on_the_same_folder_stops_with_one_line_naming_the_lock(reference, stage, tmp_path):
    assert kill_test.lock_check(reference, stage, tmp_path / "trial") == []


def test_full_disk_ends_with_one_line_and_the_next_run_continues(reference, tmp_path):
    assert kill_test.disk_full_check(reference, "2-fbank", tmp_path / "trial") == []


def test_resume_point_is_the_last_logged_checkpoint(tmp_path):
    exp = tmp_path / "exp"
    (exp / "log").mkdir(parents=True)
    (exp / "log/log-train-1-rank0.txt").write_text(
        "saved checkpoint-3.pt (resume: --start-batch 3)\nsaved checkpoint-4.pt (resume: --start-batch 4)\n"
    )
    (exp / "checkpoint-3.pt").write_bytes(b"x")
    assert kill_test.last_logged_checkpoint(exp) == 3  # checkpoint-4.pt was removed (keep-last-k): not offered
    (exp / "checkpoint-4.pt").write_bytes(b"x")
    assert kill_test.last_logged_checkpoint(exp) == 4
