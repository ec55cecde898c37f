"""The validate stage: check every cut, then write the corpus protocol's splits.

The protocol (speakers or utterances per split and fold) is the corpus's; this
module turns it into cut subsets of the feature manifest. It sits above both
``corpora`` (the protocol) and ``features`` (silence trimming, reading features),
so neither of them needs the other.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from speecheq.corpora import get_corpus
from speecheq.corpora.common import validate_contract
from speecheq.errors import SpeechEQError
from speecheq.features import trim_silence
from speecheq.io import (
    Pathlike,
    folder_lock,
    load_cuts_lazy,
    remove_stale_temporaries,
    temporary_path,
    write_cuts,
    write_json_atomic,
)
from speecheq.labels import LabelScheme, label_summary

log = logging.getLogger("speecheq")


def split_name(fold: str, split: str) -> str:
    return f"{fold}_{split}" if fold else split


def planned_splits(
    corpus: str, output_dir: Pathlike, folds: Optional[List[str]] = None, **protocol_options
) -> Dict[str, Tuple[Path, Callable, str]]:
    """{split name: (file, supervision selector, what it selects)} of the protocol's splits."""
    protocol = get_corpus(corpus).protocol(**protocol_options)
    if folds:
        unknown = [f for f in folds if f not in protocol]
        if unknown:
            raise SpeechEQError(f"{corpus}: unknown fold(s) {unknown}; protocol has {list(protocol)}")
        protocol = {f: protocol[f] for f in folds}
    planned = {}
    for fold, splits in protocol.items():
        for split, speakers in splits.items():
            name = split_name(fold, split)
            path = Path(output_dir) / f"{corpus}_cuts_{name}.jsonl.gz"
            if callable(speakers):  # an utterance-level split (custom.UtteranceSplit)
                planned[name] = (path, speakers, repr(speakers))
            else:
                keep = frozenset(speakers)
                planned[name] = (path, (lambda s, keep=keep: s.speaker in keep), f"speakers {sorted(keep)[:4]}...")
    return planned


def write_splits(
    corpus: str,
    cuts_path: Pathlike,
    output_dir: Pathlike,
    folds: Optional[List[str]] = None,
    transform: Optional[Callable] = None,
    **protocol_options,
) -> Dict[str, Path]:
    """Write the protocol's splits as cut subsets of the feature manifest.

    Subsets share the feature storage of ``<corpus>_cuts_all``, so features are
    extracted once however many folds a protocol has. ``transform`` maps each
    selected cut (e.g. silence trimming). Returns {split name: path}.

    The splits are one set: each is written under a temporary name and all are
    renamed once every one is written and non-empty, so a failure (an empty dev
    split) leaves no split file that looks complete.
    """
    planned = planned_splits(corpus, output_dir, folds, **protocol_options)
    staged: Dict[str, Tuple[Path, Path]] = {}
    try:
        for name, (path, select, what) in planned.items():
            subset = (c for c in load_cuts_lazy(cuts_path) if select(c.supervisions[0]))
            if transform is not None:
                subset = map(transform, subset)
            staged[name] = (temporary_path(path), path)
            count = write_cuts(subset, staged[name][0])
            if count == 0:
                raise SpeechEQError(f"{corpus}: split {name} is empty ({what})")
            log.info("%s: %s %d cuts -> %s", corpus, name, count, path)
        for tmp, path in staged.values():
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged.values():
            tmp.unlink(missing_ok=True)
    return {name: path for name, (_, path) in staged.items()}


def validate_and_split(
    corpus: str,
    fbank_dir: Pathlike,
    label_preset: str = "4class",
    folds: Optional[List[str]] = None,
    trim_silence_db: float = 0.0,
    **protocol_options,
) -> Dict[str, dict]:
    """The validate stage: lhotse's checks plus ours on every cut, then the protocol's splits.

    ``trim_silence_db > 0`` cuts leading and trailing silence (frames more than that
    many dB below the cut's peak, see ``features.trim_silence``) out of every split.

    Returns {split: label summary} and writes it to ``<corpus>_splits.json``, so
    the stage summary shows what each task learns from and what the preset excludes.
    Holds the lock of ``fbank_dir`` and removes the temporaries a killed run left there.
    """
    with folder_lock(fbank_dir, f"validate stage ({corpus})"):
        remove_stale_temporaries(fbank_dir)
        planned = planned_splits(corpus, fbank_dir, folds, **protocol_options)
        try:
            return _validate_and_split(corpus, fbank_dir, label_preset, folds, trim_silence_db, **protocol_options)
        except BaseException:
            # Split files from an earlier run would look like this run's output: a failed stage leaves none.
            for path, _, _ in planned.values():
                path.unlink(missing_ok=True)
            (Path(fbank_dir) / f"{corpus}_splits.json").unlink(missing_ok=True)
            raise


def _validate_and_split(
    corpus: str,
    fbank_dir: Pathlike,
    label_preset: str,
    folds: Optional[List[str]],
    trim_silence_db: float,
    **protocol_options,
) -> Dict[str, dict]:
    from lhotse.qa import validate

    fbank_dir = Path(fbank_dir)
    cuts_path = fbank_dir / f"{corpus}_cuts_all.jsonl.gz"
    n = 0
    for cut in load_cuts_lazy(cuts_path):
        try:
            validate(cut, read_data=False)
            validate_contract(cut.supervisions)
        except (AssertionError, ValueError) as e:
            raise SpeechEQError(f"{cuts_path}: cut {cut.id} failed validation: {e}") from None
        if not cut.has_features:
            raise SpeechEQError(f"{cuts_path}: cut {cut.id} has no features; re-run the fbank stage")
        n += 1
    log.info("%s: %d cuts validated", corpus, n)
    scheme = LabelScheme.from_preset(label_preset)
    transform = None
    if trim_silence_db > 0:
        transform = partial(trim_silence, threshold_db=trim_silence_db)
        log.info("%s: trimming leading and trailing silence (%.0f dB below each cut's peak)", corpus, trim_silence_db)
    summaries = {}
    for split, path in write_splits(corpus, cuts_path, fbank_dir, folds, transform, **protocol_options).items():
        summaries[split] = label_summary(load_cuts_lazy(path), scheme)
        log.info("%s %s: %s", corpus, split, summaries[split])
    write_json_atomic(fbank_dir / f"{corpus}_splits.json", summaries)
    return summaries
