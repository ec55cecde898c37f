"""``speecheq infer``: emotion, intensity, gender and phones for arbitrary audio.

Inputs are audio files, folders (searched recursively) and lhotse cut or
recording manifests. Each recording is read with :func:`speecheq.audio.read_audio`
(down-mix, resample to the package's rate), cut into segments at pauses when it
is longer than ``max_segment``, turned into fbank with the package's recorded
front-end, and run through one of three engines (eager, TorchScript, ONNX) in
batches of at most ``max_duration`` seconds (padding included). Records come out
in input order, one per file, or one per segment plus a summary per file.

A file that cannot be used becomes an error record and the run goes on; the
caller turns ``InferStats.failed`` into the exit code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np
import torch

from speecheq.audio import audio_extensions, check_samples, input_warnings, read_audio, resample
from speecheq.errors import AudioError, SpeechEQError
from speecheq.options import set_num_threads
from speecheq.features import spectral_dims, trim_frames
from speecheq.io import Pathlike, atomic_output, check_readable_manifest
from speecheq.model import GENDER_LABELS, MIN_EXPORT_FRAMES, MIN_INPUT_FRAMES
from speecheq.package import INFERENCE_OUTPUTS, InferenceGraph, Package, engine_path, load_package
from speecheq.predict import greedy_ctc

log = logging.getLogger("speecheq")

ENGINES = ("eager", "torchscript", "onnx")
FORMATS = ("jsonl", "tsv")
EXIT_PARTIAL = 3  # some inputs failed, the others have records

MANIFEST_SUFFIXES = (".jsonl.gz", ".jsonl")

# Pause detection for long recordings.
ENERGY_WINDOW = 0.025
ENERGY_HOP = 0.01
# A pause is a stretch of low energy, not one quiet frame inside a stop closure: smooth first.
ENERGY_SMOOTHING = 0.2
# Cuts are searched in the last third of each window, so no segment but the last is shorter than 2/3 of it.
SEARCH_FRACTION = 1 / 3
# Never leave a last segment shorter than this (its category would rest on almost nothing).
MIN_LAST_SEGMENT = 1.0
MIN_MAX_SEGMENT = 3.0

# Items are read and batched in chunks of this many batches' worth of audio, so
# batches group similar lengths while memory stays bounded and output stays ordered.
CHUNK_BATCHES = 8
CHUNK_MAX_FILES = 2000


# --------------------------------------------------------------------------- #
# Sources
# --------------------------------------------------------------------------- #


@dataclass
class Source:
    """One recording to analyse: where it came from and how to read it (mono, package rate)."""

    path: str
    load: Callable[[], np.ndarray]
    id: Optional[str] = None
    # Filled by load: what is usable but makes the result less trustworthy (silence, upsampling).
    warnings: List[str] = field(default_factory=list)


def _source(path: str, read: Callable[[List[str]], np.ndarray], id: Optional[str] = None) -> Source:
    """A source whose reader reports its warnings into the source."""
    source = Source(path, load=lambda: np.empty(0), id=id)
    source.load = lambda: read(source.warnings)
    return source


def _unreadable(path: str, reason: str) -> Source:
    """A source that fails with ``reason``: it becomes a counted error record like any unreadable file."""

    def fail(_warnings):
        raise AudioError(f"{path}: {reason}")

    return _source(path, fail)


def _check_samples(name: str, mono: np.ndarray, sr: int, target_sr: int, warnings: List[str]) -> np.ndarray:
    # The same checks and warnings read_audio gives files, for audio that comes through a manifest.
    check_samples(name, mono, sr)
    warnings += input_warnings(mono, sr, target_sr)
    return resample(mono.astype(np.float32), sr, target_sr)


def _load_manifest_item(item, sr: int, warnings: List[str]) -> np.ndarray:
    try:
        audio = np.asarray(item.load_audio(), dtype=np.float32)
    except Exception as e:  # lhotse raises many kinds (missing file, bad offset, unreadable)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise AudioError(f"{item.id}: cannot load audio ({reason})") from None
    mono = audio.reshape(-1, audio.shape[-1]).mean(axis=0) if audio.ndim > 1 else audio
    return _check_samples(item.id, mono, int(item.sampling_rate), sr, warnings)


def manifest_sources(path: Path, sr: int) -> List[Source]:
    from lhotse import CutSet, RecordingSet, load_manifest

    try:
        manifest = load_manifest(check_readable_manifest(path))
    except SpeechEQError:
        raise
    except Exception as e:
        raise SpeechEQError(f"{path}: not a readable lhotse manifest ({type(e).__name__}: {str(e)[:150]})") from None
    if not isinstance(manifest, (CutSet, RecordingSet)):
        raise SpeechEQError(f"{path}: a {type(manifest).__name__}; infer reads cut or recording manifests")
    return [_source(str(path), (lambda w, it=it: _load_manifest_item(it, sr, w)), id=it.id) for it in manifest]


def _folder_sources(folder: Path, sr: int, extensions: Sequence[str]) -> List[Source]:
    """Audio files under ``folder`` (sorted), and the sub-folders that cannot be listed as
    failing sources: nothing under a folder is left out without a record saying so. A broken
    symbolic link with an audio name is kept, so that it fails with its own error record."""
    found: List[Source] = []

    def unlistable(e: OSError) -> None:
        found.append(_unreadable(e.filename, f"cannot list this folder ({e.strerror})"))

    # Hidden files and folders are skipped: temporaries and macOS "._x.wav" forks are never audio.
    for root, dirs, files in os.walk(folder, onerror=unlistable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                f = Path(root) / name
                found.append(_source(str(f), lambda w, f=f: read_audio(f, sr, warnings=w)))
    if not found:
        log.warning("%s: no audio files (%s) in this folder", folder, " ".join(extensions))
    return sorted(found, key=lambda s: Path(s.path))


def collect_sources(inputs: Sequence[Pathlike], sr: int = 16000) -> List[Source]:
    """Expand files, folders and manifests into sources, in the order given (folders sorted).

    A named file that is missing still becomes a source: it fails alone, with its
    own error record, like any other unreadable file.
    """
    extensions = audio_extensions()
    sources: List[Source] = []
    for inp in inputs:
        p = Path(inp)
        try:
            is_dir = p.is_dir()
        except OSError:  # a folder on the way without search permission: read_audio says so, as a record
            is_dir = False
        if is_dir:
            sources += _folder_sources(p, sr, extensions)
        elif p.name.endswith(MANIFEST_SUFFIXES):
            sources += manifest_sources(p, sr)
        else:
            sources.append(_source(str(p), lambda w, p=p: read_audio(p, sr, warnings=w)))
    return sources


# --------------------------------------------------------------------------- #
# Segmenting long recordings at pauses
# --------------------------------------------------------------------------- #


def frame_energy_db(
    samples: np.ndarray,
    sr: int,
    window: float = ENERGY_WINDOW,
    hop: float = ENERGY_HOP,
    smoothing: float = ENERGY_SMOOTHING,
) -> np.ndarray:
    """Smoothed frame RMS in dB, one value per ``hop`` (frame i centred at i * hop)."""
    win, step = max(1, int(round(window * sr))), max(1, int(round(hop * sr)))
    n = max(1, 1 + (len(samples) - 1) // step)
    padded = np.pad(samples.astype(np.float64), (win // 2, win))
    # Power per frame from a cumulative sum: O(n) and no (n, win) matrix for an hour of audio.
    csum = np.concatenate([[0.0], np.cumsum(padded**2)])
    starts = np.arange(n) * step
    power = (csum[starts + win] - csum[starts]) / win
    k = max(1, int(round(smoothing / hop)))
    if k > 1:
        power = np.convolve(power, np.ones(k) / k, mode="same")
    return 10 * np.log10(power + 1e-10)


def split_at_pauses(samples: np.ndarray, sr: int, max_segment: float) -> List[Tuple[int, int]]:
    """Sample bounds [start, end) of segments no longer than ``max_segment`` seconds.

    Each cut is placed at the lowest-energy frame in the last third of the window
    that starts at the previous cut, so a pause is preferred to a word and no
    segment but the last is shorter than 2/3 of ``max_segment``.
    """
    total = len(samples)
    if max_segment <= 0 or total <= max_segment * sr:
        return [(0, total)]
    energy = frame_energy_db(samples, sr)
    hop = int(round(ENERGY_HOP * sr))
    bounds, start = [], 0
    while total - start > max_segment * sr:
        lo = start + int((1 - SEARCH_FRACTION) * max_segment * sr)
        hi = min(start + int(max_segment * sr), total - int(MIN_LAST_SEGMENT * sr))
        if hi <= lo:
            hi = start + int(max_segment * sr)
        f_lo, f_hi = -(-lo // hop), hi // hop  # frames whose centre lies in [lo, hi]
        cut = (f_lo + int(np.argmin(energy[f_lo : f_hi + 1]))) * hop if f_hi >= f_lo else hi
        cut = min(max(cut, lo), hi)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


# --------------------------------------------------------------------------- #
# Engines
# --------------------------------------------------------------------------- #


class Engine:
    """Maps padded fbank (B, T, F) and lengths to INFERENCE_OUTPUTS as CPU tensors."""

    name = "?"
    min_frames = MIN_INPUT_FRAMES

    def __call__(self, feats: torch.Tensor, lens: torch.Tensor) -> List[torch.Tensor]:
        if lens.numel() and int(lens.min()) < MIN_INPUT_FRAMES:
            # Caught here, for every engine: ONNX would fail deep inside a Conv node, or give NaN once padded.
            n = int(lens.min())
            raise SpeechEQError(
                f"an input of {n} feature frames is shorter than the model's minimum of {MIN_INPUT_FRAMES} frames"
            )
        if feats.shape[1] < self.min_frames:
            # Padding never changes a result (docs/model.md), so a short batch is padded up to what the graph takes.
            feats = torch.nn.functional.pad(feats, (0, 0, 0, self.min_frames - feats.shape[1]))
        return self.run(feats, lens)

    def run(self, feats: torch.Tensor, lens: torch.Tensor) -> List[torch.Tensor]:
        raise NotImplementedError


class EagerEngine(Engine):
    name = "eager"

    def __init__(self, package: Package, device):
        self.device = torch.device(device)
        self.graph = InferenceGraph(package.model.to(self.device)).eval()

    def run(self, feats, lens):
        with torch.inference_mode():
            out = self.graph(feats.to(self.device), lens.to(self.device))
        return [o.cpu() for o in out]


def _check_fingerprint(path: Path, found: Optional[str], package: Package) -> None:
    if found != package.fingerprint:
        raise SpeechEQError(
            f"{path} was exported from other weights (fingerprint {found}, package "
            f"{package.fingerprint}); re-export: local/export.py --package {package.path} --torchscript --onnx"
        )


class TorchScriptEngine(Engine):
    name = "torchscript"
    min_frames = MIN_EXPORT_FRAMES

    def __init__(self, package: Package, path: Path, device):
        import warnings

        if torch.device(device).type != "cpu":
            # A trace records the device of the tensors it creates (masks, positions): it runs where it was traced.
            raise SpeechEQError(
                "the TorchScript engine runs on CPU (it was traced there); use --engine eager or onnx on GPU"
            )
        if not path.is_file():
            raise SpeechEQError(
                f"{path} not found; write it with local/export.py --package {package.path} --torchscript"
            )
        extra = {"speecheq.json": ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
            except Exception as e:
                raise SpeechEQError(f"{path}: not a readable TorchScript file ({type(e).__name__})") from None
        try:
            found = json.loads(extra["speecheq.json"] or "{}").get("fingerprint")
        except ValueError:
            found = None
        _check_fingerprint(path, found, package)

    def run(self, feats, lens):
        with torch.inference_mode():
            return [o.cpu() for o in self.module(feats, lens)]


class OnnxEngine(Engine):
    name = "onnx"
    min_frames = MIN_EXPORT_FRAMES

    def __init__(self, package: Package, path: Path, device, num_threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise SpeechEQError("--engine onnx needs onnxruntime (pip install 'speecheq[export]')") from None
        if not path.is_file():
            raise SpeechEQError(f"{path} not found; write it with local/export.py --package {package.path} --onnx")
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise SpeechEQError("this onnxruntime has no CUDA provider (install onnxruntime-gpu) ")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        # Idle onnxruntime threads spin by default and starve the fbank front-end, which runs in between.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if num_threads > 0:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:
            raise SpeechEQError(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e)[:120]})") from None
        _check_fingerprint(path, self.session.get_modelmeta().custom_metadata_map.get("speecheq_fingerprint"), package)

    def run(self, feats, lens):
        try:
            out = self.session.run(list(INFERENCE_OUTPUTS), {"features": feats.numpy(), "feature_lens": lens.numpy()})
        except Exception as e:  # onnxruntime's messages name graph nodes; the first line is enough
            raise SpeechEQError(
                f"onnxruntime failed on a batch of shape {tuple(feats.shape)}: "
                f"{(str(e).strip().splitlines() or [type(e).__name__])[0][:200]}"
            ) from None
        return [torch.from_numpy(o) for o in out]


def make_engine(package: Package, engine: str = "eager", device="cpu", num_threads: int = 0) -> Engine:
    if engine == "eager":
        return EagerEngine(package, device)
    if engine == "torchscript":
        return TorchScriptEngine(package, engine_path(package.path, "torchscript"), device)
    if engine == "onnx":
        return OnnxEngine(package, engine_path(package.path, "onnx"), device, num_threads)
    raise SpeechEQError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #


@dataclass
class _Unit:
    """One model input: a whole recording or one segment of it."""

    start: float
    end: float
    feats: np.ndarray
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
        self.feature_shift = float(package.feature_config.get("frame_shift", 0.01))
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
        self.align = align
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
            feats = self.extractor.extract(samples[start:end], self.sr)
            if feats.shape[0] < MIN_INPUT_FRAMES:  # only possible for a pathological segment
                item.error = (
                    f"{source.path}: segment {start / self.sr:.2f}-{end / self.sr:.2f} s too short for the model"
                )
                return item
            shift = self.feature_shift
            first, last = trim_frames(
                feats,
                self.trim_silence_db,
                frame_shift=shift,
                min_frames=MIN_INPUT_FRAMES,
                num_bins=spectral_dims(self.extractor.name, feats.shape[1]),
            )
            t0 = start / self.sr + first * shift
            item.units.append(
                _Unit(
                    t0, min(end / self.sr, t0 + (last - first) * shift), np.asarray(feats[first:last], dtype=np.float32)
                )
            )
        if self.package.speaker_cmvn:
            # Trained on per-speaker normalised fbank: the only speaker statistics at hand are the file's own.
            frames = np.concatenate([u.feats for u in item.units]).astype(np.float64)
            mean = frames.mean(axis=0)
            std = np.sqrt(np.maximum((frames**2).mean(axis=0) - mean**2, 1e-8))
            for u in item.units:
                u.feats = ((u.feats - mean) / std).astype(np.float32)
        self.stats.feature_seconds += time.perf_counter() - t1
        return item

    # -------------------------------------------------------------- model
    def _batches(self, units: List[_Unit]) -> Iterator[List[_Unit]]:
        frame_shift = float(self.package.feature_config.get("frame_shift", 0.01))
        batch: List[_Unit] = []
        for u in sorted(units, key=lambda u: -u.feats.shape[0]):
            longest = batch[0].feats.shape[0] if batch else u.feats.shape[0]
            if batch and (len(batch) + 1) * longest * frame_shift > self.max_duration:
                yield batch
                batch = []
            batch.append(u)
        if batch:
            yield batch

    def run_units(self, units: List[_Unit]) -> None:
        for batch in self._batches(units):
            t0 = time.perf_counter()
            lens = torch.tensor([u.feats.shape[0] for u in batch], dtype=torch.long)
            feats = torch.zeros(len(batch), int(lens.max()), batch[0].feats.shape[1])
            for i, u in enumerate(batch):
                feats[i, : u.feats.shape[0]] = torch.from_numpy(u.feats)
            emo, intensity, gender, ctc, enc_lens = self.engine(feats, lens)
            hyps = greedy_ctc(ctc, enc_lens) if self.phones else [None] * len(batch)
            alignments = (
                self._align(ctc, enc_lens, hyps, [u.start for u in batch]) if self.align else [None] * len(batch)
            )
            for i, u in enumerate(batch):
                u.out = {
                    "probs": emo[i].numpy().astype(np.float64),
                    "intensity": float(intensity[i]),
                    "gender": gender[i].numpy().astype(np.float64),
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
    def _readout(self, probs: np.ndarray, intensity: float, gender: np.ndarray) -> dict:
        pkg = self.package
        rec: dict = {}
        if pkg.has_task("emotion"):
            decision = probs if self.mask is None else np.where(self.mask, probs, 0.0)
            rec["category"] = self.categories[int(np.argmax(decision))]
            rec["probabilities"] = {c: round(float(p), 4) for c, p in zip(self.categories, probs)}
            if self.mask is not None:
                rec["corpus"] = self.corpus
                # Renormalised over the corpus's categories: the same as a softmax restricted to them.
                rec["corpus_probabilities"] = {
                    c: round(float(p / decision.sum()), 4) for c, p, m in zip(self.categories, probs, self.mask) if m
                }
        else:
            rec.update(category=None, probabilities=None)
        rec["intensity"] = round(float(intensity), 4) if pkg.has_task("intensity") else None
        if pkg.has_task("gender"):
            g = int(np.argmax(gender))
            rec.update(gender=GENDER_LABELS[g], gender_probability=round(float(gender[g]), 4))
        else:
            rec.update(gender=None, gender_probability=None)
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
            rec.update(self._readout(u.out["probs"], u.out["intensity"], u.out["gender"]))
            rec["phones"] = " ".join(tokens[t] for t in u.out["phones"]) if u.out["phones"] is not None else None
            if self.align:
                rec["alignment"] = u.out["alignment"]
            out.append(rec)
        if segmented:
            w = np.array([u.end - u.start for u in item.units])
            w = w / w.sum()
            mean = lambda key: sum(wi * u.out[key] for wi, u in zip(w, item.units))  # noqa: E731
            summary = {**head, "summary": True, "segments": len(item.units), "duration": round(item.duration, 3)}
            summary.update(self._readout(mean("probs"), mean("intensity"), mean("gender")))
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


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def tsv_header(categories: Sequence[str]) -> List[str]:
    return [
        "path",
        "id",
        "segment",
        "start",
        "end",
        "duration",
        "category",
        *[f"p_{c}" for c in categories],
        "intensity",
        "gender",
        "gender_prob",
        "phones",
        "alignment",
        "warnings",
        "error",
    ]


def tsv_row(rec: dict, categories: Sequence[str]) -> str:
    def cell(v):
        if v is None:
            return "-"
        return str(v).replace("\t", " ").replace("\n", " ")

    probs = rec.get("probabilities") or {}
    ali = rec.get("alignment")
    return "\t".join(
        cell(v)
        for v in [
            rec["path"],
            rec.get("id"),
            "all" if rec.get("summary") else rec.get("segment"),
            rec.get("start"),
            rec.get("end"),
            rec.get("duration"),
            rec.get("category"),
            *[probs.get(c) for c in categories],
            rec.get("intensity"),
            rec.get("gender"),
            rec.get("gender_probability"),
            rec.get("phones"),
            " ".join(f"{a['phone']}:{a['start']}:{a['end']}" for a in ali) if ali else None,
            "; ".join(rec["warnings"]) if rec.get("warnings") else None,
            rec.get("error"),
        ]
    )


def output_format(output: Optional[Pathlike], fmt: Optional[str]) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise SpeechEQError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        return fmt
    return "tsv" if output is not None and str(output).endswith(".tsv") else "jsonl"


def write_records(records: Iterable[dict], stream: TextIO, fmt: str, categories: Sequence[str]) -> None:
    if fmt == "tsv":
        stream.write("\t".join(tsv_header(categories)) + "\n")
    for rec in records:
        stream.write((json.dumps(rec, ensure_ascii=False) if fmt == "jsonl" else tsv_row(rec, categories)) + "\n")
        if stream is sys.stdout:  # a pipe reader sees each record as it is made
            stream.flush()


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
