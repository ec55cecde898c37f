"""The GE2E speaker encoder's input and features (speecheq/ge2e.py), with generated weights only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tone

SR = 16000


def _two_tones(seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 300 * t) + 0.1 * np.sin(2 * np.pi * 1200 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Randomly initialised weights in Resemblyzer's checkpoint layout (with its extra keys)."""
    from speecheq.ge2e import GE2EEncoder

    torch.manual_seed(0)
    state = GE2EEncoder().state_dict()
    state["similarity_weight"] = torch.tensor([10.0])  # the GE2E loss's, present in the real file
    path = tmp_path_factory.mktemp("ge2e") / "pretrained.pt"
    torch.save({"step": 1, "model_state": state, "optimizer_state": {}}, path)
    return path


def test_mel_filterbank_matches_librosa():
    """Reference values from librosa 0.10.2: librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)."""
    from speecheq.ge2e import mel_filterbank

    fb = mel_filterbank()
    assert fb.shape == (40, 201) and (fb >= 0).all()
    assert [int(fb[k].argmax()) for k in (0, 10, 20, 30, 39)] == [2, 20, 44, 94, 185]
    np.testing.assert_allclose([fb[0].max(), fb[39].max(), fb.sum()], [0.012404521, 0.0017249404, 0.9994972], rtol=1e-6)


def test_mel_spectrogram_matches_librosa():
    """librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40) of the
    same two tones (librosa 0.10.2): 51 centred frames, bands 3 and 4 hold 300 Hz."""
    from speecheq.ge2e import mel_spectrogram

    mel = mel_spectrogram(_two_tones()).numpy()
    assert mel.shape == (51, 40)
    assert sorted(mel[10].argsort()[-2:].tolist()) == [3, 4]
    np.testing.assert_allclose(
        [mel.sum(), mel[10].max(), mel[0].sum(), mel[-1].sum()], [999.6293, 12.966551, 9.892362, 9.892363], rtol=1e-4
    )


@pytest.mark.parametrize(
    "seconds, windows",
    # 1.6 s windows every 0.77 s (77 frames); the last one is kept when 75 % of it holds audio.
    [(0.5, 1), (1.6, 1), (2.4, 2), (3.3, 3), (4.0, 4)],
)
def test_partial_windows_cover_the_utterance(seconds, windows):
    from speecheq.ge2e import HOP, PARTIAL_FRAMES, partial_windows

    n = int(seconds * SR)
    got = partial_windows(n)
    assert len(got) == windows
    assert all(w.stop - w.start == PARTIAL_FRAMES for w in got)
    assert got[0].start == 0 and all(b.start - a.start == 77 for a, b in zip(got, got[1:]))
    assert (n - got[-1].start * HOP) / (PARTIAL_FRAMES * HOP) >= 0.75 or windows == 1


def test_volume_is_raised_to_minus_30_dbfs_never_lowered():
    from speecheq.ge2e import normalise_volume

    quiet = 0.001 * _two_tones()
    raised = normalise_volume(quiet)
    assert 20 * np.log10(np.sqrt(np.mean(raised.astype(np.float64) ** 2))) == pytest.approx(-30.0, abs=1e-3)
    loud = _two_tones()  # about -12 dBFS
    assert normalise_volume(loud) is loud


def test_features_of_an_utterance(weights):
    from speecheq.ge2e import FEATURE_NAMES, GE2EEncoder, GE2EFeatures, mel_spectrogram, normalise_volume

    extractor = GE2EFeatures(weights)
    x = tone(2.4, freq=180)
    values = extractor.process(x, SR)
    assert values.shape == (768,) == (len(FEATURE_NAMES),) and np.isfinite(values).all()
    embedding, mean, std = values[:256], values[256:512], values[512:]
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-6) and (embedding >= 0).all()
    assert (std > 0).all()
    # The frame statistics are those of the whole utterance's states under the same weights.
    encoder = GE2EEncoder.load(weights)
    with torch.no_grad():
        _, states = encoder.embed(mel_spectrogram(normalise_volume(x))[None])
    np.testing.assert_allclose(mean, states[0].mean(0).numpy(), atol=1e-6)
    # Same input, same features; another utterance, other features; 8 kHz input is resampled.
    np.testing.assert_array_equal(values, extractor.process(x, SR))
    assert not np.allclose(values, extractor.process(tone(2.4, freq=300), SR))
    assert extractor.process(x[::2].copy(), 8000).shape == (768,)
    assert len(extractor.source) == 16


def test_weights_errors_are_one_line(tmp_path, weights):
    from speecheq.errors import SpeechEQError
    from speecheq.ge2e import GE2EEncoder

    with pytest.raises(SpeechEQError, match="speaker encoder weights not found"):
        GE2EEncoder.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpeechEQError, match="not a readable torch checkpoint"):
        GE2EEncoder.load(tmp_path / "junk.pt")
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(1024, 80)}}, tmp_path / "other.pt")
    with pytest.raises(SpeechEQError, match="not a GE2E speaker encoder") as e:
        GE2EEncoder.load(tmp_path / "other.pt")
    assert "\n" not in str(e.value)
