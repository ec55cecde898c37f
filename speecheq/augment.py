"""Training-time augmentation: speed perturbation, random crops, CopyPaste and mixup.

Cut-level choices (speed factor, crop window, pasted partner) are drawn from a generator seeded by
(seed, epoch, cut id), so they do not depend on batch composition or worker count,
and a resumed run draws the same ones. Mixup draws from the trainer's torch RNG,
which checkpoints restore.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from speecheq.errors import SpeechEQError

log = logging.getLogger("speecheq")


def parse_factors(text: str) -> Tuple[float, ...]:
    """'0.9,1.1' -> (1.0, 0.9, 1.1): the original speed always stays among the choices."""
    if not text:
        return ()
    try:
        factors = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpeechEQError(f"--speed-perturb: expected comma-separated factors, got {text!r}") from None
    if any(not 0.5 <= f <= 2.0 for f in factors):
        raise SpeechEQError(f"--speed-perturb: factors must be in [0.5, 2.0], got {factors}")
    return tuple(dict.fromkeys([1.0, *factors]))


def cut_rng(seed: int, epoch: int, cut_id: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}/{epoch}/{cut_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


@dataclass
class CutAugment:
    """What happens to each training cut before its features are read.

    speed_factors: choose one factor per cut and epoch, uniformly (1.0 included); a
        perturbed cut gets lhotse's id (``<id>_sp0.9``) and its features are computed on
        the fly with the extractor that made the stored ones.
    crop: cuts longer than this many seconds are cropped to a random window of it.
        A cropped cut keeps its utterance labels and loses its phone transcript (the
        window holds an unknown part of it), so CTC skips it.
    copy_paste: probability that a cut is joined with a neutral utterance of its own
        speaker from ``partners`` (:func:`neutral_partners`), before or after it at random,
        keeping the cut's labels (Pappagari et al. 2021's neutral CopyPaste): the model
        sees the emotion next to the speaker's neutral voice. CTC learns both transcripts
        in their order.
    """

    speed_factors: Sequence[float] = ()
    crop: float = 0.0
    seed: int = 0
    epoch: int = 0
    copy_paste: float = 0.0
    partners: Optional[Dict[str, List]] = None

    def __post_init__(self):
        if not 0.0 <= self.copy_paste <= 1.0:
            raise SpeechEQError(f"--copy-paste is a probability in [0, 1], got {self.copy_paste}")
        if self.copy_paste > 0 and not self.partners:
            raise SpeechEQError("--copy-paste: the training cuts have no neutral utterance to paste")

    @property
    def active(self) -> bool:
        return len(self.speed_factors) > 1 or self.crop > 0 or self.copy_paste > 0

    def partner(self, cut) -> Optional[Tuple[object, bool]]:
        """(neutral cut of the same speaker, whether it goes first), or None: no paste this epoch.

        Drawn from its own stream, so turning CopyPaste on leaves the speed and crop draws as they were."""
        if self.copy_paste <= 0:
            return None
        rng = cut_rng(self.seed, self.epoch, f"paste/{cut.id}")
        if rng.random() >= self.copy_paste:
            return None
        choices = [c for c in self.partners.get(cut.supervisions[0].speaker, ()) if c.id != cut.id]
        if not choices:
            return None
        return rng.choice(choices), rng.random() < 0.5

    def apply(self, cut):
        """Returns (cut, features or None when the stored ones apply, phones_valid)."""
        rng = cut_rng(self.seed, self.epoch, cut.id)
        factor = rng.choice(list(self.speed_factors)) if len(self.speed_factors) > 1 else 1.0
        phones_valid = True
        if self.crop > 0 and cut.duration * factor > self.crop:
            # Crop in the original time base; speed perturbation then rescales the window.
            length = self.crop / factor
            offset = rng.uniform(0.0, cut.duration - length)
            cut = cut.truncate(offset=offset, duration=length, preserve_id=True)
            phones_valid = False
        if factor == 1.0:
            return cut, None, phones_valid
        perturbed = cut.drop_features().perturb_speed(factor)
        return perturbed, compute_like(cut, perturbed), phones_valid


def neutral_partners(cuts) -> Dict[str, List]:
    """Each speaker's neutral training cuts: what CopyPaste joins to that speaker's utterances."""
    from speecheq.labels import NEUTRAL

    partners: Dict[str, List] = {}
    for cut in cuts:
        sup = cut.supervisions[0]
        if (sup.custom or {}).get("emotion") == NEUTRAL:
            partners.setdefault(sup.speaker, []).append(cut)
    return partners


_EXTRACTORS: dict = {}


def compute_like(reference, cut):
    """Features of ``cut`` from the extractor type that made ``reference``'s stored features."""
    from speecheq.features import EXTRACTOR_OF_FEATURE_TYPE, make_extractor, spectral_dims

    kind = reference.features.type
    if kind not in _EXTRACTORS:
        if kind not in EXTRACTOR_OF_FEATURE_TYPE:
            raise SpeechEQError(f"cut {reference.id}: no on-the-fly extractor for stored features of type {kind!r}")
        _EXTRACTORS[kind] = make_extractor(
            EXTRACTOR_OF_FEATURE_TYPE[kind], num_mel_bins=spectral_dims(kind, reference.num_features)
        )
    feats = cut.compute_features(_EXTRACTORS[kind])
    if feats.shape[1] != reference.num_features:
        raise SpeechEQError(
            f"on-the-fly features of {cut.id} have {feats.shape[1]} dims, the stored ones "
            f"{reference.num_features}: the extractor config differs from the fbank stage's"
        )
    return torch.from_numpy(feats)


def mixup(
    features: torch.Tensor, feature_lens: torch.Tensor, alpha: float, generator: Optional[torch.Generator] = None
):
    """Mix each utterance with another of the batch: x = lam * x_a + (1 - lam) * x_b.

    lam ~ Beta(alpha, alpha), folded to >= 0.5 so that utterance a dominates: the
    batch keeps a's length, phones (CTC), intensity and gender, and only the emotion
    target becomes soft (lam on a's class, 1 - lam on b's). Frames past b's end stay
    a's alone. Mixing raw log-mel equals mixing normalised features (the model's
    normalisation is affine). Returns (features, partner index, lam per utterance).
    """
    import numpy as np

    batch = features.shape[0]
    perm = torch.randperm(batch, generator=generator)
    # torch's Beta takes no generator: seed numpy's from ours, so resume repeats the draws.
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=batch)).float()
    lam = torch.maximum(lam, 1.0 - lam)
    frames = torch.arange(features.shape[1])
    partner_valid = frames.unsqueeze(0) < feature_lens[perm].unsqueeze(1)
    weight = torch.where(partner_valid, lam.unsqueeze(1), torch.ones_like(lam).unsqueeze(1)).unsqueeze(-1)
    mixed = weight * features + (1.0 - weight) * features[perm]
    return mixed, perm, lam
