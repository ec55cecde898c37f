"""Errors that end a stage with one clear line instead of a traceback.

Every fault a user can cause (bad corpus folder, unknown label, wrong flag,
corrupt checkpoint) is raised as a :class:`SpeechEQError`; the thin scripts in
``local/`` and the ``speecheq`` console script wrap their ``main`` in
:func:`exit_on_error`, which prints ``ERROR: <message>`` and exits non-zero.
An ``OSError`` or ``UnicodeError`` that escapes is also one line, ``ERROR: <file>: <problem>``:
it is almost always a file the user named (permissions, encoding), and the full
traceback is still logged at debug level. Other programming errors are left as
tracebacks on purpose: they are bugs to fix.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

# A full disk, a full quota, a file-size limit: the stage cannot go on, and it is no bug.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class SpeechEQError(Exception):
    """A fault in the user's input or environment, reported as one line."""


class AudioError(SpeechEQError):
    """An audio file that cannot be used (corrupt, empty, silent, non-finite...).

    ``reason`` is a short fixed name of the fault ("not audio", "silent"...): summaries
    count skips by it, where the message also names the file and the details.
    """

    def __init__(self, message: str, reason: str = "audio"):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # keeps the reason across process pools
        return type(self), (str(self), self.reason)


class LabelError(SpeechEQError):
    """A label that the unified metric does not know."""


def exit_on_error(main: F) -> F:
    """Run ``main``; turn SpeechEQError, Ctrl-C, and an OSError or UnicodeError (a file the
    user named that cannot be read, written or decoded) into one line and an exit code."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except SpeechEQError as e:
            logging.getLogger("speecheq").debug("error details", exc_info=True)
            print(f"ERROR: {e}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("ERROR: interrupted; re-run the same command to resume", file=sys.stderr)
            sys.exit(130)
        except OSError as e:
            logging.getLogger("speecheq").debug("error details", exc_info=True)
            if e.errno in DISK_FULL:
                where = f" writing {e.filename}" if e.filename else ""
                print(
                    f"ERROR: no space left{where} ({e.strerror or e}); free some space and re-run the same command "
                    "to resume",
                    file=sys.stderr,
                )
            else:
                print(f"ERROR: {file_problem(e)}", file=sys.stderr)
            sys.exit(1)
        except UnicodeError as e:
            logging.getLogger("speecheq").debug("error details", exc_info=True)
            print(f"ERROR: {file_problem(e)}", file=sys.stderr)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _file_in_traceback(e: BaseException):
    """The file the innermost frame was reading: a UnicodeDecodeError does not name the
    file it was decoding, but the frame that read it still holds it open (or its path)."""
    import io

    opened = path = None
    tb = e.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), (str, bytes)):
                opened = value.name
            elif isinstance(value, os.PathLike):
                path = value
        tb = tb.tb_next
    return opened if opened is not None else path


def decode_problem(e: UnicodeDecodeError) -> str:
    return f"not {e.encoding} text ({e.reason}: byte 0x{e.object[e.start]:02x} at offset {e.start})"


def file_problem(e: BaseException) -> str:
    """``<file>: <problem>`` for an OSError or a UnicodeError, as one line."""
    if isinstance(e, UnicodeDecodeError):
        problem = decode_problem(e)
    elif isinstance(e, OSError):
        problem = e.strerror or str(e) or type(e).__name__
        if e.filename2:
            problem += f" (-> {e.filename2})"
    else:
        problem = str(e) or type(e).__name__
    name = e.filename if isinstance(e, OSError) and e.filename else _file_in_traceback(e)
    problem = " ".join(problem.split())
    if name is None:
        return problem
    return f"{os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else name}: {problem}"
