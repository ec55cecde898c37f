"""TorchScript and ONNX exports match the eager model at other lengths and batch sizes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speecheq.errors import SpeechEQError
from speecheq.engines import INFERENCE_OUTPUTS, InferenceGraph
from speecheq.export import example_inputs, relative_error
from speecheq.package import load_package
from tests.conftest import tone, write_wav

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(trained_exp, tmp_path_factory):
    """local/export.py's code path: package + model.ts.pt + model.onnx, each already checked against eager."""
    from speecheq.cli import run_export

    out = tmp_path_factory.mktemp("export") / "speecheq-package.pt"
    run_export(
        [
            "--exp-dir",
            str(trained_exp),
            "--checkpoint",
            "best-valid.pt",
            "--output",
            str(out),
            "--torchscript",
            "--onnx",
        ]
    )
    return out


def eager_outputs(pkg, feats, lens):
    with torch.no_grad():
        return [o.numpy() for o in InferenceGraph(pkg.model).eval()(feats, lens)]


@pytest.mark.parametrize("lens", [(11,), (57, 401, 130), (250, 250)])
def test_exports_match_eager_at_unseen_shapes(exported, lens):
    import onnxruntime as ort

    pkg = load_package(exported)
    assert {p.name for p in exported.parent.iterdir()} >= {"speecheq-package.pt", "model.ts.pt", "model.onnx"}
    feats, lens_t = example_inputs(80, lens, seed=7)
    for i, n in enumerate(lens):
        feats[i, n:] = float("nan")  # padding may hold anything
    ref = eager_outputs(pkg, feats, lens_t)
    ts = torch.jit.load(str(exported.parent / "model.ts.pt"))
    with torch.no_grad():
        got_ts = [o.numpy() for o in ts(feats, lens_t)]
    session = ort.InferenceSession(str(exported.parent / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(INFERENCE_OUTPUTS)
    got_onnx = session.run(None, {"features": feats.numpy(), "feature_lens": lens_t.numpy()})
    for name, r, a, b in zip(INFERENCE_OUTPUTS, ref, got_ts, got_onnx):
        assert r.shape == a.shape == b.shape, name
        assert relative_error(a, r) < 1e-4, f"torchscript {name}"
        assert relative_error(b, r) < 1e-4, f"onnx {name}"
    assert np.array_equal(ref[4], got_onnx[4])  # encoder lengths are exact
    np.testing.assert_allclose(got_onnx[0].sum(axis=1), 1.0, atol=1e-5)


def test_engines_carry_the_fingerprint_and_infer_reads_them(exported, tmp_path):
    import onnx

    from speecheq.infer import Inferencer, collect_sources, make_engine

    pkg = load_package(exported)
    meta = {p.key: p.value for p in onnx.load(str(exported.parent / "model.onnx")).metadata_props}
    assert meta["speecheq_fingerprint"] == pkg.fingerprint
    assert json.loads(meta["speecheq.json"])["categories"] == pkg.categories
    assert meta["ctc_units"] == json.loads(meta["speecheq.json"])["ctc_units"] == "phone"
    write_wav(tmp_path / "a.wav", tone(2.0, seed=5))
    write_wav(tmp_path / "short.wav", tone(0.1, seed=6))  # 10 fbank frames: below the graphs' minimum of 11
    sources = collect_sources([tmp_path])
    recs = {e: list(Inferencer(pkg, make_engine(pkg, e)).run(sources)) for e in ("eager", "torchscript", "onnx")}
    for e in ("torchscript", "onnx"):
        for a, b in zip(recs["eager"], recs[e]):
            assert a["duration"] == b["duration"] and a["category"] == b["category"]
            for c, p in a["probabilities"].items():
                assert b["probabilities"][c] == pytest.approx(p, abs=2e-4)


def test_stale_engine_is_refused(exported, tmp_path):
    from speecheq.infer import make_engine
    from speecheq.package import package_from_model, save_package

    pkg = load_package(exported)
    with torch.no_grad():
        pkg.model.utterance_heads.emotion.bias.add_(1.0)  # other weights, same architecture
    other = tmp_path / "speecheq-package.pt"
    save_package(package_from_model(pkg.model, categories=pkg.categories, tokens=pkg.tokens), other)
    for name in ("model.onnx", "model.ts.pt"):
        (tmp_path / name).write_bytes((exported.parent / name).read_bytes())
    other_pkg = load_package(other)
    for engine in ("onnx", "torchscript"):
        with pytest.raises(SpeechEQError, match="exported from other weights"):
            make_engine(other_pkg, engine)


def test_local_export_script_runs_and_needs_a_source(tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "local/export.py"), "--output", str(tmp_path / "p.pt")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 2 and "one of the arguments --exp-dir --package is required" in r.stderr
    r = subprocess.run(
        [sys.executable, str(REPO / "local/export.py"), "--package", str(tmp_path / "p.pt"), "--onnx"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("ERROR: model package not found")


def test_a_model_with_utterance_cmn_exports_and_its_engines_ignore_a_spectral_offset(tmp_path):
    from speecheq.engines import OnnxEngine, TorchScriptEngine
    from speecheq.export import export_engines
    from speecheq.model import ModelConfig, SpeechEQModel
    from speecheq.package import package_from_model, save_package

    torch.manual_seed(0)
    config = ModelConfig(
        d_model=32, num_layers=1, num_heads=2, ff_dim=64, conv_kernel=7, subsampling_channels=8,
        pooling_dim=16, num_emotions=4, vocab_size=6, utterance_cmn=True,
    )  # fmt: skip
    model = SpeechEQModel(config).eval()
    path = save_package(
        package_from_model(model, categories=["neutral", "happy", "sad", "angry"], tokens=list("_abcde")),
        tmp_path / "speecheq-package.pt",
    )
    engines = export_engines(path)  # each engine is checked against eager and removed if it differs
    pkg = load_package(path)
    assert pkg.model.config.utterance_cmn
    feats, lens = example_inputs(80, (140, 60), seed=3)
    shifted = feats + torch.linspace(-2.0, 3.0, 80)  # a microphone's or room's fixed colouring
    for engine in (TorchScriptEngine(pkg, engines["torchscript"], "cpu"), OnnxEngine(pkg, engines["onnx"], "cpu")):
        for a, b in zip(engine(feats, lens), engine(shifted, lens)):
            assert relative_error(b.numpy(), a.numpy()) < 1e-4, engine.name
