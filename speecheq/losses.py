"""Multitask loss for SpeechEQ: emotion, intensity, CTC phonemes, gender (the tasks of speecheq.tasks).

Each task's table entry names its kind of loss, one method here: ``_emotion``
(cross-entropy with class weights and mixup), ``_regression`` (MSE or 1 - CCC),
``_ctc``, ``_classification`` (cross-entropy).

Corpora label different subsets of the tasks, so every task is masked per
utterance: a missing label (emotion/gender -1, intensity NaN, phone_lens 0)
removes that utterance from that task only. A task with no valid utterance in
a batch contributes an exact 0 that is still attached to the graph, so
``backward()`` always works and gives finite (zero) gradients.

Each task's loss is the mean over its valid utterances; the total is the
weighted sum of those means. ``stats`` carries per-task sums and counts so a
trainer can report exact per-task means over many batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from speecheq.tasks import MISSING_CLASS, TABLE, Task, default_weights

INTENSITY_LOSSES = ("mse", "ccc")

# Keeps CCC finite when predictions and targets are all equal to one constant.
_CCC_EPS = 1e-8


def concordance_correlation(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient of two 1-D tensors (differentiable).

    Uses population (biased) moments, as in Lin (1989); numpy twin in
    speecheq.metrics.ccc.
    """
    pred_mean, target_mean = pred.mean(), target.mean()
    pred_centred, target_centred = pred - pred_mean, target - target_mean
    covariance = (pred_centred * target_centred).mean()
    denominator = pred_centred.square().mean() + target_centred.square().mean() + (pred_mean - target_mean).square()
    return 2.0 * covariance / (denominator + _CCC_EPS)


def _attached_zero(tensor: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that is part of ``tensor``'s graph, even if ``tensor`` holds inf/NaN."""
    return tensor.flatten()[:0].sum()


def _inside_lengths(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True on the first lengths[b] positions of row b."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def _ctc_min_frames(phones: torch.Tensor, phone_lens: torch.Tensor) -> torch.Tensor:
    """Frames CTC needs per utterance: one per label plus a blank between repeated labels."""
    second_of_pair_inside = _inside_lengths(phone_lens, phones.shape[1])[:, 1:]
    repeats = ((phones[:, 1:] == phones[:, :-1]) & second_of_pair_inside).sum(dim=1)
    return phone_lens + repeats


class MultitaskLoss:
    """Weighted sum of per-task mean losses with per-utterance masking of missing labels.

    weights: task -> weight, for tasks of speecheq.tasks.TABLE (``emotion``, ``intensity``,
        ``ctc``, ``gender``, ``speaker``). A weight of 0 or an absent task switches the task off: it is
        not computed and needs neither outputs nor labels.
    intensity_loss: ``"mse"`` or ``"ccc"`` (1 - CCC over the valid utterances
        of the batch; batches with fewer than 2 valid intensities use MSE, since
        a correlation needs at least two points).
    class_weights: optional per-emotion weights. Each utterance's cross-entropy
        is multiplied by its class weight and the task mean still divides by the
        number of valid utterances (not by the sum of weights, unlike
        torch's ``reduction="mean"``), so stats stay plain sums and counts.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        intensity_loss: str = "mse",
        class_weights: Sequence[float] | torch.Tensor | None = None,
    ):
        weights = dict(default_weights() if weights is None else weights)
        unknown = sorted(set(weights) - set(TABLE))
        if unknown:
            raise ValueError(f"unknown loss task(s) {unknown}; tasks are {list(TABLE)}")
        for task, weight in weights.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ValueError(f"loss weight for {task!r} must be a finite number >= 0, got {weight!r}")
        self.weights = {task: float(weights[task]) for task in TABLE if weights.get(task, 0) > 0}
        if not self.weights:
            raise ValueError("every loss weight is 0 or missing; at least one task must be on")
        if intensity_loss not in INTENSITY_LOSSES:
            raise ValueError(f"intensity_loss must be one of {INTENSITY_LOSSES}, got {intensity_loss!r}")
        self.intensity_loss = intensity_loss
        self.class_weights = None
        if class_weights is not None:
            self.class_weights = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
            if not (torch.isfinite(self.class_weights).all() and (self.class_weights > 0).all()):
                raise ValueError("class_weights must be finite and > 0")

    @property
    def active_tasks(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def __call__(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]):
        """Returns ``(total_loss, stats)``; stats[task] = {"loss": sum, "count": n, ...}."""
        total = None
        stats: dict[str, dict[str, float | int]] = {}
        for task, weight in self.weights.items():
            spec = TABLE[task]
            if spec.output not in outputs:
                raise ValueError(f"the {task} task needs {spec.needs}")
            # The table names the kind of loss (speecheq.tasks.Task.loss); the kinds are the methods below.
            loss_sum, count, extra = getattr(self, f"_{spec.loss}")(outputs, batch, spec)
            term = weight * loss_sum / max(count, 1)
            total = term if total is None else total + term
            stats[task] = {"loss": float(loss_sum.detach()), "count": count, **extra}
        return total, stats

    def _cross_entropy(
        self, logits: torch.Tensor, targets: torch.Tensor, task: str, class_weights: torch.Tensor | None
    ):
        targets = targets.to(logits.device).long()
        num_classes = logits.shape[-1]
        if targets.numel() and (targets.min() < MISSING_CLASS or targets.max() >= num_classes):
            raise ValueError(
                f"{task} labels must be in [0, {num_classes}) or {MISSING_CLASS} for missing, "
                f"got values in [{int(targets.min())}, {int(targets.max())}]"
            )
        if class_weights is not None:
            if class_weights.numel() != num_classes:
                raise ValueError(f"{class_weights.numel()} class weights for {num_classes} {task} classes")
            class_weights = class_weights.to(device=logits.device, dtype=logits.dtype)
        # Ignored (missing) utterances get a loss of exactly 0 and no gradient.
        per_utterance = F.cross_entropy(
            logits, targets, weight=class_weights, ignore_index=MISSING_CLASS, reduction="none"
        )
        count = int((targets != MISSING_CLASS).sum())
        return per_utterance.sum(), count, {}

    def _emotion(self, outputs, batch, task: Task):
        logits, targets = outputs[task.output], _label(batch, task.name, task.name)
        loss_sum, count, extra = self._cross_entropy(logits, targets, task.name, self.class_weights)
        if "mix_partner" not in batch:
            return loss_sum, count, extra
        # Mixup: lam on the utterance's own class, 1 - lam on its partner's (where the
        # partner has a label; otherwise the utterance's own class keeps all the weight).
        targets = targets.to(logits.device).long()
        partner = targets[batch["mix_partner"].to(logits.device)]
        lam = batch["mix_lam"].to(device=logits.device, dtype=logits.dtype)
        own = F.cross_entropy(logits, targets, ignore_index=MISSING_CLASS, reduction="none")
        other = F.cross_entropy(logits, partner, ignore_index=MISSING_CLASS, reduction="none")
        lam = torch.where(partner == MISSING_CLASS, torch.ones_like(lam), lam)
        mixed = lam * own + (1 - lam) * other
        if self.class_weights is not None:
            w = self.class_weights.to(device=logits.device, dtype=logits.dtype)
            mixed = mixed * torch.where(targets == MISSING_CLASS, torch.zeros_like(lam), w[targets.clamp(min=0)])
        return torch.where(targets == MISSING_CLASS, torch.zeros_like(mixed), mixed).sum(), count, extra

    def _classification(self, outputs, batch, task: Task):
        return self._cross_entropy(outputs[task.output], _label(batch, task.name, task.name), task.name, None)

    def _regression(self, outputs, batch, task: Task):
        pred = outputs[task.output]
        target = _label(batch, task.name, task.name).to(device=pred.device, dtype=pred.dtype)
        valid = ~torch.isnan(target)
        count = int(valid.sum())
        if self.intensity_loss == "ccc" and count >= 2:
            ccc = concordance_correlation(pred[valid], target[valid])
            return (1.0 - ccc) * count, count, {}
        # Filling missing targets with the (detached) prediction gives them a
        # zero error and zero gradient; multiplying a NaN by 0 would not.
        target = torch.where(valid, target, pred.detach())
        return (pred - target).square().sum(), count, {}

    def _ctc(self, outputs, batch, task: Task):
        log_probs = outputs[task.output]
        encoder_lens = outputs["encoder_lens"].to(log_probs.device).long()
        phones = _label(batch, "phones", "ctc").to(log_probs.device).long()
        phone_lens = _label(batch, "phone_lens", "ctc").to(log_probs.device).long()
        _check_phones(phones, phone_lens, log_probs.shape[-1])
        labelled = phone_lens > 0
        alignable = encoder_lens >= _ctc_min_frames(phones, phone_lens)
        valid = labelled & alignable
        count = int(valid.sum())
        skipped = int((labelled & ~alignable).sum())
        if count == 0:
            return _attached_zero(log_probs), 0, {"skipped": skipped}
        # Per phone, like torch's reduction="mean": an utterance-level sum grows with the
        # transcript (RAVDESS ~120 nats at start) and would drown the emotion loss (~2).
        per_utt = F.ctc_loss(
            log_probs[valid].transpose(0, 1),
            phones[valid],
            encoder_lens[valid],
            phone_lens[valid],
            blank=0,
            reduction="none",
            zero_infinity=True,
        )
        loss_sum = (per_utt / phone_lens[valid].to(per_utt.dtype)).sum()
        return loss_sum, count, {"skipped": skipped}


def _check_phones(phones: torch.Tensor, phone_lens: torch.Tensor, vocab_size: int) -> None:
    if phone_lens.numel() and int(phone_lens.max()) > phones.shape[1]:
        raise ValueError(f"phone_lens up to {int(phone_lens.max())} but phones has {phones.shape[1]} columns")
    tokens = phones[_inside_lengths(phone_lens, phones.shape[1])]
    if tokens.numel() and (int(tokens.min()) < 1 or int(tokens.max()) >= vocab_size):
        raise ValueError(
            f"phone ids must be in [1, {vocab_size}) (0 is the CTC blank), "
            f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
        )


def _label(batch: Mapping[str, torch.Tensor], key: str, task: str) -> torch.Tensor:
    if key not in batch:
        raise ValueError(
            f"batch has no {key!r} labels; mark missing labels per utterance, "
            f"or switch the task off with a weight of 0 for {task!r}"
        )
    return batch[key]
