#!/usr/bin/env python3
"""Stage 1: CTC token inventory of the prepared supervisions -> data/lang/tokens.txt
(--units char: data/lang_char; --units bpe --bpe-vocab-size N: data/lang_bpe_<N> with bpe.model)

`speecheq lang` is the same command: one parser and one code path, in speecheq/cli.py."""

from speecheq.cli import stage_main

if __name__ == "__main__":
    stage_main("lang")
