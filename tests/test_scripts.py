"""The shell and script layer: options parsing, --help everywhere, torchrun, precision flags."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, train_args

LOCAL_SCRIPTS = sorted(p.name for p in (REPO / "local").glob("*.py"))


@pytest.mark.parametrize("script", LOCAL_SCRIPTS)
def test_every_stage_script_has_help(script):
    r = subprocess.run(
        [sys.executable, str(REPO / "local" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


def run_options(tmp_path, *args):
    script = tmp_path / "s.sh"
    script.write_text(
        f"stage=0\nstop_stage=100\ncorpus_dir=/x\n. {REPO}/utils/parse_options.sh\n"
        'echo "$stage|$stop_stage|$corpus_dir|$*"\n'
    )
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)


def test_parse_options_accepts_dashes_and_underscores(tmp_path):
    assert run_options(tmp_path, "--stop-stage", "3").stdout.strip() == "0|3|/x|"
    assert run_options(tmp_path, "--stop_stage", "4", "--corpus-dir=/y").stdout.strip() == "0|4|/y|"


def test_parse_options_rejects_unknown_and_missing_values(tmp_path):
    r = run_options(tmp_path, "--stop-sage", "3")
    assert r.returncode != 0 and "unknown option --stop-sage" in r.stderr
    r = run_options(tmp_path, "--stage")
    assert r.returncode != 0 and "needs a value" in r.stderr
    r = run_options(tmp_path, "--help")
    assert r.returncode == 0 and "--stop-stage" in r.stdout and "PATH" not in r.stdout


def test_recipe_help_lists_its_options():
    r = subprocess.run(["bash", str(REPO / "egs/ravdess/run.sh"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--fold " in r.stdout and "--label-preset" in r.stdout


def test_bad_flag_is_one_line(synth_data, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "local/train.py"),
            *map(
                str,
                [
                    "--train-cuts",
                    synth_data / "fbank/synth_cuts_train.jsonl.gz",
                    "--exp-dir",
                    tmp_path / "e",
                    "--tasks",
                    "emotion,joy",
                ],
            ),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("ERROR: --tasks: unknown task(s) ['joy']")
    assert "Traceback" not in r.stderr


def test_bf16_and_balanced_sampling_train_on_cpu(synth_data, tmp_path):
    from speecheq.train import train

    exp = tmp_path / "bf16"
    train(train_args(synth_data, exp, "--use-bf16", "--balanced", "--num-epochs", "1"))
    ckpt = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert ckpt["batch_idx_train"] > 0
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_torchrun_two_processes_ddp_on_cpu(synth_data, tmp_path):
    """DistributedDataParallel over gloo: the same code path as several GPUs."""
    exp = tmp_path / "ddp"
    args = train_args(synth_data, exp, "--num-epochs", "1")
    argv = [
        "--train-cuts",
        *map(str, args.train_cuts),
        "--dev-cuts",
        *map(str, args.dev_cuts),
        "--lang-dir",
        str(args.lang_dir),
        "--exp-dir",
        str(exp),
        "--label-preset",
        "6class",
        "--model-config",
        args.model_config,
        "--max-duration",
        "30",
        "--num-epochs",
        "1",
        "--tensorboard",
        "0",
    ]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(REPO / "local/train.py"),
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (exp / "epoch-1.pt").is_file()
    logs = sorted(p.name for p in (exp / "log").glob("log-train-*"))
    assert any("rank0" in n for n in logs) and any("rank1" in n for n in logs)


def test_kaldifeat_extractor_when_importable():
    from speecheq.errors import SpeechEQError
    from speecheq.features import make_extractor

    try:
        import kaldifeat  # noqa: F401
    except ImportError:
        with pytest.raises(SpeechEQError, match="needs the kaldifeat package"):
            make_extractor("kaldifeat")
        return
    import numpy as np

    from tests.conftest import tone

    x = tone(1.0)
    a = make_extractor("kaldifeat").extract(x, 16000)
    b = make_extractor("fbank").extract(x, 16000)
    assert a.shape[1] == b.shape[1] == 80 and abs(a.shape[0] - b.shape[0]) <= 1
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).mean() < 0.5


def test_balance_by_repetition_equalises_classes_and_corpora():
    from collections import Counter

    from lhotse import CutSet, MonoCut, SupervisionSegment

    from speecheq.data import balance_by_repetition, balanced_weights
    from speecheq.labels import LabelScheme

    def cut(i, corpus, emotion):
        sup = SupervisionSegment(f"c{i}", f"c{i}", 0, 1, custom={"corpus": corpus, "emotion": emotion})
        return MonoCut(f"c{i}", 0, 1, 0, supervisions=[sup])

    spec = [("a", "happy")] * 6 + [("a", "sad")] * 2 + [("b", "angry")] * 3
    cuts = CutSet.from_cuts(cut(i, c, e) for i, (c, e) in enumerate(spec))
    scheme = LabelScheme.from_preset("4class")
    out = list(balance_by_repetition(cuts, balanced_weights(cuts, scheme, None, by_class=True)))
    counts = Counter((c.supervisions[0].custom["corpus"], c.supervisions[0].custom["emotion"]) for c in out)
    assert counts == {("a", "happy"): 6, ("a", "sad"): 6, ("b", "angry"): 12}
    assert len({c.id for c in out}) == len(out)
    out = list(balance_by_repetition(cuts, balanced_weights(cuts, scheme, {"a": 1.0, "b": 1.0}, by_class=False)))
    per_corpus = Counter(c.supervisions[0].custom["corpus"] for c in out)
    assert per_corpus["a"] == 8 and abs(per_corpus["b"] - 8) <= 1
