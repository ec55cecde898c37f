"""speecheq infer: known files give the model's outputs, bad files give error records, long files are segmented."""

import json

import numpy as np
import pytest
import torch

from speecheq.cli import main
from speecheq.errors import SpeechEQError
from speecheq.infer import EXIT_PARTIAL, Inferencer, Source, collect_sources, make_engine, split_at_pauses
from speecheq.package import load_package, package_from_exp, save_package
from tests.conftest import tone, write_wav

CATEGORIES = ["neutral", "happy", "sad", "angry", "fear", "surprise"]


@pytest.fixture(scope="module")
def package_path(trained_exp, tmp_path_factory):
    path = tmp_path_factory.mktemp("infer_pkg") / "speecheq-package.pt"
    save_package(package_from_exp(trained_exp, epoch=2), path)
    return path


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    write_wav(d / "a_mono16k.wav", tone(1.5, freq=180.0, seed=1))
    write_wav(d / "sub" / "b_8k.flac", tone(2.0, sr=8000, freq=240.0, seed=2), sr=8000)
    # 6 channels at 44.1 kHz, all the same signal: the down-mix is that signal.
    write_wav(d / "c_6ch.wav", tone(1.2, sr=44100, freq=200.0, channels=6, seed=3), sr=44100, subtype="FLOAT")
    write_wav(d / "c_mono44k.wav", tone(1.2, sr=44100, freq=200.0, seed=3), sr=44100, subtype="FLOAT")
    (d / "d_corrupt.wav").write_bytes(b"RIFF\x00\x01\x00\x00WAVEfmt garbage" + bytes(range(256)) * 4)
    (d / "e_zero_bytes.wav").write_bytes(b"")
    write_wav(d / "f_no_samples.wav", np.zeros(0, dtype=np.float32))
    (d / "notes.txt").write_text("not audio, not searched for")
    (d / ".hidden.wav").write_bytes(b"never read")
    return d


def run_cli(*args):
    with pytest.raises(SystemExit) as e:
        main(["infer", "--no-progress", *map(str, args)])
        raise SystemExit(0)
    return e.value.code


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def reference_outputs(package, samples):
    """What the model says about 16 kHz mono samples, computed without the infer module."""
    feats = torch.from_numpy(package.make_extractor().extract(samples, 16000))[None]
    with torch.no_grad():
        out = package.model(feats, torch.tensor([feats.shape[1]]))
    return torch.softmax(out["emotion_logits"], -1)[0].numpy(), float(out["intensity"][0])


def test_folder_gives_records_in_order_and_error_records_for_bad_files(package_path, audio_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    assert run_cli("--model", package_path, audio_dir, "--output", out) == EXIT_PARTIAL
    recs = read_jsonl(out)
    names = [r["path"].rsplit("/", 1)[1] for r in recs]
    assert names == [
        "a_mono16k.wav",
        "c_6ch.wav",
        "c_mono44k.wav",
        "d_corrupt.wav",
        "e_zero_bytes.wav",
        "f_no_samples.wav",
        "b_8k.flac",
    ]
    by = dict(zip(names, recs))
    for bad in ("d_corrupt.wav", "e_zero_bytes.wav"):
        assert set(by[bad]) == {"path", "error"} and "unreadable audio" in by[bad]["error"]
    assert "empty audio" in by["f_no_samples.wav"]["error"]
    good = [by[n] for n in ("a_mono16k.wav", "b_8k.flac", "c_6ch.wav", "c_mono44k.wav")]
    for r, dur in zip(good, (1.5, 2.0, 1.2, 1.2)):
        assert r["duration"] == pytest.approx(dur, abs=1e-3)
        assert list(r["probabilities"]) == CATEGORIES and sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert r["category"] == max(r["probabilities"], key=r["probabilities"].get)
        assert 0 <= r["intensity"] <= 1 and r["gender"] in ("M", "F") and 0.5 <= r["gender_probability"] <= 1
        assert isinstance(r["phones"], str) and "segment" not in r and "error" not in r
    # The 6-channel 44.1 kHz file is its down-mix: the same as the mono file of that signal.
    assert by["c_6ch.wav"]["probabilities"] == by["c_mono44k.wav"]["probabilities"]
    # And a 16 kHz mono file gives exactly what the model says about its fbank.
    pkg = load_package(package_path)
    import soundfile as sf

    probs, intensity = reference_outputs(pkg, sf.read(audio_dir / "a_mono16k.wav", dtype="float32")[0])
    got = np.array(list(by["a_mono16k.wav"]["probabilities"].values()))
    assert np.abs(got - probs).max() < 1e-4 and by["a_mono16k.wav"]["intensity"] == pytest.approx(intensity, abs=1e-4)


def test_batching_does_not_change_records(package_path, audio_dir, tmp_path):
    pkg = load_package(package_path)
    sources = [s for s in collect_sources([audio_dir]) if "_" in s.path and "corrupt" not in s.path]
    alone = list(Inferencer(pkg, make_engine(pkg), max_duration=0.5).run(sources))  # one file per batch
    batched = list(Inferencer(pkg, make_engine(pkg), max_duration=200).run(sources))
    assert len(alone) == len(batched) == len(sources)
    for a, b in zip(alone, batched):
        assert a["path"] == b["path"]
        if "error" in a:
            assert a == b
            continue
        for c in CATEGORIES:
            assert a["probabilities"][c] == pytest.approx(b["probabilities"][c], abs=2e-4)


def long_recording(seconds=70.0, sr=16000):
    """Tone 'phrases' of 3.3 s separated by 0.5 s pauses (with a little noise): the pauses are known."""
    rng = np.random.default_rng(0)
    parts, pauses, t = [], [], 0.0
    while t < seconds:
        parts.append(tone(3.3, freq=150 + 20 * len(parts) % 100, seed=len(parts)))
        parts.append(0.002 * rng.standard_normal(int(0.5 * sr)).astype(np.float32))
        pauses.append((t + 3.3, t + 3.8))
        t += 3.8
    return np.concatenate(parts), pauses


def test_long_recording_is_split_at_pauses_with_a_summary(package_path, tmp_path):
    samples, pauses = long_recording()
    path = write_wav(tmp_path / "long.wav", samples)
    out = tmp_path / "out.jsonl"
    assert run_cli("--model", package_path, path, "--output", out, "--max-segment", 20) == 0
    recs = read_jsonl(out)
    segs, summary = recs[:-1], recs[-1]
    total = len(samples) / 16000
    assert summary["summary"] is True and summary["segments"] == len(segs) >= 4
    assert summary["duration"] == pytest.approx(total, abs=1e-3)
    assert segs[0]["start"] == 0 and segs[-1]["end"] == pytest.approx(total, abs=1e-3)
    for k, (a, b) in enumerate(zip(segs, segs[1:])):
        assert a["segment"] == k and a["end"] == b["start"]
        assert 2 / 3 * 20 - 0.01 <= a["duration"] <= 20
        assert any(p0 <= a["end"] <= p1 for p0, p1 in pauses), f"cut at {a['end']} s is not in a pause"
    w = np.array([s["duration"] for s in segs]) / sum(s["duration"] for s in segs)
    for c in CATEGORIES:
        assert summary["probabilities"][c] == pytest.approx(
            sum(wi * s["probabilities"][c] for wi, s in zip(w, segs)), abs=1e-3
        )
    assert summary["intensity"] == pytest.approx(sum(wi * s["intensity"] for wi, s in zip(w, segs)), abs=1e-3)


def test_split_at_pauses_edge_cases():
    sr = 16000
    x = tone(10.0)
    assert split_at_pauses(x, sr, 30) == [(0, len(x))]
    assert split_at_pauses(x, sr, 0) == [(0, len(x))]
    x = tone(20.5)  # no pause at all: cuts still land inside the search window, no tiny last segment
    bounds = split_at_pauses(x, sr, 10)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(x)
    assert all(b[1] - b[0] <= 10 * sr for b in bounds) and bounds[-1][1] - bounds[-1][0] >= 1.0 * sr


class FakeEngine:
    """CTC posteriors that spell token 1 on encoder frames 2-3 and token 2 on frame 5 of every utterance."""

    def __call__(self, feats, lens):
        from speecheq.model import output_lengths

        b, t = feats.shape[0], int(output_lengths(feats.shape[1]))
        ctc = torch.full((b, t, 4), -20.0)
        ctc[:, :, 0] = 0.0
        ctc[:, 2:4, 0], ctc[:, 2:4, 1] = -20.0, 0.0
        ctc[:, 5, 0], ctc[:, 5, 2] = -20.0, 0.0
        probs = torch.full((b, 6), 1 / 6)
        return probs, torch.full((b,), 0.5), torch.tensor([[0.2, 0.8]] * b), ctc, output_lengths(lens)


def test_align_gives_phone_times_relative_to_the_file(package_path, tmp_path):
    pkg = load_package(package_path)
    pkg.tokens = ["<blk>", "AA", "B", "C"]
    samples, _ = long_recording(30.0)
    runner = Inferencer(pkg, FakeEngine(), max_segment=20, align=True)
    recs = list(runner.run([Source("long", lambda: samples)]))
    seg1 = recs[1]
    assert seg1["phones"] == "AA B"
    assert seg1["alignment"] == [
        {
            "phone": "AA",
            "start": pytest.approx(seg1["start"] + 0.08),
            "end": pytest.approx(seg1["start"] + 0.16),
            "score": 1.0,
        },
        {
            "phone": "B",
            "start": pytest.approx(seg1["start"] + 0.20),
            "end": pytest.approx(seg1["start"] + 0.24),
            "score": 1.0,
        },
    ]
    assert recs[-1]["summary"] and recs[-1]["gender"] == "F" and recs[-1]["gender_probability"] == 0.8


def test_corpus_aware_decision_and_tsv(package_path, audio_dir, tmp_path):
    out = tmp_path / "out.tsv"
    assert (
        run_cli(
            "--model",
            package_path,
            audio_dir / "a_mono16k.wav",
            audio_dir / "c_6ch.wav",
            "--corpus",
            "emodb",
            "--output",
            out,
        )
        == 0
    )
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header[:7] == ["path", "id", "segment", "start", "end", "duration", "category"]
    assert header[7:13] == [f"p_{c}" for c in CATEGORIES] and header[-1] == "error"
    assert len(rows) == 2 and all(len(r) == len(header) for r in rows)
    for r in rows:
        probs = {c: float(v) for c, v in zip(CATEGORIES, r[7:13])}
        del probs["surprise"]  # EmoDB has no surprise: the decision is among the other five
        assert r[6] == max(probs, key=probs.get)
    pkg = load_package(package_path)
    runner = Inferencer(pkg, make_engine(pkg), corpus="emodb")
    rec = next(runner.run(collect_sources([audio_dir / "a_mono16k.wav"])))
    assert rec["corpus"] == "emodb" and list(rec["corpus_probabilities"]) == CATEGORIES[:5]
    assert sum(rec["corpus_probabilities"].values()) == pytest.approx(1, abs=1e-3)
    with pytest.raises(SpeechEQError, match="unknown corpus"):
        Inferencer(pkg, make_engine(pkg), corpus="nope")


def test_manifests_as_input(package_path, audio_dir, tmp_path):
    from lhotse import CutSet, Recording, RecordingSet

    recordings = RecordingSet.from_recordings(
        [
            Recording.from_file(audio_dir / "a_mono16k.wav", recording_id="rec-a"),
            Recording.from_file(audio_dir / "c_6ch.wav", recording_id="rec-c"),
        ]
    )
    recordings.to_file(tmp_path / "recs.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recordings)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    out = tmp_path / "out.jsonl"
    assert (
        run_cli(
            "--model",
            package_path,
            tmp_path / "recs.jsonl.gz",
            tmp_path / "cuts.jsonl.gz",
            audio_dir / "a_mono16k.wav",
            "--output",
            out,
        )
        == 0
    )
    recs = read_jsonl(out)
    assert [r.get("id") for r in recs] == ["rec-a", "rec-c", *cuts.ids, None]
    assert recs[0]["path"] == str(tmp_path / "recs.jsonl.gz") and recs[0]["duration"] == 1.5
    assert recs[0]["probabilities"] == recs[2]["probabilities"] == recs[4]["probabilities"]
    assert recs[1]["probabilities"] == recs[3]["probabilities"]


def test_torchscript_engine_and_speaker_cmvn(package_path, audio_dir, tmp_path):
    from speecheq.export import export_torchscript

    pkg = load_package(package_path)
    local = tmp_path / "speecheq-package.pt"
    local.write_bytes(package_path.read_bytes())
    pkg.path = local
    export_torchscript(pkg, tmp_path / "model.ts.pt")
    sources = collect_sources([audio_dir / "a_mono16k.wav", audio_dir / "sub"])
    eager = list(Inferencer(pkg, make_engine(pkg)).run(sources))
    ts = list(Inferencer(pkg, make_engine(pkg, "torchscript")).run(sources))
    assert [r["probabilities"] for r in eager] == [r["probabilities"] for r in ts]

    # A package trained with per-speaker CMVN gets each file normalised by its own statistics.
    pkg.speaker_cmvn = True
    item = Inferencer(pkg, make_engine(pkg)).prepare(sources[0])
    feats = item.units[0].feats
    assert np.abs(feats.mean(axis=0)).max() < 1e-3 and np.abs(feats.std(axis=0) - 1).max() < 1e-2


def test_fatal_errors_are_one_line(package_path, tmp_path, capsys):
    assert run_cli("--model", tmp_path / "missing.pt", tmp_path) == 1
    assert "ERROR: model package not found" in capsys.readouterr().err
    assert run_cli("--model", package_path, tmp_path / "nothing_here") == EXIT_PARTIAL
    assert "file not found" in capsys.readouterr().out
    assert run_cli("--model", package_path, tmp_path, "--engine", "onnx") == 1
    assert "model.onnx not found" in capsys.readouterr().err


def test_inference_trims_silence_as_the_package_says(trained_exp, tmp_path):
    path = tmp_path / "trimmed-package.pt"
    save_package(package_from_exp(trained_exp, epoch=2, trim_silence_db=30), path)
    package = load_package(path)
    assert package.trim_silence_db == 30
    rng = np.random.default_rng(4)
    quiet = (1e-4 * rng.standard_normal(16000)).astype(np.float32)
    wav = write_wav(tmp_path / "padded.wav", np.concatenate([quiet, tone(1.5, seed=5), quiet]))
    durations = {}
    for db in (None, 0.0):
        runner = Inferencer(package, make_engine(package), trim_silence_db=db)
        (rec,) = list(runner.run(collect_sources([wav])))
        durations[db] = rec["duration"]
    assert durations[0.0] == pytest.approx(3.5, abs=0.02)
    assert durations[None] == pytest.approx(1.5 + 2 * 0.25, abs=0.05)


def test_a_package_from_untrimmed_training_cuts_does_not_trim(package_path):
    assert load_package(package_path).trim_silence_db == 0
