"""The speecheq CLI runs the stages: `speecheq prepare|train|decode` give what the local/ scripts give."""

import gzip
import json
import runpy
import shutil
from pathlib import Path

from tests.conftest import REPO, TINY_MODEL, train_args


def cli(*argv):
    from speecheq.cli import main

    main([str(a) for a in argv])  # returns on success; a failure exits


def local(monkeypatch, name, *argv):
    monkeypatch.setattr("sys.argv", [f"local/{name}", *map(str, argv)])
    runpy.run_path(str(REPO / "local" / name), run_name="__main__")


def manifests(folder):
    return {
        p.name: gzip.decompress(p.read_bytes())
        for p in sorted(folder.glob("synth_*_all.jsonl.gz"))  # the gzip header holds a time: compare the content
    }


def test_prepare_writes_the_manifests_the_library_and_local_script_write(synth_data, tmp_path, monkeypatch):
    argv = ["--corpus", "synth", "--corpus-dir", synth_data / "corpus", "--output-dir"]
    cli("prepare", *argv, tmp_path / "cli")
    local(monkeypatch, "prepare.py", *argv, tmp_path / "local")
    expected = manifests(synth_data / "manifests")  # the fixture called prepare_corpus itself
    assert len(expected) == 2 and manifests(tmp_path / "cli") == expected == manifests(tmp_path / "local")


def test_train_parses_as_the_local_script_and_reaches_the_same_trainer(synth_data, tmp_path, monkeypatch):
    # One run_train serves both, so a training run each would only measure torch's determinism:
    # check that both parse to the namespace the library's parser gives and reach speecheq.train.train.
    fbank, exp = synth_data / "fbank", tmp_path / "exp"
    argv = (
        f"--train-cuts {fbank}/synth_cuts_train.jsonl.gz --dev-cuts {fbank}/synth_cuts_dev.jsonl.gz "
        f"--lang-dir {synth_data}/lang --exp-dir {exp} --label-preset 6class --max-duration 30 "
        "--warmup-batches 5 --tensorboard 0 --num-epochs 1 --model-config"
    ).split() + [TINY_MODEL]
    seen = []
    monkeypatch.setattr("speecheq.train.train", seen.append)
    local(monkeypatch, "train.py", *argv)
    cli("train", *argv)
    expected = vars(train_args(synth_data, exp, "--num-epochs", "1"))
    assert [vars(args) for args in seen] == [expected, expected]


def decoded(listed):
    (metrics,) = [Path(line) for line in listed.read_text().split()]
    return metrics, json.loads(metrics.read_text()), (metrics.parent / "predictions.tsv").read_text()


def test_decode_gives_what_the_local_script_gives(trained_exp, synth_data, tmp_path, monkeypatch):
    exp = shutil.copytree(trained_exp, tmp_path / "exp")  # the shared model's own decode folder stays untouched
    argv = ["--exp-dir", exp, "--checkpoint", "best-valid.pt", "--cuts", synth_data / "fbank/synth_cuts_test.jsonl.gz"]
    cli("decode", *argv, "--metrics-list", tmp_path / "cli.txt", "--results", tmp_path / "cli.md")
    first = decoded(tmp_path / "cli.txt")  # read now: the local script writes the same decode folder
    local(monkeypatch, "decode.py", *argv, "--metrics-list", tmp_path / "local.txt", "--results", tmp_path / "local.md")
    assert first[0] == exp / "decode/synth_test-best-valid/metrics.json" and first[1]["utterances"] > 0
    assert decoded(tmp_path / "local.txt") == first
    # each RESULTS.md row names the command that was typed, so it can be run again as written
    for entry, results in (("`speecheq decode --exp-dir ", "cli.md"), ("`local/decode.py --exp-dir ", "local.md")):
        (row,) = [r for r in (tmp_path / results).read_text().splitlines() if "best-valid" in r and "`" in r]
        assert entry in row, row
