#!/usr/bin/env python3
"""Stage 5: decode test sets (predictions.tsv, metrics.json, confusion.png), or summarise folds."""

from pathlib import Path

from speecheq.cli import script


def main():
    from speecheq.options import decode_parser

    p = decode_parser()
    p.add_argument(
        "--metrics-list",
        type=Path,
        default=None,
        help="write the metrics.json paths this run produced here, one a line (the recipes read the "
        "decode folders' names from it instead of rebuilding them)",
    )
    args = p.parse_args()  # before torch's import: --help answers at once
    from speecheq.decode import decode
    from speecheq.io import write_text_atomic

    written = decode(args)
    if args.metrics_list is not None:
        write_text_atomic(args.metrics_list, "".join(f"{path}\n" for path in written))


if __name__ == "__main__":
    script(main)
