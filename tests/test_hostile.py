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
from tests.conftest import REPO, recipe_copy, tone, write_wav

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
    from speecheq.checkpoint import load_checkpoint, load_model

    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(trained_exp / "epoch-1.pt", exp / "epoch-1.pt")
    damage_largest_tensor(exp / "epoch-1.pt")
    torch.load(exp / "epoch-1.pt", weights_only=False)  # the fault torch.load does not see
    with pytest.raises(
        SpeechEQError, match=r"epoch-1\.pt: the model weights do not match their stored fingerprint"
    ) as e:
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
    r = subprocess.run(
        [sys.executable, "-c", "from speecheq.cli import main; main()", "infer", "--model", str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith(f"ERROR: {path}: the model weights do not match")


def test_package_provenance_names_the_epoch_of_its_weights(trained_exp):
    from speecheq.package import package_from_exp

    best = torch.load(trained_exp / "best-valid.pt", weights_only=False)
    assert package_from_exp(trained_exp, checkpoint="best-valid.pt")["source"]["epoch"] == best["best_valid_epoch"]
    assert package_from_exp(trained_exp, epoch=2)["source"]["epoch"] == 2
    assert package_from_exp(trained_exp, epoch=1)["source"]["epoch"] == 1


# ----------------------------------------------------------------------------- inference


@pytest.fixture(scope="module")
def package_path(trained_exp, tmp_path_factory):
    from speecheq.package import package_from_exp, save_package

    return save_package(
        package_from_exp(trained_exp, checkpoint="best-valid.pt"),
        tmp_path_factory.mktemp("pkg") / "speecheq-package.pt",
    )


def run_infer(*args) -> int:
    from speecheq.cli import main

    with pytest.raises(SystemExit) as e:
        main(["infer", "--no-progress", *map(str, args)])
        raise SystemExit(0)
    return e.value.code


def test_inference_warns_about_silence_and_upsampling_and_counts_broken_links(package_path, tmp_path):
    import json

    folder = tmp_path / "in"
    write_wav(folder / "good.wav", tone(1.5))
    write_wav(folder / "silent.wav", np.zeros(24000, np.float32))
    write_wav(folder / "narrowband.wav", tone(1.5, sr=8000), sr=8000)
    (folder / "gone.wav").symlink_to(folder / "deleted.wav")  # was silently left out
    out = tmp_path / "out.jsonl"
    assert run_infer("--model", package_path, folder, "--output", out) == 3  # the broken link is a failure
    recs = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(recs) == {"good.wav", "silent.wav", "narrowband.wav", "gone.wav"}
    assert "warnings" not in recs["good.wav"]
    assert recs["silent.wav"]["warnings"] == ["silent input"]
    assert recs["narrowband.wav"]["warnings"] == ["upsampled from 8000 Hz"]
    assert "broken symbolic link" in recs["gone.wav"]["error"]
    tsv = tmp_path / "out.tsv"
    assert run_infer("--model", package_path, folder / "silent.wav", folder / "narrowband.wav", "--output", tsv) == 0
    header, *rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    column = header.index("warnings")
    assert [r[column] for r in rows] == ["silent input", "upsampled from 8000 Hz"]


def _drop_file_capabilities():
    from tests.test_bad_input import _drop_file_capabilities as drop

    drop()


def run_without_file_privileges(argv, probe_file: Path, **kwargs):
    """Run a command where file permissions apply (as root: in a child without the capabilities
    that bypass them); skipped where they cannot be dropped. ``probe_file``: a file of mode 0."""
    preexec = None
    if os.geteuid() == 0:
        preexec = _drop_file_capabilities
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(probe_file)!r}).close()"],
            preexec_fn=preexec,
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            pytest.skip("running as root with file capabilities that cannot be dropped here: permissions do not apply")
    return subprocess.run(argv, preexec_fn=preexec, capture_output=True, text=True, env=ENV, timeout=300, **kwargs)


def test_folders_without_permission_are_one_line_or_a_counted_record(package_path, tmp_path):
    import json

    corpus = tmp_path / "corpus"
    write_wav(corpus / "audio" / "a.wav", tone(1.0))
    (corpus / "metadata.tsv").write_text("path\tspeaker\temotion\naudio/a.wav\ts1\thappy\n")
    (corpus / "labels.yaml").write_text("emotions:\n  happy: happy\n")
    inputs = tmp_path / "inputs"
    write_wav(inputs / "ok.wav", tone(1.5))
    write_wav(inputs / "closed" / "inside.wav", tone(1.5))
    probe = tmp_path / "probe"
    probe.write_text("")
    os.chmod(probe, 0)
    os.chmod(corpus, 0o600)  # listed, not searchable
    os.chmod(inputs / "closed", 0)  # neither
    try:
        prep = run_without_file_privileges(
            [
                sys.executable,
                str(REPO / "local/prepare.py"),
                "--corpus",
                "custom",
                "--corpus-dir",
                str(corpus),
                "--output-dir",
                str(tmp_path / "m"),
            ],
            probe,
        )
        out = tmp_path / "out.jsonl"
        infer = run_without_file_privileges(
            [
                sys.executable,
                "-c",
                "from speecheq.cli import main; main()",
                "infer",
                "--no-progress",
                "--model",
                str(package_path),
                str(inputs),
                "--output",
                str(out),
            ],
            probe,
        )
    finally:
        os.chmod(corpus, 0o755)
        os.chmod(inputs / "closed", 0o755)
    assert prep.returncode == 1 and "Traceback" not in prep.stderr, prep.stderr[-2000:]
    assert (
        prep.stderr.strip().splitlines()[-1] == f"ERROR: custom: corpus folder {corpus}: permission denied "
        "(it and the folders above it must be readable and searchable)"
    )
    assert infer.returncode == 3 and "Traceback" not in infer.stderr, infer.stderr[-2000:]
    recs = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(recs) == {"ok.wav", "closed"} and "category" in recs["ok.wav"]
    assert "cannot list this folder" in recs["closed"]["error"]


# ----------------------------------------------------------------------------- one line, not a traceback


def test_token_table_that_is_not_utf8_is_one_line(tmp_path):
    from speecheq.text.tokens import TokenTable

    bad = tmp_path / "tokens.txt"
    bad.write_bytes("<blk> 0\nä 1\n".encode("latin-1"))
    with pytest.raises(SpeechEQError, match=r"tokens\.txt: not utf-8 text \(invalid continuation byte"):
        TokenTable.from_file(bad)


@pytest.mark.parametrize("fault", ["undecodable", "missing", "is a folder"])
def test_any_os_or_unicode_error_on_a_file_is_one_line_naming_it(tmp_path, fault):
    """The shared wrapper of every entry point (local/*.py, speecheq ...): no traceback for a file fault."""
    target = {"undecodable": tmp_path / "latin1.txt", "missing": tmp_path / "missing.txt", "is a folder": tmp_path}[
        fault
    ]
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    code = (
        "import sys\nfrom pathlib import Path\nfrom speecheq.cli import script\n"
        "script(lambda: Path(sys.argv[1]).read_text(encoding='utf-8'))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    expected = {
        "undecodable": "not utf-8 text",
        "missing": "No such file or directory",
        "is a folder": "Is a directory",
    }
    assert r.stderr.strip().splitlines() == [f"ERROR: {target}: {r.stderr.split(': ', 2)[2].strip()}"]
    assert expected[fault] in r.stderr


# ----------------------------------------------------------------------------- counts


def test_preparation_counts_each_fault_by_its_reason_and_stray_files(tmp_path):
    from tests.test_prepare import fake_ravdess
    from speecheq.corpora.ravdess import prepare_ravdess

    root = fake_ravdess(tmp_path / "ravdess")
    x = tone(1.0)
    bad = iter(f"Actor_0{a}/03-01-0{e}-01-02-02-0{a}.wav" for a in (1, 2) for e in range(2, 9))
    (root / next(bad)).write_bytes(b"")  # zero bytes
    (root / next(bad)).write_bytes(write_wav(root / "h.wav", x).read_bytes()[:20])  # truncated header
    (root / next(bad)).write_text("not audio at all\n")
    for value in (np.nan, np.inf):
        y = x.copy()
        y[100] = value
        write_wav(root / next(bad), y, subtype="FLOAT")
    write_wav(root / next(bad), np.zeros(16000, np.float32))  # silent
    write_wav(root / next(bad), tone(0.01))  # 10 ms
    (root / next(bad)).write_bytes(write_wav(root / "h.wav", x).read_bytes()[: 44 + 20])  # data chunk of 10 samples
    (root / "h.wav").unlink()
    (root / "Actor_01" / "notes.txt").write_text("session notes\n")  # was never mentioned
    summary = prepare_ravdess(root, g2p=None, progress=False)["summary"]
    assert dict(summary.skipped) == {
        "empty file": 1,
        "not audio": 2,
        "non-finite samples": 2,
        "silent": 1,
        "too short": 2,
    }
    assert summary.notes["stray non-audio files"] == 1
    assert "stray non-audio files: 1" in summary.line() and "not audio: 2" in summary.line()


# ----------------------------------------------------------------------------- recipe arguments


def options_script(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(
        f'stage=0\nstop_stage=6\ncorpus_dir=/x\n. {REPO}/utils/parse_options.sh\necho "$stage|$stop_stage"\n'
    )
    return script


@pytest.mark.parametrize(
    "args,message",
    [
        (["--stage", "99"], "--stage 99: there is no such stage (the last stage is 6)"),
        (["--stage", "abc"], "--stage must be an integer, got 'abc'"),
        (["--stop-stage", "3x"], "--stop-stage must be an integer, got '3x'"),
        (["--stage", "4", "--stop-stage", "2"], "--stage 4 is after --stop-stage 2: nothing to run"),
        (["--corpus-dir", "/data/rav", "space"], "unexpected argument 'space'"),
        (["extra"], "unexpected argument 'extra'"),
    ],
)
def test_recipe_arguments_that_would_do_nothing_are_one_line(tmp_path, args, message):
    r = subprocess.run(["bash", str(options_script(tmp_path)), *args], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr


def test_recipe_accepts_its_stages(tmp_path):
    for args, out in ((["--stage", "6"], "6|6"), (["--stage", "2", "--stop-stage", "100"], "2|100")):
        r = subprocess.run(["bash", str(options_script(tmp_path)), *args], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == out, r.stderr


def test_recipe_stage_0_with_spaces_and_non_ascii_in_the_corpus_path(tmp_path):
    from tests.test_prepare import fake_ravdess

    corpus = fake_ravdess(tmp_path / "rav space ü 语音")
    recipe = recipe_copy(tmp_path / "egs_ravdess", "ravdess")
    r = subprocess.run(
        ["bash", "run.sh", "--stage", "0", "--stop-stage", "0", "--nj", "1", "--corpus-dir", str(corpus)],
        cwd=recipe,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    from lhotse import load_manifest

    recordings = load_manifest(recipe / "data/manifests/ravdess_recordings_all.jsonl.gz")
    assert len(recordings) == 6 and all(r.sources[0].source.startswith(str(corpus)) for r in recordings)
