#!/usr/bin/env python3
"""Stage 4: train the SpeechEQ multitask model (one process on CPU, or torchrun for several GPUs).

`speecheq train` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("train")
