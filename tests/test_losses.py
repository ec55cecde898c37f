import math

import pytest
import torch

from speecheq.losses import MultitaskLoss, concordance_correlation

NAN = float("nan")


def make_outputs(batch_size=3, frames=4, vocab=3, requires_grad=True):
    torch.manual_seed(0)
    tensors = {
        "ctc_log_probs": torch.randn(batch_size, frames, vocab).log_softmax(-1),
        "emotion_logits": torch.randn(batch_size, 4),
        "intensity": torch.rand(batch_size),
        "gender_logits": torch.randn(batch_size, 2),
    }
    for tensor in tensors.values():
        tensor.requires_grad_(requires_grad)
    tensors["encoder_lens"] = torch.full((batch_size,), frames)
    return tensors


def make_batch():
    return {
        "emotion": torch.tensor([0, -1, 3]),
        "intensity": torch.tensor([0.2, NAN, 0.9]),
        "gender": torch.tensor([-1, 1, 0]),
        "phones": torch.tensor([[1, 2], [2, 0], [0, 0]]),
        "phone_lens": torch.tensor([2, 1, 0]),
    }


def test_hand_computed_values_on_tiny_tensors():
    log_half = math.log(0.5)
    outputs = {
        # Utterance 0: logits (0, 0) -> CE = ln 2. Utterance 1: (ln 3, 0) -> p0 = 3/4, CE = ln(4/3).
        "emotion_logits": torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]),
        # Squared errors: (0.5 - 1.0)^2 = 0.25; utterance 1 is missing.
        "intensity": torch.tensor([0.5, 0.2]),
        # Gender utterance 1: logits (0, 0), target F -> ln 2; utterance 0 missing.
        "gender_logits": torch.tensor([[5.0, -5.0], [0.0, 0.0]]),
        # Uniform over {blank, 1} on 2 frames, target "1": paths 11, 1b, b1 each 1/4 -> -ln(3/4).
        "ctc_log_probs": torch.full((2, 2, 2), log_half),
        "encoder_lens": torch.tensor([2, 2]),
    }
    batch = {
        "emotion": torch.tensor([0, 0]),
        "intensity": torch.tensor([1.0, NAN]),
        "gender": torch.tensor([-1, 1]),
        "phones": torch.tensor([[1], [0]]),
        "phone_lens": torch.tensor([1, 0]),
    }
    weights = {"emotion": 1.0, "intensity": 0.5, "ctc": 0.1, "gender": 0.1}
    total, stats = MultitaskLoss(weights)(outputs, batch)
    emotion = (math.log(2) + math.log(4 / 3)) / 2
    expected = 1.0 * emotion + 0.5 * 0.25 + 0.1 * -math.log(0.75) + 0.1 * math.log(2)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert stats["emotion"] == {"loss": pytest.approx(2 * emotion), "count": 2}
    assert stats["intensity"] == {"loss": pytest.approx(0.25), "count": 1}
    assert stats["gender"] == {"loss": pytest.approx(math.log(2)), "count": 1}
    assert stats["ctc"] == {"loss": pytest.approx(-math.log(0.75)), "count": 1, "skipped": 0}


def test_changing_masked_labels_or_their_outputs_changes_nothing():
    loss = MultitaskLoss()
    outputs, batch = make_outputs(), make_batch()
    total, stats = loss(outputs, batch)
    changed_outputs = {key: value.detach().clone() for key, value in outputs.items()}
    changed_outputs["emotion_logits"][1] += 10.0  # emotion of utterance 1 is missing
    changed_outputs["gender_logits"][0] -= 10.0  # gender of utterance 0 is missing
    changed_outputs["intensity"][1] = 0.0  # intensity of utterance 1 is missing
    changed_batch = dict(batch, phones=batch["phones"].clone())
    changed_batch["phones"][2] = torch.tensor([2, 1])  # phone_lens 0: missing
    other_total, other_stats = loss(changed_outputs, changed_batch)
    assert other_total.item() == pytest.approx(total.item(), rel=1e-6)
    assert other_stats == stats


def test_all_missing_gives_exact_zero_and_finite_grads():
    outputs = make_outputs()
    outputs["ctc_log_probs"].data[0, 0, 0] = -float("inf")  # must not leak as NaN
    batch = {
        "emotion": torch.full((3,), -1),
        "intensity": torch.full((3,), NAN),
        "gender": torch.full((3,), -1),
        "phones": torch.zeros(3, 2, dtype=torch.long),
        "phone_lens": torch.zeros(3, dtype=torch.long),
    }
    for intensity_loss in ("mse", "ccc"):
        total, stats = MultitaskLoss(intensity_loss=intensity_loss)(outputs, batch)
        assert total.item() == 0.0
        assert all(stats[task]["count"] == 0 and stats[task]["loss"] == 0.0 for task in stats)
        total.backward()
        for key in ("ctc_log_probs", "emotion_logits", "intensity", "gender_logits"):
            assert outputs[key].grad is not None
            assert torch.isfinite(outputs[key].grad).all()
            assert (outputs[key].grad == 0).all()
            outputs[key].grad = None


def test_weights_switch_tasks_off():
    outputs = make_outputs()
    only_emotion = {"emotion": make_batch()["emotion"]}  # other labels absent entirely
    total, stats = MultitaskLoss({"emotion": 1.0, "ctc": 0.0})(outputs, only_emotion)
    assert set(stats) == {"emotion"}
    emotion_only = stats["emotion"]["loss"] / stats["emotion"]["count"]
    assert total.item() == pytest.approx(emotion_only)
    _, full_stats = MultitaskLoss()(outputs, make_batch())
    assert set(full_stats) == {"emotion", "intensity", "ctc", "gender"}
    with pytest.raises(ValueError, match="no 'intensity' labels"):
        MultitaskLoss({"intensity": 1.0})(outputs, only_emotion)


def test_invalid_configuration_is_rejected():
    with pytest.raises(ValueError, match="unknown loss task"):
        MultitaskLoss({"emotions": 1.0})
    with pytest.raises(ValueError, match="at least one task"):
        MultitaskLoss({"emotion": 0.0})
    with pytest.raises(ValueError, match=">= 0"):
        MultitaskLoss({"emotion": -1.0})
    with pytest.raises(ValueError, match="intensity_loss"):
        MultitaskLoss(intensity_loss="mae")


def test_labels_out_of_range_are_rejected():
    outputs = make_outputs()
    batch = dict(make_batch(), emotion=torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="emotion labels"):
        MultitaskLoss({"emotion": 1.0})(outputs, batch)
    batch = dict(make_batch(), phones=torch.tensor([[1, 3], [2, 0], [0, 0]]))
    with pytest.raises(ValueError, match="phone ids"):
        MultitaskLoss({"ctc": 1.0})(outputs, batch)


def test_ccc_loss_and_its_single_utterance_fallback():
    outputs = {"intensity": torch.tensor([0.0, 1.0, 0.3])}
    loss = MultitaskLoss({"intensity": 1.0}, intensity_loss="ccc")
    # Perfect agreement: cov = 0.25, var = 0.25 each, equal means -> CCC = 2*0.25/0.5 = 1, loss 0.
    total, stats = loss(outputs, {"intensity": torch.tensor([0.0, 1.0, NAN])})
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    # Reversed: cov = -0.25 -> CCC = -1, loss 2; stats hold the sum 2 * count.
    total, stats = loss(outputs, {"intensity": torch.tensor([1.0, 0.0, NAN])})
    assert total.item() == pytest.approx(2.0, rel=1e-6)
    assert stats["intensity"] == {"loss": pytest.approx(4.0), "count": 2}
    # One valid utterance: MSE (0.3 - 0.5)^2 = 0.04.
    total, _ = loss(outputs, {"intensity": torch.tensor([NAN, NAN, 0.5])})
    assert total.item() == pytest.approx(0.04, rel=1e-5)
    # Same constant everywhere: finite CCC of 0 rather than 0 / 0.
    constant = concordance_correlation(torch.full((4,), 0.5), torch.full((4,), 0.5))
    assert constant.item() == 0.0


def test_ctc_skips_utterances_too_short_to_align():
    outputs = make_outputs(batch_size=3, frames=3)
    outputs["encoder_lens"] = torch.tensor([3, 2, 2])
    batch = {
        # 2 frames cannot hold 3 labels, nor "1 1" which needs a blank in between.
        "phones": torch.tensor([[1, 2, 0], [1, 2, 1], [1, 1, 0]]),
        "phone_lens": torch.tensor([2, 3, 2]),
    }
    total, stats = MultitaskLoss({"ctc": 1.0})(outputs, batch)
    assert stats["ctc"]["count"] == 1
    assert stats["ctc"]["skipped"] == 2
    assert math.isfinite(total.item()) and total.item() > 0


def test_class_weights_scale_each_utterance():
    outputs = {"emotion_logits": torch.zeros(2, 2)}
    batch = {"emotion": torch.tensor([0, 1])}
    # Each CE is ln 2; weighted by 1 and 3 and divided by the count 2: 2 ln 2.
    total, stats = MultitaskLoss({"emotion": 1.0}, class_weights=[1.0, 3.0])(outputs, batch)
    assert total.item() == pytest.approx(2 * math.log(2))
    assert stats["emotion"]["loss"] == pytest.approx(4 * math.log(2))
    with pytest.raises(ValueError, match="class weights"):
        MultitaskLoss({"emotion": 1.0}, class_weights=[1.0, 1.0, 1.0])(outputs, batch)


def test_ctc_is_normalised_per_phone_like_torch_mean():
    torch.manual_seed(0)
    log_probs = torch.randn(3, 12, 5).log_softmax(-1)
    phones = torch.tensor([[1, 2, 3, 4], [2, 2, 0, 0], [4, 0, 0, 0]])
    lens = torch.tensor([4, 2, 1])
    outputs = {"ctc_log_probs": log_probs, "encoder_lens": torch.tensor([12, 10, 8])}
    total, stats = MultitaskLoss({"ctc": 1.0})(outputs, {"phones": phones, "phone_lens": lens})
    reference = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), phones, outputs["encoder_lens"], lens, reduction="mean"
    )
    assert total.item() == pytest.approx(reference.item(), rel=1e-5)
    assert stats["ctc"]["loss"] / stats["ctc"]["count"] == pytest.approx(reference.item(), rel=1e-5)
