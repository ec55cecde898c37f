#!/usr/bin/env python3
"""Stage 7: the classic baseline on a recipe's folds (openSMILE functionals + SVM).

`speecheq baseline` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("baseline")
