#!/usr/bin/env python3
"""Kill -9 the egs/synth stages at random moments, re-run them, and check that nothing broke.

In a temporary copy of the recipe folder (a smaller corpus: --sentences per language),
the stages run as run.sh runs them (local/*.py, same order, same folders):

  0-generate  local/generate_synth.py   download/synth
  0-prepare   local/prepare.py          data/manifests
  1-lang      local/prepare_lang.py     data/lang
  2-fbank     local/compute_fbank.py    data/fbank (cuts + lilcom features)
  3-validate  local/validate.py         data/fbank (splits)
  4-train     local/train.py            exp/tiny (tiny model, CPU, --deterministic, --save-every-n 1)
  5-decode    local/decode.py           exp/tiny/decode (predictions.tsv, metrics.json)
  6-align     local/align.py            data/fbank_ali
  9-export    local/export.py           exp/tiny/speecheq-package.pt

First an uninterrupted reference run. Then, per stage and trial, from a copy of the
reference taken just before that stage: start the stage, SIGKILL it at a seeded
random moment of its working time (after it took its folder lock), re-run the same
command (training: with the logged ``--start-batch N`` of its last checkpoint-N.pt),
and check that the re-run succeeds; that every manifest equals the reference (same
ids, same fields), features within lilcom precision, the trained weights within
1e-5; that no temporary (``.tmp.*``) file is left and every manifest is whole; and
that no worker process outlived the killed stage.

Aimed kills: once per file a stage writes among outputs that must agree (training:
best-valid.pt, epoch-1.pt, best-valid.pt again, epoch-2.pt, train-summary.json; the
align stage: its manifest before its summary), the stage is killed as soon as that file
is written, and what the recipe does next runs (stage 4: skipped if utils/trained.sh says
finished, else resumed from utils/next_epoch.sh); every output must then equal the
reference. This finds a kill between two files of a set, which random moments rarely hit.

Also, per stage with a folder lock, that a second run on the same folder (the first
one paused while holding it) stops with one line naming the lock; and that a full disk
(RLIMIT_FSIZE in the child, SIGXFSZ ignored) ends the fbank stage with one line and
the next run, without the limit, continues (--no-lock-check / --no-disk-check skip them).

    utils/kill_test.py [--trials 5] [--seed 0] [--stages 2-fbank 4-train] [--work-dir DIR]

Exit status 0 when every check passed; the report lists every kill and problem.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = (
    '{"d_model": 32, "num_layers": 1, "num_heads": 2, "ff_dim": 64, "conv_kernel": 7, '
    '"subsampling_channels": 8, "pooling_dim": 16}'
)
LILCOM_STEP = 2.0**-5  # LilcomChunkyWriter's grid: the most two extractions of the same audio may differ
WEIGHT_TOL = 1e-5


@dataclass
class Stage:
    name: str
    argv: List[str]
    outputs: List[str]  # files/folders (relative to the recipe) compared with the reference
    lock: Optional[str] = None  # folder whose .lock the stage takes
    started: Optional[str] = None  # a file whose appearance means the work is under way (after the lock)
    # Aimed kills: right after each of these files is written ("path#2": its second write).
    # A stage's outputs that must agree with each other are written one after another;
    # a kill between two of them is the moment a random kill almost never hits.
    windows: List[str] = field(default_factory=list)


def tiny_train_argv(fbank_dir, lang_dir, exp_dir) -> List[str]:
    """local/train.py's options for a tiny 2-epoch model on the synth splits of ``fbank_dir``:
    this tool's training stage and the test suite's trained fixtures (tests/conftest.py)."""
    return [
        "--train-cuts",
        f"{fbank_dir}/synth_cuts_train.jsonl.gz",
        "--dev-cuts",
        f"{fbank_dir}/synth_cuts_dev.jsonl.gz",
        "--lang-dir",
        str(lang_dir),
        "--exp-dir",
        str(exp_dir),
        "--label-preset",
        "6class",
        "--model-config",
        TINY_MODEL,
        "--max-duration",
        "30",
        "--warmup-batches",
        "5",
        "--tensorboard",
        "0",
        "--num-epochs",
        "2",
    ]


def stages(sentences: int) -> List[Stage]:
    train = [
        "local/train.py",
        *tiny_train_argv("data/fbank", "data/lang", "exp/tiny"),
        "--device",
        "cpu",
        "--seed",
        "3",
        "--deterministic",
        "--save-every-n",
        "1",
        "--keep-last-k",
        "2",
    ]
    return [
        Stage(
            "0-generate",
            [
                "local/generate_synth.py",
                "--corpus-dir",
                "download/synth",
                "--seed",
                "0",
                "--sentences-per-language",
                str(sentences),
            ],
            ["download/synth"],
            "download",
        ),
        Stage(
            "0-prepare",
            [
                "local/prepare.py",
                "--corpus",
                "synth",
                "--corpus-dir",
                "download/synth",
                "--output-dir",
                "data/manifests",
                "--nj",
                "2",
            ],
            [
                "data/manifests/synth_recordings_all.jsonl.gz",
                "data/manifests/synth_supervisions_all.jsonl.gz",
                "data/manifests/synth_prepare_summary.json",
            ],
            "data/manifests",
        ),
        Stage(
            "1-lang",
            [
                "local/prepare_lang.py",
                "--supervisions",
                "data/manifests/synth_supervisions_all.jsonl.gz",
                "--lang-dir",
                "data/lang",
            ],
            ["data/lang/tokens.txt"],
        ),
        Stage(
            "2-fbank",
            ["local/compute_fbank.py", "--corpus", "synth", "--nj", "2", "--device", "cpu"],
            ["data/fbank/synth_cuts_all.jsonl.gz"],
            "data/fbank",
        ),
        Stage(
            "3-validate",
            ["local/validate.py", "--corpus", "synth", "--label-preset", "6class"],
            [f"data/fbank/synth_cuts_{s}.jsonl.gz" for s in ("train", "dev", "test")]
            + ["data/fbank/synth_splits.json"],
            "data/fbank",
        ),
        # killed after its first batch checkpoint, so that it resumes mid-epoch with --start-batch
        # The averaged model has no file of its own: it is model_avg inside each epoch-N.pt.
        Stage(
            "4-train",
            train,
            ["exp/tiny/epoch-2.pt", "exp/tiny/best-valid.pt", "exp/tiny/train-summary.json"],
            "exp/tiny",
            started="exp/tiny/checkpoint-1.pt",
            windows=[
                "exp/tiny/best-valid.pt",
                "exp/tiny/epoch-1.pt",
                "exp/tiny/best-valid.pt#2",
                "exp/tiny/epoch-2.pt",
                "exp/tiny/train-summary.json",
            ],
        ),
        Stage(
            "5-decode",
            [
                "local/decode.py",
                "--exp-dir",
                "exp/tiny",
                "--epoch",
                "2",
                "--cuts",
                "data/fbank/synth_cuts_test.jsonl.gz",
            ],
            [f"exp/tiny/decode/synth_test-epoch-2-avg-1/{f}" for f in ("metrics.json", "predictions.tsv")],
        ),
        Stage(
            "6-align",
            [
                "local/align.py",
                "--exp-dir",
                "exp/tiny",
                "--epoch",
                "2",
                "--cuts",
                "data/fbank/synth_cuts_test.jsonl.gz",
                "--output",
                "data/fbank_ali/synth_cuts_test.jsonl.gz",
                "--allow-untrained",
            ],  # the tiny 2-epoch CTC head has not learnt: refused without it
            ["data/fbank_ali/synth_cuts_test.jsonl.gz", "data/fbank_ali/synth_cuts_test.summary.json"],
            windows=["data/fbank_ali/synth_cuts_test.jsonl.gz"],
        ),
        Stage(
            "9-export",
            ["local/export.py", "--exp-dir", "exp/tiny", "--epoch", "2", "--output", "exp/tiny/speecheq-package.pt"],
            ["exp/tiny/speecheq-package.pt"],
        ),
    ]


STAGE_NAMES = [s.name for s in stages(1)]


# ------------------------------------------------------------------ running


def make_recipe(folder: Path) -> Path:
    """A recipe folder like egs/synth: links to local/, utils/, path.sh; its own data/ and exp/."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("local", "utils", "path.sh"):
        (folder / name).symlink_to(REPO / name)
    shutil.copy2(REPO / "egs/synth/run.sh", folder / "run.sh")
    return folder


def stage_env() -> Dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "LHOTSE_AUDIO_DURATION_MISMATCH_TOLERANCE": "0.1",
    }


def start(recipe: Path, argv: List[str], preexec: Optional[Callable[[], None]] = None) -> subprocess.Popen:
    # Own session: the stage and its workers form one process group we can inspect afterwards.
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=recipe,
        env=stage_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=preexec,
    )


def holds_lock(recipe: Path, stage: Stage, pid: int) -> bool:
    try:
        return (recipe / stage.lock / ".lock").read_text().strip() == str(pid)
    except (OSError, TypeError):
        return False


def wait_for_lock(
    recipe: Path, stage: Stage, proc: subprocess.Popen, timeout: float = 120.0, started: bool = True
) -> Optional[float]:
    """Seconds until the stage took its lock (and, with ``started``, wrote its ``started`` file);
    0 for a stage without a lock; None if it exited first."""
    if stage.lock is None:
        return 0.0
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        begun = not started or stage.started is None or (recipe / stage.started).exists()
        if holds_lock(recipe, stage, proc.pid) and begun:
            return time.monotonic() - t0
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    return None


def finish(proc: subprocess.Popen, timeout: float = 600.0) -> str:
    _, err = proc.communicate(timeout=timeout)
    return err or ""


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def run_to_end(recipe: Path, argv: List[str]) -> None:
    proc = start(recipe, argv)
    err = finish(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:1])} failed (exit {proc.returncode}):\n{err[-3000:]}")


# --------------------------------------------------------------- comparing


@contextlib.contextmanager
def cwd(folder: Path):
    """Manifests hold paths relative to the recipe folder: read them from there."""
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def jsonl(path: Path) -> List[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compare_manifest(ref: Path, got: Path, rel: str) -> List[str]:
    a, b = jsonl(ref / rel), jsonl(got / rel)
    if [x.get("id") for x in a] != [x.get("id") for x in b]:
        return [f"{rel}: ids differ from the reference ({len(b)} vs {len(a)} entries)"]
    problems = [f"{rel}: {x['id']} differs from the reference" for x, y in zip(a, b) if x != y][:3]
    if not problems and any("features" in x for x in a):
        problems += compare_features(ref, got, rel)
    return problems


def compare_features(ref: Path, got: Path, rel: str) -> List[str]:
    import numpy as np
    from lhotse import load_manifest_lazy

    with cwd(ref):
        fa = {c.id: c.load_features() for c in load_manifest_lazy(rel)}
    with cwd(got):
        fb = {c.id: c.load_features() for c in load_manifest_lazy(rel)}
    bad = [k for k in fa if fa[k].shape != fb[k].shape or float(np.abs(fa[k] - fb[k]).max()) > LILCOM_STEP + 1e-6]
    return [f"{rel}: features of {bad[0]} differ beyond lilcom precision ({len(bad)} cuts)"] if bad else []


def compare_weights(ref: Path, got: Path, rel: str) -> List[str]:
    import torch

    a = torch.load(ref / rel, map_location="cpu", weights_only=False)
    b = torch.load(got / rel, map_location="cpu", weights_only=False)
    worst, where = 0.0, ""
    for part in ("model", "model_avg"):
        for k, v in a[part].items():
            if v.is_floating_point():
                d = float((v.double() - b[part][k].double()).abs().max())
                if d > worst:
                    worst, where = d, f"{part}.{k}"
    if a["batch_idx_train"] != b["batch_idx_train"]:
        return [f"{rel}: {b['batch_idx_train']} batches trained, reference {a['batch_idx_train']}"]
    return [f"{rel}: weights differ from the uninterrupted run by {worst:.2e} ({where})"] if worst >= WEIGHT_TOL else []


def compare_packages(ref: Path, got: Path, rel: str) -> List[str]:
    """Same weights (the package's fingerprint) and labels; the creation time and the
    source folder legitimately differ between the reference and a trial copy."""
    import torch

    a = torch.load(ref / rel, map_location="cpu", weights_only=True)
    b = torch.load(got / rel, map_location="cpu", weights_only=True)
    keys = ("fingerprint", "categories", "tokens", "model_config", "feature_config")
    return [f"{rel}: {k} differs from the reference" for k in keys if a.get(k) != b.get(k)]


def compare_outputs(ref: Path, got: Path, stage: Stage) -> List[str]:
    problems = []
    for rel in stage.outputs:
        if not (got / rel).exists():
            problems.append(f"{rel}: missing after the re-run")
        elif rel.endswith(".jsonl.gz"):
            problems += compare_manifest(ref, got, rel)
        elif rel.endswith("package.pt"):
            problems += compare_packages(ref, got, rel)
        elif rel.endswith(".pt"):
            problems += compare_weights(ref, got, rel)
        elif (ref / rel).is_dir():
            for f in sorted(p for p in (ref / rel).rglob("*") if p.is_file()):
                g = got / rel / f.relative_to(ref / rel)
                if not g.is_file() or g.read_bytes() != f.read_bytes():
                    problems.append(f"{rel}/{f.relative_to(ref / rel)} differs from the reference")
                    break
        elif (ref / rel).read_bytes() != (got / rel).read_bytes():
            problems.append(f"{rel} differs from the reference")
    return problems


def leftovers(folder: Path) -> List[str]:
    """Temporaries left behind, manifests cut short, markers without their output."""
    problems = [f"temporary left behind: {p.relative_to(folder)}" for p in folder.rglob(".tmp.*")]
    for p in folder.rglob("*.jsonl.gz"):
        try:
            with gzip.open(p, "rb") as f:
                while f.read(1 << 20):
                    pass
        except (OSError, EOFError) as e:
            problems.append(f"half-written manifest: {p.relative_to(folder)} ({e})")
    for marker in folder.rglob("*.done"):
        if not marker.with_name(marker.name[: -len(".done")]).exists():
            problems.append(f"done marker without its output: {marker.relative_to(folder)}")
    return problems


# ------------------------------------------------------------------- trials


@dataclass
class Reference:
    recipe: Path
    snapshots: Dict[str, Path]  # stage -> copy of the recipe just before it
    work_seconds: Dict[str, float]  # stage -> seconds from taking its lock to exiting
    stages: Dict[str, Stage]


def make_reference(work: Path, sentences: int = 1, upto: Optional[str] = None, log=print) -> Reference:
    """The uninterrupted run, with a snapshot of the recipe folder before each stage."""
    recipe = make_recipe(work / "reference")
    snapshots, seconds, spec = {}, {}, {}
    for stage in stages(sentences):
        snap = work / "snapshots" / stage.name
        shutil.copytree(recipe, snap, symlinks=True)
        snapshots[stage.name], spec[stage.name] = snap, stage
        proc = start(recipe, stage.argv)
        t0 = time.monotonic()
        locked = wait_for_lock(recipe, stage, proc) or 0.0
        err = finish(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"reference run: {stage.name} failed (exit {proc.returncode}):\n{err[-3000:]}")
        seconds[stage.name] = max(time.monotonic() - t0 - locked, 0.05)
        log(
            f"reference {stage.name}: {time.monotonic() - t0:.1f} s ({seconds[stage.name]:.1f} s of it after {start_event(stage)})"
        )
        if stage.name == upto:
            break
    return Reference(recipe, snapshots, seconds, spec)


def start_event(stage: Stage) -> str:
    if stage.started:
        return f"{Path(stage.started).name} appeared"
    return "it took its lock" if stage.lock else "its start"


def last_logged_checkpoint(exp_dir: Path) -> int:
    """The N of the last 'saved checkpoint-N.pt (resume: --start-batch N)' in the training logs."""
    best = 0
    for log_file in (exp_dir / "log").glob("log-train-*.txt"):
        for m in re.finditer(r"resume: --start-batch (\d+)\)", log_file.read_text(errors="replace")):
            n = int(m.group(1))
            if (exp_dir / f"checkpoint-{n}.pt").is_file():
                best = max(best, n)
    return best


@dataclass
class Trial:
    stage: str
    kill_after: Optional[float]  # seconds after the lock; None: the stage finished before the kill
    rerun: str = ""
    problems: List[str] = field(default_factory=list)


def kill_trial(ref: Reference, name: str, folder: Path, rng: random.Random) -> Trial:
    stage = ref.stages[name]
    delay = rng.uniform(0.0, 0.9) * ref.work_seconds[name]
    killed = None
    for _ in range(4):  # a stage that finished before its kill is tried again with an earlier one
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(ref.snapshots[name], folder, symlinks=True)
        proc = start(folder, stage.argv)
        if wait_for_lock(folder, stage, proc) is not None:
            deadline = time.monotonic() + delay
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed = delay
        finish(proc)
        if killed is not None:
            break
        delay /= 3
    trial = Trial(name, killed)
    if killed is not None:
        # Orphaned workers exit when they next notice their parent is gone; on 2 cores shared with
        # trainings that can take seconds, so the window is 10 s (it was 3): a worker that keeps
        # running still fails the trial, one that is slow to be scheduled does not.
        grace = time.monotonic() + 10.0
        while group_alive(proc.pid) and time.monotonic() < grace:
            time.sleep(0.05)
        if group_alive(proc.pid):
            trial.problems.append("worker processes kept running after the stage was killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    argv = list(stage.argv)
    if name == "4-train":
        n = last_logged_checkpoint(folder / "exp/tiny")
        if n:
            argv += ["--start-batch", str(n)]
    trial.rerun = " ".join(argv[:1] + argv[-2:]) if argv != stage.argv else "same command"
    return rerun_and_compare(ref, stage, folder, argv, trial)


def rerun_and_compare(ref: Reference, stage: Stage, folder: Path, argv: Optional[List[str]], trial: Trial) -> Trial:
    """Run ``argv`` (None: nothing to run), then compare every output with the reference."""
    if argv is not None:
        proc = start(folder, argv)
        err = finish(proc)
        if proc.returncode != 0:
            trial.problems.append(f"re-run failed (exit {proc.returncode}): {err.strip().splitlines()[-1:] or ''}")
            return trial
    trial.problems += compare_outputs(ref.recipe, folder, stage) + leftovers(folder)
    return trial


def _identity(path: Path):
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns
    except OSError:
        return None


def rerun_as_the_recipe(folder: Path, name: str, argv: List[str]) -> Optional[List[str]]:
    """The command run.sh would give after a kill: stage 4 is skipped when utils/trained.sh says
    the run finished (None), else resumed with --start-epoch from utils/next_epoch.sh."""
    if name != "4-train":
        return argv
    if subprocess.run(["bash", "utils/trained.sh", "exp/tiny", "2"], cwd=folder).returncode == 0:
        return None
    nxt = subprocess.run(["bash", "utils/next_epoch.sh", "exp/tiny"], cwd=folder, capture_output=True, text=True)
    return argv + ["--start-epoch", nxt.stdout.strip()]


def aimed_trial(ref: Reference, name: str, window: str, folder: Path) -> Trial:
    """Kill the stage as soon as ``window`` is written (its k-th write for ``path#k``), then do
    what the recipe does next and compare every output with the uninterrupted run."""
    stage = ref.stages[name]
    rel, _, nth = window.partition("#")
    nth = int(nth or 1)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(ref.snapshots[name], folder, symlinks=True)
    target = folder / rel
    seen, writes, killed = _identity(target), 0, None
    proc = start(folder, stage.argv)
    t0 = time.monotonic()
    while proc.poll() is None:
        now = _identity(target)
        if now is not None and now != seen:
            seen, writes = now, writes + 1
            if writes == nth:
                os.kill(proc.pid, signal.SIGKILL)
                killed = time.monotonic() - t0
                break
        time.sleep(0.001)
    finish(proc)
    trial = Trial(name, killed)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers of the killed stage; the random trials check they exit
    argv = rerun_as_the_recipe(folder, name, list(stage.argv))
    trial.rerun = (
        "skipped (the recipe's check says finished)"
        if argv is None
        else (" ".join(argv[-2:]) if argv != stage.argv else "same command")
    )
    return rerun_and_compare(ref, stage, folder, argv, trial)


def lock_check(ref: Reference, name: str, folder: Path) -> List[str]:
    """A second run of the stage on the same folder, while the first holds the lock, stops with one line."""
    stage = ref.stages[name]
    if stage.lock is None:
        return []
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(ref.snapshots[name], folder, symlinks=True)
    first = start(folder, stage.argv)
    problems = []
    try:
        if wait_for_lock(folder, stage, first, started=False) is None:
            return [f"{name}: the first run never took {stage.lock}/.lock"]
        os.kill(first.pid, signal.SIGSTOP)  # paused, it keeps its lock while the second one starts
        second = start(folder, stage.argv)
        err = finish(second)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        if second.returncode == 0 or not lines or "Traceback" in err:
            problems.append(
                f"{name}: the second run was not refused with one line (exit {second.returncode}): {err[-500:]}"
            )
        elif not (lines[-1].startswith("ERROR: ") and f"{stage.lock}/.lock" in lines[-1]):
            problems.append(f"{name}: the second run's last line does not name the lock: {lines[-1]!r}")
    finally:
        os.kill(first.pid, signal.SIGCONT)
        err = finish(first)
    if first.returncode != 0:
        problems.append(f"{name}: the first run failed next to the refused one: {err[-500:]}")
    return problems + compare_outputs(ref.recipe, folder, stage) + leftovers(folder)


def disk_full_check(ref: Reference, name: str, folder: Path, limit_bytes: int = 64 * 1024) -> List[str]:
    """With files capped at ``limit_bytes`` (as a full disk), the stage ends with one line; then
    the same command without the cap continues and gives the reference outputs."""
    stage = ref.stages[name]
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(ref.snapshots[name], folder, symlinks=True)

    def cap():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    proc = start(folder, stage.argv, preexec=cap)
    err = finish(proc)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    problems = []
    if proc.returncode == 0:
        problems.append(f"{name}: finished although files were capped at {limit_bytes} bytes")
    elif "Traceback" in err or not lines or not lines[-1].startswith("ERROR: "):
        problems.append(f"{name}: a full disk did not end with one line: {err[-800:]}")
    proc = start(folder, stage.argv)
    err = finish(proc)
    if proc.returncode != 0:
        return problems + [f"{name}: the run after the disk was freed failed: {err[-500:]}"]
    return problems + compare_outputs(ref.recipe, folder, stage) + leftovers(folder)


def run(
    work: Path,
    names: List[str],
    trials: int,
    seed: int,
    sentences: int = 1,
    lock: bool = True,
    disk: bool = True,
    log=print,
    aimed: bool = True,
) -> List[str]:
    """The whole sweep; returns the problems (empty: every check passed)."""
    last = max(names, key=STAGE_NAMES.index)
    ref = make_reference(work, sentences, upto=last, log=log)
    rng = random.Random(seed)
    problems = []
    for name in names:
        for k in range(trials):
            t = kill_trial(ref, name, work / "trial", rng)
            stage = ref.stages[name]
            when = (
                f"killed {t.kill_after:.2f} s after {start_event(stage)}"
                if t.kill_after is not None
                else "finished before its kill"
            )
            log(f"{name} trial {k + 1}: {when}; re-run: {t.rerun}; {'ok' if not t.problems else '; '.join(t.problems)}")
            if t.kill_after is None:
                problems.append(f"{name} trial {k + 1}: the stage always finished before its kill")
            problems += [f"{name} trial {k + 1}: {p}" for p in t.problems]
        for window in ref.stages[name].windows if aimed else []:
            t = aimed_trial(ref, name, window, work / "trial")
            when = f"killed right after {window} was written" if t.kill_after is not None else f"{window} never written"
            log(f"{name} aimed: {when}; re-run: {t.rerun}; {'ok' if not t.problems else '; '.join(t.problems)}")
            problems += [f"{name} aimed at {window}: {p}" for p in t.problems]
        if lock:
            found = lock_check(ref, name, work / "trial")
            log(
                f"{name} second run on the same folder: {'; '.join(found) or 'ok' if ref.stages[name].lock else 'no lock (not checked)'}"
            )
            problems += found
    if disk and "2-fbank" in names:
        found = disk_full_check(ref, "2-fbank", work / "trial")
        log(f"2-fbank full disk: {'; '.join(found) or 'ok'}")
        problems += found
    return problems


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=5, help="kills per stage")
    p.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    p.add_argument("--stages", nargs="+", default=STAGE_NAMES, choices=STAGE_NAMES)
    p.add_argument("--sentences", type=int, default=1, help="sentences per language of the generated corpus")
    p.add_argument("--no-lock-check", action="store_true", help="skip the second-run-on-the-same-folder check")
    p.add_argument("--no-disk-check", action="store_true", help="skip the full-disk check of the fbank stage")
    p.add_argument(
        "--no-aimed", action="store_true", help="skip the kills aimed right after each output file is written"
    )
    p.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder, removed at the end")
    args = p.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="speecheq-kill-"))
    t0 = time.time()
    try:
        problems = run(
            work,
            args.stages,
            args.trials,
            args.seed,
            args.sentences,
            not args.no_lock_check,
            not args.no_disk_check,
            aimed=not args.no_aimed,
        )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(problems)} problem(s) in {time.time() - t0:.0f} s")
    for problem in problems:
        print(f"  {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
