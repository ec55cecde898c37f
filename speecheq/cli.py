"""Command-line front-ends: the ``speecheq`` console script and the helper every
``local/*.py`` stage script uses to set up logging and end in one clear line."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from speecheq.errors import exit_on_error


def script(main: Callable[[], None]) -> None:
    """Run a stage script's ``main`` with console logging and one-line errors."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s")
    logging.getLogger("lhotse").setLevel(logging.WARNING)
    exit_on_error(main)()


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: speecheq {infer} ... (see speecheq infer --help)")
        sys.exit(0 if argv else 2)
    print(f"speecheq: unknown command {argv[0]!r}", file=sys.stderr)
    sys.exit(2)
