"""``speecheq infer``: emotion, intensity, gender and phones for arbitrary audio.

Inputs are audio files, folders (searched recursively) and lhotse cut or
recording manifests (:mod:`speecheq.inputs`). Each recording is read with
:func:`speecheq.audio.read_audio` (down-mix, resample to the package's rate), cut
into segments at pauses when it is longer than ``max_segment``
(:mod:`speecheq.segments`), turned into fbank with the package's recorded
front-end, and run through one of three engines (:mod:`speecheq.engines`: eager,
TorchScript, ONNX) in batches of at most ``max_duration`` seconds (padding
included). Records come out in input order, one per file, or one per segment plus
a summary per file, as JSON lines or TSV (:mod:`speecheq.records`).

This module is the runner: :class:`Inferencer` turns sources into records, and
:func:`infer` is ``speecheq infer``. A file that cannot be used becomes an error
record and the run goes on; the caller turns ``InferStats.failed`` into the exit code.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch

from speecheq.data import CmvnStats
from speecheq.engines import ENGINES, INFERENCE_OUTPUTS, Engine, make_engine
from speecheq.errors import AudioError, SpeechEQError
from speecheq.features import default_front_end, trim_frames
from speecheq.inputs import Source, collect_sources
from speecheq.io import Pathlike, atomic_output
from speecheq.model import MIN_INPUT_FRAMES
from speecheq.options import set_num_threads
from speecheq.package import Package, load_package
from speecheq.predict import greedy_ctc
from speecheq.records import FORMATS, output_format, write_records
from speecheq.segments import MIN_MAX_SEGMENT, split_at_pauses
from speecheq.tasks import corpus_probs, readout_order

# The names callers (cli, pretrained, bench, tests) have always imported from here.
__all__ = [
    "ENGINES",
    "EXIT_PARTIAL",
    "FORMATS",
    "InferStats",
    "Inferencer",
    "Source",
    "collect_sources",
    "corpus_probs",
    "infer",
    "make_engine",
    "split_at_pauses",
]

log = logging.getLogger("speecheq")

EXIT_PARTIAL = 3  # some inputs failed, the others have records

# Items are read and batched in chunks of this many batches' worth of audio, so
# batches group similar lengths while memory stays bounded and output stays ordered.
CHUNK_BATCHES = 8
CHUNK_MAX_FILES = 2000


@dataclass
class _Unit:
    """One model input: a whole recording or one segment of it."""

    start: float
    end: float
    feats: np.ndarray  # (T, F) frames, or (N,) samples for a front end that reads audio
    out: Optional[dict] = None


@dataclass
class _Item:
    source: Source
    duration: float = 0.0
    units: List[_Unit] = field(default_factory=list)
    error: Optional[str] = None


@dataclass
class InferStats:
    files: int = 0
    failed: int = 0
    records: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0
    read_seconds: float = 0.0
    feature_seconds: float = 0.0
    model_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_seconds if self.audio_seconds else math.nan


class Inferencer:
    """Turns sources into records with one package and engine (usable from Python)."""

    def __init__(
        self,
        package: Package,
        engine: Engine,
        *,
        device="cpu",
        max_duration: float = 200.0,
        max_segment: float = 30.0,
        align: bool = False,
        corpus: Optional[str] = None,
        trim_silence_db: Optional[float] = None,
    ):
        if max_duration <= 0:
            raise SpeechEQError("--max-duration must be positive")
        if 0 < max_segment < MIN_MAX_SEGMENT:
            raise SpeechEQError(f"--max-segment must be 0 (never split) or at least {MIN_MAX_SEGMENT} s")
        self.package = package
        self.engine = engine
        # None: trim as the training cuts were trimmed (recorded in the package); 0: never.
        self.trim_silence_db = package.trim_silence_db if trim_silence_db is None else trim_silence_db
        self.front_end = package.front_end
        # The ssl front end's frames hold no energy: its silence is found on the fbank the training
        # cuts were trimmed on (the trim stage reads the fbank stage's features), computed from the audio.
        self.trim_front_end = default_front_end() if self.front_end.reads_audio else self.front_end
        self.trim_extractor = self.trim_front_end.extractor(device) if self.front_end.reads_audio else None
        # In the model's input steps (frames, or samples for an ssl model).
        self.min_input = package.model.min_input_length
        if self.trim_silence_db > 0 and not self.trim_front_end.energy_dims:
            raise SpeechEQError(
                f"silence trimming reads log-mel energy; {self.front_end.feature_type} frames hold none "
                "(give --trim-silence-db 0)"
            )
        self.max_duration = max_duration
        self.max_segment = max_segment
        self.sr = package.sampling_rate
        self.extractor = package.make_extractor(device)
        self.categories = list(package.categories)
        self.corpus = corpus
        self.mask = None
        if corpus:
            allowed = set(package.allowed_categories(corpus))
            self.mask = np.array([c in allowed for c in self.categories])
            if not self.mask.any():
                raise SpeechEQError(f"corpus {corpus!r} has none of this model's categories {self.categories}")
        self.phones = package.tokens is not None and package.has_task("ctc")
        if align and not self.phones:
            raise SpeechEQError(
                "--align needs a model trained with the ctc task and a token table; this package has none"
            )
        if align:
            from speecheq.align import require_phone_units

            require_phone_units(package.ctc_units, "--align")
        # A char or bpe string under "phones" would be read as phones; phone records keep their key.
        self.ctc_key = "phones" if package.ctc_units == "phone" else "tokens"
        self.align = align
        # The utterance-level tasks the engine gives outputs for; the CTC outputs are read apart (phones, alignment).
        # An engine without names gives INFERENCE_OUTPUTS, in order (the contract before engines named them).
        self.output_names = list(getattr(engine, "output_names", INFERENCE_OUTPUTS))
        given = set(self.output_names)
        self.tasks = [
            t
            for t in readout_order()
            if not t.frame_level and all(name in given for name, _, _ in t.inference_outputs())
        ]
        self.head_outputs = [name for t in self.tasks for name, _, _ in t.inference_outputs()]
        self.stats = InferStats()

    # -------------------------------------------------------------- reading
    def prepare(self, source: Source) -> _Item:
        item = _Item(source)
        t0 = time.perf_counter()
        try:
            samples = source.load()
        except AudioError as e:
            item.error = str(e)
            return item
        t1 = time.perf_counter()
        self.stats.read_seconds += t1 - t0
        item.duration = len(samples) / self.sr
        for start, end in split_at_pauses(samples, self.sr, self.max_segment):
            segment = samples[start:end]
            feats = segment if self.front_end.reads_audio else self.extractor.extract(segment, self.sr)
            if feats.shape[0] < self.min_input:  # only possible for a pathological segment
                item.error = (
                    f"{source.path}: segment {start / self.sr:.2f}-{end / self.sr:.2f} s too short for the model"
                )
                return item
            if self.front_end.reads_audio:
                self._add_audio_unit(item, segment, start)
                continue
            shift = self.front_end.frame_shift
            first, last = self._speech_frames(feats, self.front_end)
            t0 = start / self.sr + first * shift
            item.units.append(
                _Unit(
                    t0, min(end / self.sr, t0 + (last - first) * shift), np.asarray(feats[first:last], dtype=np.float32)
                )
            )
        if self.package.speaker_cmvn:
            # Trained on per-speaker normalised fbank: the only speaker statistics at hand are the file's own.
            mean, std = CmvnStats().add(np.concatenate([u.feats for u in item.units])).mean_std()
            for u in item.units:
                u.feats = ((u.feats - mean) / std).astype(np.float32)
        self.stats.feature_seconds += time.perf_counter() - t1
        return item

    def _speech_frames(self, feats, front_end) -> tuple:
        """The frames of ``feats`` (made by ``front_end``) that silence trimming keeps."""
        return trim_frames(
            feats,
            self.trim_silence_db,
            frame_shift=front_end.frame_shift,
            min_frames=MIN_INPUT_FRAMES,
            num_bins=front_end.energy_dims,
        )

    def _add_audio_unit(self, item: _Item, samples: np.ndarray, start: int) -> None:
        """A segment's samples for a model that reads audio, trimmed where its fbank says silence."""
        first, last = 0, len(samples)
        if self.trim_silence_db > 0:
            shift = self.trim_front_end.frame_shift
            feats = self.trim_extractor.extract(samples, self.sr)
            lo, hi = self._speech_frames(feats, self.trim_front_end)
            if (lo, hi) != (0, len(feats)):
                first, last = int(round(lo * shift * self.sr)), min(int(round(hi * shift * self.sr)), len(samples))
        t0 = (start + first) / self.sr
        item.units.append(_Unit(t0, t0 + (last - first) / self.sr, np.asarray(samples[first:last], dtype=np.float32)))

    # -------------------------------------------------------------- model
    def _batches(self, units: List[_Unit]) -> Iterator[List[_Unit]]:
        batch: List[_Unit] = []
        for u in sorted(units, key=lambda u: -u.feats.shape[0]):
            longest = batch[0].feats.shape[0] if batch else u.feats.shape[0]
            if batch and (len(batch) + 1) * longest * self.front_end.input_step > self.max_duration:
                yield batch
                batch = []
            batch.append(u)
        if batch:
            yield batch

    def run_units(self, units: List[_Unit]) -> None:
        for batch in self._batches(units):
            t0 = time.perf_counter()
            lens = torch.tensor([u.feats.shape[0] for u in batch], dtype=torch.long)
            feats = torch.zeros(len(batch), int(lens.max()), *batch[0].feats.shape[1:])
            for i, u in enumerate(batch):
                feats[i, : u.feats.shape[0]] = torch.from_numpy(u.feats)
            outputs = dict(zip(self.output_names, self.engine(feats, lens)))
            ctc, enc_lens = outputs["ctc_log_probs"], outputs["encoder_lens"]
            hyps = greedy_ctc(ctc, enc_lens) if self.phones else [None] * len(batch)
            alignments = (
                self._align(ctc, enc_lens, hyps, [u.start for u in batch]) if self.align else [None] * len(batch)
            )
            for i, u in enumerate(batch):
                u.out = {
                    "heads": {name: outputs[name][i].numpy().astype(np.float64) for name in self.head_outputs},
                    "phones": hyps[i],
                    "alignment": alignments[i],
                }
            self.stats.model_seconds += time.perf_counter() - t0

    def _align(self, log_probs: torch.Tensor, enc_lens: torch.Tensor, hyps, offsets) -> List[Optional[list]]:
        """Viterbi alignment of the model's own greedy phone string (there is no reference text)."""
        from speecheq.ctc import ctc_forced_align, spans_to_alignment_items

        targets = torch.zeros(len(hyps), max([len(h) for h in hyps] + [1]), dtype=torch.long)
        for i, h in enumerate(hyps):
            targets[i, : len(h)] = torch.tensor(h, dtype=torch.long)
        spans = ctc_forced_align(log_probs, enc_lens, targets, torch.tensor([len(h) for h in hyps]))
        out = []
        for sp, offset in zip(spans, offsets):
            items = spans_to_alignment_items(sp, self.package.tokens, self.package.frame_shift, offset) if sp else sp
            out.append(
                None
                if items is None
                else [
                    {"phone": a.symbol, "start": a.start, "end": round(a.start + a.duration, 4), "score": a.score}
                    for a in items
                ]
            )
        return out

    # -------------------------------------------------------------- records
    def _readout(self, values: dict) -> dict:
        rec: dict = {}
        for task in self.tasks:
            rec.update(task.readout(values, self) if self.package.has_task(task.name) else task.unknown())
        return rec

    def records(self, item: _Item) -> List[dict]:
        head = {"path": item.source.path, **({"id": item.source.id} if item.source.id is not None else {})}
        if item.error is not None:
            return [{**head, "error": item.error}]
        tokens = self.package.tokens
        out = []
        segmented = len(item.units) > 1
        for k, u in enumerate(item.units):
            rec = dict(head)
            if segmented:
                rec.update(segment=k, start=round(u.start, 3), end=round(u.end, 3))
            rec["duration"] = round(u.end - u.start, 3)
            rec.update(self._readout(u.out["heads"]))
            hyp = u.out["phones"]
            rec[self.ctc_key] = " ".join(tokens[t] for t in hyp) if hyp is not None else None
            if self.ctc_key != "phones":
                rec["units"] = self.package.ctc_units
            if self.align:
                rec["alignment"] = u.out["alignment"]
            out.append(rec)
        if segmented:
            w = np.array([u.end - u.start for u in item.units])
            w = w / w.sum()
            mean = lambda key: sum(wi * u.out["heads"][key] for wi, u in zip(w, item.units))  # noqa: E731
            summary = {**head, "summary": True, "segments": len(item.units), "duration": round(item.duration, 3)}
            summary.update(self._readout({name: mean(name) for name in self.head_outputs}))
            out.append(summary)
        if item.source.warnings:
            # Only when there is something to say: a clean file's record is as before.
            warnings = list(item.source.warnings)
            out = [{**rec, "warnings": warnings} for rec in out]
        return out

    def run(self, sources: Iterable[Source], progress: bool = False, total: Optional[int] = None) -> Iterator[dict]:
        """Yield records in input order; audio is read and batched a chunk at a time."""
        from tqdm import tqdm

        t_start = time.perf_counter()
        bar = tqdm(total=total, unit="file", desc="infer", file=sys.stderr, disable=not progress, dynamic_ncols=True)
        chunk: List[_Item] = []
        chunk_seconds = 0.0

        def flush():
            self.run_units([u for it in chunk for u in it.units])
            for it in chunk:
                recs = self.records(it)
                self.stats.records += len(recs)
                yield from recs
            chunk.clear()

        try:
            for source in sources:
                item = self.prepare(source)
                self.stats.files += 1
                if item.error is not None:
                    self.stats.failed += 1
                    log.debug("%s", item.error)
                self.stats.audio_seconds += item.duration
                chunk.append(item)
                chunk_seconds += item.duration
                bar.update(1)
                bar.set_postfix(
                    audio=f"{self.stats.audio_seconds / 60:.1f}min", failed=self.stats.failed, refresh=False
                )
                if chunk_seconds >= CHUNK_BATCHES * self.max_duration or len(chunk) >= CHUNK_MAX_FILES:
                    yield from flush()
                    chunk_seconds = 0.0
            yield from flush()
        finally:
            bar.close()
            self.stats.seconds += time.perf_counter() - t_start


def infer(
    inputs: Sequence[Pathlike],
    model: Pathlike,
    *,
    output: Optional[Pathlike] = None,
    fmt: Optional[str] = None,
    device: str = "cpu",
    engine: str = "eager",
    max_duration: float = 200.0,
    max_segment: float = 30.0,
    align: bool = False,
    corpus: Optional[str] = None,
    num_threads: int = 0,
    progress: bool = True,
    trim_silence_db: Optional[float] = None,
) -> InferStats:
    """``speecheq infer``: write records for every input to ``output`` (stdout when None)."""
    fmt = output_format(output, fmt)
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise SpeechEQError("--device cuda: no CUDA device is available")
    set_num_threads(num_threads)
    package = load_package(model, device)
    runner = Inferencer(
        package,
        make_engine(package, engine, device, num_threads),
        device=device,
        max_duration=max_duration,
        max_segment=max_segment,
        align=align,
        corpus=corpus,
        trim_silence_db=trim_silence_db,
    )
    sources = collect_sources(inputs, package.sampling_rate)
    if not sources:
        raise SpeechEQError(f"no audio found in {', '.join(map(str, inputs))}")
    if runner.trim_silence_db > 0:
        log.info(
            "trimming leading and trailing silence (%.0f dB below each segment's peak), as in training",
            runner.trim_silence_db,
        )
    if package.speaker_cmvn:
        log.info("this model was trained with per-speaker CMVN: each file is normalised by its own statistics")
    records = runner.run(sources, progress=progress, total=len(sources))
    if output is None:
        write_records(records, sys.stdout, fmt, package.categories)
    else:
        with atomic_output(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
            write_records(records, f, fmt, package.categories)
    s = runner.stats
    log.info(
        "%d files (%d failed), %.1f s of audio in %.1f s (RTF %.4f; read %.1f s, fbank %.1f s, model %.1f s)",
        s.files,
        s.failed,
        s.audio_seconds,
        s.seconds,
        s.rtf,
        s.read_seconds,
        s.feature_seconds,
        s.model_seconds,
    )
    return s
