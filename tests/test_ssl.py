"""The ssl front end's encoder (speecheq.model.ssl) on tiny randomly initialised WavLM / HuBERT models.

The models are written into tmp_path (nothing is downloaded); their CNN keeps the published
strides, so frames are 20 ms as with the real weights.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from speecheq.errors import SpeechEQError
from speecheq.model.ssl import SSLEncoder, preprocessing_of, write_random_model
from tests.conftest import tone

SR = 16000


@pytest.fixture(params=["wavlm", "hubert"])
def model_dir(request, tmp_path):
    return write_random_model(tmp_path / request.param, request.param)


@pytest.fixture
def large_layout_dir(tmp_path):
    """The "large" layout: layer-norm CNN, pre-LN transformer, masks and normalised input."""
    return write_random_model(
        tmp_path / "wavlm-large-like",
        "wavlm",
        preprocessor={"sampling_rate": SR, "do_normalize": True, "return_attention_mask": True},
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )


def waveforms(*seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [int(s * SR) for s in seconds]
    batch = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        batch[i, :n] = torch.from_numpy(tone(n / SR, seed=i, freq=180.0 + 40 * i))
    return batch, torch.tensor(lengths)


def test_frames_are_20ms_and_sizes_come_from_the_model(model_dir):
    encoder = SSLEncoder.from_pretrained(model_dir)
    assert encoder.frame_shift == pytest.approx(0.02)
    assert encoder.output_dim == 32
    # The published CNN's receptive field: 25 ms.
    assert encoder.min_input_samples == 400
    assert encoder.output_lengths(400) == 1 and encoder.output_lengths(399) == 0
    x, lens = waveforms(1.0, 0.5)
    features, frames = encoder(x, lens)
    assert frames.tolist() == [49, 24]
    assert features.shape == (2, 49, 32)
    assert torch.isfinite(features).all()


def test_wav2vec2_loads_too(tmp_path):
    encoder = SSLEncoder.from_pretrained(write_random_model(tmp_path / "w2v", "wav2vec2"))
    features, frames = encoder(*waveforms(0.5))
    assert encoder.frame_shift == pytest.approx(0.02) and frames.tolist() == [24] and features.shape == (1, 24, 32)


def test_frozen_only_the_layer_weights_learn(model_dir):
    encoder = SSLEncoder.from_pretrained(model_dir)
    assert [n for n, p in encoder.named_parameters() if p.requires_grad] == ["layer_weights"]
    assert len(encoder.layer_weights) == 3  # the CNN projection and 2 layers
    encoder.train()
    assert not encoder.model.training
    x, lens = waveforms(0.6, 0.4)
    first, _ = encoder(x, lens)
    # Frozen means eval mode too: no dropout, LayerDrop or HF time masking under training.
    second, _ = encoder(x, lens)
    torch.testing.assert_close(first, second)
    first.sum().backward()
    assert encoder.layer_weights.grad is not None and torch.isfinite(encoder.layer_weights.grad).all()


def test_top_layers_fine_tune_and_train_a_head(model_dir):
    encoder = SSLEncoder.from_pretrained(model_dir, finetune_top=1)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert "layer_weights" in trainable
    assert any(n.startswith("model.encoder.layers.1.") for n in trainable)
    assert not any(n.startswith(("model.encoder.layers.0.", "model.feature_extractor.")) for n in trainable)
    encoder.train()
    assert encoder.model.encoder.layers[1].training and not encoder.model.encoder.layers[0].training
    frozen = {n: p.detach().clone() for n, p in encoder.named_parameters() if not p.requires_grad}
    head = torch.nn.Linear(encoder.output_dim, 2)
    optimizer = torch.optim.AdamW(
        [*filter(lambda p: p.requires_grad, encoder.parameters()), *head.parameters()], lr=1e-2
    )
    x, lens = waveforms(0.6, 0.5)
    targets = torch.tensor([0, 1])
    losses = []
    for _ in range(8):
        features, frames = encoder(x, lens)
        valid = (torch.arange(features.shape[1]) < frames.unsqueeze(1)).unsqueeze(-1)
        pooled = (features * valid).sum(1) / frames.unsqueeze(1)
        loss = torch.nn.functional.cross_entropy(head(pooled), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for name, parameter in encoder.named_parameters():
        if name in frozen:
            assert torch.equal(parameter, frozen[name]), name


def test_padding_does_not_change_the_large_layout(large_layout_dir):
    encoder = SSLEncoder.from_pretrained(large_layout_dir).eval()
    assert encoder.normalize and encoder.attention_mask
    x, lens = waveforms(0.4, 1.0)
    x[0, lens[0] :] = 3.0  # padding never counts, whatever it holds
    with torch.no_grad():
        batched, frames = encoder(x, lens)
        alone, alone_frames = encoder(x[:1, : lens[0]], lens[:1])
    assert frames[0] == alone_frames[0] == alone.shape[1]
    torch.testing.assert_close(batched[0, : frames[0]], alone[0], atol=1e-4, rtol=1e-4)


def test_settings_rebuild_the_encoder_without_its_folder(model_dir):
    encoder = SSLEncoder.from_pretrained(model_dir, finetune_top=1).eval()
    settings = json.loads(json.dumps(encoder.to_settings()))
    rebuilt = SSLEncoder(**settings)
    rebuilt.load_state_dict(encoder.state_dict())
    rebuilt.eval()
    x, lens = waveforms(0.5, 0.3)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x, lens)[0], encoder(x, lens)[0])
    assert rebuilt.finetune_top == 1 and rebuilt.frame_shift == encoder.frame_shift


def test_preprocessing_follows_the_processor_file(tmp_path):
    assert preprocessing_of(tmp_path, {"feat_extract_norm": "group"}) == {
        "sample_rate": 16000,
        "normalize": False,
        "attention_mask": False,
    }
    assert preprocessing_of(tmp_path, {"feat_extract_norm": "layer"})["attention_mask"] is True
    (tmp_path / "preprocessor_config.json").write_text('{"do_normalize": true, "sampling_rate": 16000}')
    assert preprocessing_of(tmp_path, {"feat_extract_norm": "group"})["normalize"] is True


def test_too_short_input_is_refused(model_dir):
    encoder = SSLEncoder.from_pretrained(model_dir)
    with pytest.raises(ValueError, match="400 samples"):
        encoder.check_lengths(torch.tensor([16000, 399]))
    encoder.check_lengths(torch.tensor([400]))


def test_bad_folders_are_one_line(tmp_path, model_dir):
    def message(folder, **kwargs):
        with pytest.raises(SpeechEQError) as error:
            SSLEncoder.from_pretrained(folder, **kwargs)
        assert "\n" not in str(error.value)
        return str(error.value)

    assert "no such folder" in message(tmp_path / "missing") and "docs/ssl.md" in message(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "no config.json" in message(tmp_path / "empty")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    assert "not supported" in message(tmp_path / "bert")
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text((model_dir / "config.json").read_text())
    assert "cannot load it" in message(tmp_path / "no-weights")
    assert "from 0 to 2" in message(model_dir, finetune_top=3)


def test_without_transformers_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(SpeechEQError, match=r"speecheq\[ssl\]"):
        SSLEncoder.from_pretrained(write_dir_with_config(tmp_path))


def write_dir_with_config(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "wavlm"}')
    return folder


def test_lhotse_knows_the_front_end_by_its_frames(model_dir):
    from lhotse.features.base import FeatureExtractor

    encoder = SSLEncoder.from_pretrained(model_dir)
    config = encoder.frames_config()
    assert config["feature_type"] == "ssl" and "device" not in config
    frames = FeatureExtractor.from_dict(json.loads(json.dumps(config)))
    assert frames.frame_shift == pytest.approx(0.02) and frames.feature_dim(SR) == 32
    assert frames.config.frame_length == pytest.approx(0.025) and frames.config.model_type == model_dir.name
    with pytest.raises(SpeechEQError, match="frames come from the model"):
        frames.extract(torch.zeros(SR).numpy(), SR)


def test_traced_encoder_follows_other_lengths(model_dir):
    # What a TorchScript engine of an ssl package needs: no Python branch on a length is baked in.
    encoder = SSLEncoder.from_pretrained(model_dir).eval()
    with torch.no_grad():
        traced = torch.jit.trace(encoder, waveforms(1.0, 0.6), strict=False, check_trace=False)
        x, lens = waveforms(0.5, 1.5, 0.8)
        torch.testing.assert_close(traced(x, lens)[0], encoder(x, lens)[0], atol=1e-5, rtol=1e-4)
        assert traced(x, lens)[1].tolist() == encoder(x, lens)[1].tolist()
