"""The bad-input catalogue (docs/bad-input.md): the cases no other test file shows.

One "zoo" corpus in the custom TSV format holds every kind of audio file, in a folder
whose path has spaces and non-ASCII characters; preparation keeps, converts or skips
each with its reason, and the fbank stage reads every kept one. Cases already shown
elsewhere are listed in docs/bad-input.md with the test that shows them.
"""

import ctypes
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speecheq.audio import inspect_audio
from speecheq.errors import AudioError, SpeechEQError
from tests.conftest import REPO, tone, train_args, write_wav

MAPPING = "name: zoo\nlanguage: en\nemotions:\n  happy: happy\n  sad: sad\n"


def build_zoo(root):
    """{file: expected outcome}: "kept", or the reason inspect_audio gives for a skip."""
    x = tone(1.0)
    files = {}

    def add(name, outcome, writer):
        path = root / "audio" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path)
        files[name] = outcome

    add("pcm16.wav", "kept", lambda p: write_wav(p, x))
    add("zero-byte.wav", "unreadable", lambda p: p.write_bytes(b""))
    add("truncated-header.wav", "unreadable", lambda p: p.write_bytes(write_wav(p, x).read_bytes()[:20]))
    # the header announces 1 s of data, the file holds 0.5 s: read as 0.5 s
    add("data-chunk-too-long.wav", "kept", lambda p: p.write_bytes(write_wav(p, x).read_bytes()[: 44 + 16000]))
    add("text.wav", "unreadable", lambda p: p.write_text("this is not audio\n"))
    add("flac.flac", "kept", lambda p: sf.write(str(p), x, 16000, format="FLAC"))
    add("vorbis.ogg", "kept", lambda p: sf.write(str(p), x, 16000, format="OGG", subtype="VORBIS"))
    add("mpeg.mp3", "kept", lambda p: sf.write(str(p), x, 16000, format="MP3"))
    add("u8.wav", "kept", lambda p: write_wav(p, x, subtype="PCM_U8"))
    add("pcm24.wav", "kept", lambda p: write_wav(p, x, subtype="PCM_24"))
    add("float.wav", "kept", lambda p: write_wav(p, x, subtype="FLOAT"))
    for value, name in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "minus-inf")):
        bad = x.copy()
        bad[5000] = value
        add(f"float-{name}.wav", "NaN or Inf", lambda p, bad=bad: write_wav(p, bad, subtype="FLOAT"))
    add("all-zero.wav", "silent", lambda p: write_wav(p, np.zeros(16000, np.float32)))
    add("dc-only.wav", "DC offset", lambda p: write_wav(p, np.full(16000, 0.25, np.float32), subtype="FLOAT"))
    for sr in (8000, 22050, 44100, 48000):
        add(f"rate-{sr}.wav", "kept", lambda p, sr=sr: write_wav(p, tone(1.0, sr=sr), sr=sr))
    six = tone(1.0, channels=6) * np.array([0.05, 0.05, 0.05, 1.0, 0.05, 0.05], np.float32)  # channel 3 is near
    add("six-channels.wav", "kept", lambda p: write_wav(p, six))
    add("one-frame.wav", "too short", lambda p: write_wav(p, tone(0.02)))  # under one 25 ms frame
    add("ten-minutes.wav", "kept", lambda p: write_wav(p, np.tile(tone(2.0), 300)))
    add("spaces and ünïcödé 语音.wav", "kept", lambda p: write_wav(p, x))
    return files


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The zoo prepared (custom TSV format) and through the fbank stage."""
    from speecheq.corpora import prepare_corpus
    from speecheq.features import compute_corpus_fbank

    base = tmp_path_factory.mktemp("zoo")
    root = base / "corpus with spaces ü 语音"
    files = build_zoo(root)
    rows = ["path\tspeaker\temotion"]
    rows += [f"audio/{name}\ts{k % 3}\t{'happy' if k % 2 else 'sad'}" for k, name in enumerate(files)]
    write_wav(root / "label" / "bored.wav", tone(1.0))
    rows.append("label/bored.wav\ts1\tbored")  # a label the mapping does not know
    (root / "metadata.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "labels.yaml").write_text(MAPPING, encoding="utf-8")
    (root / "audio" / "notes.txt").write_text("recorded on a Tuesday\n")  # stray: never an utterance
    summary = prepare_corpus("custom", root, base / "manifests", g2p=None, progress=False)
    compute_corpus_fbank("custom", base / "manifests", base / "fbank", nj=1)
    return files, summary, base


def test_every_audio_fault_is_kept_converted_or_skipped_with_its_reason(zoo):
    from lhotse import load_manifest_lazy

    files, summary, base = zoo
    kept = {n for n, outcome in files.items() if outcome == "kept"}
    assert summary.kept == len(kept)
    # one count per reason, not one per family ("audio: 10" told the user nothing)
    assert dict(summary.skipped) == {
        "empty file": 1,
        "not audio": 2,
        "non-finite samples": 3,
        "silent": 1,
        "DC offset only": 1,
        "too short": 1,
        "label": 1,
    }
    assert sum(summary.skipped.values()) == len(files) - len(kept) + 1  # + the unknown label
    assert summary.notes == {
        "resampled from 8000 Hz": 1,
        "resampled from 22050 Hz": 1,
        "resampled from 44100 Hz": 1,
        "resampled from 48000 Hz": 1,
        "multi-channel, used channel 3": 1,
        "stray non-audio files": 1,
    }
    assert "skipped 10 (DC offset only: 1, empty file: 1, label: 1, non-finite samples: 3" in summary.line()
    cuts = {
        Path(c.recording.sources[0].source).name: c for c in load_manifest_lazy(base / "fbank/custom_cuts_all.jsonl.gz")
    }
    assert set(cuts) == kept
    for name, cut in cuts.items():
        feats = cut.load_features()  # every kept file reads and gives finite fbank of its duration
        assert feats.shape[1] == 80 and np.isfinite(feats).all(), name
        assert abs(feats.shape[0] - cut.duration * 100) <= 2, name
        assert cut.sampling_rate == 16000, name
    assert cuts["data-chunk-too-long.wav"].duration == pytest.approx(0.5)
    assert cuts["ten-minutes.wav"].duration == pytest.approx(600.0)
    assert cuts["six-channels.wav"].channel == 3


@pytest.mark.parametrize("outcome", ["unreadable", "NaN or Inf", "silent", "DC offset", "too short"])
def test_skipped_files_give_one_line_that_names_them(zoo, outcome):
    files, _, base = zoo
    names = [n for n, o in files.items() if o == outcome]
    assert names
    for name in names:
        path = base / "corpus with spaces ü 语音" / "audio" / name
        with pytest.raises(AudioError, match=outcome) as e:
            inspect_audio(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_ten_minute_file_is_dropped_and_counted_by_training(zoo):
    from speecheq.train import Trainer

    _, summary, base = zoo
    trainer = Trainer(train_args(base, base / "exp"))  # --max-utterance-duration 20 s by default
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("speecheq")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        kept = trainer.load_cuts([base / "fbank/custom_cuts_all.jsonl.gz"], train=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(kept) == summary.kept - 1 and all(c.duration <= 20.0 for c in kept)
    assert any("'too long': 1" in r.getMessage() for r in records)


def _drop_file_capabilities():
    """preexec_fn: root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so file permissions apply."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_and_unsearchable_folder_are_permission_denied(tmp_path):
    no_read = write_wav(tmp_path / "no-read.wav", tone(1.0))
    hidden = write_wav(tmp_path / "locked" / "inside.wav", tone(1.0))
    os.chmod(no_read, 0)
    os.chmod(hidden.parent, 0o600)  # readable listing, no search (x): the file cannot be opened
    code = (
        "import sys\nfrom speecheq.audio import inspect_audio\nfrom speecheq.errors import AudioError\n"
        "for p in sys.argv[1:]:\n    try:\n        inspect_audio(p); print('READ', p)\n"
        "    except AudioError as e:\n        print(e)\n"
    )
    preexec = None
    if os.geteuid() == 0:
        # root reads whatever the permissions say: check in a child that lost that privilege
        preexec = _drop_file_capabilities
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(no_read)!r}).close()"],
            preexec_fn=preexec,
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            pytest.skip("running as root with file capabilities that cannot be dropped here: permissions do not apply")
    try:
        r = subprocess.run(
            [sys.executable, "-c", code, str(no_read), str(hidden)],
            preexec_fn=preexec,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=60,
        )
    finally:
        os.chmod(hidden.parent, 0o755)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == [f"{no_read}: permission denied", f"{hidden}: permission denied"]


@pytest.mark.parametrize("fault", ["missing", "truncated"])
def test_missing_or_corrupt_feature_file_is_one_clear_error(synth_data, tmp_path, fault):
    from lhotse import CutSet, load_manifest_lazy
    from lhotse.utils import fastcopy

    from speecheq.data import SpeechEQDataset
    from speecheq.features import feature_statistics
    from speecheq.labels import LabelScheme

    cuts = list(load_manifest_lazy(synth_data / "fbank/synth_cuts_train.jsonl.gz"))
    storage = tmp_path / "feats.lca"
    shutil.copy(cuts[0].features.storage_path, storage)
    cuts = CutSet.from_cuts(fastcopy(c, features=fastcopy(c.features, storage_path=str(storage))) for c in cuts)
    if fault == "missing":
        storage.unlink()
    else:
        storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 3])
        last = max(cuts, key=lambda c: int(str(c.features.storage_key).split(",")[0]))
        cuts = CutSet.from_cuts([last])  # a cut whose bytes are gone
    with pytest.raises(SpeechEQError, match=r"re-run the fbank stage") as e:
        feature_statistics(cuts)  # training's normalisation pass
    assert "\n" not in str(e.value)
    with pytest.raises(SpeechEQError, match=r"re-run the fbank stage"):
        SpeechEQDataset(LabelScheme.from_preset("6class"))[cuts]  # training and decoding batches


def test_words_the_g2p_cannot_spell_are_counted_and_the_utterance_kept(tmp_path):
    from speecheq.corpora.common import Utterance, build_manifests
    from speecheq.text import G2P

    utts = [
        Utterance(
            f"u{k}",
            str(write_wav(tmp_path / f"{k}.wav", tone(1.0))),
            "s1",
            "05",
            language="en",
            text=text,
            intensity_level="01",
        )
        for k, text in enumerate(["Kids are talking.", "snow ☃"])
    ]
    _, sups, summary = build_manifests("ravdess", utts, g2p=G2P(), progress=False)
    assert summary.kept == 2 and summary.notes["no phones (G2P failed)"] == 1
    phones = {s.id: s.custom["phones"] for s in sups}
    assert phones["u0"] and phones["u1"] is None  # other tasks still learn from u1; CTC masks it


def test_empty_split_is_one_clear_error(synth_data, tmp_path):
    from lhotse import CutSet, load_manifest_lazy

    from speecheq.corpora import get_corpus
    from speecheq.splits import validate_and_split

    train_speakers = get_corpus("synth").protocol()[""]["train"]
    only_train = [
        c
        for c in load_manifest_lazy(synth_data / "fbank/synth_cuts_all.jsonl.gz")
        if c.supervisions[0].speaker in train_speakers
    ]
    (tmp_path / "fbank").mkdir()
    CutSet.from_cuts(only_train).to_file(tmp_path / "fbank/synth_cuts_all.jsonl.gz")
    (tmp_path / "fbank/synth_cuts_test.jsonl.gz").write_bytes(b"")  # an earlier run's split
    with pytest.raises(SpeechEQError, match=r"synth: split (dev|test) is empty"):
        validate_and_split("synth", tmp_path / "fbank", "6class")
    assert not list((tmp_path / "fbank").glob(".tmp.*"))
    # the splits are one set: none is left that looks complete (the train split was written, then dev failed)
    assert sorted(p.name for p in (tmp_path / "fbank").glob("synth_*")) == ["synth_cuts_all.jsonl.gz"]
