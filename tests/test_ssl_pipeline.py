"""The ssl front end end to end (issue #14): a tiny random WavLM / HuBERT in a temporary folder,
trained on the synthetic corpus's audio, then decode, align, package, export and infer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from speecheq.checkpoint import recorded_front_end  # noqa: E402
from speecheq.errors import SpeechEQError  # noqa: E402
from speecheq.model.ssl import FEATURE_TYPE, write_random_model  # noqa: E402
from tests.conftest import REPO, tone, train_args, write_wav  # noqa: E402


def ssl_train_args(synth_data, exp, folder, *extra):
    return train_args(synth_data, exp, "--front-end", "ssl", "--ssl-model", str(folder), "--num-epochs", "1", *extra)


@pytest.mark.parametrize("kind", ["wavlm", "hubert"])
def test_ssl_model_trains_decodes_aligns_exports_and_infers(kind, synth_data, tmp_path):
    from lhotse import load_manifest_lazy

    from speecheq.align import align_corpus
    from speecheq.decode import decode, get_parser
    from speecheq.export import compare_with_eager, export_torchscript
    from speecheq.infer import Inferencer, collect_sources, make_engine
    from speecheq.model.ssl import SSLEncoder
    from speecheq.options import DecodeConfig
    from speecheq.package import load_package, package_from_exp, save_package
    from speecheq.train import train

    folder = write_random_model(tmp_path / kind, kind)
    pretrained = SSLEncoder.from_pretrained(folder).state_dict()
    exp = tmp_path / "exp"
    # HuBERT also fine-tunes its top layer; WavLM stays frozen (only the layer weights learn).
    top = 1 if kind == "hubert" else 0
    train(ssl_train_args(synth_data, exp, folder, "--ssl-finetune-top", str(top)))

    ckpt = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert ckpt["model_config"]["ssl"]["hf_config"]["model_type"] == kind
    assert ckpt["model_config"]["num_mel_bins"] == 32
    state = ckpt["model"]
    front_end = recorded_front_end(ckpt)
    assert front_end.feature_type == FEATURE_TYPE and front_end.reads_audio
    assert front_end.frame_shift == pytest.approx(320 / 16000)
    # No global statistics: the encoder normalises each waveform as it was pre-trained.
    assert torch.equal(state["feature_mean"], torch.zeros(32)) and torch.equal(state["feature_std"], torch.ones(32))
    assert not torch.equal(state["ssl.layer_weights"], pretrained["layer_weights"])
    top_layer = "ssl.model.encoder.layers.1.attention.k_proj.weight"
    bottom = [
        "ssl.model.encoder.layers.0.attention.k_proj.weight",
        "ssl.model.feature_extractor.conv_layers.0.conv.weight",
    ]
    for key in bottom:
        assert torch.equal(state[key], pretrained[key.removeprefix("ssl.")]), f"{key} is frozen"
    assert torch.equal(state[top_layer], pretrained[top_layer.removeprefix("ssl.")]) == (top == 0)

    # A second epoch resumes from epoch-1.pt: the recorded encoder settings match the folder's.
    train(
        ssl_train_args(
            synth_data, exp, folder, "--ssl-finetune-top", str(top), "--start-epoch", "2", "--num-epochs", "2"
        )
    )
    test_cuts = str(synth_data / "fbank/synth_cuts_test.jsonl.gz")
    decode_args = ["--exp-dir", str(exp), "--epoch", "2", "--avg", "2", "--cuts", test_cuts]
    (metrics,) = decode(DecodeConfig.from_args(get_parser().parse_args(decode_args)))
    n = sum(1 for _ in load_manifest_lazy(synth_data / "fbank/synth_cuts_test.jsonl.gz"))
    assert json.loads(metrics.read_text())["utterances"] == n

    out = tmp_path / "ali" / "synth_cuts_test.jsonl.gz"
    summary = align_corpus(exp, synth_data / "fbank/synth_cuts_test.jsonl.gz", out, epoch=2, allow_untrained=True)
    assert summary["aligned"] > 0
    cut = next(c for c in load_manifest_lazy(out) if c.supervisions[0].alignment)
    for item in cut.supervisions[0].alignment["phone"]:
        # Times count 20 ms ssl frames (the fbank Conformer's are 40 ms).
        steps = (item.start - cut.start) / 0.02
        assert steps == pytest.approx(round(steps), abs=1e-6) and item.duration / 0.02 == pytest.approx(
            round(item.duration / 0.02), abs=1e-6
        )

    path = tmp_path / "pkg" / "speecheq-package.pt"
    save_package(package_from_exp(exp, epoch=2), path)
    shutil.rmtree(folder)  # the package carries the encoder: no folder after training
    package = load_package(path)
    assert package.frame_shift == pytest.approx(0.02) and package.front_end.reads_audio
    export_torchscript(package, path.with_name("model.ts.pt"))
    errors = compare_with_eager(package, "torchscript", path.with_name("model.ts.pt"))
    assert max(errors.values()) < 1e-4, errors

    audio = tmp_path / "audio"
    write_wav(audio / "a.wav", tone(1.5, freq=180.0, seed=1))
    write_wav(audio / "b_8k.wav", tone(1.0, sr=8000, freq=240.0, seed=2), sr=8000)
    sources = collect_sources([audio])
    eager = list(Inferencer(package, make_engine(package), align=True).run(sources))
    traced = list(Inferencer(package, make_engine(package, "torchscript"), align=True).run(sources))
    assert [r["path"] for r in eager] == [str(audio / "a.wav"), str(audio / "b_8k.wav")]
    assert all("error" not in r for r in eager), eager
    for e, t in zip(eager, traced):
        assert np.allclose(list(e["probabilities"].values()), list(t["probabilities"].values()), atol=1e-4)
    assert eager[0]["duration"] == pytest.approx(1.5)
    for item in eager[0]["alignment"] or []:
        assert item["start"] / 0.02 == pytest.approx(round(item["start"] / 0.02), abs=1e-4)


def test_ssl_inference_trims_silence_on_the_audio(synth_data, tmp_path):
    """The ssl frames hold no energy: inference finds the silence on the fbank of the audio."""
    from speecheq.infer import Inferencer, collect_sources, make_engine
    from speecheq.model import SpeechEQModel, config_from_preset
    from speecheq.model.ssl import SSLEncoder
    from speecheq.package import load_package, package_from_model, save_package
    from speecheq.features import FrontEnd

    encoder = SSLEncoder.from_pretrained(write_random_model(tmp_path / "w", "wavlm"))
    model = SpeechEQModel(config_from_preset("tiny", num_mel_bins=32, ssl=encoder.to_settings(), vocab_size=3))
    features = FrontEnd(encoder.frames_config(), "audio").feature_config()
    path = save_package(
        package_from_model(
            model,
            categories=["neutral", "happy", "sad", "angry"],
            label_preset="4class",
            tokens=["<blk>", "A", "B"],
            features=features,
            trim_silence_db=30.0,
        ),
        tmp_path / "p.pt",
    )
    package = load_package(path)
    rng = np.random.default_rng(4)
    quiet = (1e-4 * rng.standard_normal(16000)).astype(np.float32)
    wav = write_wav(tmp_path / "padded.wav", np.concatenate([quiet, tone(1.5, seed=5), quiet]))
    durations = {}
    for db in (None, 0.0):
        (rec,) = list(Inferencer(package, make_engine(package), trim_silence_db=db).run(collect_sources([wav])))
        durations[db] = rec["duration"]
    assert durations[0.0] == pytest.approx(3.5, abs=0.02)
    assert durations[None] == pytest.approx(1.5 + 2 * 0.25, abs=0.05)

    # The ONNX metadata names that fbank, and examples/onnx_infer.py trims with it as infer does.
    import importlib.util

    import soundfile as sf
    from lhotse.features.base import FeatureExtractor

    from speecheq.export import onnx_metadata

    meta = onnx_metadata(package)
    assert meta["input_kind"] == "audio"
    trim = FeatureExtractor.from_dict(json.loads(meta["trim_feature_config"]))
    assert trim.frame_shift == pytest.approx(0.01) and trim.feature_dim(16000) == 80
    spec = importlib.util.spec_from_file_location("onnx_infer", REPO / "examples/onnx_infer.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    audio, _ = sf.read(wav, dtype="float32")
    _, n = example.audio_input(audio, meta)
    assert n / 16000 == pytest.approx(durations[None], abs=1e-3)


def test_ssl_options_are_checked_in_one_line(synth_data, tmp_path):
    from speecheq.features import SSL_FEATURE_TYPE
    from speecheq.train import train

    assert SSL_FEATURE_TYPE == FEATURE_TYPE
    with pytest.raises(SpeechEQError, match="go together"):
        train_args(synth_data, tmp_path / "exp", "--front-end", "ssl")
    folder = write_random_model(tmp_path / "w", "wavlm")
    with pytest.raises(SpeechEQError, match="--mixup-alpha works on stored fbank"):
        train(ssl_train_args(synth_data, tmp_path / "exp", folder, "--mixup-alpha", "0.2"))
    with pytest.raises(SpeechEQError, match="no such folder"):
        train(ssl_train_args(synth_data, tmp_path / "exp2", tmp_path / "missing"))
