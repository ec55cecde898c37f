"""CREMA-D: 91 actors (1001-1091), 12 English sentences, 6 emotions, 3 levels + unspecified.

Everything but gender is in the file name ``<root>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav``
(``1001_DFA_ANG_XX.wav``). Level LO/MD/HI gives intensity 1/3, 2/3, 1; ``XX``
(unspecified) gives None; neutral is 0. Files with another name, actor or
sentence code are skipped and counted (``layout``); an emotion or level outside
the tables is a counted ``label`` skip.

Gender comes from ``<root>/VideoDemographics.csv`` (columns ActorID, Age, Sex,
Race, Ethnicity); an actor it does not list, or every actor when the file is
missing, has gender None. The 12 sentences are fixed English texts: phones by
CMUdict.

Protocol: 5 speaker-independent folds ``fold0..fold4`` over the 91 actors
(:func:`speecheq.corpora.common.balanced_folds`): fold k tests every 5th actor of
an order that interleaves female and male actors (read from the demographics
file when ``corpus_dir`` is given, as the recipe does; otherwise actors in id
order), dev is half of fold k+1's test actors (9), train the other ~64.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

from speecheq.corpora.common import Utterance, normalize_gender, require_corpus_dir
from speecheq.corpora.common import Skips, balanced_folds, finish
from speecheq.errors import LabelError, SpeechEQError

log = logging.getLogger("speecheq")

CORPUS = "cremad"
ACTORS = [str(n) for n in range(1001, 1092)]
SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
DEMOGRAPHICS = "VideoDemographics.csv"
NUM_FOLDS = 5
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
# flag -> (keyword of protocol, help) in local/validate.py
VALIDATE_OPTIONS = {"--corpus-dir": ("corpus_dir", "genders for balanced folds")}


def read_demographics(path: Path) -> Dict[str, Optional[str]]:
    """{actor: "M" | "F" | None} from VideoDemographics.csv."""
    from speecheq.text.encoding import read_text

    text, _ = read_text(path, "CREMA-D demographics file")
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in ("ActorID", "Sex") if c not in (reader.fieldnames or [])]
    if missing:
        raise SpeechEQError(f"{path}:1: header lacks column(s) {', '.join(missing)} (have: {reader.fieldnames})")
    out: Dict[str, Optional[str]] = {}
    for row in reader:
        try:
            out[str(row["ActorID"]).strip()] = normalize_gender(row["Sex"])
        except LabelError as e:
            raise SpeechEQError(f"{path}:{reader.line_num}: {e}") from None
    return out


def iter_utterances(
    corpus_dir: Path, genders: Dict[str, Optional[str]], skips: Skips, notes: Counter
) -> List[Utterance]:
    utterances = []
    audio_dir = corpus_dir / "AudioWAV"
    for path in sorted(p for p in corpus_dir.rglob("*") if p.suffix.lower() == ".wav"):
        m = _NAME.match(path.stem)
        if path.parent != audio_dir or not m or m.group(1) not in ACTORS or m.group(2) not in SENTENCES:
            skips(
                "layout",
                f"{path}: not AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav with a CREMA-D "
                "actor (1001-1091) and sentence code",
            )
            continue
        actor, sentence, emotion, level = m.groups()
        if actor not in genders:
            notes["actor not in demographics"] += 1
        utterances.append(
            Utterance(
                id=f"{CORPUS}_{path.stem}",
                audio_path=str(path),
                speaker=actor,
                gender=genders.get(actor),
                language="en",
                text=SENTENCES[sentence],
                emotion_raw=emotion,
                intensity_level=level,
                extra={"sentence": sentence},
            )
        )
    return utterances


def _genders(corpus_dir: Path) -> Dict[str, Optional[str]]:
    path = corpus_dir / DEMOGRAPHICS
    if not path.is_file():
        log.warning("%s: %s not found: gender is None (masked) for every actor", CORPUS, path)
        return {}
    return read_demographics(path)


def prepare_cremad(corpus_dir, output_dir=None, *, on_error: str = "skip", executor=None, g2p=None, progress=True):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    skips, notes = Skips(CORPUS, on_error), Counter()
    utterances = iter_utterances(corpus_dir, _genders(corpus_dir), skips, notes)
    return finish(
        CORPUS,
        utterances,
        skips,
        output_dir,
        notes=notes,
        on_error=on_error,
        executor=executor,
        g2p=g2p,
        progress=progress,
    )


def protocol(corpus_dir=None, num_folds: int = NUM_FOLDS):
    """{fold: {split: actors}}: 5 speaker-independent folds, genders interleaved when known."""
    genders = _genders(Path(corpus_dir)) if corpus_dir is not None else {}
    return balanced_folds(ACTORS, num_folds, {a: genders.get(a) for a in ACTORS})
