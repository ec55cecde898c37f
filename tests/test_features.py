"""Silence trimming on generated audio: where the speech-like part is, and what the trimmed cut holds."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tone, write_wav


def _cut_with_features(tmp_path, lead: float, speech: float, tail: float):
    from lhotse import LilcomChunkyWriter, Recording, SupervisionSegment

    from speecheq.features import make_extractor

    rng = np.random.default_rng(1)
    quiet = lambda s: (1e-4 * rng.standard_normal(int(s * 16000))).astype(np.float32)  # noqa: E731
    audio = np.concatenate([quiet(lead), tone(speech), quiet(tail)])
    rec = Recording.from_file(write_wav(tmp_path / "utt.wav", audio))
    cut = rec.to_cut()
    cut.supervisions = [
        SupervisionSegment(
            id="utt", recording_id=rec.id, start=0.0, duration=rec.duration, speaker="spk", custom={"emotion": "happy"}
        )
    ]
    with LilcomChunkyWriter(tmp_path / "feats") as storage:
        return cut.compute_and_store_features(make_extractor(), storage)


def test_trim_silence_keeps_the_loud_part_with_margins(tmp_path):
    from speecheq.features import TRIM_MARGIN, trim_silence

    cut = _cut_with_features(tmp_path, lead=1.0, speech=1.5, tail=0.8)
    trimmed = trim_silence(cut, threshold_db=30)
    assert trimmed.start == pytest.approx(1.0 - TRIM_MARGIN, abs=0.04)
    assert trimmed.end == pytest.approx(2.5 + TRIM_MARGIN, abs=0.04)
    sup = trimmed.supervisions[0]
    assert sup.start == 0 and sup.duration == trimmed.duration and sup.custom == {"emotion": "happy"}
    # The trimmed cut reads exactly the kept frames of the stored matrix.
    full, kept = cut.load_features(), trimmed.load_features()
    first = int(round(trimmed.start * 100))
    assert abs(kept.shape[0] - trimmed.duration * 100) <= 1
    np.testing.assert_array_equal(kept, full[first : first + kept.shape[0]])


def test_trim_silence_leaves_a_cut_without_silence_alone(tmp_path):
    from speecheq.features import trim_silence

    cut = _cut_with_features(tmp_path, lead=0.0, speech=1.2, tail=0.0)
    same = trim_silence(cut, threshold_db=30)
    assert (same.start, same.duration) == (cut.start, cut.duration) and same.custom == {"trim_silence_db": 30.0}


def test_a_higher_threshold_keeps_more(tmp_path):
    from speecheq.features import speech_bounds

    cut = _cut_with_features(tmp_path, lead=1.0, speech=1.0, tail=1.0)
    feats = cut.load_features()
    f10, l10 = speech_bounds(feats, 10, 0)
    f60, l60 = speech_bounds(feats, 60, 0)
    assert f60 <= f10 and l60 >= l10


def test_trimmed_cuts_carry_their_threshold_into_the_checkpoint(tmp_path):
    from speecheq.checkpoint import record_training_data
    from speecheq.features import trim_silence

    cut = _cut_with_features(tmp_path, lead=0.5, speech=1.0, tail=0.5)
    assert record_training_data([trim_silence(cut, threshold_db=35)], cut.num_features)["trim_silence_db"] == 35
    assert record_training_data([cut], cut.num_features)["trim_silence_db"] == 0
