"""80-dim log-mel fbank (25 ms window, 10 ms shift), stored with lilcom; optionally with
Kaldi's 4 pitch dims appended (``fbank-pitch``, :mod:`speecheq.pitch`).

Two paths, chosen by device, never mixed: on CPU, lhotse's
``compute_and_store_features`` with ``nj`` worker processes (or an executor such
as a Dask client); on CUDA, one process with batched extraction
(``compute_and_store_features_batch``), resumable through its partial manifest.
CUDA is never combined with several worker processes: each would initialise its
own CUDA context and fight for the one GPU.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, atomic_output, check_readable_manifest, temporary_path, write_cuts

log = logging.getLogger("speecheq")

NUM_MEL_BINS = 80
#: Audio rate of a recorded front end that names none (configs from before it was recorded).
SAMPLING_RATE = 16000
EXTRACTORS = ("fbank", "kaldifeat", "fbank-pitch")
#: lhotse's stored feature type -> the name make_extractor builds it from
EXTRACTOR_OF_FEATURE_TYPE = {"kaldi-fbank": "fbank", "kaldifeat-fbank": "kaldifeat", "fbank-pitch": "fbank-pitch"}
#: How a dataset reads a front end's input: FrontEnd.input_strategy's lhotse classes.
INPUTS = ("precomputed", "on-the-fly", "audio")


def extractor_config(name: str = "fbank", num_mel_bins: int = NUM_MEL_BINS) -> dict:
    """The lhotse ``to_dict()`` (with ``feature_type``, without ``device``) of :func:`make_extractor`'s extractor.

    Built from lhotse's config dataclasses alone: describing kaldifeat's front end needs no kaldifeat.
    ``num_mel_bins`` counts the log-mel part (fbank-pitch appends 4 pitch dims)."""
    if name == "fbank":
        from lhotse import Fbank, FbankConfig

        cfg, feature_type = FbankConfig(num_mel_bins=num_mel_bins).to_dict(), Fbank.name
    elif name == "fbank-pitch":
        from speecheq.pitch import NAME, FbankPitchConfig, default_fbank_config

        cfg, feature_type = FbankPitchConfig(fbank=default_fbank_config(num_mel_bins)).to_dict(), NAME
    elif name == "kaldifeat":
        from lhotse.features.kaldifeat import KaldifeatFbank, KaldifeatFbankConfig, KaldifeatMelOptions

        cfg = KaldifeatFbankConfig(mel_opts=KaldifeatMelOptions(num_bins=num_mel_bins)).to_dict()
        feature_type = KaldifeatFbank.name
    else:
        raise SpeechEQError(f"unknown extractor {name!r}; choose from {EXTRACTORS}")
    cfg.pop("device", None)  # a run-time choice of the reader
    return {**cfg, "feature_type": feature_type}


#: lhotse's feature type of the ssl front end (speecheq.model.ssl.FEATURE_TYPE, which needs torch to import).
SSL_FEATURE_TYPE = "ssl"


def register_extractors() -> None:
    """Make lhotse know speecheq's own extractors by name, as a checkpoint or package loaded in a
    fresh process names them: ``fbank-pitch`` and ``ssl`` (its description; the model makes its frames)."""
    import speecheq.model.ssl  # noqa: F401
    import speecheq.pitch  # noqa: F401


def build_extractor(config: dict, device: str = "cpu"):
    """The lhotse extractor of a ``to_dict()`` config, on ``device``."""
    from lhotse.features.base import FeatureExtractor

    register_extractors()

    if str(config.get("feature_type", "")).startswith("kaldifeat"):
        try:
            import kaldifeat  # noqa: F401
        except ImportError:
            raise SpeechEQError(
                "--extractor kaldifeat needs the kaldifeat package (see README: it builds from its sdist)"
            ) from None
    # from_dict pops keys from what it is given (lhotse's and kaldifeat's configs do).
    return FeatureExtractor.from_dict({**copy.deepcopy(config), "device": str(device)})


def make_extractor(name: str = "fbank", device: str = "cpu", num_mel_bins: int = NUM_MEL_BINS):
    """lhotse's own Fbank by default (CPU and GPU); kaldifeat when asked and importable;
    fbank-pitch: the same Fbank with 4 pitch dims appended (``num_mel_bins`` counts the fbank part)."""
    return build_extractor(extractor_config(name, num_mel_bins), device)


def _config_view(config: dict):
    """The extractor class of ``config`` holding the config, its own constructor not run.

    lhotse's extractors compute ``frame_shift`` and ``feature_dim`` from their config alone, while
    their constructors build a torch module, import kaldifeat or load an SSL model: describing a
    front end needs none of that."""
    from lhotse.features.base import FeatureExtractor, get_extractor_type

    register_extractors()

    data = copy.deepcopy(config)
    data.pop("device", None)
    kind = get_extractor_type(data.pop("feature_type"))
    view = kind.__new__(kind)
    FeatureExtractor.__init__(view, kind.config_type.from_dict(data))
    return view


def _config_value(config, key: str):
    """A setting lhotse has no accessor for: on the config, or in kaldifeat's frame options."""
    for holder in (config, getattr(config, "frame_opts", None)):
        value = getattr(holder, key, None)
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class FrontEnd:
    """What turns audio into the model's input frames, described by the extractor's lhotse config.

    The one owner of the front end's time and size: the model's input dimension
    (``feature_dim``), its output frame rate (:meth:`output_frame_shift`), alignment times,
    trimming, batch budgets and what checkpoints and packages record
    (:meth:`feature_config`) all derive from it. ``lhotse`` is the extractor's
    ``to_dict()`` (with ``feature_type``, without ``device``); any lhotse-registered extractor
    fits, an SSL one too (its ``frame_shift`` is that of its output frames). ``input``
    says what a dataset reads (:meth:`input_strategy`): stored features, features computed
    from the audio, or the audio samples themselves for a model that makes its own frames.
    """

    lhotse: dict
    input: str = "precomputed"

    def __post_init__(self):
        if self.input not in INPUTS:
            raise SpeechEQError(f"unknown front-end input {self.input!r}; choose from {INPUTS}")
        if "feature_type" not in self.lhotse:
            raise SpeechEQError(f"a front end's lhotse config names its feature_type; got keys {sorted(self.lhotse)}")

    # ------------------------------------------------------------ building
    @classmethod
    def named(cls, name: str = "fbank", feature_dim: int = NUM_MEL_BINS, input: str = "precomputed") -> "FrontEnd":
        """One of :data:`EXTRACTORS` giving ``feature_dim`` features per frame."""
        return cls(extractor_config(name, spectral_dims(name, feature_dim)), input)

    @classmethod
    def from_extractor(cls, extractor, input: str = "precomputed") -> "FrontEnd":
        """The front end of a lhotse ``FeatureExtractor`` (any registered one, a test's fake too)."""
        cfg = extractor.to_dict()
        cfg.pop("device", None)
        return cls(cfg, input)

    @classmethod
    def from_feature_config(cls, recorded: Optional[dict], input: str = "precomputed") -> "FrontEnd":
        """The front end a checkpoint or package recorded (:meth:`feature_config`); what older ones
        lack takes the defaults: no record is the default fbank; no ``lhotse`` config (kaldifeat,
        packages before it was recorded) is ``extractor``'s defaults at ``num_mel_bins``; a
        ``lhotse`` config without ``feature_type`` (an early fbank) overrides the fbank defaults."""
        recorded = recorded or {}
        name = str(recorded.get("extractor") or "fbank")
        stored = dict(recorded.get("lhotse") or {})
        if "feature_type" in stored:
            # The ssl front end's frames come from the model itself, which reads the audio.
            return cls(stored, "audio" if stored["feature_type"] == SSL_FEATURE_TYPE else input)
        if name not in EXTRACTORS:
            raise SpeechEQError(f"the recorded front end {name!r} has no lhotse config to rebuild it from")
        default = cls.named(name, int(recorded.get("num_mel_bins", NUM_MEL_BINS)), input)
        return cls({**default.lhotse, **stored}, input) if stored and name == "fbank" else default

    # ------------------------------------------------------------ describing
    @functools.cached_property
    def _view(self):
        return _config_view(self.lhotse)

    @property
    def feature_type(self) -> str:
        return str(self.lhotse["feature_type"])

    @property
    def name(self) -> str:
        """The name checkpoints record: one of :data:`EXTRACTORS`, else lhotse's feature type."""
        return EXTRACTOR_OF_FEATURE_TYPE.get(self.feature_type, self.feature_type)

    @property
    def frame_shift(self) -> float:
        """Seconds between the starts of two input frames."""
        return float(self._view.frame_shift)

    @property
    def frame_length(self) -> float:
        """Seconds of audio one frame sees (its frame shift where the config names no window)."""
        value = _config_value(self._view.config, "frame_length")
        return self.frame_shift if value is None else float(value)

    @property
    def sampling_rate(self) -> int:
        value = _config_value(self._view.config, "sampling_rate")
        return SAMPLING_RATE if value is None else int(value)

    @property
    def feature_dim(self) -> int:
        """Features per frame: the model's input dimension."""
        return int(self._view.feature_dim(self.sampling_rate))

    @property
    def energy_dims(self) -> int:
        """Leading log-mel columns, whose energy silence trimming reads (0: the frames hold none)."""
        if self.feature_type not in EXTRACTOR_OF_FEATURE_TYPE:
            return 0
        return spectral_dims(self.feature_type, self.feature_dim)

    @property
    def reads_audio(self) -> bool:
        """Whether batches carry audio samples (the ssl front end's model makes its own frames)."""
        return self.input == "audio"

    @property
    def input_step(self) -> float:
        """Seconds per step of the model's input (what its input lengths count): a sample
        for a front end that reads audio, else a frame."""
        return 1.0 / self.sampling_rate if self.reads_audio else self.frame_shift

    def output_frame_shift(self, subsampling: float) -> float:
        """Seconds per output frame of a network taking ``subsampling`` input frames to one."""
        return self.frame_shift * subsampling

    def min_duration(self, frames: int) -> float:
        """Seconds of audio that give at least ``frames`` frames: a shift each, and the rest of the last window."""
        return frames * self.frame_shift + (self.frame_length - self.frame_shift)

    def feature_config(self) -> dict:
        """What a checkpoint and a package record; :meth:`from_feature_config` reads it back.

        ``num_mel_bins`` is the model's input dimension (for fbank-pitch 84: 80 mel bins and 4
        pitch dims; the key keeps its name for the readers of older packages)."""
        return {
            "extractor": self.name,
            "num_mel_bins": self.feature_dim,
            "frame_length": self.frame_length,
            "frame_shift": self.frame_shift,
            "sampling_rate": self.sampling_rate,
            "lhotse": copy.deepcopy(self.lhotse),
        }

    # ------------------------------------------------------------ running
    def extractor(self, device: str = "cpu"):
        return build_extractor(self.lhotse, device)

    def input_strategy(self, device: str = "cpu"):
        """The lhotse input strategy that collates a batch of cuts into (inputs, input lengths)."""
        from lhotse.dataset.input_strategies import AudioSamples, OnTheFlyFeatures, PrecomputedFeatures

        if self.input == "precomputed":
            return PrecomputedFeatures()
        if self.input == "on-the-fly":
            return OnTheFlyFeatures(self.extractor(device))
        return AudioSamples()


@functools.lru_cache(maxsize=None)
def default_front_end() -> FrontEnd:
    """The fbank stage's default front end: lhotse's Fbank, 80 mel bins, stored features."""
    return FrontEnd.named()


def spectral_dims(feature_type: str, num_features: int) -> int:
    """How many leading columns of a feature matrix are log-mel energies (fbank-pitch appends its pitch dims).

    ``feature_type`` is lhotse's name (a cut's ``features.type``, an extractor's ``name``)
    or one of :data:`EXTRACTORS`.
    """
    from speecheq.pitch import NAME, PITCH_DIMS

    return num_features - PITCH_DIMS if feature_type == NAME else num_features


def cuts_from_manifests(recordings_path: Pathlike, supervisions_path: Pathlike):
    """One cut per supervision, on the supervision's channel, id = supervision id (an eager CutSet)."""
    from lhotse import CutSet, load_manifest_lazy

    recordings = load_manifest_lazy(check_readable_manifest(recordings_path))
    supervisions = load_manifest_lazy(check_readable_manifest(supervisions_path))
    return (
        CutSet.from_manifests(recordings=recordings.to_eager(), supervisions=supervisions.to_eager())
        .trim_to_supervisions(keep_overlapping=False)
        .to_eager()
    )


class ManifestCuts:
    """The cuts of :func:`cuts_from_manifests`, streamed: memory stays flat in the corpus size.

    Holds only the two paths, so it pickles small: worker processes and dask tasks
    read the manifests themselves instead of receiving every cut. When the
    supervisions follow the recordings' order (what ``build_manifests`` writes), cuts
    are built one recording at a time; otherwise it falls back to the eager
    construction. Both give the same cuts in the same order.
    """

    def __init__(self, recordings_path: Pathlike, supervisions_path: Pathlike):
        self.recordings_path = str(check_readable_manifest(recordings_path))
        self.supervisions_path = str(check_readable_manifest(supervisions_path))
        self.count, self.in_order = self._scan()

    def _scan(self):
        """(number of supervisions, whether they are grouped in the recordings' order)."""
        from lhotse import load_manifest_lazy

        recording_ids = (r.id for r in load_manifest_lazy(self.recordings_path))
        current, n, in_order = None, 0, True
        for sup in load_manifest_lazy(self.supervisions_path):
            n += 1
            while in_order and sup.recording_id != current:
                current = next(recording_ids, None)
                in_order = current is not None
        return n, in_order

    def __iter__(self):
        from lhotse import CutSet, RecordingSet, SupervisionSet, load_manifest_lazy

        if not self.in_order:
            yield from cuts_from_manifests(self.recordings_path, self.supervisions_path)
            return
        supervisions = iter(load_manifest_lazy(self.supervisions_path))
        pending = next(supervisions, None)
        for recording in load_manifest_lazy(self.recordings_path):
            group = []
            while pending is not None and pending.recording_id == recording.id:
                group.append(pending)
                pending = next(supervisions, None)
            if group:
                yield from CutSet.from_manifests(
                    recordings=RecordingSet.from_recordings([recording]),
                    supervisions=SupervisionSet.from_segments(group),
                ).trim_to_supervisions(keep_overlapping=False)

    def __len__(self) -> int:
        return self.count


def _extract_chunk(cuts, k: int, n: int, extractor, storage_path: str, part_path: str, progress: bool = False) -> int:
    """Features of every n-th cut from the k-th (lhotse's split for ``num_jobs``): storage into
    ``storage_path``, cuts with features into ``part_path``. Runs in worker processes and
    dask tasks, where ``extractor`` is the ``(name, device, num_mel_bins)`` of :func:`make_extractor`
    (small to send, no tensors to share); returns the number of cuts written."""
    from lhotse import CutSet, LilcomChunkyWriter
    from lhotse.audio.utils import null_result_on_audio_loading_error
    from tqdm import tqdm

    if isinstance(extractor, tuple):
        extractor = make_extractor(*extractor)
    if n > 1:
        from speecheq.options import set_num_threads

        set_num_threads(1)  # one process per core: intra-op threads would oversubscribe them
    count = 0
    compute = null_result_on_audio_loading_error(
        lambda c, s: c.compute_and_store_features(extractor=extractor, storage=s)
    )
    mine = (c for i, c in enumerate(cuts) if i % n == k)
    with LilcomChunkyWriter(storage_path) as storage, CutSet.open_writer(part_path) as writer:
        for cut in tqdm(mine, total=len(cuts), desc="Extracting and storing features", disable=not progress):
            with_feats = compute(cut, storage)
            if with_feats is not None:  # unreadable audio: dropped, as lhotse does
                writer.write(with_feats)
                count += 1
    _log_pitch_stats(extractor, storage_path)
    return count


def _log_pitch_stats(extractor, where) -> None:
    """The counted skips of an fbank-pitch extractor (its stats are per process: one line per chunk)."""
    stats = getattr(extractor, "stats", None)
    if stats and (stats.get("failed") or stats.get("unvoiced")):
        log.warning(
            "%s: pitch tracker failed on %d of %d cuts and found no voiced frame in %d (their pitch dims are zeros)",
            where,
            stats["failed"],
            stats["utterances"],
            stats["unvoiced"],
        )


def compute_fbank(
    recordings_path: Pathlike,
    supervisions_path: Pathlike,
    cuts_path: Pathlike,
    storage_path: Pathlike,
    *,
    extractor: str = "fbank",
    device: str = "cpu",
    nj: int = 1,
    batch_duration: float = 600.0,
    executor=None,
    num_mel_bins: int = NUM_MEL_BINS,
) -> int:
    """Extract features for every cut and write ``cuts_path``; returns the number of cuts.

    ``cuts_path`` appears only when every feature is stored (atomic rename), so a
    later stage never sees a manifest that points at missing features.

    CPU: the cuts are streamed from the manifests (memory flat in the corpus size)
    and split into ``nj`` chunks as lhotse's ``compute_and_store_features`` does
    (every ``nj``-th cut; storage ``<storage_path>/feats-<k>.lca``, or
    ``<storage_path>.lca`` for ``nj=1``). The chunks run on ``executor`` when given
    (a process pool, a dask client's executor), else on ``nj`` spawned processes;
    each writes its cuts to a temporary part manifest that is concatenated in chunk
    order, so the result does not depend on where the chunks ran.
    """
    cuts_path, storage_path = Path(cuts_path), Path(storage_path)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    feature_extractor = make_extractor(extractor, device, num_mel_bins)

    if device.startswith("cuda"):
        from lhotse import LilcomChunkyWriter

        cuts = cuts_from_manifests(recordings_path, supervisions_path)
        if nj > 1:
            log.info("device %s: using one process with batched extraction (ignoring nj=%d)", device, nj)
        partial = cuts_path.with_name(f".partial.{cuts_path.name.replace('.gz', '')}")
        _drop_incomplete_last_line(partial)
        with_feats = cuts.compute_and_store_features_batch(
            extractor=feature_extractor,
            storage_path=storage_path,
            manifest_path=partial,
            batch_duration=batch_duration,
            num_workers=2,
            storage_type=LilcomChunkyWriter,
        )
        count = write_cuts(with_feats, cuts_path)
        partial.unlink(missing_ok=True)
        _log_pitch_stats(feature_extractor, storage_path)
        return count

    from lhotse import load_manifest_lazy

    cuts = ManifestCuts(recordings_path, supervisions_path)
    # The CPU path is not resumable inside one run; a leftover storage from a
    # killed run is untrusted (no manifest points at it) and is started afresh.
    for leftover in (storage_path, storage_path.with_suffix(".lca")):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    if nj <= 1 and executor is None:
        with atomic_output(cuts_path) as tmp:
            return _extract_chunk(cuts, 0, 1, feature_extractor, str(storage_path), str(tmp), progress=True)

    n = max(nj, 1)
    storage_path.mkdir(parents=True, exist_ok=True)
    parts = [
        temporary_path(cuts_path.with_name(f"{cuts_path.name.replace('.jsonl.gz', '')}.part-{k}.jsonl.gz"))
        for k in range(n)
    ]
    own_pool = None
    if executor is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from speecheq.executors import exit_with_parent

        # spawn: a forked child would inherit torch's thread pool in an unknown state
        executor = own_pool = ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent, initargs=(os.getpid(),)
        )
    try:
        spec = (extractor, device, num_mel_bins)  # the workers build their own extractor
        futures = [
            executor.submit(_extract_chunk, cuts, k, n, spec, str(storage_path / f"feats-{k}"), str(parts[k]))
            for k in range(n)
        ]
        counts = [f.result() for f in futures]
        filled = [part for part, count in zip(parts, counts) if count]  # more chunks than cuts: some are empty
        return write_cuts((c for part in filled for c in load_manifest_lazy(part)), cuts_path)
    finally:
        if own_pool is not None:
            own_pool.shutdown(wait=True, cancel_futures=True)
        for part in parts:
            part.unlink(missing_ok=True)


def _drop_incomplete_last_line(path: Path) -> None:
    """A kill during a write can leave half a JSON line; lhotse's resume would choke on it."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with atomic_output(path) as tmp:
            tmp.write_bytes(data[: data.rfind(b"\n") + 1])


def load_features(cut):
    """``cut.load_features()``, with a missing or corrupt feature file as one line."""
    try:
        return cut.load_features()
    except (OSError, ValueError, KeyError, RuntimeError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        where = cut.features.storage_path if cut.has_features else "no features"
        raise SpeechEQError(
            f"cannot read the features of cut {cut.id} ({where}): {reason}; re-run the fbank stage with --force"
        ) from None


def feature_statistics(cuts, max_cuts: Optional[int] = None):
    """Global per-bin mean and std over all frames (Chan et al. parallel update).

    Ours rather than lhotse's ``CutSet.compute_global_feature_stats``: it reads through
    :func:`load_features`, so a missing or corrupt feature file ends in one line naming the cut.
    """
    import numpy as np

    count, mean, m2 = 0, None, None
    for i, cut in enumerate(cuts):
        if max_cuts is not None and i >= max_cuts:
            break
        feats = load_features(cut).astype(np.float64)
        n = feats.shape[0]
        batch_mean = feats.mean(axis=0)
        batch_m2 = ((feats - batch_mean) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n, batch_mean, batch_m2
            continue
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + batch_m2 + delta**2 * count * n / total
        count = total
    if mean is None:
        raise SpeechEQError("cannot compute feature statistics: no cuts")
    std = np.sqrt(np.maximum(m2 / max(count - 1, 1), 1e-10))
    return mean.astype(np.float32), std.astype(np.float32)


def compute_corpus_fbank(
    corpus: str, manifest_dir: Pathlike, fbank_dir: Pathlike, split: str = "all", *, force: bool = False, **options
) -> Optional[Path]:
    """The fbank stage for one corpus split: ``<corpus>_cuts_<split>`` + ``<corpus>_feats_<split>``.

    Skipped when marked done; otherwise (re)computed and marked done last. Takes the
    lock of ``fbank_dir`` (a second run on the same folder stops with one line) and
    removes the temporaries a killed run left there.
    """
    import time

    from speecheq.io import (
        changed_input,
        clear_done,
        file_fingerprint,
        folder_lock,
        is_done,
        mark_done,
        remove_stale_temporaries,
    )

    manifest_dir, fbank_dir = Path(manifest_dir), Path(fbank_dir)
    cuts_path = fbank_dir / f"{corpus}_cuts_{split}.jsonl.gz"
    manifests = {kind: manifest_dir / f"{corpus}_{kind}_{split}.jsonl.gz" for kind in ("recordings", "supervisions")}
    inputs = {f"{kind} manifest": file_fingerprint(check_readable_manifest(path)) for kind, path in manifests.items()}
    if is_done(cuts_path) and not force:
        wanted, done_with = str(options.get("extractor", "fbank")), done_extractor(cuts_path)
        if done_with != wanted:
            # Skipping would hand the next stages features of another kind than asked for.
            raise SpeechEQError(
                f"{fbank_dir} already holds {done_with} features of {corpus}; give {wanted} "
                "its own features folder (e.g. data/fbank_pitch) or recompute with --force"
            )
        changed = changed_input(cuts_path, inputs)
        if not changed:
            log.info("%s: features already computed (%s); skipping", corpus, cuts_path)
            return None
        # Recompute rather than stop: the features follow from the manifests alone, and new
        # manifests were asked for by the stage that wrote them (stage 0 stops without --force).
        log.warning("%s: %s were computed from %s; recomputing", corpus, cuts_path, changed)
    with folder_lock(fbank_dir, f"fbank stage ({corpus})"):
        remove_stale_temporaries(fbank_dir)
        clear_done(cuts_path)  # a --force run killed half-way must not leave the old marker trusted
        t0 = time.time()
        n = compute_fbank(
            manifests["recordings"],
            manifests["supervisions"],
            cuts_path,
            fbank_dir / f"{corpus}_feats_{split}",
            **options,
        )
        mark_done(
            cuts_path,
            {
                "cuts": n,
                "seconds": round(time.time() - t0, 1),
                **{k: str(v) for k, v in options.items() if k != "executor"},
                "inputs": inputs,
            },
        )
    log.info("%s: %d cuts with features in %.1f s -> %s", corpus, n, time.time() - t0, cuts_path)
    return cuts_path


def done_extractor(cuts_path: Path) -> str:
    """The extractor a finished fbank stage recorded in its marker (markers from before the option: fbank)."""
    import json

    from speecheq.io import done_marker

    try:
        return str(json.loads(done_marker(cuts_path).read_text()).get("extractor", "fbank"))
    except (OSError, ValueError, AttributeError):
        return "fbank"


# Acted corpora (RAVDESS, CREMA-D) put 1-2 s of room silence around 2 s of speech: trimming it
# drops about 40 % of RAVDESS's frames, so training costs less and pooling sees the speech.
TRIM_MARGIN = 0.25  # seconds kept on each side: onsets, breaths and release bursts stay in
TRIM_MARK = "trim_silence_db"  # cut.custom key: the threshold a cut was trimmed with


def speech_bounds(feats, threshold_db: float, margin_frames: int, num_bins: Optional[int] = None) -> tuple:
    """First and one-past-last frame of the stretch whose energy is within ``threshold_db`` of the peak.

    Energy is the frame's mel power summed over the first ``num_bins`` columns (all when
    None; pitch columns are no energies), computed from the stored log-mel fbank itself,
    so the stage needs no audio. The comparison is relative to the cut's own loudest
    frame, which makes it independent of recording gain.
    """
    import numpy as np

    log_power = np.logaddexp.reduce(np.asarray(feats, dtype=np.float64)[:, :num_bins], axis=1)
    threshold = log_power.max() - threshold_db * np.log(10.0) / 10.0
    loud = np.flatnonzero(log_power > threshold)
    first = max(int(loud[0]) - margin_frames, 0)
    last = min(int(loud[-1]) + 1 + margin_frames, len(log_power))
    return first, last


def trim_silence(cut, threshold_db: float = 30.0, margin: float = TRIM_MARGIN):
    """The cut without its leading and trailing silence (features are read, not recomputed).

    The supervision is set to cover the trimmed cut: what was cut away is silence, so the
    utterance's labels, text and phones still describe all of it. Alignments are
    recording-relative in lhotse and need no shift.
    """
    from lhotse.utils import fastcopy

    feats = load_features(cut)
    shift = cut.features.frame_shift
    first, last = trim_frames(
        feats, threshold_db, margin, frame_shift=shift, num_bins=spectral_dims(cut.features.type, feats.shape[1])
    )
    # The mark travels into the model package, so inference trims as training did.
    custom = {**(cut.custom or {}), TRIM_MARK: float(threshold_db)}
    if first == 0 and last >= feats.shape[0]:
        return fastcopy(cut, custom=custom)
    offset, duration = first * shift, (last - first) * shift
    trimmed = cut.truncate(
        offset=offset, duration=min(duration, cut.duration - offset), keep_excessive_supervisions=True
    )
    return fastcopy(
        trimmed,
        custom=custom,
        supervisions=[fastcopy(s, start=0.0, duration=trimmed.duration) for s in trimmed.supervisions],
    )


def trim_frames(
    feats,
    threshold_db: float,
    margin: float = TRIM_MARGIN,
    *,
    frame_shift: float,
    min_frames: int = 1,
    num_bins: Optional[int] = None,
) -> tuple:
    """(first, last) frames to keep of a feature matrix, as ``trim_silence`` keeps them for a cut;
    the whole matrix when trimming is off or would leave fewer than ``min_frames``. ``frame_shift``:
    the matrix's (the margin is in seconds); ``num_bins``: the log-mel columns
    (:func:`spectral_dims`, :attr:`FrontEnd.energy_dims`), all when None."""
    if threshold_db <= 0 or len(feats) == 0:
        return 0, len(feats)
    first, last = speech_bounds(feats, threshold_db, int(round(margin / frame_shift)), num_bins)
    return (first, last) if last - first >= min_frames else (0, len(feats))
