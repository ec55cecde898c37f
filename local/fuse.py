#!/usr/bin/env python3
"""Stage 8: late fusion of two runs over the same folds, the weight chosen on each fold's dev set.

`speecheq fuse` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("fuse")
