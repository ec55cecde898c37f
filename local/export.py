#!/usr/bin/env python3
"""Write a self-contained pretrained package (speecheq-package.pt) from an exp dir, and with
--torchscript / --onnx the exported engines model.ts.pt / model.onnx next to it (docs/inference.md)."""

import sys

from speecheq.cli import run_export, script

if __name__ == "__main__":
    script(lambda: run_export(sys.argv[1:], prog="local/export.py"))
