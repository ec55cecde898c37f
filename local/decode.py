#!/usr/bin/env python3
"""Stage 5: decode test sets (predictions.tsv, metrics.json, confusion.png), or summarise folds."""
from speecheq.cli import script


def main():
    from speecheq.decode import decode, get_parser

    decode(get_parser().parse_args())


if __name__ == "__main__":
    script(main)
