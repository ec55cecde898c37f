"""What every corpus shares: the manifest contract, file checks, summaries, writing.

A ``prepare_<corpus>`` function only knows its corpus's file names and label
files. It yields :class:`Utterance` records; :func:`build_manifests` turns them
into lhotse recordings and supervisions that follow the contract:

``SupervisionSegment`` fields ``speaker``, ``gender`` ("M", "F" or None),
``language``, ``text`` (or None) and in ``custom``: ``corpus``, ``emotion_raw``,
``emotion`` (unified category or None), ``intensity`` (float in [0, 1] or None),
``phones`` (list of phone tokens or None). Unknown is None, never a guess: the
model masks missing labels per task.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Hashable, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from speecheq import labels
from speecheq.audio import inspect_audio
from speecheq.errors import AudioError, LabelError, SpeechEQError
from speecheq.io import Pathlike, save_manifest

log = logging.getLogger("speecheq")

SAMPLING_RATE = 16000
ON_ERROR_CHOICES = ("skip", "stop")


@dataclass
class Utterance:
    """One corpus file as its corpus describes it, before checks and mapping."""

    id: str
    audio_path: str
    speaker: str
    emotion_raw: str
    gender: Optional[str] = None
    language: Optional[str] = None
    text: Optional[str] = None
    intensity_level: Optional[str] = None  # a corpus level, mapped by labels.unify_intensity
    intensity: Optional[float] = None  # an already unified value (IEMOCAP arousal, custom TSV)
    phones: Optional[List[str]] = None  # given by the corpus; else derived from text by G2P
    extra: Dict[str, object] = field(default_factory=dict)  # kept in custom (fold, statement...)


@dataclass
class PrepareSummary:
    corpus: str
    kept: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # handled but worth knowing (resampled, stereo)

    def skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        log.warning("skipped %s", detail)

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        notes = ", ".join(f"{k}: {v}" for k, v in sorted(self.notes.items()))
        text = f"{self.corpus}: {self.kept} utterances, {self.seconds / 3600:.2f} h; skipped {skipped} ({reasons})"
        return text + (f"; {notes}" if notes else "")

    def to_dict(self) -> dict:
        return {
            "corpus": self.corpus,
            "utterances": self.kept,
            "hours": round(self.seconds / 3600, 4),
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
        }


def normalize_gender(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    v = str(value).strip().lower()
    if v in ("m", "male", "man"):
        return "M"
    if v in ("f", "female", "woman"):
        return "F"
    if v in ("", "none", "unknown", "na", "n/a", "-"):
        return None
    raise LabelError(f"unknown gender {value!r} (expected M or F)")


def _check_file(utt: Utterance):
    """Runs in worker processes: the per-file part of preparation."""
    try:
        return utt, inspect_audio(utt.audio_path), None
    except AudioError as e:
        return utt, None, e


def build_manifests(
    corpus: str,
    utterances: Iterable[Utterance],
    *,
    sampling_rate: int = SAMPLING_RATE,
    on_error: str = "skip",
    executor: Optional[Executor] = None,
    g2p: Optional[Callable[[str, str], Optional[List[str]]]] = None,
    progress: bool = True,
):
    """Check every file, map labels, derive phones; return (recordings, supervisions, summary).

    Per-file faults (bad audio, unknown label) are skipped and counted with
    ``on_error="skip"`` and stop the stage with one line with ``on_error="stop"``.
    ``executor`` (a ``concurrent.futures`` or ``dask.distributed`` executor) runs the
    per-file audio checks; results keep the input order, so outputs do not depend on it.
    """
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from tqdm import tqdm

    if on_error not in ON_ERROR_CHOICES:
        raise SpeechEQError(f"--on-error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    summary = PrepareSummary(corpus)
    utterances = list(utterances)
    ids = Counter(u.id for u in utterances)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise SpeechEQError(f"{corpus}: duplicate utterance id {dup[0]!r} ({len(dup)} duplicated ids in all)")

    if executor is None:
        checked: Iterator = map(_check_file, utterances)
    else:
        checked = executor.map(_check_file, utterances)

    recordings, supervisions = [], []
    for utt, info, error in tqdm(checked, total=len(utterances), desc=f"scan {corpus}", disable=not progress):
        try:
            if error is not None:
                raise error
            emotion = labels.unify_emotion(corpus, utt.emotion_raw)
            intensity = utt.intensity
            if intensity is None:
                intensity = labels.unify_intensity(corpus, emotion, utt.intensity_level)
            elif not 0.0 <= intensity <= 1.0:
                raise LabelError(f"intensity {intensity} outside [0, 1]")
            gender = normalize_gender(utt.gender)
        except (AudioError, LabelError) as e:
            if on_error == "stop":
                raise SpeechEQError(f"{corpus}: {utt.id}: {e}") from None
            # Counted by what went wrong (not audio, silent, too short...), not by family: the count tells the user what to fix.
            summary.skip(e.reason if isinstance(e, AudioError) else "label", f"{utt.id}: {e}")
            continue

        phones = utt.phones
        if phones is None and utt.text and g2p is not None:
            phones = g2p(utt.text, utt.language or "")
            if not phones:
                summary.notes["no phones (G2P failed)"] += 1
                phones = None

        recording = Recording.from_file(info.path, recording_id=utt.id)
        if info.sampling_rate != sampling_rate:
            recording = recording.resample(sampling_rate)
            summary.notes[f"resampled from {info.sampling_rate} Hz"] += 1
        if info.num_channels > 1:
            summary.notes[f"multi-channel, used channel {info.channel}"] += 1
        recordings.append(recording)
        supervisions.append(
            SupervisionSegment(
                id=utt.id,
                recording_id=utt.id,
                start=0.0,
                duration=recording.duration,
                channel=info.channel,
                speaker=utt.speaker,
                gender=gender,
                language=utt.language,
                text=utt.text,
                custom={
                    "corpus": corpus,
                    "emotion_raw": utt.emotion_raw,
                    "emotion": emotion,
                    "intensity": None if intensity is None else float(intensity),
                    "phones": phones,
                    **utt.extra,
                },
            )
        )
        summary.kept += 1
        summary.seconds += recording.duration

    if not recordings:
        raise SpeechEQError(f"{corpus}: no usable utterances ({summary.line()})")
    return RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions), summary


def manifest_paths(output_dir: Pathlike, corpus: str, split: str) -> Tuple[Path, Path]:
    output_dir = Path(output_dir)
    return (
        output_dir / f"{corpus}_recordings_{split}.jsonl.gz",
        output_dir / f"{corpus}_supervisions_{split}.jsonl.gz",
    )


def write_manifests(
    recordings, supervisions, output_dir: Pathlike, corpus: str, split: str = "all"
) -> Tuple[Path, Path]:
    """Validate, then write atomically: supervisions first, recordings last, so a
    crash in between leaves no pair that looks complete."""
    from lhotse import fix_manifests, validate_recordings_and_supervisions

    recordings, supervisions = fix_manifests(recordings, supervisions)
    try:
        validate_recordings_and_supervisions(recordings, supervisions)
        validate_contract(supervisions)
    except (AssertionError, ValueError) as e:
        raise SpeechEQError(f"{corpus}: manifest validation failed: {e}") from None
    rec_path, sup_path = manifest_paths(output_dir, corpus, split)
    save_manifest(supervisions, sup_path)
    save_manifest(recordings, rec_path)
    return rec_path, sup_path


CONTRACT_KEYS = ("corpus", "emotion_raw", "emotion", "intensity", "phones")


def validate_contract(supervisions: Iterable) -> int:
    """Our checks on the custom fields (lhotse validates the rest). Returns the count."""
    n = 0
    for s in supervisions:
        custom = s.custom or {}
        missing = [k for k in CONTRACT_KEYS if k not in custom]
        if missing:
            raise ValueError(f"supervision {s.id}: missing custom fields {missing}")
        if s.gender not in (None, "M", "F"):
            raise ValueError(f"supervision {s.id}: gender {s.gender!r} is not M, F or None")
        emo = custom["emotion"]
        if emo is not None and emo not in labels.CATEGORIES:
            raise ValueError(f"supervision {s.id}: emotion {emo!r} is not a unified category")
        inten = custom["intensity"]
        if inten is not None and not (0.0 <= float(inten) <= 1.0):
            raise ValueError(f"supervision {s.id}: intensity {inten} outside [0, 1]")
        phones = custom["phones"]
        if phones is not None and (not isinstance(phones, list) or not all(isinstance(p, str) and p for p in phones)):
            raise ValueError(f"supervision {s.id}: phones must be a list of non-empty strings or None")
        n += 1
    return n


def require_corpus_dir(corpus_dir: Pathlike, corpus: str) -> Path:
    path = Path(corpus_dir)
    try:
        found = path.is_dir()
    except PermissionError:  # a folder on the way cannot be searched
        found = None
    if found and not os.access(path, os.R_OK | os.X_OK):
        found = None  # listed but not searchable (or the reverse): every file check would fail on it
    if found is None:
        raise SpeechEQError(
            f"{corpus}: corpus folder {path}: permission denied (it and the folders above it "
            "must be readable and searchable)"
        )
    if not found:
        raise SpeechEQError(f"{corpus}: corpus folder not found: {path} (pass --corpus-dir)")
    return path


def speaker_folds(speakers: Sequence[str], test_groups: Sequence[Sequence[str]], dev_per_fold: Sequence[Sequence[str]]):
    """Speaker-independent protocol as {fold: {split: set(speakers)}}."""
    folds = {}
    all_speakers = set(speakers)
    for k, (test, dev) in enumerate(zip(test_groups, dev_per_fold)):
        test, dev = set(test), set(dev)
        if test & dev:
            raise ValueError(f"fold {k}: dev and test speakers overlap: {sorted(test & dev)}")
        folds[k] = {"train": all_speakers - test - dev, "dev": dev, "test": test}
    return folds


# Helpers for corpus modules: counted pre-check skips, balanced folds, utterance-level splits.


class Skips:
    """Files a corpus module rejects before :func:`build_manifests` (wrong layout, bad
    rows): counted in the summary, or, with ``on_error="stop"``, the first one ends the
    stage with its one-line reason."""

    def __init__(self, corpus: str, on_error: str = "skip"):
        self.corpus = corpus
        self.on_error = on_error
        self.items: List[Tuple[str, str]] = []

    def __call__(self, reason: str, detail: str) -> None:
        if self.on_error == "stop":
            raise SpeechEQError(f"{self.corpus}: {detail}")
        self.items.append((reason, detail))

    def counts(self) -> str:
        c = Counter(reason for reason, _ in self.items)
        return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))


STRAY_NOTE = "stray non-audio files"


def stray_files(audio_paths: Iterable[Pathlike], known: Iterable[Pathlike] = ()) -> List[Path]:
    """Non-audio files in the folders that hold a corpus's audio (a ``notes.txt`` among the
    wavs): never an utterance, but a sign the folder is not what the user thinks it is.
    Hidden files (``.DS_Store``, editors' temporaries) are left alone. ``known``: files the
    corpus module itself read (a TSV next to its audio)."""
    from speecheq.audio import audio_extensions

    used = {os.path.abspath(p) for p in (*audio_paths, *known)}
    extensions = audio_extensions()
    stray = []
    for folder in sorted({os.path.dirname(p) for p in used}):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:  # the audio checks already say what is wrong with the folder
            continue
        for entry in entries:
            if entry.name.startswith(".") or os.path.abspath(entry.path) in used:
                continue
            try:
                if entry.is_file() and os.path.splitext(entry.name)[1].lower() not in extensions:
                    stray.append(Path(entry.path))
            except OSError:
                continue
    return stray


def finish(
    corpus: str,
    utterances: Sequence[Utterance],
    skips: Skips,
    output_dir=None,
    *,
    manifest_name: Optional[str] = None,
    notes: Optional[Mapping[str, int]] = None,
    known_files: Sequence[Pathlike] = (),
    **build_options,
) -> dict:
    """build_manifests + the module's own skips and notes in the summary + write_manifests.
    Non-audio files next to the audio are counted as a note (``known_files`` excepted)."""
    try:
        recordings, supervisions, summary = build_manifests(corpus, utterances, **build_options)
    except SpeechEQError as e:
        if skips.items:
            raise SpeechEQError(f"{e}; skipped before the audio checks: {skips.counts()}") from None
        raise
    for reason, detail in skips.items:
        summary.skip(reason, detail)
    for note, n in (notes or {}).items():
        if n:
            summary.notes[note] += n
    for path in stray_files((u.audio_path for u in utterances), known_files):
        log.warning("ignored %s: not an audio file", path)
        summary.notes[STRAY_NOTE] += 1
    if output_dir is not None:
        write_manifests(recordings, supervisions, output_dir, manifest_name or corpus)
    return {"recordings": recordings, "supervisions": supervisions, "summary": summary}


def balanced_folds(
    speakers: Sequence[str], num_folds: int, group: Optional[Mapping[str, Hashable]] = None, prefix: str = "fold"
) -> Dict[str, Dict[str, set]]:
    """Speaker-independent folds with every group (gender, language) spread over all folds.

    Speakers are sorted within their group and the groups interleaved (g1[0], g2[0],
    g1[1], g2[1], ...); fold k tests every ``num_folds``-th speaker of that order
    starting at k; dev is the first half (at least one) of fold k+1's test group,
    train is everyone else. Every speaker is tested exactly once.
    """
    speakers = sorted(set(speakers))
    if len(speakers) < 3 or num_folds < 2:
        raise SpeechEQError(
            f"a speaker-independent protocol needs at least 3 speakers and 2 folds "
            f"(got {len(speakers)} speakers, {num_folds} folds)"
        )
    num_folds = min(num_folds, len(speakers))
    group = group or {}
    buckets: Dict[str, List[str]] = {}
    for s in speakers:
        buckets.setdefault(str(group.get(s)), []).append(s)
    order: List[str] = []
    lists = [buckets[k] for k in sorted(buckets)]
    for i in range(max(len(b) for b in lists)):
        order.extend(b[i] for b in lists if i < len(b))
    tests = [order[k::num_folds] for k in range(num_folds)]
    devs = [tests[(k + 1) % num_folds][: max(1, len(tests[(k + 1) % num_folds]) // 2)] for k in range(num_folds)]
    folds = speaker_folds(speakers, tests, devs)
    return {f"{prefix}{k}": v for k, v in folds.items()}


@dataclass(frozen=True)
class UtteranceSplit:
    """A split given per utterance by the corpus (ESD's train/evaluation/test folders, the
    custom TSV's ``split`` column), not by speakers: selects the supervisions whose
    ``custom["split"]`` equals ``value``. ``splits.write_splits`` calls it on each cut's supervision."""

    value: str

    def __call__(self, supervision) -> bool:
        return (supervision.custom or {}).get("split") == self.value


@dataclass(frozen=True)
class SpeakerTextSplit:
    """The utterances of ``speakers`` whose text number (``custom["number"]``) is in
    ``numbers`` (``held_out=True``) or is not: dev and train from the same speakers on
    disjoint sentences, for corpora with too few speakers to give dev a whole one (CASIA)."""

    speakers: frozenset
    numbers: frozenset
    held_out: bool

    def __call__(self, supervision) -> bool:
        number = (supervision.custom or {}).get("number")
        return supervision.speaker in self.speakers and (number in self.numbers) == self.held_out

    def __repr__(self) -> str:
        side = "held-out" if self.held_out else "other"
        return f"speakers {sorted(self.speakers)}, {side} texts ({len(self.numbers)} held out)"


def utterance_split_protocol() -> Dict[str, Dict[str, UtteranceSplit]]:
    return {"": {s: UtteranceSplit(s) for s in ("train", "dev", "test")}}
