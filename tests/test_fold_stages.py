"""utils/stages.sh's fold stages: stage 6 in a multi-stage run (a refused alignment is a logged skip), and
the decode folders' names read from local/decode.py's list instead of rebuilt in bash."""

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
        f"tasks={tasks}; stop_stage={stop_stage}; . utils/stages.sh; stage_align 0; echo 'stage 7 runs'"
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


def test_decoded_reads_the_metrics_paths_and_their_weights_tag_from_decode(recipe):
    # Stands in for local/decode.py: it names the folders; the recipe only reads its list.
    stub = recipe / "local" / "decode.py"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        'while [ $# -gt 0 ]; do [ "$1" = --metrics-list ] && list=$2; shift; done\n'
        "echo 'decoding...'\n"  # its own output goes to stderr, not into the list
        "printf 'exp/m_all/fold0/decode/emodb_fold0_test-epoch-9-avg-3-use-averaged/metrics.json\\n' > $list\n"
    )
    stub.chmod(0o755)
    script = (
        "set -euo pipefail; . utils/log.sh; . utils/stages.sh; "
        'out=$(decoded --exp-dir exp/m_all/fold0 --epoch 9 --cuts x); echo "$out"; decoded_tag "$out" emodb_fold0_test'
    )
    r = subprocess.run(["bash", "-c", script], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "exp/m_all/fold0/decode/emodb_fold0_test-epoch-9-avg-3-use-averaged/metrics.json",
        "epoch-9-avg-3-use-averaged",
    ]
    assert "decoding..." in r.stderr


def test_a_failed_decode_stops_the_stage(recipe):
    stub = recipe / "local" / "decode.py"
    stub.write_text("#!/usr/bin/env bash\necho 'ERROR: no cuts' >&2\nexit 1\n")
    stub.chmod(0o755)
    script = "set -euo pipefail; . utils/log.sh; . utils/stages.sh; out=$(decoded --cuts x); echo 'went on'"
    r = subprocess.run(["bash", "-c", script], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "went on" not in r.stdout and "ERROR: no cuts" in r.stderr


def stage4(recipe, settings):
    # Stands in for local/train.py: one line per argument, so a path with a space shows as one.
    stub = recipe / "local" / "train.py"
    stub.write_text('#!/usr/bin/env bash\nprintf "arg:%s\\n" "$@"\n')
    stub.chmod(0o755)
    script = (
        "set -euo pipefail; . utils/log.sh; corpus=emodb; exp_name=m; label_preset=all; model_preset=tiny; "
        "tasks=emotion; num_epochs=1; max_duration=10; device=cpu; seed=0; folds=0; "
        f"{settings}; . utils/stages.sh; stage_train"
    )
    return subprocess.run(["bash", "-c", script], cwd=recipe, capture_output=True, text=True, timeout=60)


def test_the_front_end_variables_reach_train(recipe):
    r = stage4(recipe, "front_end=ssl; ssl_model='models/wavlm base'; ssl_finetune_top=2")
    assert r.returncode == 0, r.stderr
    args = [line[4:] for line in r.stdout.splitlines() if line.startswith("arg:")]
    i = args.index("--front-end")
    assert args[i : i + 6] == ["--front-end", "ssl", "--ssl-model", "models/wavlm base", "--ssl-finetune-top", "2"]
    r = stage4(recipe, "front_end=fbank")
    assert r.returncode == 0 and "--front-end" not in r.stdout and "--ssl-model" not in r.stdout


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            "front_end=ssl",
            "ERROR: front_end=ssl needs ssl_model=DIR (a local WavLM/HuBERT/wav2vec 2.0 folder; docs/ssl.md)",
        ),
        ("front_end=mfcc", "ERROR: front_end=mfcc: choose fbank or ssl"),
    ],
)
def test_a_bad_front_end_stops_stage_4_with_one_line(recipe, settings, message):
    r = stage4(recipe, settings)
    assert r.returncode == 1 and r.stderr.strip() == message and "arg:" not in r.stdout
