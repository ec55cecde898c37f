"""utils/stages.sh's fold stages: stage 6 in a multi-stage run (a refused alignment is a logged skip), and
the decode folders' names read from local/decode.py's list instead of rebuilt in bash."""

import json
import os
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


def stub(recipe, script, text):
    """local/<script> replaced by ``text``."""
    path = recipe / "local" / script
    path.write_text(text)
    path.chmod(0o755)


def fold_recipe(recipe, settings, call, **kw):
    """``call`` after utils/stages.sh, in a fold recipe of exp_name m with ``settings``."""
    script = (
        "set -euo pipefail; . utils/log.sh; corpus=emodb; exp_name=m; label_preset=all; model_preset=tiny; "
        "tasks=emotion; num_epochs=1; max_duration=10; device=cpu; seed=0; folds=0; results=R.md; "
        f"{settings}; . utils/stages.sh; {call}"
    )
    return subprocess.run(["bash", "-c", script], cwd=recipe, capture_output=True, text=True, timeout=120, **kw)


def train_args(stdout):
    """The arguments the local/train.py stub printed, one per "arg:" line."""
    return [line[4:] for line in stdout.splitlines() if line.startswith("arg:")]


def stage4(recipe, settings):
    # Stands in for local/train.py: one line per argument, so a path with a space shows as one.
    stub(recipe, "train.py", '#!/usr/bin/env bash\nprintf "arg:%s\\n" "$@"\n')
    return fold_recipe(recipe, settings, "stage_train")


def test_the_front_end_variables_reach_train(recipe):
    r = stage4(recipe, "front_end=ssl; ssl_model='models/wavlm base'; ssl_finetune_top=2")
    assert r.returncode == 0, r.stderr
    args = train_args(r.stdout)
    i = args.index("--front-end")
    assert args[i : i + 6] == ["--front-end", "ssl", "--ssl-model", "models/wavlm base", "--ssl-finetune-top", "2"]
    r = stage4(recipe, "front_end=fbank")
    assert r.returncode == 0 and "--front-end" not in r.stdout and "--ssl-model" not in r.stdout


def test_ctc_weight_reaches_train_and_extra_train_args_override_it(recipe):
    def args(settings):
        r = stage4(recipe, settings)
        assert r.returncode == 0, r.stderr
        return train_args(r.stdout)

    assert "--ctc-weight" not in args("true")  # the task table's weight
    given = args("ctc_weight=1.0")
    assert given[given.index("--ctc-weight") + 1] == "1.0"
    both = args("ctc_weight=1.0; extra_train_args='--ctc-weight 0.3'")
    last = len(both) - 1 - both[::-1].index("--ctc-weight")  # argparse keeps the last
    assert both[last + 1] == "0.3" and both.index("--ctc-weight") < last


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


def _runs(stdout):
    """(exp dir, seed) of each local/train.py the stub saw."""
    runs, args = [], train_args(stdout)
    for i, a in enumerate(args):
        if a == "--exp-dir":
            runs.append([args[i + 1]])
        if a == "--seed":
            runs[-1].append(args[i + 1])
    return [tuple(r) for r in runs]


def test_ensemble_seeds_train_one_more_model_per_fold_and_seed(recipe):
    r = stage4(recipe, "folds='0 1'; ensemble_seeds='43 7'")
    assert r.returncode == 0, r.stderr
    assert _runs(r.stdout) == [
        ("exp/m_all/fold0", "0"),
        ("exp/m_seed43_all/fold0", "43"),
        ("exp/m_seed7_all/fold0", "7"),
        ("exp/m_all/fold1", "0"),
        ("exp/m_seed43_all/fold1", "43"),
        ("exp/m_seed7_all/fold1", "7"),
    ]
    r = stage4(recipe, "folds='0 1'")
    assert _runs(r.stdout) == [("exp/m_all/fold0", "0"), ("exp/m_all/fold1", "0")]


@pytest.mark.parametrize(
    "value, message",
    [
        ("'43 x1'", "ERROR: ensemble_seeds='43 x1': 'x1' is not a non-negative integer seed"),
        ("'43 0'", "ERROR: ensemble_seeds='43 0': seed 0 twice (seed=0 trains the first member)"),
        ("'43 43'", "ERROR: ensemble_seeds='43 43': seed 43 twice (seed=0 trains the first member)"),
    ],
)
def test_a_bad_ensemble_seed_stops_stage_4_with_one_line(recipe, value, message):
    r = stage4(recipe, f"ensemble_seeds={value}")
    assert r.returncode == 1 and r.stderr.strip() == message and "arg:" not in r.stdout


# Stands in for local/decode.py: decoding writes a predictions.tsv whose p_a is set by the model's
# seed (exp/m_all: 0.9, exp/m_seed<s>_all: s / 100), and a summary (--folds) is logged.
DECODE_STUB = r"""#!/usr/bin/env python3
import argparse, json, pathlib, re, sys
p = argparse.ArgumentParser()
for o in ("--exp-dir", "--metrics-list", "--summary-out", "--results", "--run-name"):
    p.add_argument(o)
p.add_argument("--cuts", nargs="+")
p.add_argument("--folds", nargs="+")
args, _ = p.parse_known_args()
if args.folds:
    assert all(pathlib.Path(f).is_file() for f in args.folds), args.folds
    with open("summaries.log", "a") as f:
        f.write(json.dumps({"run_name": args.run_name, "folds": args.folds}) + "\n")
    sys.exit(0)
seed = re.search(r"_seed(\d+)_", args.exp_dir)
pa = int(seed.group(1)) / 100 if seed else 0.9
written = []
for cuts in args.cuts:
    name = pathlib.Path(cuts).name.replace(".jsonl.gz", "").replace("_cuts_", "_")
    out = pathlib.Path(args.exp_dir) / "decode" / f"{name}-epoch-1-avg-1"
    out.mkdir(parents=True, exist_ok=True)
    rows = ["cut_id\tcorpus\temotion_true\temotion_pred\tp_a\tp_b"]
    rows += [f"{name}-{i}\temodb\t{'ab'[i % 2]}\ta\t{pa}\t{1 - pa:.2f}" for i in range(4)]
    (out / "predictions.tsv").write_text("\n".join(rows) + "\n")
    (out / "metrics.json").write_text("{}")
    written.append(str(out / "metrics.json"))
pathlib.Path(args.metrics_list).write_text("".join(w + "\n" for w in written))
"""


def test_stage_5_decodes_every_member_and_writes_the_ensemble_row(recipe):
    stub(recipe, "decode.py", DECODE_STUB)
    (recipe / "local" / "ensemble.py").symlink_to(REPO / "local" / "ensemble.py")
    env = {**os.environ, "PATH": f"{REPO / '.venv/bin'}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    # two namings of folds in one run: each fold's decode patterns are its own
    r = fold_recipe(recipe, "folds='1 official'; ensemble_seeds='40 50'", "stage_decode", env=env)
    assert r.returncode == 0, r.stderr
    for fold, s in (("fold1", "fold1_"), ("official", "")):
        for split in ("test", "dev"):
            for run in ("m_all", "m_seed40_all", "m_seed50_all"):
                assert (recipe / f"exp/{run}/{fold}/decode/emodb_{s}{split}-epoch-1-avg-1/predictions.tsv").is_file()
            ens = recipe / f"exp/m_ens_all/{fold}/decode/emodb_{s}{split}-ens"
            lines = (ens / "predictions.tsv").read_text().splitlines()
            header = lines[0].split("\t")
            p_a = {float(line.split("\t")[header.index("p_a")]) for line in lines[1:]}
            assert p_a == {0.6}, lines  # (0.9 + 0.4 + 0.5) / 3
            assert json.loads((ens / "metrics.json").read_text())["ensemble"]["members"] == [
                f"exp/{run}/{fold}/decode/emodb_{s}{split}-epoch-1-avg-1"
                for run in ("m_all", "m_seed40_all", "m_seed50_all")
            ]
    rows = [json.loads(line) for line in (recipe / "summaries.log").read_text().splitlines()]
    assert rows == [
        {
            "run_name": "emodb all m (emotion) epoch-1-avg-1 folds: 1 official",
            "folds": [
                "exp/m_all/fold1/decode/emodb_fold1_test-epoch-1-avg-1/metrics.json",
                "exp/m_all/official/decode/emodb_test-epoch-1-avg-1/metrics.json",
            ],
        },
        {
            "run_name": "emodb all m (emotion) epoch-1-avg-1 ensemble of seeds 0 40 50 folds: 1 official",
            "folds": [
                "exp/m_ens_all/fold1/decode/emodb_fold1_test-ens/metrics.json",
                "exp/m_ens_all/official/decode/emodb_test-ens/metrics.json",
            ],
        },
    ]


def test_stage_8_fuses_the_ensemble_when_there_is_one(recipe):
    # Stand in for local/fuse.py and local/decode.py: each prints its arguments, one a line.
    for name in ("fuse", "decode"):
        stub(recipe, f"{name}.py", f'#!/usr/bin/env bash\nprintf "{name}:%s\\n" "$@"\n')
    r = fold_recipe(recipe, "folds='0 1'; ensemble_seeds='40 50'", "stage_fuse")
    assert r.returncode == 0, r.stderr
    fuse = [line[5:] for line in r.stdout.splitlines() if line.startswith("fuse:")]
    decode = [line[7:] for line in r.stdout.splitlines() if line.startswith("decode:")]
    assert fuse[fuse.index("--a") + 1] == "exp/m_ens_all/fold{k}/decode/emodb_fold{k}_{split}-ens"
    assert fuse[fuse.index("--out-dir") + 1] == "exp/fusion_m_ens_ComParE_2016_all"
    assert "--cuts" not in decode  # the ensemble's dev sets were decoded in stage 5
    assert decode[decode.index("--run-name") + 1] == (
        "emodb all m ensemble of seeds 0 40 50 + ComParE_2016 SVM, fused (w on dev) folds: 0 1"
    )


@pytest.mark.parametrize(
    "settings, norm",
    [
        ("fusion_baseline='ComParE_2016 GE2E'", ""),
        # the default with a speaker encoder: both rows, normalised as the network is
        ("speaker_encoder=w.pt; extra_train_args='--num-workers 0 --speaker-cmvn'", "_spknorm"),
    ],
)
def test_stage_8_averages_several_svm_rows_before_fusing(recipe, settings, norm):
    """Several SVM rows: the SVMs' equal-weight mean on dev and test, then one w on dev."""
    for name in ("ensemble", "fuse", "decode"):
        stub(recipe, f"{name}.py", f'#!/usr/bin/env bash\nprintf "{name}:%s\\n" "$@"\n')
    r = fold_recipe(recipe, f"folds='0 1'; {settings}; decode_checkpoint='--epoch 1 --avg 1'", "stage_fuse")
    assert r.returncode == 0, r.stderr
    calls = {
        n: [line[len(n) + 1 :] for line in r.stdout.splitlines() if line.startswith(f"{n}:")]
        for n in ("ensemble", "fuse")
    }
    ens, fuse = calls["ensemble"], calls["fuse"]
    runs = ens[ens.index("--runs") + 1 : ens.index("--folds")]
    rows = [f"ComParE_2016{norm}", f"GE2E{norm}"]
    assert runs == [f"exp/baseline_{row}_all/fold{{k}}/decode/emodb_fold{{k}}_{{split}}-svm" for row in rows]
    svm = "+".join(rows)
    assert ens[ens.index("--out-dir") + 1] == f"exp/baseline_{svm}_all"
    assert ens[ens.index("--splits") + 1 : ens.index("--splits") + 3] == ["test", "dev"]
    assert fuse[fuse.index("--b") + 1] == f"exp/baseline_{svm}_all/fold{{k}}/decode/emodb_fold{{k}}_{{split}}-ens"
    assert fuse[fuse.index("--out-dir") + 1].startswith("exp/fusion_m_") and fuse[-1] == svm


def test_stage_8_default_rows_follow_the_network_and_the_encoder(recipe):
    script = ". utils/stages.sh; fusion_rows"
    for settings, rows in (
        ("true", "ComParE_2016"),
        ("extra_train_args='--speaker-cmvn'", "ComParE_2016_spknorm"),
        ("speaker_encoder=w.pt", "ComParE_2016 GE2E"),
        ("speaker_encoder=w.pt; fusion_baseline=eGeMAPSv02", "eGeMAPSv02"),
    ):
        r = subprocess.run(
            ["bash", "-c", f"{settings}; {script}"], cwd=recipe, capture_output=True, text=True, timeout=30
        )
        assert r.stdout.strip() == rows, (settings, r.stdout, r.stderr)


def test_the_emodb_recipe_trains_its_measured_configuration(recipe):
    """egs/emodb/run.sh's defaults are the configuration its 5-fold confirmation selected (RESULTS.md)."""
    for name in ("run.sh", "path.sh"):
        (recipe / name).symlink_to(REPO / "egs/emodb" / name)
    stub(recipe, "train.py", '#!/usr/bin/env bash\nprintf "arg:%s\\n" "$@"\n')
    r = subprocess.run(
        ["bash", "run.sh", "--stage", "4", "--stop-stage", "4", "--folds", "2"],
        cwd=recipe,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    args = train_args(r.stdout)
    value = {flag: args[args.index(flag) + 1] for flag in ("--num-epochs", "--model-config", "--ctc-weight", "--tasks")}
    assert value["--num-epochs"] == "50" and value["--ctc-weight"] == "1.0"
    assert json.loads(value["--model-config"]) == {"ctc_upsample": 2} and "ctc" in value["--tasks"].split(",")
    assert args[args.index("--train-cuts") + 1] == "data/fbank/emodb_cuts_fold2_train.jsonl.gz"


def _arg(args, flag):
    """The values after ``flag`` up to the next option."""
    i = args.index(flag) + 1
    j = next((n for n in range(i, len(args)) if args[n].startswith("--")), len(args))
    return args[i:j]


def test_fit_on_train_dev_trains_on_both_splits_into_its_own_folder(recipe):
    r = stage4(recipe, "folds='0 1'; fit_on=train+dev")
    assert r.returncode == 0, r.stderr
    args = train_args(r.stdout)
    assert _runs(r.stdout) == [("exp/m_traindev_all/fold0", "0"), ("exp/m_traindev_all/fold1", "0")]
    assert _arg(args, "--train-cuts") == [
        "data/fbank/emodb_cuts_fold0_train.jsonl.gz",
        "data/fbank/emodb_cuts_fold0_dev.jsonl.gz",
    ]
    assert "--dev-cuts" not in args  # no dev set left to validate or choose on
    # the default keeps dev out of training, as every row chosen on dev was trained
    args = train_args(stage4(recipe, "fit_on=train").stdout)
    assert _arg(args, "--train-cuts") == ["data/fbank/emodb_cuts_fold0_train.jsonl.gz"]
    assert _arg(args, "--dev-cuts") == ["data/fbank/emodb_cuts_fold0_dev.jsonl.gz"]
    assert _runs(stage4(recipe, "true").stdout) == [("exp/m_all/fold0", "0")]


def test_a_bad_fit_on_stops_the_recipe_with_one_line(recipe):
    r = stage4(recipe, "fit_on=dev")
    assert r.returncode == 1 and r.stderr.strip() == "ERROR: fit_on=dev: choose train or train+dev"
    assert "arg:" not in r.stdout


def test_stage_8_fuses_refitted_models_with_the_train_only_pairs_weights(recipe):
    for name in ("ensemble", "fuse", "decode"):
        stub(recipe, f"{name}.py", f'#!/usr/bin/env bash\nprintf "{name}:%s\\n" "$@"\n')
    r = fold_recipe(
        recipe,
        "folds='0 1'; fit_on=train+dev; speaker_encoder=w.pt; decode_checkpoint='--epoch 1 --avg 1'",
        "stage_fuse",
    )
    assert r.returncode == 0, r.stderr
    calls = {
        n: [line[len(n) + 1 :] for line in r.stdout.splitlines() if line.startswith(f"{n}:")]
        for n in ("ensemble", "fuse")
    }
    ens, fuse = calls["ensemble"], calls["fuse"]
    assert _arg(ens, "--runs") == [
        f"exp/baseline_{row}_traindev_all/fold{{k}}/decode/emodb_fold{{k}}_{{split}}-svm"
        for row in ("ComParE_2016", "GE2E")
    ]
    assert _arg(ens, "--splits") == ["test"]  # the refitted SVMs' dev sets are their training data
    svm = "ComParE_2016+GE2E"
    # (the weights tag after the "-" comes from local/decode.py, a stub here)
    assert _arg(fuse, "--a")[0].startswith("exp/m_traindev_all/fold{k}/decode/emodb_fold{k}_{split}-")
    assert _arg(fuse, "--b") == [f"exp/baseline_{svm}_traindev_all/fold{{k}}/decode/emodb_fold{{k}}_{{split}}-ens"]
    assert _arg(fuse, "--out-dir") == [f"exp/fusion_m_{svm}_traindev_all"]
    assert _arg(fuse, "--weights-from") == [f"exp/fusion_m_{svm}_all"]  # the fit_on=train pair's, chosen on dev
    # the default still chooses on dev, from the train-only folders
    r = fold_recipe(recipe, "folds='0 1'; decode_checkpoint='--epoch 1 --avg 1'", "stage_fuse")
    fuse = [line[5:] for line in r.stdout.splitlines() if line.startswith("fuse:")]
    assert "--weights-from" not in fuse and _arg(fuse, "--out-dir") == ["exp/fusion_m_ComParE_2016_all"]


def test_stage_7_refits_the_svms_into_their_own_folders(recipe):
    stub(recipe, "baseline_functionals.py", '#!/usr/bin/env bash\nprintf "svm:%s\\n" "$@"\n')
    stub(recipe, "decode.py", '#!/usr/bin/env bash\nprintf "decode:%s\\n" "$@"\n')
    r = fold_recipe(
        recipe, "fit_on=train+dev; baseline_featsets=ComParE_2016; baseline_speaker_norm=yes", "stage_baseline"
    )
    assert r.returncode == 0, r.stderr
    svm = [line[4:] for line in r.stdout.splitlines() if line.startswith("svm:")]
    decode = [line[7:] for line in r.stdout.splitlines() if line.startswith("decode:")]
    assert _arg(svm, "--fit-on") == ["train+dev"] and "--speaker-norm" in svm
    assert _arg(svm, "--exp-dir") == ["exp/baseline_ComParE_2016_spknorm_traindev_all"]
    # the name speecheq.baseline gives the same model, so the stage and the library agree on one folder
    from speecheq.baseline import baseline_name

    assert baseline_name("ComParE_2016", True, "all", "train+dev") == "baseline_ComParE_2016_spknorm_traindev_all"
    assert _arg(decode, "--folds") == [
        "exp/baseline_ComParE_2016_spknorm_traindev_all/fold0/decode/emodb_fold0_test-svm/metrics.json"
    ]
