"""The embedded synthetic corpus: generation, determinism, prosody, preparation, protocol."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speecheq.corpora import synth
from speecheq.corpora.common import validate_contract
from speecheq.errors import SpeechEQError
from speecheq.io import is_done
from speecheq.text import ARPABET, g2p

SPEC_COLUMNS = [
    "id",
    "path",
    "voice",
    "speaker",
    "gender",
    "language",
    "emotion",
    "intensity_level",
    "text",
    "spoken",
    "phones",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """All 10 voices, 11 emotion/intensity pairs, one sentence per language: 110 utterances."""
    return synth.generate_synth(
        tmp_path_factory.mktemp("synth") / "corpus", seed=0, sentences_per_language=1, progress=False
    )


def rows_of(corpus_dir: Path):
    with open(corpus_dir / "metadata.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def f0_median(x: np.ndarray, sr: int) -> float:
    """Median F0 of the loud frames by autocorrelation (enough to compare two renderings)."""
    win, hop = int(0.04 * sr), int(0.01 * sr)
    lo, hi = int(sr / 400), int(sr / 60)
    frames = [x[i : i + win] - x[i : i + win].mean() for i in range(0, len(x) - win, hop)]
    loud = max(np.sqrt(np.mean(f**2)) for f in frames) * 0.3
    f0 = []
    for f in frames:
        if np.sqrt(np.mean(f**2)) < loud:
            continue
        ac = np.correlate(f, f, "full")[win - 1 :]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.5 * ac[0]:
            f0.append(sr / k)
    return float(np.median(f0))


def test_layout_format_and_metadata(corpus):
    assert is_done(corpus)
    rows = rows_of(corpus)
    assert len(rows) == 10 * 11
    with open(corpus / "metadata.tsv", encoding="utf-8") as f:
        assert f.readline().rstrip("\n").split("\t")[: len(SPEC_COLUMNS)] == SPEC_COLUMNS
    assert {r["speaker"] for r in rows} == set(synth.VOICE_IDS)
    assert {(r["emotion"], r["intensity_level"]) for r in rows} == set(synth.combinations())
    for r in rows:
        path = corpus / r["path"]
        assert r["path"] == f"wav/{r['speaker']}/{r['id']}.wav"
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 < info.duration < 3.5
        assert r["gender"] in ("M", "F") and r["language"] in ("en", "zh")
        phones = r["phones"].split()
        if r["language"] == "en":
            assert r["spoken"] == r["text"] and set(phones) <= set(ARPABET)
        else:
            # ground truth = pypinyin decomposition of the pinyin espeak-ng spoke
            assert phones == g2p(r["text"], "zh") == g2p(r["spoken"], "zh")
            assert all(s[-1].isdigit() for s in r["spoken"].split())
    assert not any(p.name.startswith(".") for p in corpus.iterdir())  # no scratch left


def test_same_seed_same_bytes(tmp_path, corpus):
    kwargs = dict(seed=0, sentences_per_language=1, voices=["en-us_f1", "cmn_m4"], progress=False)
    a = synth.generate_synth(tmp_path / "a", **kwargs)
    b = synth.generate_synth(tmp_path / "b", **kwargs)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 2 * 11 + 1
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        # a subset of voices renders exactly the files of the full corpus
        assert (a / rel).read_bytes() == (corpus / rel).read_bytes() or rel.name == "metadata.tsv"
    c = synth.generate_synth(tmp_path / "c", **{**kwargs, "seed": 1})
    assert (c / files[0]).read_bytes() != (a / files[0]).read_bytes()


def test_prosody_differs_in_the_expected_direction(corpus):
    stats = defaultdict(dict)
    for r in rows_of(corpus):
        if r["intensity_level"] == "strong" and r["emotion"] in ("sad", "angry"):
            x, sr = sf.read(str(corpus / r["path"]))
            stats[r["speaker"]][r["emotion"]] = (len(x) / sr, float(np.sqrt(np.mean(x**2))), f0_median(x, sr))
    assert len(stats) == 10
    for voice, s in stats.items():
        (d_sad, e_sad, f_sad), (d_ang, e_ang, f_ang) = s["sad"], s["angry"]
        assert d_sad > 1.2 * d_ang, voice  # slower
        assert e_sad < 0.8 * e_ang, voice  # softer
        assert f_sad < 0.95 * f_ang, voice  # lower


def test_already_done_returns_at_once(corpus, monkeypatch):
    monkeypatch.setattr(synth, "_render", lambda *a, **k: pytest.fail("re-rendered a finished corpus"))
    assert synth.generate_synth(corpus, sentences_per_language=1, progress=False) == corpus


def test_killed_generation_leaves_nothing_that_looks_done(tmp_path, monkeypatch):
    target = tmp_path / "corpus"
    real_render, calls = synth._render, []

    def dying_render(spec, out_dir, seed):
        calls.append(spec.id)
        if len(calls) == 5:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-way
        return real_render(spec, out_dir, seed)

    monkeypatch.setattr(synth, "_render", dying_render)
    with pytest.raises(KeyboardInterrupt):
        synth.generate_synth(target, sentences_per_language=1, voices=["en-us_m1"], num_workers=1, progress=False)
    assert not is_done(target) and not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != ".lock"] == []
    # a kill -9 leaves the temporary folder: the next run removes it and finishes
    (tmp_path / ".tmp.999999.corpus" / "wav").mkdir(parents=True)
    monkeypatch.setattr(synth, "_render", real_render)
    synth.generate_synth(target, sentences_per_language=1, voices=["en-us_m1"], progress=False)
    assert is_done(target) and len(rows_of(target)) == 11
    assert not (tmp_path / ".tmp.999999.corpus").exists()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.pdf").write_text("precious")
    with pytest.raises(SpeechEQError, match="not an unfinished synth corpus"):
        synth.generate_synth(target, sentences_per_language=1, voices=["cmn_f4"], progress=False)
    assert (target / "thesis.pdf").exists()


def test_prepare_synth_obeys_the_contract(corpus, tmp_path):
    result = synth.prepare_synth(corpus, tmp_path / "manifests", progress=False)
    sups = result["supervisions"]
    assert validate_contract(sups) == 110 and result["summary"].kept == 110
    assert (tmp_path / "manifests" / "synth_supervisions_all.jsonl.gz").is_file()
    assert (tmp_path / "manifests" / "synth_recordings_all.jsonl.gz").is_file()
    by_id = {f"synth_{r['id']}": r for r in rows_of(corpus)}
    for s in sups:
        row = by_id[s.id]
        assert s.speaker == row["speaker"] and s.gender == row["gender"] and s.language == row["language"]
        assert s.text == row["text"] and s.custom["phones"] == row["phones"].split()
        expected = 0.0 if row["emotion"] == "neutral" else {"normal": 0.5, "strong": 1.0}[row["intensity_level"]]
        assert s.custom["emotion"] == row["emotion"] and s.custom["intensity"] == expected
    assert {r.sampling_rate for r in result["recordings"]} == {16000}


def test_prepare_synth_errors(tmp_path, corpus):
    with pytest.raises(SpeechEQError, match="corpus folder not found"):
        synth.prepare_synth(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechEQError, match="metadata.tsv"):
        synth.prepare_synth(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (corpus / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:5])
    (bad / "metadata.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SpeechEQError, match=r"metadata\.tsv:3: expected 12 tab-separated fields, got 5"):
        synth.prepare_synth(bad)
    (bad / "metadata.tsv").write_text("id\tpath\n", encoding="utf-8")
    with pytest.raises(SpeechEQError, match=r"metadata\.tsv:1: header lacks"):
        synth.prepare_synth(bad)


def test_protocol_splits():
    proto = synth.protocol()
    assert list(proto) == [""]
    splits = proto[""]
    train, dev, test = splits["train"], splits["dev"], splits["test"]
    assert not (train & dev) and not (train & test) and not (dev & test)
    assert train | dev | test == set(synth.VOICE_IDS)
    assert (len(train), len(dev), len(test)) == (6, 2, 2)
    voices = {v.id: v for v in synth.VOICES}
    for held_out in (dev, test):
        assert {voices[v].language for v in held_out} == {"en", "zh"}
        assert {voices[v].gender for v in held_out} == {"M", "F"}
    # every voice is its own variant: held-out voices share no timbre with training
    variant = {v.id: v.espeak.split("+")[1] for v in synth.VOICES}
    assert len(set(variant.values())) == len(variant)
