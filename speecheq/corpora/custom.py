"""In-house corpora (the paper's SEQD stand-in): a TSV of files plus a label-mapping YAML.

Format (see docs/adding-a-corpus.md for an example):

* ``metadata.tsv`` (``--tsv``, default ``<corpus_dir>/metadata.tsv``): UTF-8 (or
  UTF-16 / GB18030, detected), tab-separated, a header line naming the columns.
  Required: ``path``, ``speaker``, ``emotion``. Optional: ``intensity`` (a level
  name from the YAML, or a float in [0, 1]), ``gender`` (M/F/male/female, empty =
  unknown), ``language`` (for G2P; default: the YAML's ``language``), ``text``,
  ``split`` (train/dev/test), ``id`` (default: the path without its extension,
  ``/`` -> ``_``). Relative paths are relative to the TSV's folder. Other
  columns are ignored (logged once).
* ``labels.yaml`` (``--mapping``, default ``<corpus_dir>/labels.yaml``)::

      name: seqd                 # optional; corpus name in ids and labels (default "custom")
      language: zh               # optional; rows without a language column/value
      emotions:                  # raw label -> unified category, or null (kept for other tasks)
        happy: happy
        excited: happy
        other: null
      intensity_levels:          # optional; raw level -> value in [0, 1]
        weak: 0.5
        strong: 1.0

  The table is registered with :func:`speecheq.labels.register_corpus` under
  ``name``; utterance ids are ``<name>_<id>``, so they cannot clash with another
  corpus's ids (each corpus prefixes its own name). Manifest files keep the
  registry name: ``custom_{recordings,supervisions}_all.jsonl.gz``.

Bad rows (a missing required value, a wrong number of fields, an audio path that
does not exist, an unknown label, gender or intensity, a bad split value) are
skipped and counted with their ``file:line``; ``on_error="stop"`` stops at the
first with that line. A malformed YAML or a TSV header without the required
columns is one SpeechEQError naming the file.

Protocol: the ``split`` column as one ``""`` fold (files ``custom_cuts_{train,dev,test}``)
when the TSV has it, else speaker-independent folds (:func:`balanced_folds`,
genders interleaved): ``fold0..fold{n-1}``, ``n = min(num_folds, speakers)``.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from speecheq import labels
from speecheq.corpora.common import (
    Skips,
    Utterance,
    balanced_folds,
    finish,
    normalize_gender,
    require_corpus_dir,
    utterance_split_protocol,
)
from speecheq.errors import LabelError, SpeechEQError

log = logging.getLogger("speecheq")

CORPUS = "custom"
REQUIRED = ("path", "speaker", "emotion")
OPTIONAL = ("intensity", "gender", "language", "text", "split", "id")
SPLITS = {
    "train": "train",
    "dev": "dev",
    "valid": "dev",
    "validation": "dev",
    "eval": "dev",
    "evaluation": "dev",
    "test": "test",
}
YAML_KEYS = ("name", "language", "emotions", "intensity_levels")
NULLS = ("", "null", "Null", "NULL", "~", "none", "None")
DEFAULT_TSV = "metadata.tsv"
DEFAULT_MAPPING = "labels.yaml"
# flag -> (keyword of prepare_custom / protocol, help) in local/prepare.py and local/validate.py
PREPARE_OPTIONS = {
    "--tsv": ("tsv", f"metadata TSV (default <corpus-dir>/{DEFAULT_TSV})"),
    "--mapping": ("mapping", f"label-mapping YAML (default <corpus-dir>/{DEFAULT_MAPPING})"),
}
VALIDATE_OPTIONS = {
    "--protocol": ("kind", "split or si (default: split when the TSV has one)"),
    "--corpus-dir": ("corpus_dir", f"folder of {DEFAULT_TSV}"),
    "--tsv": ("tsv", "metadata TSV (speakers, split column)"),
}


# --------------------------------------------------------------------------------------------
# The in-house format.


@dataclass
class LabelMapping:
    name: str
    emotions: Dict[str, Optional[str]]
    intensity_levels: Optional[Dict[str, Optional[float]]]
    language: Optional[str]


def _null(value) -> Optional[str]:
    return None if value is None or (isinstance(value, str) and value.strip() in NULLS) else value


def load_mapping(path) -> LabelMapping:
    """Read and check the label-mapping YAML; register its table with the unified metric."""
    import yaml

    from speecheq.text.encoding import read_text

    path = Path(path)
    text, _ = read_text(path, "label mapping")
    try:
        doc = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar a string: "yes" stays "yes"
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpeechEQError(f"{path}{where}: malformed YAML ({problem})") from None
    if not isinstance(doc, dict):
        raise SpeechEQError(f"{path}: expected a mapping with an 'emotions:' table")
    unknown = [k for k in doc if k not in YAML_KEYS]
    if unknown:
        raise SpeechEQError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; expected {', '.join(YAML_KEYS)}")
    emotions = doc.get("emotions")
    if not isinstance(emotions, dict) or not emotions:
        raise SpeechEQError(f"{path}: 'emotions:' must be a non-empty mapping raw label -> unified category or null")
    for raw, value in emotions.items():
        if not isinstance(value, str):
            raise SpeechEQError(f"{path}: emotions: {raw!r} must map to a category name or null")
    table = {str(raw): _null(value) for raw, value in emotions.items()}
    levels = doc.get("intensity_levels")
    if levels is not None:
        if not isinstance(levels, dict):
            raise SpeechEQError(f"{path}: 'intensity_levels:' must be a mapping raw level -> value in [0, 1] or null")
        parsed: Dict[str, Optional[float]] = {}
        for raw, value in levels.items():
            value = _null(value)
            try:
                parsed[str(raw)] = None if value is None else float(value)
            except (TypeError, ValueError):
                raise SpeechEQError(f"{path}: intensity level {raw!r}: {value!r} is not a number") from None
        levels = parsed
    name = _null(doc.get("name")) or CORPUS
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SpeechEQError(f"{path}: name {name!r} must be lower-case letters, digits and _")
    from speecheq.corpora import CORPORA

    if name != CORPUS and name in CORPORA:
        raise SpeechEQError(f"{path}: name {name!r} is a built-in corpus; choose another")
    language = _null(doc.get("language"))
    try:
        labels.register_corpus(name, table, levels)
    except LabelError as e:
        raise SpeechEQError(f"{path}: {e}") from None
    return LabelMapping(name, table, levels, language)


def read_tsv(path) -> Tuple[List[str], List[Tuple[int, Dict[str, str], Optional[str]]]]:
    """(header, [(line number, row, problem or None)]); a header lacking a required column
    is a SpeechEQError, a malformed row is returned with its problem."""
    from speecheq.text.encoding import read_text

    path = Path(path)
    text, _ = read_text(path, "metadata TSV")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SpeechEQError(f"{path}: empty (expected a header line with {', '.join(REQUIRED)})")
    header = [h.strip().lower() for h in next(csv.reader([lines[0]], delimiter="\t", quoting=csv.QUOTE_NONE))]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SpeechEQError(f"{path}:1: header lacks column(s) {', '.join(missing)} (have: {', '.join(header)})")
    ignored = [h for h in header if h not in REQUIRED + OPTIONAL]
    if ignored:
        log.info("%s: ignoring column(s) %s", path, ", ".join(ignored))
    rows = []
    for n, fields in enumerate(csv.reader(lines[1:], delimiter="\t", quoting=csv.QUOTE_NONE), 2):
        if not fields or all(not f.strip() for f in fields):
            continue
        problem = None
        if len(fields) > len(header):
            problem = f"{len(fields)} tab-separated fields, header has {len(header)}"
        fields = [f.strip() for f in fields] + [""] * (len(header) - len(fields))
        row = dict(zip(header, fields))
        empty = [c for c in REQUIRED if not row.get(c)]
        if problem is None and empty:
            problem = f"missing {', '.join(empty)}"
        rows.append((n, row, problem))
    return header, rows


def _intensity(raw: str, mapping: LabelMapping) -> Tuple[Optional[str], Optional[float]]:
    """(level for labels.unify_intensity, value): a YAML level name first, else a float."""
    if not raw:
        return None, None
    if mapping.intensity_levels and raw in mapping.intensity_levels:
        return raw, None
    try:
        value = float(raw)
    except ValueError:
        known = ", ".join(mapping.intensity_levels or {}) or "none in the mapping"
        raise LabelError(f"intensity {raw!r} is neither a level ({known}) nor a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise LabelError(f"intensity {value} outside [0, 1]")
    return None, value


def iter_rows(tsv: Path, mapping: LabelMapping, skips: Skips) -> List[Utterance]:
    header, rows = read_tsv(tsv)
    has_split = "split" in header
    utterances = []
    for n, row, problem in rows:
        where = f"{tsv}:{n}"
        if problem:
            skips("row", f"{where}: {problem}")
            continue
        audio = Path(row["path"])
        if not audio.is_absolute():
            audio = tsv.parent / audio
        if not audio.is_file():
            skips("row", f"{where}: audio file not found: {audio}")
            continue
        raw = row["emotion"]
        if raw not in mapping.emotions:
            skips("label", f"{where}: unknown emotion label {raw!r}; the mapping knows {', '.join(mapping.emotions)}")
            continue
        try:
            gender = normalize_gender(row.get("gender") or None)
            level, value = _intensity(row.get("intensity", ""), mapping)
        except LabelError as e:
            skips("label", f"{where}: {e}")
            continue
        if mapping.emotions[raw] == labels.NEUTRAL:
            level, value = None, None  # neutral is 0 by definition, whatever the row says
        extra = {}
        if has_split:
            split = SPLITS.get(row["split"].lower())
            if split is None:
                skips("row", f"{where}: split {row['split']!r} is not one of train, dev, test")
                continue
            extra["split"] = split
        uid = row.get("id") or str(Path(row["path"]).with_suffix("")).replace("\\", "/").strip("/").replace("/", "_")
        utterances.append(
            Utterance(
                id=f"{mapping.name}_{uid}",
                audio_path=str(audio),
                speaker=row["speaker"],
                emotion_raw=raw,
                gender=gender,
                language=row.get("language") or mapping.language,
                text=row.get("text") or None,
                intensity_level=level,
                intensity=value,
                extra=extra,
            )
        )
    return utterances


def _paths(corpus_dir, tsv, mapping) -> Tuple[Path, Path]:
    root = Path(corpus_dir) if corpus_dir is not None else None
    if tsv is None:
        if root is None:
            raise SpeechEQError("custom: pass --tsv (or --corpus-dir holding metadata.tsv)")
        tsv = root / DEFAULT_TSV
    if mapping is None:
        mapping = (root if root is not None else Path(tsv).parent) / DEFAULT_MAPPING
    tsv = Path(tsv)
    if not tsv.is_file():
        raise SpeechEQError(f"custom: metadata TSV not found: {tsv} (pass --tsv)")
    if not Path(mapping).is_file():
        raise SpeechEQError(f"custom: label mapping not found: {mapping} (pass --mapping)")
    return tsv, Path(mapping)


def prepare_custom(
    corpus_dir,
    output_dir=None,
    *,
    tsv=None,
    mapping=None,
    on_error: str = "skip",
    executor=None,
    g2p=None,
    progress=True,
):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    tsv, mapping_path = _paths(corpus_dir, tsv, mapping)
    table = load_mapping(mapping_path)
    skips = Skips(table.name, on_error)
    utterances = iter_rows(tsv, table, skips)
    return finish(
        table.name,
        utterances,
        skips,
        output_dir,
        manifest_name=CORPUS,
        on_error=on_error,
        known_files=(tsv, mapping_path),
        executor=executor,
        g2p=g2p,
        progress=progress,
    )


def protocol(tsv=None, corpus_dir=None, kind: Optional[str] = None, num_folds: int = 5):
    """The TSV's ``split`` column as fold ``""`` (``kind="split"``, the default when the
    column exists), else ``fold0..`` speaker-independent folds with genders interleaved."""
    tsv_path = Path(tsv) if tsv is not None else (Path(corpus_dir) / DEFAULT_TSV if corpus_dir is not None else None)
    if tsv_path is None:
        raise SpeechEQError("custom: the protocol reads speakers and splits from the TSV: pass --tsv")
    header, rows = read_tsv(tsv_path)
    kind = kind or ("split" if "split" in header else "si")
    if kind == "split":
        if "split" not in header:
            raise SpeechEQError(f"{tsv_path}: --protocol split needs a 'split' column")
        return utterance_split_protocol()
    if kind != "si":
        raise SpeechEQError(f"custom: unknown protocol {kind!r}; choose split or si")
    genders: Dict[str, Optional[str]] = {}
    for _, row, problem in rows:
        if problem is None:
            try:
                g = normalize_gender(row.get("gender") or None)
            except LabelError:
                g = None
            genders.setdefault(row["speaker"], g)
            genders[row["speaker"]] = genders[row["speaker"]] or g
    try:
        return balanced_folds(list(genders), num_folds, genders)
    except SpeechEQError as e:
        raise SpeechEQError(f"{tsv_path}: {e} (or give a 'split' column)") from None
