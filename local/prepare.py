#!/usr/bin/env python3
"""Stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all.jsonl.gz

`speecheq prepare` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("prepare")
