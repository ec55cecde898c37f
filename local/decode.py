#!/usr/bin/env python3
"""Stage 5: decode test sets (predictions.tsv, metrics.json, confusion.png), or summarise folds.

`speecheq decode` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("decode")
