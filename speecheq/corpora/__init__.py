"""Corpus registry: one ``prepare_<corpus>`` per corpus, one ``local/prepare.py`` for all.

A recipe names its corpus; the registry gives the prepare function (corpus
files -> manifests), the speaker-independent protocol (speakers per split and
fold) and the options each takes on the command line. Everything after
preparation is corpus-agnostic (the validate stage: ``speecheq.splits``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Tuple

from speecheq.corpora import casia, cremad, custom, emodb, esd, iemocap, ravdess, synth
from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, changed_input

log = logging.getLogger("speecheq")

# A corpus module may declare, per stage script, the options it takes:
# PREPARE_OPTIONS (keywords of prepare_<name>) and VALIDATE_OPTIONS (keywords of protocol()),
# each {flag: (keyword, help)}.
STAGE_OPTIONS = {"prepare": "PREPARE_OPTIONS", "validate": "VALIDATE_OPTIONS"}


@dataclass(frozen=True)
class CorpusRecipe:
    name: str
    module: ModuleType  # defines prepare_<name>() and protocol()

    @property
    def prepare(self) -> Callable:
        return getattr(self.module, f"prepare_{self.name}")

    def protocol(self, **options) -> Dict[str, Dict[str, set]]:
        """{fold name: {"train"|"dev"|"test": speakers}}; fold "" is a single split."""
        return self.module.protocol(**options)

    def options(self, stage: str) -> Dict[str, Tuple[str, str]]:
        """{flag: (keyword, help)} this corpus takes in ``stage`` ("prepare" or "validate")."""
        return getattr(self.module, STAGE_OPTIONS[stage], {})

    def given_options(self, stage: str, args) -> Dict[str, object]:
        """{keyword: value} of the corpus options that ``args`` (a parser built with
        ``add_stage_options``) gives. A flag this corpus does not take is an error: silently
        ignoring it would prepare or split something else than the user asked for."""
        own = self.options(stage)
        given = {}
        for flag, (keyword, _) in stage_options(stage).items():
            value = getattr(args, keyword, None)
            if value is None:
                continue
            if flag not in own:
                raise SpeechEQError(f"corpus {self.name} takes no {flag} in the {stage} stage")
            given[keyword] = value
        return given


CORPORA: Dict[str, CorpusRecipe] = {
    module.__name__.rsplit(".", 1)[-1]: CorpusRecipe(module.__name__.rsplit(".", 1)[-1], module)
    for module in (synth, ravdess, casia, esd, iemocap, emodb, cremad, custom)
}


def get_corpus(name: str) -> CorpusRecipe:
    if name not in CORPORA:
        raise SpeechEQError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}")
    return CORPORA[name]


def stage_options(stage: str) -> Dict[str, Tuple[str, str]]:
    """{flag: (keyword, help)} of every corpus's options in ``stage``; the help names the
    corpora that take the flag, so one script serves them all."""
    merged: Dict[str, Tuple[str, List[str]]] = {}
    for name, corpus in CORPORA.items():
        for flag, (keyword, help) in corpus.options(stage).items():
            known, helps = merged.setdefault(flag, (keyword, []))
            if known != keyword:
                raise SpeechEQError(f"{flag} means {known} to one corpus and {keyword} to {name} ({stage} stage)")
            helps.append(f"{name}: {help}")
    return {flag: (keyword, "; ".join(helps)) for flag, (keyword, helps) in merged.items()}


def add_stage_options(parser, stage: str) -> None:
    """Add every corpus's ``stage`` options to a stage script's parser (None when not given)."""
    for flag, (keyword, help) in stage_options(stage).items():
        parser.add_argument(flag, dest=keyword, default=None, help=help)


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
