"""What ``speecheq infer`` reads: audio files, folders (searched recursively) and lhotse
cut or recording manifests, expanded into :class:`Source` objects in input order.

A source reads its audio only when asked (mono, at the package's rate, through
:func:`speecheq.audio.read_audio` or the same checks for manifest audio), so a long
list costs nothing until the runner gets to it. A file or folder that cannot be
read is still a source: it fails alone, as an error record.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from speecheq.audio import audio_extensions, check_samples, input_warnings, read_audio, resample
from speecheq.errors import AudioError, SpeechEQError
from speecheq.io import Pathlike, check_readable_manifest

log = logging.getLogger("speecheq")

MANIFEST_SUFFIXES = (".jsonl.gz", ".jsonl")


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
