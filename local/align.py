#!/usr/bin/env python3
"""Stage 6: CTC forced alignment of every cut's phones, or import MFA / HTK alignments.

`speecheq align` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("align")
