"""Corpus preparation: the manifest contract, skips and clear errors, RAVDESS end to end."""

import json
import subprocess

import numpy as np
import pytest

from speecheq.corpora import get_corpus, prepare_corpus
from speecheq.corpora.common import Utterance, build_manifests, validate_contract
from speecheq.corpora.ravdess import prepare_ravdess, protocol
from speecheq.errors import SpeechEQError
from tests.conftest import recipe_copy, tone, write_wav


def fake_ravdess(root, actors=(1, 2), emotions=("01", "05")):
    for a in actors:
        for e in emotions:
            for inten in ("01",) if e == "01" else ("01", "02"):
                name = f"03-01-{e}-{inten}-01-01-{a:02d}.wav"
                write_wav(root / f"Actor_{a:02d}" / name, tone(1.2, freq=120 + 20 * a))
    return root


def test_ravdess_fixture_follows_the_contract(tmp_path):
    root = fake_ravdess(tmp_path / "ravdess")
    write_wav(root / "Actor_01" / "03-01-05-02-02-01-01.wav", np.zeros(16000, np.float32))  # silent
    (root / "Actor_02" / "03-01-05-02-02-02-02.wav").write_bytes(b"")  # zero bytes
    write_wav(root / "Actor_02" / "notes.wav", tone(1.0))  # not a RAVDESS name
    write_wav(root / "Actor_01" / "03-01-09-01-01-01-01.wav", tone(1.0))  # emotion 09 does not exist
    write_wav(root / "Actor_01" / "03-01-03-01-01-01-01.wav", tone(1.0, sr=48000), sr=48000)
    out = prepare_ravdess(root, tmp_path / "manifests", g2p=lambda text, lang: text.lower().split())
    sups = out["supervisions"]
    assert validate_contract(sups) == 7
    s = next(s for s in sups if s.id == "ravdess_03-01-05-02-01-01-02")
    assert (s.speaker, s.gender, s.language) == ("Actor_02", "F", "en")
    assert s.custom["emotion"] == "angry" and s.custom["intensity"] == 1.0
    assert s.custom["phones"] == ["kids", "are", "talking", "by", "the", "door"]
    summary = out["summary"]
    assert summary.skipped == {"silent": 1, "empty file": 1, "label": 1, "file name": 1}
    assert summary.notes["resampled from 48000 Hz"] == 1
    assert (tmp_path / "manifests" / "ravdess_supervisions_all.jsonl.gz").is_file()


def test_per_file_fault_can_stop_instead(tmp_path):
    root = fake_ravdess(tmp_path / "ravdess")
    (root / "Actor_02" / "03-01-05-02-02-02-02.wav").write_bytes(b"")
    with pytest.raises(SpeechEQError, match=r"03-01-05-02-02-02-02.*unreadable"):
        prepare_ravdess(root, on_error="stop")


def test_missing_corpus_and_duplicates_are_errors(tmp_path):
    with pytest.raises(SpeechEQError, match="corpus folder not found"):
        prepare_ravdess(tmp_path / "nope")
    with pytest.raises(SpeechEQError, match="no usable utterances"):
        (tmp_path / "empty").mkdir()
        prepare_ravdess(tmp_path / "empty")
    wav = str(write_wav(tmp_path / "a.wav", tone(1.0)))
    utts = [Utterance("u1", wav, "s", "05", intensity_level="01")] * 2
    with pytest.raises(SpeechEQError, match="duplicate utterance id 'u1'"):
        build_manifests("ravdess", utts)


def test_protocol_is_speaker_independent():
    folds = protocol()
    assert list(folds) == ["fold0", "fold1", "fold2", "fold3"]
    tests = set()
    for k, f in enumerate(folds.values()):
        assert not (f["train"] & f["dev"]) and not (f["train"] & f["test"]) and not (f["dev"] & f["test"])
        assert len(f["test"]) == 6 and len(f["dev"]) == 2 and len(f["train"]) == 16
        assert f["test"] == {f"Actor_{n:02d}" for n in range(6 * k + 1, 6 * k + 7)}
        assert sum(int(a[-2:]) % 2 for a in f["test"]) == 3 and sum(int(a[-2:]) % 2 for a in f["dev"]) == 1
        tests |= f["test"]
    assert len(tests) == 24


def test_prepare_is_skipped_when_done(tmp_path):
    root = fake_ravdess(tmp_path / "ravdess")
    assert prepare_corpus("ravdess", root, tmp_path / "m", g2p=None) is not None
    assert prepare_corpus("ravdess", root, tmp_path / "m", g2p=None) is None
    with pytest.raises(SpeechEQError, match="unknown corpus"):
        get_corpus("timit")


def prepared_recipe(tmp_path, corpus, corpus_dir):
    """A scratch copy of egs/<corpus> after its stages 0-3 on the real corpus."""
    recipe = recipe_copy(tmp_path / corpus, corpus)
    r = subprocess.run(
        ["bash", "run.sh", "--stop-stage", "3", "--corpus-dir", str(corpus_dir)],
        cwd=recipe,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return recipe


def test_emodb_recipe_prepares_all_535_files_into_speaker_pair_folds(emodb_dir, tmp_path):
    """The real corpus through stages 0-3 of egs/emodb (read in place, never copied)."""
    recipe = prepared_recipe(tmp_path, "emodb", emodb_dir)
    summary = json.loads((recipe / "data/manifests/emodb_prepare_summary.json").read_text())
    assert summary["utterances"] == 535 and summary["skipped"] == {}
    assert 0.35 < summary["hours"] < 0.45
    splits = json.loads((recipe / "data/fbank/emodb_splits.json").read_text())
    for k in range(5):  # every cut in exactly one of train, dev, test; all 7 classes learnt; phones for all
        fold = [splits[f"fold{k}_{s}"] for s in ("train", "dev", "test")]
        assert sum(f["cuts"] for f in fold) == 535
        assert len(fold[0]["emotion"]) == 7 and fold[0]["with_phones"] == fold[0]["cuts"]
        # EmoDB has intensity labels only where the unified scale fixes them: neutral is 0.
        assert fold[0]["with_intensity"] == fold[0]["emotion"]["neutral"]


def test_ravdess_recipe_prepares_all_1440_files(ravdess_dir, tmp_path, monkeypatch):
    """The real corpus through stages 0-3 of egs/ravdess (read in place, never copied)."""
    recipe = prepared_recipe(tmp_path, "ravdess", ravdess_dir)
    summary = json.loads((recipe / "data/manifests/ravdess_prepare_summary.json").read_text())
    assert summary["utterances"] == 1440 and summary["skipped"] == {}
    assert summary["notes"] == {"multi-channel, used channel 0": 5}
    assert 1.3 < summary["hours"] < 1.6
    splits = json.loads((recipe / "data/fbank/ravdess_splits.json").read_text())
    assert splits["fold0_test"]["cuts"] == 360 and splits["fold0_train"]["cuts"] == 960
    assert splits["fold0_train"]["with_phones"] == 960
    # The recipe trims room silence: the splits keep between half and 80 % of the audio.
    split_hours = sum(splits[f"fold0_{s}"]["hours"] for s in ("train", "dev", "test"))
    assert 0.5 * summary["hours"] < split_hours < 0.8 * summary["hours"]
    from lhotse import load_manifest_lazy

    monkeypatch.chdir(recipe)  # feature paths are relative to the recipe, as in icefall
    cut = next(iter(load_manifest_lazy("data/fbank/ravdess_cuts_fold1_test.jsonl.gz")))
    feats = cut.load_features()
    assert feats.shape[1] == 80 and abs(feats.shape[0] - cut.duration * 100) <= 2
    assert cut.start > 0 and cut.supervisions[0].start == 0 and cut.supervisions[0].duration == cut.duration
    # Re-running a finished stage skips its work.
    r = subprocess.run(
        ["bash", "run.sh", "--stage", "0", "--stop-stage", "2", "--corpus-dir", str(ravdess_dir)],
        cwd=recipe,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "already prepared" in r.stderr and "already computed" in r.stderr
