"""The lang stage: collect the phone inventory of prepared corpora into tokens.txt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from speecheq.io import Pathlike, check_readable_manifest
from speecheq.text.tokens import TokenTable

log = logging.getLogger("speecheq")


def prepare_lang(supervision_manifests: Iterable[Pathlike], lang_dir: Pathlike) -> TokenTable:
    """tokens.txt over every phone in the given supervisions (blank = 0)."""
    from lhotse import load_manifest_lazy

    def phones():
        for path in supervision_manifests:
            for sup in load_manifest_lazy(check_readable_manifest(path)):
                yield (sup.custom or {}).get("phones")

    table = TokenTable.build(phones())
    table.to_file(Path(lang_dir) / "tokens.txt")
    log.info("wrote %s: %d tokens (blank + %d phones)", Path(lang_dir) / "tokens.txt", len(table), len(table) - 1)
    return table
