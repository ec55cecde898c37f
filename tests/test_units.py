"""CTC units: phone (default), char and bpe lang folders, spelling, training and decoding with pieces."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from speecheq.errors import SpeechEQError
from speecheq.text import units
from speecheq.text.lang import prepare_lang
from speecheq.text.tokens import TokenTable
from tests.conftest import REPO, kill_test


def sup(text=None, phones=None):
    return SimpleNamespace(text=text, custom={"phones": phones})


def test_normalisation_and_characters():
    assert units.normalize_text("Der Lappen, liegt -- auf dem Eisschrank!") == "der lappen liegt auf dem eisschrank"
    assert units.normalize_text("Don't  SAY 'no'") == "don't say no"
    assert units.normalize_text("你好，世界。") == "你好 世界"  # Mandarin: every character a unit, no spaces added
    assert units.normalize_text(" ... ") == "" and units.normalize_text(None) == ""
    assert units.char_symbols("ab c") == ["a", "b", "▁", "c"]
    table = TokenTable.build([units.char_symbols("ab c")], "char")
    assert table.spell(sup("AB, c!")) == ["a", "b", "▁", "c"] and table.spell(sup("!?")) is None
    assert TokenTable(["<blk>", "a"]).spell(sup("x", ["a"])) == ["a"]  # phones: the supervision's own


@pytest.mark.parametrize("name", ["phone", "char", "bpe"])
def test_lang_folders_round_trip(synth_data, tmp_path, name):
    manifest = synth_data / "manifests/synth_supervisions_all.jsonl.gz"
    size = 30 if name == "bpe" else None
    lang = tmp_path / units.lang_dir_name(name, size)
    written = prepare_lang([manifest], lang, name, size)
    assert lang.name == {"phone": "lang", "char": "lang_char", "bpe": "lang_bpe_30"}[name]
    assert json.loads((lang / "lang.json").read_text())["units"] == name
    assert (lang / "bpe.model").is_file() == (name == "bpe")
    table = TokenTable.from_lang_dir(lang)
    assert table.units == name and table.symbols == written.symbols and table.symbols[0] == "<blk>"
    if name == "bpe":
        assert len(table) == 30 and table.symbols[1] == "<unk>"
        again = prepare_lang([manifest], tmp_path / "again", name, size)  # offline and deterministic
        assert (tmp_path / "again/bpe.model").read_bytes() == (lang / "bpe.model").read_bytes()
        assert again.symbols == table.symbols
        assert table.spell(sup("ǂǂ")) == ["▁", "<unk>"]  # an unseen character is <unk>, not its surface
    from lhotse import load_manifest

    for s in load_manifest(manifest):
        symbols = table.spell(s)
        assert symbols and table.decode(table.encode(symbols)) == symbols
    # a checkpoint's record spells the same way without the folder
    restored = TokenTable.from_record(table.symbols, table.record())
    assert restored.units == name and restored.spell(s) == table.spell(s)
    assert TokenTable.from_record(table.symbols, None).units == "phone"  # checkpoints from before units


def test_a_folder_without_lang_json_is_phones(synth_data, tmp_path):
    """Lang folders written before units existed hold tokens.txt alone."""
    (tmp_path / "tokens.txt").write_bytes((synth_data / "lang/tokens.txt").read_bytes())
    assert TokenTable.from_lang_dir(tmp_path).units == "phone"
    (tmp_path / "lang.json").write_text('{"units": "words"}')
    with pytest.raises(SpeechEQError, match="lang.json: unknown units 'words'"):
        TokenTable.from_lang_dir(tmp_path)


def lang_stage(*argv):
    return subprocess.run(
        [sys.executable, str(REPO / "local/prepare_lang.py"), *argv], capture_output=True, text=True, cwd=REPO
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--units", "word"], "ERROR: unknown CTC units 'word': choose one of phone, char, bpe"),
        (["--units", "bpe"], "ERROR: bpe units need a vocabulary size of at least 3 (got None)"),
        (["--units", "bpe", "--bpe-vocab-size", "5000"], "ERROR: sentencepiece cannot make 5000 BPE pieces from"),
    ],
)
def test_bad_unit_options_are_one_line(synth_data, tmp_path, argv, message):
    manifest = synth_data / "manifests/synth_supervisions_all.jsonl.gz"
    r = lang_stage("--supervisions", str(manifest), "--lang-dir", str(tmp_path / "lang"), *argv)
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr
    assert not (tmp_path / "lang/tokens.txt").exists()


def test_char_units_need_transcripts(tmp_path):
    from lhotse import SupervisionSegment, SupervisionSet

    path = tmp_path / "sups.jsonl.gz"
    SupervisionSet.from_segments([SupervisionSegment("a", "a", 0, 1, custom={"phones": ["x"]})]).to_file(path)
    with pytest.raises(SpeechEQError, match="char units need transcripts: no supervision of .* has text"):
        prepare_lang([path], tmp_path / "lang", "char")


def test_tiny_training_and_decoding_with_bpe_units(synth_data, tmp_path, capsys):
    """BPE trained on the training cuts only; the checkpoint and the package keep the units,
    decoding spells the test transcripts with the checkpoint's model and reports a TER."""
    import torch

    from speecheq.cli import run_decode, run_train
    from speecheq.package import package_from_exp

    train_cuts = synth_data / "fbank/synth_cuts_train.jsonl.gz"
    lang = tmp_path / "lang_bpe_20"
    prepare_lang([train_cuts], lang, "bpe", 20)
    exp = tmp_path / "exp"
    run_train([*kill_test.tiny_train_argv(synth_data / "fbank", lang, exp), "--num-epochs", "1"])
    ckpt = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert ckpt["ctc_units"]["units"] == "bpe" and ckpt["ctc_units"]["bpe_model"] == (lang / "bpe.model").read_bytes()
    assert ckpt["tokens"] == TokenTable.from_lang_dir(lang).symbols
    assert "TER" in ckpt["valid_metrics"] and "PER" not in ckpt["valid_metrics"]
    lang.rename(tmp_path / "moved")  # decoding needs the checkpoint alone
    results = tmp_path / "RESULTS.md"
    test_cuts = synth_data / "fbank/synth_cuts_test.jsonl.gz"
    run_decode(["--exp-dir", str(exp), "--epoch", "1", "--cuts", str(test_cuts), "--results", str(results)])
    metrics = json.loads((exp / "decode/synth_test-epoch-1-avg-1/metrics.json").read_text())
    assert "PER" not in metrics["headline"] and 0 <= metrics["headline"]["TER"]
    assert metrics["phones"]["units"] == "bpe" and metrics["phones"]["count"] > 0
    header = results.read_text().splitlines()[-3]
    assert "TER % (bpe)" in header and "PER %" not in header
    per_corpus = [
        line for p in exp.glob("log/log-train*") for line in p.read_text().splitlines() if "train cuts of" in line
    ]
    assert per_corpus and all('"ctc (bpe)": ' in line for line in per_corpus), per_corpus
    package = package_from_exp(exp, epoch=1)
    assert package["ctc_units"] == "bpe"
    infer_names_the_units_and_refuses_align(package, tmp_path, capsys)


def infer_names_the_units_and_refuses_align(package, tmp_path, capsys):
    """BPE pieces are not phones: infer reports them under "tokens" with their units, and
    --align (phone boundaries) stops with the align stage's one line."""
    from speecheq.cli import main
    from speecheq.package import save_package
    from tests.conftest import tone, write_wav

    from speecheq.engines import engine_metadata
    from speecheq.export import onnx_metadata
    from speecheq.package import load_package

    path = tmp_path / "bpe-package.pt"
    save_package(package, path)
    loaded = load_package(path)
    assert onnx_metadata(loaded)["ctc_units"] == engine_metadata(loaded)["ctc_units"] == "bpe"
    write_wav(tmp_path / "audio" / "a.wav", tone(1.0, freq=180.0, seed=1))
    out = tmp_path / "out.jsonl"
    for extra, code in (([], 0), (["--align"], 1)):
        with pytest.raises(SystemExit) as e:
            main(
                ["infer", "--no-progress", "--model", str(path), str(tmp_path / "audio"), "--output", str(out), *extra]
            )
            raise SystemExit(0)
        assert e.value.code == code
        if not extra:
            (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
            assert rec["units"] == "bpe" and isinstance(rec["tokens"], str) and "phones" not in rec
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "ERROR: --align: the CTC head was trained on bpe units; alignment gives phone boundaries "
        "and needs a model trained with phone units (the lang stage's default)"
    )


def test_recipe_lang_folders_and_a_bad_ctc_units():
    """utils/stages.sh's lang_dir: phone (today's data/lang) by default, bpe per fold; a bad value is one line."""
    script = (
        "set -euo pipefail; . utils/log.sh; . utils/stages.sh; lang_dir; ctc_units=char lang_dir; "
        "ctc_units=bpe lang_dir 3; ctc_units=bpe bpe_vocab_size=50 lang_dir official; ctc_units=word lang_dir 0"
    )
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO)
    assert r.stdout.split() == ["data/lang", "data/lang_char", "data/lang_bpe_500_fold3", "data/lang_bpe_50"]
    assert r.returncode == 1 and r.stderr.strip() == "ERROR: ctc_units=word: choose phone, char or bpe"
