#!/usr/bin/env python3
"""Stage 9: a self-contained model package from an exp dir, and its TorchScript / ONNX engines.

`speecheq export` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("export")
