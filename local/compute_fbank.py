#!/usr/bin/env python3
"""Stage 2: 80-dim fbank (or fbank + 4 pitch dims) for a corpus -> <output-dir>/<corpus>_cuts_<split>.jsonl.gz

`speecheq fbank` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("fbank")
