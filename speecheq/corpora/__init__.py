"""Corpus registry: one ``prepare_<corpus>`` per corpus, one ``local/prepare.py`` for all.

A recipe names its corpus; the registry gives the prepare function (corpus
files -> manifests) and the speaker-independent protocol (speakers per split and
fold). Everything after preparation is corpus-agnostic.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, changed_input, load_cuts_lazy, write_cuts

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
    for name in ("synth", "ravdess", "casia", "esd", "iemocap", "emodb", "cremad", "custom")
}


def get_corpus(name: str) -> CorpusRecipe:
    if name not in CORPORA:
        raise SpeechEQError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}")
    return CORPORA[name]


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
    from speecheq.io import temporary_path

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


def prepare_corpus(name: str, corpus_dir: Pathlike, output_dir: Pathlike, *, force: bool = False, **options):
    """Run ``prepare_<name>`` once: skipped when its manifests are marked done.

    Writes ``<name>_{recordings,supervisions}_all.jsonl.gz`` and a summary JSON
    (utterances, hours, skips by reason) next to them. Takes the lock of
    ``output_dir`` (a second run on it stops with one line) and removes the
    temporaries a killed run left there.
    """
    from speecheq.corpora.common import manifest_paths, require_corpus_dir
    from speecheq.io import clear_done, folder_lock, is_done, mark_done, remove_stale_temporaries, write_json_atomic

    rec_path, sup_path = manifest_paths(output_dir, name, "all")
    inputs = preparation_inputs(require_corpus_dir(corpus_dir, name), options)
    if is_done(rec_path) and not force:
        # Stop rather than redo: the old manifests may already feed features and trained models,
        # and another --corpus-dir is as likely a slip as a wish.
        changed = changed_input(rec_path, inputs)
        if changed:
            raise SpeechEQError(
                f"{output_dir} was prepared with {changed}; re-run stage 0 with --force to prepare it again"
            )
        log.info("%s: manifests already prepared (%s); skipping", name, rec_path)
        return None
    with folder_lock(output_dir, f"preparation ({name})"):
        remove_stale_temporaries(output_dir)
        clear_done(rec_path)  # a --force run killed between the two manifests must not look done
        result = get_corpus(name).prepare(corpus_dir, output_dir, **options)
        summary = result["summary"]
        write_json_atomic(Path(output_dir) / f"{name}_prepare_summary.json", summary.to_dict())
        mark_done(rec_path, {**summary.to_dict(), "inputs": inputs})
    log.info("%s", summary.line())
    return summary


def preparation_inputs(corpus_dir: Path, options: dict) -> Dict[str, str]:
    """What the manifests are made from: the corpus folder, its files, and every option that is a
    plain value (a file named by one by its content: a transcript, a TSV, a mapping)."""
    from speecheq.io import file_fingerprint, folder_fingerprint

    inputs = {"corpus folder": str(corpus_dir.resolve()), "corpus files": folder_fingerprint(corpus_dir)}
    for key, value in sorted(options.items()):
        if key == "progress" or not isinstance(value, (str, Path, int, float, bool)):
            continue  # executors, the G2P object, progress bars: how, not what
        if isinstance(value, (str, Path)) and Path(value).is_file():
            value = file_fingerprint(value)
        inputs[key.replace("_", " ")] = str(value)
    return inputs


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
    from speecheq.io import folder_lock, remove_stale_temporaries

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

    from speecheq.corpora.common import validate_contract
    from speecheq.io import write_json_atomic
    from speecheq.labels import LabelScheme, label_summary

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
        from speecheq.features import trim_silence

        transform = partial(trim_silence, threshold_db=trim_silence_db)
        log.info("%s: trimming leading and trailing silence (%.0f dB below each cut's peak)", corpus, trim_silence_db)
    summaries = {}
    for split, path in write_splits(corpus, cuts_path, fbank_dir, folds, transform, **protocol_options).items():
        summaries[split] = label_summary(load_cuts_lazy(path), scheme)
        log.info("%s %s: %s", corpus, split, summaries[split])
    write_json_atomic(fbank_dir / f"{corpus}_splits.json", summaries)
    return summaries


def link_prepared(corpora: List[str], egs_dir: Pathlike, data_dir: Pathlike = "data") -> Dict[str, List[Path]]:
    """Make corpora prepared by their own recipes visible to a multi-corpus recipe.

    Feature manifests store storage paths relative to the recipe folder
    (``data/fbank/<corpus>_feats_all``), so the files are linked into the same
    relative place here rather than copied: nothing is extracted twice.
    """
    egs_dir, data_dir = Path(egs_dir), Path(data_dir)
    linked: Dict[str, List[Path]] = {}
    for corpus in corpora:
        get_corpus(corpus)
        source = egs_dir / corpus / "data"
        marker = source / "fbank" / f"{corpus}_cuts_all.jsonl.gz.done"
        if not marker.exists():
            raise SpeechEQError(
                f"{corpus} is not prepared: run egs/{corpus}/run.sh --stop-stage 3 first (missing {marker})"
            )
        linked[corpus] = []
        for sub in ("manifests", "fbank"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
            for src in sorted((source / sub).glob(f"{corpus}_*")):
                dst = data_dir / sub / src.name
                if dst.is_symlink() or dst.exists():
                    if dst.resolve() == src.resolve():
                        continue
                    dst.unlink()
                dst.symlink_to(src.resolve())
                linked[corpus].append(dst)
        log.info("%s: linked %d prepared files from %s", corpus, len(linked[corpus]), source)
    return linked
