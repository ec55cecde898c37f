#!/usr/bin/env python3
"""Stage 3: validate cuts (lhotse + manifest contract) and write the protocol's splits.

`speecheq validate` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("validate")
