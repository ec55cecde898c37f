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
    r = run_example(onnx_package.with_name("model.onnx"), *files, tmp_path / "missing.wav")
    assert r.returncode == 0, r.stderr[-2000:]
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(got) == 4 and got[3] == {"path": str(tmp_path / "missing.wav"), "error": "file not found"}
    for g, w in zip(got, want):
        assert g["path"] == w["path"] and g["category"] == w["category"] and g["gender"] == w["gender"]
        np.testing.assert_allclose(
            [g["probabilities"][c] for c in CATEGORIES], [w["probabilities"][c] for c in CATEGORIES], atol=1e-4
        )
        assert g["intensity"] == pytest.approx(w["intensity"], abs=1e-4)
        assert g["gender_probability"] == pytest.approx(w["gender_probability"], abs=1e-4)
        assert g["phones"] == w["phones"]  # greedy CTC over the valid encoder frames
    assert any(w["phones"] for w in want), "an empty CTC read-out would prove nothing"
    # A char or bpe model's read-out goes, as speecheq infer writes it, under "tokens" with its units.
    r = run_example(with_metadata(onnx_package, tmp_path / "char.onnx", ctc_units="char"), files[0])
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert "phones" not in got and got["tokens"] == want[0]["phones"] and got["units"] == "char"


def run_example(model, *paths):
    return subprocess.run(
        [sys.executable, str(REPO / "examples/onnx_infer.py"), str(model), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def with_metadata(onnx_package, path, **changes):
    """A copy of the package's model.onnx with some metadata entries changed."""
    import onnx

    model = onnx.load(str(onnx_package.with_name("model.onnx")))
    for prop in model.metadata_props:
        prop.value = changes.get(prop.key, prop.value)
    onnx.save(model, str(path))
    return path


def test_example_refuses_a_feature_type_lhotse_cannot_rebuild(onnx_package, tmp_path):
    from speecheq.features import extractor_config

    config = json.dumps(extractor_config("fbank-pitch"), sort_keys=True)
    model = with_metadata(onnx_package, tmp_path / "pitch.onnx", feature_type="fbank-pitch", feature_config=config)
    r = run_example(model, write_wav(tmp_path / "a.wav", tone(1.0)))
    assert r.returncode != 0 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith("ERROR: ") and "'fbank-pitch'" in line and "lhotse alone" in line
