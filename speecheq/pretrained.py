"""``speecheq.from_pretrained``: a trained package as a Python classifier.

The calls follow SpeechBrain's ``EncoderClassifier``::

    clf = speecheq.from_pretrained("exp/small_multitask/speecheq-package.pt")   # or a package folder
    out_prob, score, index, text_lab = clf.classify_file("speech.wav")
    out_prob, score, index, text_lab = clf.classify_batch(waveforms, sample_rate=16000)

``out_prob`` holds posteriors (softmax, not log) over all categories, ``score`` the
probability of the chosen category. Everything between the audio and the model is
``speecheq infer``'s own code (:class:`speecheq.infer.Inferencer`): down-mixing,
resampling, segmenting at pauses, silence trimming and per-file CMVN as the package
records them, so a file gives the same posteriors here as in ``speecheq infer``.
:meth:`EmotionClassifier.predict_file` returns ``speecheq infer``'s records themselves
(intensity, gender, phones, segments).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from speecheq.audio import check_samples, read_audio, resample
from speecheq.errors import SpeechEQError
from speecheq.infer import Inferencer, Source, make_engine
from speecheq.io import Pathlike
from speecheq.package import Package, load_package

Classification = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[str]]


class EmotionClassifier:
    """A loaded package and the inference front end; see the module docstring."""

    def __init__(
        self,
        package: Package,
        engine: str = "eager",
        device="cpu",
        corpus: Optional[str] = None,
        max_segment: float = 30.0,
        trim_silence_db: Optional[float] = None,
        num_threads: int = 0,
    ):
        self.package = package
        self.device = device
        self.runner = Inferencer(
            package,
            make_engine(package, engine, device, num_threads),
            device=device,
            max_segment=max_segment,
            corpus=corpus,
            trim_silence_db=trim_silence_db,
        )

    @property
    def categories(self) -> List[str]:
        return list(self.package.categories)

    @property
    def sample_rate(self) -> int:
        return self.package.sampling_rate

    def classify_file(self, path: Pathlike) -> Classification:
        """Posteriors (1, C), score (1,), index (1,) and [label] for one audio file (a long one is
        segmented and its segments' posteriors averaged by duration, as ``speecheq infer`` summarises it)."""
        path = Path(path)
        return self._classify([Source(str(path), lambda: read_audio(path, self.sample_rate))])

    def classify_batch(self, waveforms, sample_rate: Optional[int] = None, wav_lens=None) -> Classification:
        """Posteriors (B, C), scores (B,), indices (B,) and labels for waveforms.

        ``waveforms``: a (B, N) or (N,) tensor or array, or a list of 1-D ones of any lengths,
        at ``sample_rate`` (the package's rate when not given; others are resampled).
        ``wav_lens``: SpeechBrain's relative lengths in (0, 1] of a padded (B, N) batch.
        """
        sr = int(sample_rate or self.sample_rate)
        signals = _as_signals(waveforms, wav_lens)
        sources = []
        for i, x in enumerate(signals):
            check_samples(f"waveform {i}", x, sr)
            sources.append(Source(f"waveform {i}", lambda x=x: resample(x, sr, self.sample_rate)))
        return self._classify(sources)

    def predict_file(self, path: Pathlike) -> List[dict]:
        """``speecheq infer``'s records for one file: one, or one per segment and a summary."""
        path = Path(path)
        records = list(self.runner.run([Source(str(path), lambda: read_audio(path, self.sample_rate))]))
        if "error" in records[0]:
            raise SpeechEQError(records[0]["error"])
        return records

    def _classify(self, sources: Sequence[Source]) -> Classification:
        items = [self.runner.prepare(s) for s in sources]
        for item in items:
            if item.error is not None:
                raise SpeechEQError(item.error)
        self.runner.run_units([u for item in items for u in item.units])
        probs = []
        for item in items:
            weights = np.array([u.end - u.start for u in item.units])
            weights = weights / weights.sum()
            probs.append(sum(w * u.out["heads"]["emotion_probs"] for w, u in zip(weights, item.units)))
        out_prob = torch.from_numpy(np.stack(probs).astype(np.float32))
        mask = self.runner.mask
        decision = out_prob if mask is None else torch.where(torch.from_numpy(mask), out_prob, 0.0)
        score, index = decision.max(dim=-1)
        return out_prob, score, index, [self.package.categories[int(i)] for i in index]


def _as_signals(waveforms, wav_lens=None) -> List[np.ndarray]:
    """1-D float32 arrays from a tensor, an array or a list of them."""
    if isinstance(waveforms, (list, tuple)):
        signals = [np.asarray(w.detach().cpu() if torch.is_tensor(w) else w, dtype=np.float32) for w in waveforms]
    else:
        batch = np.asarray(waveforms.detach().cpu() if torch.is_tensor(waveforms) else waveforms, dtype=np.float32)
        if batch.ndim == 1:
            batch = batch[None]
        if batch.ndim != 2:
            raise SpeechEQError(f"waveforms must be (batch, samples) or (samples,), not {tuple(batch.shape)}")
        signals = list(batch)
    if any(s.ndim != 1 for s in signals):
        raise SpeechEQError("each waveform must be one channel of samples (down-mix multi-channel audio first)")
    if wav_lens is not None:
        rel = wav_lens.detach().cpu().numpy() if torch.is_tensor(wav_lens) else wav_lens
        rel = np.asarray(rel, dtype=np.float64).reshape(-1)
        if len(rel) != len(signals) or not ((rel > 0) & (rel <= 1)).all():
            raise SpeechEQError(f"wav_lens must hold one relative length in (0, 1] per waveform, got {rel.tolist()}")
        signals = [s[: int(round(r * len(s)))] for s, r in zip(signals, rel)]
    return signals


def from_pretrained(
    path: Pathlike,
    device: Union[str, torch.device] = "cpu",
    engine: str = "eager",
    corpus: Optional[str] = None,
    **options,
) -> EmotionClassifier:
    """An :class:`EmotionClassifier` for a package: a ``.pt`` file or a Hugging Face-layout folder
    (``local/export.py --output DIR``). Nothing is downloaded: ``path`` is local. ``engine`` "onnx" or
    "torchscript" runs the exported file in the package's place; ``corpus`` restricts the decision to
    that corpus's categories; ``options``: ``max_segment``, ``trim_silence_db``, ``num_threads``."""
    if path is None or str(path) == "":
        raise SpeechEQError("give the path of a SpeechEQ package (.pt file or folder); nothing is downloaded")
    device = str(device)
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise SpeechEQError("device cuda: no CUDA device is available")
    return EmotionClassifier(load_package(path, device), engine=engine, device=device, corpus=corpus, **options)
