"""The ONNX file describes itself: sherpa-onnx-style metadata, named axes, and examples/onnx_infer.py
(onnxruntime + numpy + lhotse, no speecheq) reproduces ``speecheq infer`` from it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speecheq.errors import SpeechEQError
from speecheq.package import load_package, save_package
from tests.conftest import tone, write_wav
from tests.test_pretrained import CATEGORIES, TOKENS, infer_records, speech_with_silence, tiny_package

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def onnx_package(tmp_path_factory):
    """A package (trimming at 30 dB, speaker CMVN) with its model.onnx, checked against eager by the exporter."""
    from speecheq.export import export_engines

    path = save_package(tiny_package(), tmp_path_factory.mktemp("onnx") / "speecheq-package.pt")
    export_engines(path, torchscript=False, onnx=True)
    return path


def test_metadata_and_named_axes(onnx_package):
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_package.with_name("model.onnx")), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    pkg = load_package(onnx_package)
    assert meta["model_type"] == "speecheq" and meta["version"] == "1"
    assert meta["sample_rate"] == "16000" and meta["feature_type"] == "fbank" and meta["feature_dim"] == "80"
    assert json.loads(meta["feature_config"]) == pkg.feature_config["lhotse"]
    assert meta["frame_shift_ms"] == "10" and meta["dither"] == "0.0" and meta["snip_edges"] == "0"
    assert meta["trim_silence_db"] == "30" and meta["trim_margin_s"] == "0.25" and meta["speaker_cmvn"] == "1"
    assert meta["categories"].split(",") == CATEGORIES and meta["tokens"].split(" ") == TOKENS
    assert meta["min_frames"] == "7" and meta["min_padded_frames"] == "11"
    assert meta["tasks"] == "emotion,intensity,gender,ctc" and meta["speecheq_fingerprint"] == pkg.fingerprint
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert inputs == {"features": ["batch", "frames", 80], "feature_lens": ["batch"]}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    assert outputs["emotion_probs"] == ["batch", len(CATEGORIES)] and outputs["ctc_log_probs"][0] == "batch"
    assert "frames" in outputs["ctc_log_probs"][1]


def test_short_input_is_one_clear_error(onnx_package):
    from speecheq.infer import make_engine

    pkg = load_package(onnx_package)
    for engine in ("eager", "onnx"):
        run = make_engine(pkg, engine)
        with pytest.raises(
            SpeechEQError, match="an input of 5 feature frames is shorter than the model's minimum of 7"
        ):
            run(torch.zeros(2, 20, 80), torch.tensor([20, 5]))
        assert run(torch.zeros(1, 7, 80), torch.tensor([7]))[0].shape == (1, len(CATEGORIES))


def test_standalone_example_reproduces_speecheq_infer(onnx_package, tmp_path):
    files = [
        write_wav(tmp_path / "a.wav", speech_with_silence(seed=1)),
        write_wav(
            tmp_path / "b_stereo_8k.wav",
            np.stack([speech_with_silence(1.4, sr=8000, freq=150.0, seed=2)] * 2, axis=1),
            sr=8000,
        ),
        write_wav(tmp_path / "c_no_silence.wav", tone(1.0, freq=230.0, seed=3)),
    ]
    want = infer_records(onnx_package, files, tmp_path)
    assert want[0]["duration"] < 1.9  # 2.4 s of audio, trimmed to the tone and its margins
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples/onnx_infer.py"),
            str(onnx_package.with_name("model.onnx")),
            *map(str, files),
            str(tmp_path / "missing.wav"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(got) == 4 and got[3] == {"path": str(tmp_path / "missing.wav"), "error": "file not found"}
    for g, w in zip(got, want):
        assert g["path"] == w["path"] and g["category"] == w["category"] and g["gender"] == w["gender"]
        np.testing.assert_allclose(
            [g["probabilities"][c] for c in CATEGORIES], [w["probabilities"][c] for c in CATEGORIES], atol=1e-4
        )
        assert g["intensity"] == pytest.approx(w["intensity"], abs=1e-4)
