#!/usr/bin/env python3
"""Stages 5 and 8 with ensemble_seeds: the mean class posterior of several runs over the same folds.

`speecheq ensemble` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("ensemble")
