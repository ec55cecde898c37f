"""EmoDB, the Berlin Database of Emotional Speech: 10 German speakers, 10 texts, 7 emotions.

Everything is in the file name ``<root>/wav/<SS><TTT><E><V>.wav`` (``03a01Fa.wav``):
speaker SS, text code TTT, emotion letter E, version letter V. Files with another
name, speaker or text code are skipped and counted (``layout``); an emotion
letter outside the table is a counted ``label`` skip.

Speaker genders are public (03 10 11 12 15 male, 08 09 13 14 16 female). The
ten texts are the corpus's published sentences (Burkhardt et al. 2005, the
EmoDB documentation); phones come from espeak-ng (language "de").

Protocol: 5 folds of speaker pairs (one male, one female): fold k tests pair k,
dev is pair k+1, train the other 6 speakers (3 male, 3 female). Pairs:
(03, 08), (10, 09), (11, 13), (12, 14), (15, 16).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import List

from speecheq.corpora.common import Utterance, require_corpus_dir, speaker_folds
from speecheq.corpora.common import Skips, finish

log = logging.getLogger("speecheq")

CORPUS = "emodb"
GENDERS = {"03": "M", "10": "M", "11": "M", "12": "M", "15": "M", "08": "F", "09": "F", "13": "F", "14": "F", "16": "F"}
TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
PAIRS = (("03", "08"), ("10", "09"), ("11", "13"), ("12", "14"), ("15", "16"))
_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")


def iter_utterances(corpus_dir: Path, skips: Skips) -> List[Utterance]:
    utterances = []
    wav_dir = corpus_dir / "wav"
    for path in sorted(p for p in corpus_dir.rglob("*") if p.suffix.lower() == ".wav"):
        m = _NAME.match(path.stem)
        if path.parent != wav_dir or not m or m.group(1) not in GENDERS or m.group(2) not in TEXTS:
            skips("layout", f"{path}: not wav/<SS><TTT><E><V>.wav with an EmoDB speaker and text code")
            continue
        speaker, text_code, emotion, version = m.groups()
        utterances.append(
            Utterance(
                id=f"{CORPUS}_{path.stem}",
                audio_path=str(path),
                speaker=speaker,
                gender=GENDERS[speaker],
                language="de",
                text=TEXTS[text_code],
                emotion_raw=emotion,
                extra={"text_code": text_code, "version": version},
            )
        )
    return utterances


def prepare_emodb(corpus_dir, output_dir=None, *, on_error: str = "skip", executor=None, g2p=None, progress=True):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    skips = Skips(CORPUS, on_error)
    utterances = iter_utterances(corpus_dir, skips)
    return finish(
        CORPUS, utterances, skips, output_dir, on_error=on_error, executor=executor, g2p=g2p, progress=progress
    )


def protocol():
    """{fold: {split: speakers}}: 5 folds of (male, female) speaker pairs, dev = the next pair."""
    tests = [list(p) for p in PAIRS]
    devs = [tests[(k + 1) % len(tests)] for k in range(len(tests))]
    return {f"fold{k}": v for k, v in speaker_folds(list(GENDERS), tests, devs).items()}
