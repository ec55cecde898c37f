#!/usr/bin/env python3
"""Stage 1: phone inventory of the prepared supervisions -> data/lang/tokens.txt"""

import argparse

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--supervisions", nargs="+", required=True, help="supervision manifests")
    p.add_argument("--lang-dir", default="data/lang", help="where tokens.txt goes")
    args = p.parse_args()

    from speecheq.text.lang import prepare_lang

    prepare_lang(args.supervisions, args.lang_dir)


if __name__ == "__main__":
    script(main)
