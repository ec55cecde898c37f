"""Corpus registry: one ``prepare_<corpus>`` per corpus, one ``local/prepare.py`` for all.

A recipe names its corpus; the registry gives the prepare function (corpus
files -> manifests) and the speaker-independent protocol (speakers per split and
fold). Everything after preparation is corpus-agnostic.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, load_cuts_lazy, write_cuts

log = logging.getLogger("speecheq")


@dataclass(frozen=True)
class CorpusRecipe:
    name: str
    module: str  # speecheq.corpora.<module> defines prepare_<name>() and protocol()

    def _module(self):
        return importlib.import_module(f"speecheq.corpora.{self.module}")

    @property
    def prepare(self) -> Callable:
        return getattr(self._module(), f"prepare_{self.name}")

    def protocol(self, **options) -> Dict[str, Dict[str, set]]:
        """{fold name: {"train"|"dev"|"test": speakers}}; fold "" is a single split."""
        return self._module().protocol(**options)


CORPORA: Dict[str, CorpusRecipe] = {
    name: CorpusRecipe(name, name)
    for name in ("synth", "ravdess")
}


def get_corpus(name: str) -> CorpusRecipe:
    if name not in CORPORA:
        raise SpeechEQError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}")
    return CORPORA[name]


def split_name(fold: str, split: str) -> str:
    return f"{fold}_{split}" if fold else split


def write_splits(corpus: str, cuts_path: Pathlike, output_dir: Pathlike, folds: Optional[List[str]] = None, **protocol_options) -> Dict[str, Path]:
    """Write the protocol's splits as cut subsets of the feature manifest.

    Subsets share the feature storage of ``<corpus>_cuts_all``, so features are
    extracted once however many folds a protocol has. Returns {split name: path}.
    """
    protocol = get_corpus(corpus).protocol(**protocol_options)
    if folds:
        unknown = [f for f in folds if f not in protocol]
        if unknown:
            raise SpeechEQError(f"{corpus}: unknown fold(s) {unknown}; protocol has {list(protocol)}")
        protocol = {f: protocol[f] for f in folds}
    output_dir = Path(output_dir)
    written = {}
    for fold, splits in protocol.items():
        for split, speakers in splits.items():
            name = split_name(fold, split)
            path = output_dir / f"{corpus}_cuts_{name}.jsonl.gz"
            keep = frozenset(speakers)
            subset = (c for c in load_cuts_lazy(cuts_path) if c.supervisions[0].speaker in keep)
            count = write_cuts(subset, path)
            if count == 0:
                raise SpeechEQError(f"{corpus}: split {name} is empty (speakers {sorted(keep)[:4]}...)")
            log.info("%s: %s %d cuts -> %s", corpus, name, count, path)
            written[name] = path
    return written
