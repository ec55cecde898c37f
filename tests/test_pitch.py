"""fbank-pitch on generated audio: the tracker's F0 on tones of known pitch, the 84-dim stream's
alignment with lhotse's Fbank, silence, serialisation, the feature stage and the package."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_wav

SR = 16000


def harmonic(f0, seconds=1.0, amplitude=0.3):
    """Five harmonics of ``f0`` (a number, or an array of per-sample F0 for a glide)."""
    n = int(seconds * SR)
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def fbank(x):
    from lhotse import Fbank, FbankConfig

    return Fbank(FbankConfig(num_mel_bins=80)).extract(x, SR)


@pytest.mark.parametrize("f0", [120.0, 220.0])
def test_raw_tracker_finds_the_f0_of_a_tone(f0):
    from speecheq.pitch import FbankPitch, track_pitch

    hz, voicing = track_pitch(harmonic(f0), SR, FbankPitch().frame_shift)
    assert hz.shape == voicing.shape == (100,)
    voiced = hz > 0
    assert voiced[5:-5].all()  # all but the edge frames, where the tracker's window does not fit
    np.testing.assert_allclose(hz[voiced], f0, rtol=0.02)
    assert voicing[voiced].min() > 0.9 and (voicing[~voiced] == 0).all()


def test_stream_is_fbank_plus_four_pitch_dims_frame_for_frame():
    from speecheq.pitch import FbankPitch

    extractor = FbankPitch()
    for n in (400, 799, 1234, 16000, 16081, 24040):  # lengths around the 10 ms frame boundaries
        x = harmonic(150.0, n / SR)
        feats, reference = extractor.extract(x, SR), fbank(x)
        assert feats.shape == (reference.shape[0], 84) and feats.dtype == np.float32
        np.testing.assert_array_equal(feats[:, :80], reference)
        assert np.isfinite(feats).all()
    assert extractor.feature_dim(SR) == 84 and extractor.frame_shift == 0.01


def test_normalised_log_f0_follows_a_glide():
    from speecheq.pitch import DELTA_PITCH_SCALE, DELTA_POV_SCALE, PITCH_SCALE, POV_SCALE, FbankPitch

    SCALES = np.array([PITCH_SCALE, POV_SCALE, DELTA_PITCH_SCALE, DELTA_POV_SCALE])  # Kaldi's storage-friendly scales

    # 150 -> 250 Hz over 1.5 s: the stream must give back the contour, minus its mean.
    seconds = 1.5
    true_f0 = np.linspace(150.0, 250.0, int(seconds * SR))
    feats = FbankPitch().extract(harmonic(true_f0, seconds), SR)
    log_f0, voicing, d_log_f0, d_voicing = (feats[:, 80:] / SCALES).T
    centres = ((np.arange(len(feats)) + 0.5) * 0.01 * SR).astype(int).clip(max=len(true_f0) - 1)
    expected = np.log(true_f0[centres])
    core = slice(10, -10)
    # Un-normalised F0: the stream plus the voiced mean of the true contour, within 2 %.
    np.testing.assert_allclose(np.exp(log_f0[core] + expected[core].mean()), true_f0[centres][core], rtol=0.02)
    assert abs(log_f0[core].mean()) < 0.01
    assert voicing[core].min() > 0.9
    # The delta of a linear rise in log F0 is about its per-frame slope.
    slope = (expected[-1] - expected[0]) / len(expected)
    np.testing.assert_allclose(d_log_f0[core], slope, atol=slope)
    assert np.abs(d_voicing[core]).max() < 0.05


def test_unvoiced_gaps_are_interpolated_and_silence_gives_zeros():
    from speecheq.pitch import FbankPitch, pitch_stream, track_pitch

    extractor = FbankPitch()
    for x in (
        np.zeros(SR, dtype=np.float32),
        np.zeros(200 * 16, dtype=np.float32),
        (0.05 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32),
    ):
        pitch = extractor.extract(x, SR)[:, 80:]
        assert np.isfinite(pitch).all()
        np.testing.assert_array_equal(pitch[:, [0, 2]], 0.0)  # no voiced frame: no F0 and no F0 movement
    assert extractor.stats["utterances"] == 3 and extractor.stats["unvoiced"] == 3 and extractor.stats["failed"] == 0
    assert pitch_stream(np.zeros(0), np.zeros(0)).shape == (0, 4)

    # 120 Hz, 0.3 s of silence, 240 Hz: the gap is bridged linearly in log F0.
    x = np.concatenate([harmonic(120.0, 0.5), np.zeros(int(0.3 * SR), dtype=np.float32), harmonic(240.0, 0.5)])
    hz, voicing = track_pitch(x, SR, FbankPitch().frame_shift)
    stream = pitch_stream(hz, voicing, scales=(1, 1, 1, 1))
    np.testing.assert_allclose(pitch_stream(hz, voicing), stream * [2, 2, 10, 10], rtol=1e-6)
    gap = slice(60, 75)
    assert (hz[gap] == 0).all() and (stream[gap, 1] == 0).all()
    assert np.all(np.diff(stream[55:85, 0]) > -0.005)  # rising from the low to the high tone, no drop to 0
    low, high = stream[20, 0], stream[-20, 0]
    assert high - low == pytest.approx(np.log(2), abs=0.03) and abs(low + high) < 0.1  # voiced mean removed


def test_config_round_trips_through_lhotse():
    import speecheq.pitch  # noqa: F401  (registers the extractor)
    from lhotse.features.base import FeatureExtractor, get_extractor_type

    from speecheq.errors import SpeechEQError
    from speecheq.features import make_extractor
    from speecheq.pitch import FbankPitch, FbankPitchConfig

    extractor = make_extractor("fbank-pitch")
    assert get_extractor_type("fbank-pitch") is FbankPitch and extractor.name == "fbank-pitch"
    d = extractor.to_dict()
    plain = {k: v for k, v in make_extractor("fbank").config.to_dict().items() if k != "device"}
    assert d["feature_type"] == "fbank-pitch" and d["fbank"] == plain  # exactly the project's Fbank
    again = FeatureExtractor.from_dict(dict(d))
    assert isinstance(again, FbankPitch) and again.to_dict() == d and again.frame_shift == 0.01
    x = harmonic(200.0, 0.5)
    np.testing.assert_array_equal(again.extract(x, SR), extractor.extract(x, SR))
    # Older lhotse configs without a key take the defaults; lhotse's alias num_mel_bins is resolved.
    small = FbankPitchConfig.from_dict({"fbank": {"num_mel_bins": 40}, "f0_max": 500.0})
    assert small.num_mel_bins == 40 and FbankPitch(small).feature_dim(SR) == 44 and small.f0_max == 500.0
    with pytest.raises(SpeechEQError, match="pitch range"):
        FbankPitchConfig(f0_min=300.0, f0_max=200.0)
    with pytest.raises(SpeechEQError, match="8000 Hz"):
        extractor.extract(x, 8000)


def _manifests(tmp_path):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recs, sups = [], []
    for i, f0 in enumerate((120.0, 220.0)):
        rec = Recording.from_file(write_wav(tmp_path / "wav" / f"utt{i}.wav", harmonic(f0, 0.8)))
        recs.append(rec)
        sups.append(SupervisionSegment(id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration, speaker="s"))
    out = tmp_path / "manifests"
    out.mkdir()
    RecordingSet.from_recordings(recs).to_file(out / "toy_recordings_all.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(out / "toy_supervisions_all.jsonl.gz")
    return out


def test_feature_stage_writes_84_dim_cuts_into_its_own_folder(tmp_path):
    from lhotse import load_manifest

    from speecheq.checkpoint import record_training_data
    from speecheq.errors import SpeechEQError
    from speecheq.features import compute_corpus_fbank, make_extractor, trim_silence

    manifests = _manifests(tmp_path)
    cuts_path = compute_corpus_fbank("toy", manifests, tmp_path / "fbank_pitch", extractor="fbank-pitch", nj=1)
    cuts = load_manifest(cuts_path)
    assert len(cuts) == 2
    for cut in cuts:
        feats = cut.load_features()
        assert cut.features.type == "fbank-pitch" and cut.num_features == 84 and feats.shape == (80, 84)
        assert (feats[10:-10, 81] > 1.8).all()  # voicing near 1, times its scale 2
        # lilcom keeps multiples of 1/32: the stored stream is the computed one within half a step.
        computed = make_extractor("fbank-pitch").extract(cut.load_audio(), SR)
        np.testing.assert_allclose(feats, computed, atol=2**-6 + 1e-6)
        # Trimming reads the energy of the mel columns only: a tone without silence keeps all its frames.
        assert trim_silence(cut, threshold_db=30).duration == cut.duration
    assert record_training_data(cuts, 84)["feature_config"]["extractor"] == "fbank-pitch"
    # A folder holds one feature type: asking it for plain fbank is an error, not a silent skip.
    with pytest.raises(SpeechEQError, match="already holds fbank-pitch features"):
        compute_corpus_fbank("toy", manifests, tmp_path / "fbank_pitch", extractor="fbank", nj=1)


def test_compute_fbank_script_takes_the_feature_type(tmp_path, monkeypatch):
    import runpy
    from pathlib import Path

    from lhotse import load_manifest

    script = Path(__file__).resolve().parents[1] / "local/compute_fbank.py"
    manifests = _manifests(tmp_path)
    monkeypatch.setattr(
        "sys.argv",
        [
            str(script),
            "--corpus",
            "toy",
            "--manifest-dir",
            str(manifests),
            "--output-dir",
            str(tmp_path / "fp"),
            "--feature-type",
            "fbank-pitch",
            "--nj",
            "1",
        ],
    )
    runpy.run_path(str(script), run_name="__main__")  # in this process: a fresh interpreter would re-import lhotse
    assert {c.num_features for c in load_manifest(tmp_path / "fp/toy_cuts_all.jsonl.gz")} == {84}


def test_package_rebuilds_the_fbank_pitch_extractor(tmp_path):
    import torch

    from speecheq.infer import Inferencer, Source, make_engine
    from speecheq.model import ModelConfig, SpeechEQModel
    from speecheq.package import load_package, package_from_model, save_package
    from speecheq.pitch import FbankPitch

    torch.manual_seed(0)
    config = ModelConfig(
        num_mel_bins=84,
        d_model=32,
        num_layers=1,
        num_heads=2,
        ff_dim=64,
        conv_kernel=7,
        subsampling_channels=8,
        pooling_dim=16,
    )
    model = SpeechEQModel(config).eval()
    raw = package_from_model(
        model, categories=["neutral", "happy", "sad", "angry"], extractor="fbank-pitch", trim_silence_db=30.0
    )
    cfg = raw["feature_config"]
    assert cfg["extractor"] == "fbank-pitch" and cfg["num_mel_bins"] == 84 and cfg["frame_shift"] == 0.01
    assert cfg["lhotse"]["feature_type"] == "fbank-pitch" and cfg["lhotse"]["fbank"]["num_filters"] == 80
    path = save_package(raw, tmp_path / "pkg.pt")
    pkg = load_package(path)
    extractor = pkg.make_extractor()
    assert isinstance(extractor, FbankPitch) and extractor.to_dict() == {**cfg["lhotse"], "device": "cpu"}
    # Silence around a tone: inference trims on the mel energies, and the model takes the 84 dims.
    audio = np.concatenate([np.zeros(SR // 2, np.float32), harmonic(180.0, 1.0), np.zeros(SR // 2, np.float32)])
    runner = Inferencer(pkg, make_engine(pkg))
    item = runner.prepare(Source("tone", lambda: audio))
    assert item.error is None and item.units[0].feats.shape[1] == 84
    assert 0.5 < item.units[0].feats.shape[0] * 0.01 < 1.6  # trimmed to the tone and its margins
    # A package whose front-end does not give the model's dimension is refused with one line.
    from speecheq.errors import SpeechEQError

    raw["feature_config"] = {**raw["feature_config"], "lhotse": {**cfg["lhotse"], "fbank": {"num_mel_bins": 40}}}
    save_package(raw, tmp_path / "bad.pt")
    with pytest.raises(SpeechEQError, match="gives 44 features per frame, the model takes 84"):
        load_package(tmp_path / "bad.pt").make_extractor()
