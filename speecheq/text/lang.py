"""The lang stage: the CTC token inventory of prepared corpora -> a lang folder.

``phone`` (data/lang): tokens.txt over every phone of the given supervisions. ``char``
(data/lang_char): over every character of their normalised transcripts. ``bpe``
(data/lang_bpe_<N>): a sentencepiece model trained on their transcripts (bpe.model) and its
pieces as tokens.txt; give it the training cuts only, so no test transcript shapes the pieces.
Each folder gets a lang.json naming its units and what it was made from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, Optional

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, atomic_output, check_readable_manifest, write_json_atomic
from speecheq.text import units as _units
from speecheq.text.tokens import TokenTable

log = logging.getLogger("speecheq")


def _supervisions(manifests: Iterable[Pathlike]) -> Iterator:
    """Every supervision of supervision manifests or of cut manifests (a fold's training cuts)."""
    from lhotse import load_manifest_lazy

    for path in manifests:
        for item in load_manifest_lazy(check_readable_manifest(path)):
            yield from getattr(item, "supervisions", None) or [item]


def prepare_lang(
    supervision_manifests: Iterable[Pathlike],
    lang_dir: Pathlike,
    units: str = _units.DEFAULT_UNITS,
    bpe_vocab_size: Optional[int] = None,
) -> TokenTable:
    """tokens.txt (blank = 0) in ``units`` over the given manifests; for bpe also bpe.model."""
    _units.check_units(units, bpe_vocab_size)
    manifests = [str(p) for p in supervision_manifests]
    lang_dir = Path(lang_dir)
    sups = list(_supervisions(manifests))
    if units == "phone":
        table = TokenTable.build((s.custom or {}).get("phones") for s in sups)
        used = sum(bool((s.custom or {}).get("phones")) for s in sups)
    else:
        texts = [t for t in (_units.normalize_text(s.text) for s in sups) if t]
        if not texts:
            raise SpeechEQError(f"{units} units need transcripts: no supervision of {', '.join(manifests)} has text")
        used = len(texts)
        if units == "char":
            table = TokenTable.build((_units.char_symbols(t) for t in texts), units)
        else:
            model = _units.train_bpe(texts, bpe_vocab_size)
            table = TokenTable(_units.bpe_pieces(_units.bpe_processor(model)), units, model)
    lang_dir.mkdir(parents=True, exist_ok=True)
    if table.bpe_model is not None:
        with atomic_output(lang_dir / _units.BPE_MODEL) as tmp:
            Path(tmp).write_bytes(table.bpe_model)
    table.to_file(lang_dir / "tokens.txt")
    info = {"units": units, "bpe_vocab_size": bpe_vocab_size if units == "bpe" else None}
    write_json_atomic(lang_dir / _units.LANG_INFO, {**info, "manifests": manifests, "spelt": used})
    log.info(
        "wrote %s: %d tokens (blank + %d %s units; %d supervisions spelt)",
        lang_dir,
        len(table),
        len(table) - 1,
        units,
        used,
    )
    return table
