"""Atomic outputs, ``.done`` markers, locks and manifest loading.

A stage must never leave a half-written file that a later stage trusts. So every
output is written under a temporary name in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), and a stage marks its completion with a
``.done`` marker written last. A crash or Ctrl-C leaves at worst a temporary file,
which the next run ignores and overwrites.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import logging
import os
import time
from pathlib import Path
from typing import Iterator, Optional, Union

from speecheq.errors import SpeechEQError

Pathlike = Union[str, Path]
log = logging.getLogger("speecheq")

TMP_PREFIX = ".tmp."


def temporary_path(path: Pathlike) -> Path:
    """A sibling name that keeps the suffixes, so lhotse still infers the format
    (``.jsonl.gz``) from it, and that starts with a dot so globs skip it."""
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{os.getpid()}.{path.name}")


@contextlib.contextmanager
def atomic_output(path: Pathlike) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        if tmp.exists():
            _fsync_file(tmp)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


def _fsync_file(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def write_text_atomic(path: Pathlike, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Pathlike, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def done_marker(path: Pathlike) -> Path:
    """Marker that says ``path`` (a file or a folder of outputs) is complete."""
    path = Path(path)
    return path.with_name(path.name + ".done")


def is_done(path: Pathlike) -> bool:
    path = Path(path)
    return done_marker(path).exists() and path.exists()


def mark_done(path: Pathlike, info: Optional[dict] = None) -> None:
    write_json_atomic(done_marker(path), {"finished": time.strftime("%Y-%m-%d %H:%M:%S"), **(info or {})})


def clear_done(path: Pathlike) -> None:
    with contextlib.suppress(FileNotFoundError):
        done_marker(path).unlink()


def file_fingerprint(path: Pathlike) -> str:
    """``<resolved path> (<size> bytes, sha1 <first 12 hex>)`` of one input file."""
    import hashlib

    path = Path(path).resolve()
    # A hash of the whole content, not size + mtime: the inputs fingerprinted (manifests, transcripts,
    # TSVs) are small and read by the stage anyway, a copy that changes only the mtime is no change,
    # and an edit that keeps the size and the mtime (a restored backup) is one.
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{path} ({path.stat().st_size} bytes, sha1 {digest.hexdigest()[:12]})"


def folder_fingerprint(path: Pathlike) -> str:
    """``<n> files, listing sha1 <12 hex>`` over every file's relative path, size and mtime."""
    import hashlib

    # Names, sizes and mtimes, not contents: hashing a corpus of many GB on every run would cost
    # more than the stage; a file added, removed, replaced or re-encoded still shows.
    root = Path(path)
    digest, n = hashlib.sha1(), 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            p = Path(folder) / name
            with contextlib.suppress(OSError):  # a broken link or unreadable file: the stage counts it
                st = p.stat()
                digest.update(
                    f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape")
                )
                n += 1
    return f"{n} files, listing sha1 {digest.hexdigest()[:12]}"


_warned_unknown_inputs: set = set()


def changed_input(path: Pathlike, inputs: dict) -> Optional[str]:
    """For an output marked done: None when its marker recorded these ``inputs``, else
    ``"<name> <recorded>, not <now>"`` for the first input that differs.

    A marker written before inputs were recorded has unknown inputs: it is trusted, with one
    warning, rather than redone (its stage may have taken hours) or refused.
    """
    try:
        recorded = json.loads(done_marker(path).read_text(encoding="utf-8")).get("inputs")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, dict):
        if str(path) not in _warned_unknown_inputs:
            _warned_unknown_inputs.add(str(path))
            log.warning(
                "%s records no inputs (marked done by an older version): its inputs are unknown and "
                "not checked; re-run with --force if they changed",
                done_marker(path),
            )
        return None
    for name in [*inputs, *(k for k in recorded if k not in inputs)]:
        if recorded.get(name) != inputs.get(name):
            return f"{name} {recorded.get(name, '(none)')}, not {inputs.get(name, '(none)')}"
    return None


def remove_stale_temporaries(folder: Pathlike) -> int:
    """Delete temporary files that a killed run left behind; they are never trusted."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n = 0
    for p in folder.glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if p.is_dir():
                import shutil

                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


@contextlib.contextmanager
def folder_lock(folder: Pathlike, what: str = "stage") -> Iterator[None]:
    """Take an exclusive lock on ``folder`` so two runs never write the same outputs.

    The lock is an ``flock`` on ``<folder>/.lock``: the kernel drops it when the
    process dies, so a kill -9 never leaves a stale lock behind. (The ``filelock`` package
    takes the same flock; this one also writes the holder's pid into the file and fails at
    once with one line, which is what a second ``run.sh`` on the same folder needs.)
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpeechEQError(
                f"another {what} is running on {folder} (could not take lock {lock_path}); wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def check_readable_manifest(path: Pathlike) -> Path:
    """Fail with one line when a manifest is missing or its gzip stream is cut short."""
    path = Path(path)
    if not path.is_file():
        raise SpeechEQError(f"manifest not found: {path} (run the stage that writes it first)")
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                while f.read(1 << 20):
                    pass
        except (EOFError, OSError, gzip.BadGzipFile) as e:
            raise SpeechEQError(
                f"manifest {path} is corrupt or truncated ({e}); re-run the stage that writes it with --force"
            ) from None
    return path


def load_cuts_lazy(path: Pathlike):
    """Open a cut manifest lazily (memory stays flat as the corpus grows)."""
    from lhotse import CutSet

    return CutSet.from_jsonl_lazy(check_readable_manifest(path))


def save_manifest(manifest, path: Pathlike) -> Path:
    """Write a lhotse manifest atomically."""
    with atomic_output(path) as tmp:
        manifest.to_file(tmp)
    return Path(path)


def write_cuts(cuts, path: Pathlike) -> int:
    """Stream cuts into a manifest atomically (never holds the set in memory); returns the count."""
    from lhotse import CutSet

    n = 0
    with atomic_output(path) as tmp:
        with CutSet.open_writer(tmp) as writer:
            for cut in cuts:
                writer.write(cut)
                n += 1
    return n
