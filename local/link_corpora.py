#!/usr/bin/env python3
"""Stage 0 of egs/unified: link the manifests and features that each corpus's own recipe prepared."""

import argparse

from speecheq.cli import script


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpora", nargs="+", required=True, help="corpus recipes whose prepared data to link")
    p.add_argument("--egs-dir", default="..", help="folder holding the corpus recipes")
    p.add_argument("--data-dir", default="data", help="this recipe's data folder, where the links go")
    args = p.parse_args()

    from speecheq.corpora import link_prepared

    link_prepared(args.corpora, args.egs_dir, args.data_dir)


if __name__ == "__main__":
    script(main)
