import json

import pytest
import torch

from speecheq.model import (
    MIN_EXPORT_FRAMES,
    MIN_INPUT_FRAMES,
    OUTPUT_KEYS,
    PRESETS,
    ModelConfig,
    SpecAugment,
    SpeechEQModel,
    config_from_preset,
    output_lengths,
)

# Small enough that a forward pass takes milliseconds; every code path is the same.
TINY = dict(
    d_model=32,
    num_layers=2,
    num_heads=2,
    ff_dim=64,
    conv_kernel=7,
    subsampling_channels=8,
    pooling_dim=16,
    num_emotions=5,
    vocab_size=11,
)


def tiny_model(**overrides) -> SpeechEQModel:
    torch.manual_seed(0)
    return SpeechEQModel(ModelConfig(**{**TINY, **overrides})).eval()


def test_config_round_trips_through_json():
    config = config_from_preset("small", num_emotions=6, vocab_size=40)
    restored = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert restored.d_model == PRESETS["small"]["d_model"]


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown model config key"):
        ModelConfig.from_dict({"d_modle": 256})
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(d_model=100, num_heads=3)
    with pytest.raises(ValueError, match="odd"):
        ModelConfig(conv_kernel=4)
    with pytest.raises(ValueError, match="must be an int"):
        ModelConfig.from_dict({"d_model": "256"})
    with pytest.raises(ValueError, match="unknown model preset"):
        config_from_preset("huge")


def test_presets_build_and_count_parameters():
    counts = {name: SpeechEQModel(config_from_preset(name)).num_parameters() for name in PRESETS}
    assert counts["small"] < counts["default"]
    model = tiny_model()
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_forward_returns_the_documented_outputs():
    model = tiny_model()
    features = torch.randn(3, 120, 80)
    lens = torch.tensor([120, 77, 7])
    out = model(features, lens)
    assert set(out) == set(OUTPUT_KEYS)
    frames = output_lengths(120)
    assert out["ctc_log_probs"].shape == (3, frames, 11)
    assert torch.allclose(out["ctc_log_probs"].logsumexp(-1), torch.zeros(3, frames), atol=1e-5)
    assert out["encoder_lens"].dtype == torch.long
    assert out["encoder_lens"].tolist() == [output_lengths(n) for n in (120, 77, 7)]
    assert out["emotion_logits"].shape == (3, 5)
    assert out["intensity"].shape == (3,)
    assert ((out["intensity"] >= 0) & (out["intensity"] <= 1)).all()
    assert out["gender_logits"].shape == (3, 2)


def test_output_lengths_match_the_encoder_and_stay_positive():
    model = tiny_model()
    assert model.ctc_subsampling == 4
    for num_frames in list(range(MIN_INPUT_FRAMES, 40)) + [101, 300, 1001]:
        frames = output_lengths(num_frames)
        assert frames >= 1
        out = model(torch.randn(1, num_frames, 80), torch.tensor([num_frames]))
        assert out["ctc_log_probs"].shape[1] == frames
    assert output_lengths(torch.tensor([7, 11, 300])).tolist() == [1, 2, 74]
    assert model.output_lengths(torch.tensor([300])).tolist() == [74]


def test_too_short_input_raises_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match=">= 7 input frames"):
        model(torch.randn(2, 20, 80), torch.tensor([20, 6]))
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.randn(1, 20, 80), torch.tensor([21]))
    with pytest.raises(ValueError, match="features of shape"):
        model(torch.randn(1, 20, 40), torch.tensor([20]))


def test_padding_does_not_change_the_outputs():
    model = tiny_model()
    short = torch.randn(1, 53, 80)
    long = torch.randn(1, 211, 80)
    alone = model(short, torch.tensor([53]))
    # Padding holds garbage on purpose: it must never reach a valid frame.
    padded = torch.full((2, 211, 80), float("nan"))
    padded[0] = long[0]
    padded[1, :53] = short[0]
    together = model(padded, torch.tensor([211, 53]))
    frames = alone["encoder_lens"].item()
    assert together["encoder_lens"][1].item() == frames
    torch.testing.assert_close(together["ctc_log_probs"][1, :frames], alone["ctc_log_probs"][0], atol=1e-5, rtol=0)
    for key in ("emotion_logits", "intensity", "gender_logits"):
        torch.testing.assert_close(together[key][1], alone[key][0], atol=1e-5, rtol=0)
    assert all(torch.isfinite(together[key]).all() for key in OUTPUT_KEYS)


def test_normalisation_statistics_live_in_the_state_dict():
    model = tiny_model()
    mean, std = torch.linspace(-5, 5, 80), torch.linspace(1, 3, 80)
    model.set_normalization(mean.numpy(), std)
    state = model.state_dict()
    torch.testing.assert_close(state["feature_mean"], mean)
    torch.testing.assert_close(state["feature_std"], std)
    features, lens = torch.randn(2, 40, 80) * std + mean, torch.tensor([40, 31])
    reference = tiny_model()
    expected = reference(((features - mean) / std), lens)
    got = model(features, lens)
    torch.testing.assert_close(got["emotion_logits"], expected["emotion_logits"], atol=1e-5, rtol=0)
    restored = tiny_model()
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.feature_std, std)
    with pytest.raises(ValueError, match="shape"):
        model.set_normalization(torch.zeros(40), torch.ones(40))
    with pytest.raises(ValueError, match="> 0"):
        model.set_normalization(torch.zeros(80), torch.zeros(80))


def test_specaugment_masks_only_valid_frames_and_only_in_training():
    augment = SpecAugment(num_freq_masks=2, freq_mask_width=10, num_time_masks=2, time_mask_ratio=0.1)
    features = torch.ones(4, 200, 80)
    lens = torch.tensor([200, 150, 60, 7])
    augment.eval()
    assert augment(features, lens) is features
    augment.train()
    generator = torch.Generator().manual_seed(3)
    masked_any = False
    for _ in range(20):
        out = augment(features, lens, generator=generator)
        for i, n in enumerate(lens.tolist()):
            # Padding is never touched; at most 2 x 10% of the valid frames are fully masked.
            assert (out[i, n:] == 1).all()
            fully_masked_frames = (out[i, :n] == 0).all(dim=-1).sum().item()
            assert fully_masked_frames <= 2 * int(0.1 * n)
            fully_masked_bins = (out[i, :n] == 0).all(dim=0).sum().item()
            assert fully_masked_bins <= 20 or fully_masked_frames == n
        masked_any |= bool((out == 0).any())
    assert masked_any
    off = SpecAugment(num_freq_masks=0, num_time_masks=0).train()
    assert off(features, lens) is features


def test_training_step_gives_finite_gradients_everywhere():
    model = tiny_model().train()
    out = model(torch.randn(2, 64, 80), torch.tensor([64, 40]))
    loss = sum(out[key].float().sum() for key in OUTPUT_KEYS if key != "encoder_lens")
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_eval_mode_is_deterministic():
    model = tiny_model()
    features, lens = torch.randn(2, 50, 80), torch.tensor([50, 33])
    first, second = model(features, lens), model(features, lens)
    for key in OUTPUT_KEYS:
        assert torch.equal(first[key], second[key])


def test_torch_export_with_dynamic_time_matches_eager():
    model = tiny_model()
    time = torch.export.Dim.DYNAMIC
    exported = torch.export.export(
        model,
        (torch.randn(2, 100, 80), torch.tensor([100, 80])),
        dynamic_shapes={"features": {1: time}, "feature_lens": None},
    )
    features, lens = torch.randn(2, 173, 80), torch.tensor([173, MIN_EXPORT_FRAMES])
    eager = model(features, lens)
    got = exported.module()(features, lens)
    for key in OUTPUT_KEYS:
        if key == "encoder_lens":
            assert torch.equal(got[key], eager[key])
            continue
        relative = (got[key] - eager[key]).norm() / eager[key].norm()
        assert relative < 1e-4, key


@pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")
def test_torch_jit_trace_follows_other_lengths():
    model = tiny_model()
    traced = torch.jit.trace(model, (torch.randn(2, 90, 80), torch.tensor([90, 70])), strict=False)
    features, lens = torch.randn(3, 131, 80), torch.tensor([131, 64, 12])
    eager, got = model(features, lens), traced(features, lens)
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(got[key], eager[key], atol=1e-5, rtol=1e-5)


def test_upsampled_ctc_head_gives_each_encoder_frame_several_ctc_frames():
    model = tiny_model(ctc_upsample=2)
    features, lens = torch.randn(2, 120, 80), torch.tensor([120, 61])
    out = model(features, lens)
    frames = output_lengths(120)
    assert out["ctc_log_probs"].shape == (2, 2 * frames, 11)
    assert torch.allclose(out["ctc_log_probs"].logsumexp(-1), torch.zeros(2, 2 * frames), atol=1e-5)
    assert out["encoder_lens"].tolist() == [2 * output_lengths(n) for n in (120, 61)]
    assert model.ctc_subsampling == 2  # 20 ms CTC frames on 10 ms fbank
    # The two frames of one encoder frame come from their own projection rows, so they differ.
    assert not torch.allclose(out["ctc_log_probs"][:, 0::2], out["ctc_log_probs"][:, 1::2])
    # A target with as many phones as encoder frames (no room at 40 ms once repeats need a
    # blank) is alignable only upsampled: the loss is finite and the gradient flows.
    model.train()
    targets = torch.tensor([[1, 1, 2, 2] * (frames // 4)])
    log_probs = model(features[:1], lens[:1])["ctc_log_probs"]
    loss = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1),
        targets,
        torch.tensor([2 * frames]),
        torch.tensor([targets.shape[1]]),
        reduction="sum",
    )
    assert torch.isfinite(loss)
    loss.backward()
    assert model.phoneme_head.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="ctc_upsample"):
        ModelConfig(**{**TINY, "ctc_upsample": 0})


def test_utterance_cmn_removes_a_fixed_spectral_offset_and_travels_in_the_config():
    # A fixed log-mel offset per bin is what a microphone, a room or a gain adds to every frame.
    features, lens = torch.randn(2, 150, 80), torch.tensor([150, 90])
    offset = torch.linspace(-3.0, 4.0, 80)
    shifted = features + offset
    shifted[1, 90:] = float("nan")  # padding must not enter the utterance's mean
    with_cmn = tiny_model(utterance_cmn=True)
    a, b = with_cmn(features, lens), with_cmn(shifted, lens)
    for key in ("emotion_logits", "intensity", "gender_logits", "ctc_log_probs"):
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-4)
    plain = tiny_model()
    assert not torch.allclose(plain(features, lens)["emotion_logits"], plain(features + offset, lens)["emotion_logits"])
    # The same weights (tiny_model seeds them) without it see the offset: the option makes the invariance.
    assert not torch.allclose(plain(features, lens)["emotion_logits"], a["emotion_logits"], atol=1e-4)
    config = with_cmn.config.to_dict()
    assert config["utterance_cmn"] is True and ModelConfig.from_dict(config) == with_cmn.config
    assert "utterance_cmn" not in plain.config.to_dict()  # older checkpoints' configs compare equal
    with pytest.raises(ValueError, match="true or false"):
        ModelConfig.from_dict({**TINY, "utterance_cmn": "yes"})
    with pytest.raises(ValueError, match="not to an ssl front end"):
        ModelConfig.from_dict({**TINY, "utterance_cmn": True, "ssl": {}})


def test_utterance_cmn_survives_export():
    model = tiny_model(utterance_cmn=True)
    exported = torch.export.export(
        model,
        (torch.randn(2, 100, 80), torch.tensor([100, 80])),
        dynamic_shapes={"features": {1: torch.export.Dim.DYNAMIC}, "feature_lens": None},
    )
    features, lens = torch.randn(2, 140, 80), torch.tensor([140, 60])
    eager, got = model(features, lens), exported.module()(features + 2.5, lens)
    for key in ("emotion_logits", "intensity", "gender_logits"):
        torch.testing.assert_close(got[key], eager[key], atol=1e-4, rtol=1e-4)
