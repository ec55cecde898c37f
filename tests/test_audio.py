import os

import numpy as np
import pytest

from speecheq.audio import inspect_audio, read_audio
from speecheq.errors import AudioError
from tests.conftest import tone, write_wav


def test_good_file(tmp_path):
    info = inspect_audio(write_wav(tmp_path / "a.wav", tone(1.0)))
    assert (info.sampling_rate, info.num_channels, info.num_samples, info.channel) == (16000, 1, 16000, 0)


@pytest.mark.parametrize(
    "case,match",
    [
        ("empty", "empty audio"),
        ("zero_byte", "unreadable"),
        ("text_as_wav", "unreadable"),
        ("truncated_header", "unreadable"),
        ("silent", "silent"),
        ("dc_only", "DC offset"),
        ("nan", "NaN or Inf"),
        ("too_short", "too short"),
        ("missing", "not found"),
        ("broken_symlink", "broken symbolic link"),
    ],
)
def test_bad_files_give_one_reason(tmp_path, case, match):
    p = tmp_path / f"{case}.wav"
    if case == "empty":
        write_wav(p, np.zeros(0, np.float32))
    elif case == "zero_byte":
        p.write_bytes(b"")
    elif case == "text_as_wav":
        p.write_text("this is not audio\n")
    elif case == "truncated_header":
        write_wav(p, tone(1.0))
        p.write_bytes(p.read_bytes()[:20])
    elif case == "silent":
        write_wav(p, np.zeros(16000, np.float32))
    elif case == "dc_only":
        write_wav(p, np.full(16000, 0.25, np.float32), subtype="FLOAT")
    elif case == "nan":
        x = tone(1.0)
        x[100] = np.nan
        write_wav(p, x, subtype="FLOAT")
    elif case == "too_short":
        write_wav(p, tone(0.05))
    elif case == "broken_symlink":
        os.symlink(tmp_path / "nowhere.wav", p)
    with pytest.raises(AudioError, match=match) as e:
        inspect_audio(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_stereo_channel_choice(tmp_path):
    same = write_wav(tmp_path / "same.wav", tone(1.0, channels=2))
    assert inspect_audio(same).channel == 0
    x = tone(1.0, channels=2)
    x[:, 0] *= 0.01  # a far, quiet channel 0
    assert inspect_audio(write_wav(tmp_path / "diff.wav", x)).channel == 1


def test_read_audio_downmixes_and_resamples(tmp_path):
    p = write_wav(tmp_path / "a.wav", tone(2.0, sr=44100, channels=6), sr=44100)
    y = read_audio(p, 16000)
    assert y.ndim == 1 and abs(len(y) - 32000) <= 1 and y.dtype == np.float32
