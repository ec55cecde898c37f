"""Errors that end a stage with one clear line instead of a traceback.

Every fault a user can cause (bad corpus folder, unknown label, wrong flag,
corrupt checkpoint) is raised as a :class:`SpeechEQError`; the thin scripts in
``local/`` and the ``speecheq`` console script wrap their ``main`` in
:func:`exit_on_error`, which prints ``ERROR: <message>`` and exits non-zero.
Programming errors are left as tracebacks on purpose: they are bugs to fix.
"""

from __future__ import annotations

import errno
import functools
import logging
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

# A full disk, a full quota, a file-size limit: the stage cannot go on, and it is no bug.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class SpeechEQError(Exception):
    """A fault in the user's input or environment, reported as one line."""


class AudioError(SpeechEQError):
    """An audio file that cannot be used (corrupt, empty, silent, non-finite...)."""


class LabelError(SpeechEQError):
    """A label that the unified metric does not know."""


def exit_on_error(main: F) -> F:
    """Run ``main``; turn SpeechEQError and Ctrl-C into one line and an exit code."""

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
            if e.errno not in DISK_FULL:
                raise
            logging.getLogger("speecheq").debug("error details", exc_info=True)
            where = f" writing {e.filename}" if e.filename else ""
            print(f"ERROR: no space left{where} ({e.strerror or e}); free some space and re-run the same command "
                  "to resume", file=sys.stderr)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
