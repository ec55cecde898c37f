#!/usr/bin/env python3
"""Stage 5: decode test sets (predictions.tsv, metrics.json, confusion.png), or summarise folds."""

from speecheq.cli import script


def main():
    from speecheq.options import decode_parser

    args = decode_parser().parse_args()  # before torch's import: --help answers at once
    from speecheq.decode import decode

    decode(args)


if __name__ == "__main__":
    script(main)
