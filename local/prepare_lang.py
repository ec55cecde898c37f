#!/usr/bin/env python3
"""Stage 1: phone inventory of the prepared supervisions -> data/lang/tokens.txt

`speecheq lang` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("lang")
