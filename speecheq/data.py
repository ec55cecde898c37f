"""From cut manifests to model batches: features, per-task targets, per-task masks.

A batch is a dict that the model and the loss share:

``features`` (B, T, F) raw log-mel fbank (the model normalises), or (B, N) audio samples
for a front end that reads audio (ssl), ``feature_lens`` (B,) frames or samples, ``emotion`` (B,) class index of the run's preset or -1, ``intensity`` (B,)
in [0, 1] or NaN, ``gender`` (B,) 0 = M, 1 = F or -1, ``phones`` (B, U) token ids
padded with 0 and ``phone_lens`` (B,) with 0 where a cut has no phones,
``speaker`` (B,) index among the training speakers or -1 (the adversary's target),
``corpus`` and ``cut_ids`` (lists). Missing labels are marked, never guessed: the
loss masks each task per utterance.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from speecheq.augment import CutAugment
from speecheq.errors import SpeechEQError
from speecheq.features import FrontEnd, default_front_end
from speecheq.labels import LabelScheme
from speecheq.tasks import TABLE as TASK_TABLE
from speecheq.tasks import TargetContext
from speecheq.text.tokens import TokenTable

log = logging.getLogger("speecheq")


def cut_targets(cut, ctx: TargetContext) -> dict:
    """The cut's target for every task of the table (its missing value where unlabelled), and its corpus."""
    return {
        **{name: task.target(cut, ctx) for name, task in TASK_TABLE.items()},
        "corpus": (cut.supervisions[0].custom or {}).get("corpus", ""),
    }


class SpeechEQDataset(torch.utils.data.Dataset):
    """lhotse map-style dataset: a sampler hands it a CutSet, it returns a batch dict.

    ``front_end`` (:class:`speecheq.features.FrontEnd`, by default the fbank stage's) says what
    the inputs are and how long their frames last; ``input_strategy`` (a lhotse
    ``PrecomputedFeatures``, ``OnTheFlyFeatures`` or ``AudioSamples``; by default the front end's
    :meth:`~speecheq.features.FrontEnd.input_strategy`) collates them. Stored features must have
    the front end's frame shift, so that the model's frames last what the front end says.
    """

    def __init__(
        self,
        scheme: LabelScheme,
        tokens: Optional[TokenTable] = None,
        speaker_cmvn: Optional[dict] = None,
        augment: Optional[CutAugment] = None,
        speakers: Optional[Dict[str, int]] = None,
        front_end: Optional[FrontEnd] = None,
        input_strategy=None,
    ):
        self.scheme = scheme
        self.tokens = tokens
        self.speaker_cmvn = speaker_cmvn
        # Training only: cut-level augmentation, and the speaker index the adversary predicts.
        self.augment = augment
        self.speakers = speakers
        from lhotse.dataset.input_strategies import PrecomputedFeatures

        self.front_end = front_end or default_front_end()
        self.input_strategy = input_strategy or self.front_end.input_strategy()
        self.precomputed = isinstance(self.input_strategy, PrecomputedFeatures)
        if augment is not None and augment.active and not self.precomputed:
            # Perturbed, cropped and pasted cuts are read from, and recomputed like, the stored features.
            raise SpeechEQError("cut augmentation (speed perturbation, random crop, CopyPaste) needs stored features")

    def _check_inputs(self, cuts) -> None:
        shift = self.front_end.frame_shift
        for cut in cuts:
            if not self.precomputed:
                if not cut.has_recording:
                    raise SpeechEQError(
                        f"cut {cut.id} has no recording for the {self.front_end.feature_type} front end"
                    )
            elif not cut.has_features:
                raise SpeechEQError(f"cut {cut.id} has no features (run the fbank stage on its manifest)")
            elif abs(cut.frame_shift - shift) > 1e-9:
                raise SpeechEQError(
                    f"cut {cut.id} has features every {cut.frame_shift:g} s, the front end "
                    f"({self.front_end.feature_type}) frames every {shift:g} s"
                )

    def __getitem__(self, cuts) -> Dict[str, object]:
        cuts = cuts.sort_by_duration(ascending=False)
        self._check_inputs(cuts)
        if self.front_end.reads_audio:
            # The model reads samples at the rate its encoder was pre-trained at; lhotse resamples as it reads.
            rate = self.front_end.sampling_rate
            if any(c.sampling_rate != rate for c in cuts):
                from lhotse import CutSet

                cuts = CutSet.from_cuts(c if c.sampling_rate == rate else c.resample(rate) for c in cuts)
        spoken = [[c] for c in cuts]
        if self.augment is not None and self.augment.active:
            features, feature_lens, spoken = self._augmented_features(cuts)
        else:
            try:
                # OnTheFlyFeatures and AudioSamples may return more (audio, the cuts read): the inputs come first.
                features, feature_lens = self.input_strategy(cuts)[:2]
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                first = next(iter(cuts))
                where = first.features.storage_path if first.has_features else "its recording"
                raise SpeechEQError(
                    f"cannot read features for {len(cuts)} cuts starting at {first.id} ({where}): {e}; "
                    "re-run the fbank stage"
                ) from None
        if self.speaker_cmvn is not None:
            for i, cut in enumerate(cuts):
                mean, std = self.speaker_cmvn[cut.supervisions[0].speaker]
                n = int(feature_lens[i])
                features[i, :n] = (features[i, :n] - mean) / std
        ctx = TargetContext(self.scheme, self.tokens, self.speakers)
        targets = [cut_targets(c, ctx) for c in cuts]
        ctc = TASK_TABLE["ctc"]
        for t, cut, parts in zip(targets, cuts, spoken):
            if parts is None:  # a cropped window no longer says its whole transcript
                t["ctc"] = ctc.missing
            elif len(parts) > 1:  # CopyPaste: both transcripts, in the order they are heard
                pieces = [t["ctc"] if part is cut else ctc.target(part, ctx) for part in parts]
                t["ctc"] = ctc.missing if any(ctc.is_missing(p) for p in pieces) else [x for p in pieces for x in p]
        batch = {"features": features, "feature_lens": feature_lens.long()}
        for name, task in TASK_TABLE.items():
            batch.update(task.collate([t[name] for t in targets]))
        batch["corpus"] = [t["corpus"] for t in targets]
        batch["cut_ids"] = [c.id for c in cuts]
        if self.tokens is not None:
            batch["ctc_units"] = self.tokens.units  # names the CTC error rate of validation and decoding
        return batch

    def _augmented_features(self, cuts):
        """Per cut: the stored features, or on-the-fly ones for a perturbed cut; cropped
        cuts read only their window; a pasted partner's stored features go before or after.
        Padded with 0: the model masks padded frames, so the value does not matter (lhotse's
        collate_features pads with its silence floor instead). Also returns, per cut, the cuts
        whose transcripts it speaks in order, or None where it no longer says a whole one."""
        from speecheq.features import load_features

        mats, spoken = [], []
        for cut in cuts:
            new_cut, feats, valid = self.augment.apply(cut)
            mat = feats if feats is not None else torch.from_numpy(load_features(new_cut))
            parts = [cut]
            pasted = self.augment.partner(cut)
            if pasted is not None:
                partner, first = pasted
                other = torch.from_numpy(load_features(partner))
                mat, parts = (
                    (torch.cat([other, mat]), [partner, cut]) if first else (torch.cat([mat, other]), [cut, partner])
                )
            mats.append(mat)
            spoken.append(parts if valid else None)
        lens = torch.tensor([m.shape[0] for m in mats], dtype=torch.long)
        features = torch.zeros(len(mats), int(lens.max()), mats[0].shape[1])
        for i, m in enumerate(mats):
            features[i, : m.shape[0]] = m
        return features, lens, spoken


class CmvnStats:
    """Per-dimension mean and std of feature frames, accumulated in float64.

    The one place CMVN statistics are computed: per speaker over the speaker's cuts
    (:func:`speaker_cmvn_stats`), and per file at inference, where the file's own
    frames are the only speaker statistics at hand.
    """

    def __init__(self):
        self.frames = 0
        self.sum = 0.0
        self.sum_squares = 0.0

    def add(self, feats) -> "CmvnStats":
        f = np.asarray(feats, dtype=np.float64)
        self.frames += f.shape[0]
        self.sum = self.sum + f.sum(axis=0)
        self.sum_squares = self.sum_squares + (f**2).sum(axis=0)
        return self

    def mean_std(self) -> Tuple[np.ndarray, np.ndarray]:
        mean = self.sum / self.frames
        return mean, np.sqrt(np.maximum(self.sum_squares / self.frames - mean**2, 1e-8))


def speaker_cmvn_stats(cuts) -> Dict[str, tuple]:
    """Per-speaker mean/std of fbank over each speaker's own utterances.

    Uses no labels, but at test time it uses the test speaker's (unlabelled)
    utterances: results with it on must say so.
    """
    from speecheq.features import load_features

    per_speaker: Dict[str, CmvnStats] = {}
    for cut in cuts:
        per_speaker.setdefault(cut.supervisions[0].speaker, CmvnStats()).add(load_features(cut))
    return {
        spk: tuple(torch.tensor(x, dtype=torch.float32) for x in stats.mean_std()) for spk, stats in per_speaker.items()
    }


def balanced_weights(
    cuts, scheme: LabelScheme, corpus_weights: Optional[Dict[str, float]] = None, by_class: bool = True
) -> List[float]:
    """Sampling weight per cut: inverse class frequency (within its corpus) times the corpus's weight share."""
    keys = []
    for cut in cuts:
        custom = cut.supervisions[0].custom or {}
        keys.append((custom.get("corpus", ""), scheme.index(custom.get("emotion")) if by_class else 0))
    per_key = Counter(keys)
    per_corpus = Counter(k[0] for k in keys)
    classes_per_corpus = Counter(k[0] for k in per_key)
    weights = []
    for corpus, cls in keys:
        share = (corpus_weights or {}).get(corpus, 1.0)
        # Each corpus gets `share` in total, split evenly over its classes.
        w = share / classes_per_corpus[corpus] / per_key[(corpus, cls)] if by_class else share / per_corpus[corpus]
        weights.append(w)
    return weights


def balance_by_repetition(cuts, weights: Sequence[float], max_repeat: int = 20):
    """Repeat cuts in proportion to their sampling weight (the heaviest group once).

    Repetition instead of weighted sampling keeps duration bucketing, exact resume
    and full coverage of the data every epoch; lhotse's weighted sampler draws
    without replacement, which all but undoes the balance at one epoch's worth of
    samples. Copies get ids ``<id>_rep<k>``; ``max_repeat`` bounds the blow-up.
    """
    w_min = min(weights)
    for cut, w in zip(cuts, weights):
        reps = min(max_repeat, max(1, round(w / w_min)))
        yield cut
        for k in range(1, reps):
            yield cut.with_id(f"{cut.id}_rep{k}")


def make_train_sampler(
    cuts,
    *,
    max_duration: float,
    seed: int = 0,
    balanced: bool = False,
    scheme: Optional[LabelScheme] = None,
    corpus_weights: Optional[Dict[str, float]] = None,
    world_size: Optional[int] = None,
    rank: Optional[int] = None,
    num_buckets: int = 10,
):
    """Duration-bucketed shuffling; class and corpus balance by repeating cuts."""
    from lhotse import CutSet
    from lhotse.dataset import DynamicBucketingSampler

    if balanced or corpus_weights:
        cuts = cuts.to_eager()
        weights = balanced_weights(cuts, scheme, corpus_weights, by_class=balanced)
        cuts = CutSet.from_cuts(balance_by_repetition(cuts, weights))
    return DynamicBucketingSampler(
        cuts,
        max_duration=max_duration,
        shuffle=True,
        num_buckets=num_buckets,
        seed=seed,
        world_size=world_size,
        rank=rank,
        drop_last=False,
    )


def make_eval_sampler(cuts, max_duration: float):
    from lhotse.dataset import SimpleCutSampler

    return SimpleCutSampler(cuts, max_duration=max_duration, shuffle=False)


def make_loader(dataset, sampler, num_workers: int = 0, seed: int = 0):
    """A DataLoader with its own generator: creating an iterator otherwise draws from the
    global torch RNG, so a run resumed mid-epoch would see shifted dropout/SpecAugment masks."""
    return torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


def labels_per_corpus(
    cuts, scheme: LabelScheme, tasks: Optional[Sequence[str]] = None, tokens=None
) -> Dict[str, Dict[str, int]]:
    """{corpus: {"cuts": n, task: cuts labelled for that task}}: in a multi-corpus run the masks
    decide which corpora teach each task (EmoDB's intensity is only its neutral 0; CASIA without
    transcripts has no phones), and a task that no corpus labels is the run's mistake. ``tokens``:
    the run's token table, whose units decide what a ctc label is (None: G2P phones)."""
    by_corpus: Dict[str, list] = {}
    for cut in cuts:
        by_corpus.setdefault((cut.supervisions[0].custom or {}).get("corpus", ""), []).append(cut)
    ctx = TargetContext(scheme, tokens)
    counted = [TASK_TABLE[t] for t in (TASK_TABLE if tasks is None else tasks) if t in TASK_TABLE]
    counted = [t for t in counted if t.counted]
    out = {}
    for corpus, group in sorted(by_corpus.items()):
        out[corpus] = {"cuts": len(group), **{t.name: sum(t.labelled(c, ctx) for c in group) for t in counted}}
    return out
