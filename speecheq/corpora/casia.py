"""CASIA Chinese emotional corpus (public 1200-utterance subset): 4 speakers, 6 emotions, Mandarin.

Layout ``<root>/<speaker>/<emotion>/<nnn>.wav``; the folder names are the labels.
Speaker genders are known (two female, two male); speaker folders are matched
case-insensitively and named as below. Files outside that shape (another depth,
another speaker, a name that is not three digits) are skipped and counted
(``layout``); an emotion folder outside the label table is a counted ``label`` skip.

The release ships no transcripts. ``transcripts=FILE`` (lines ``<nnn><TAB>text``,
text in Chinese characters or tone-numbered pinyin, any of UTF-8 / UTF-16 /
GB18030) gives text and, through G2P (language "zh"), phones; without it text
and phones are None and the phoneme task is off for this corpus.

Protocol: 4-fold leave-one-speaker-out (``fold0..fold3``), fold k tests speaker
k of :data:`SPEAKERS`, as EmoBox and most papers do. ``kind="texts"`` (default): the
other three speakers train, and dev is their utterances of the held-out texts
(:data:`DEV_NUMBERS`, every fifth of the 50 shared texts), which train never sees,
so dev and train share speakers but no sentence. ``kind="speaker"``: dev is one
whole speaker of the other gender and train keeps two speakers (the protocol
before; it loses a third of the training data and half of its speakers).
docs/protocols.md says why.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

from speecheq.corpora.common import SpeakerTextSplit, Utterance, require_corpus_dir, speaker_folds
from speecheq.corpora.common import Skips, finish
from speecheq.errors import SpeechEQError

log = logging.getLogger("speecheq")

CORPUS = "casia"
SPEAKERS = {"liuchanhg": "F", "zhaoquanyin": "F", "wangzhe": "M", "ZhaoZuoxiang": "M"}
# fold k: (test speaker, dev speaker of the other gender)
FOLDS = (
    ("liuchanhg", "wangzhe"),
    ("zhaoquanyin", "ZhaoZuoxiang"),
    ("wangzhe", "zhaoquanyin"),
    ("ZhaoZuoxiang", "liuchanhg"),
)
# Held-out texts of the "texts" protocol: spread over the numbering, in case it follows recording order.
DEV_NUMBERS = frozenset(f"{n:03d}" for n in range(205, 251, 5))
_NUMBER = re.compile(r"^\d{3}$")
_LINE = re.compile(r"^\s*(\d+)\s+(\S.*?)\s*$")
# flag -> (keyword of prepare_casia / protocol, help) in local/prepare.py and local/validate.py
PREPARE_OPTIONS = {"--transcripts": ("transcripts", "<nnn><TAB>text file (characters or tone-numbered pinyin)")}
VALIDATE_OPTIONS = {
    "--protocol": ("kind", "texts (default: dev = held-out texts of the training speakers) or speaker"),
}


def read_transcripts(path) -> Dict[int, str]:
    """{utterance number: text} from ``<nnn><TAB>text`` lines (encoding detected)."""
    from speecheq.text.encoding import read_text

    text, encoding = read_text(path, "CASIA transcript file")
    table: Dict[int, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise SpeechEQError(f"{path}:{n}: expected '<nnn><TAB>text', got {line.strip()[:40]!r}")
        number = int(m.group(1))
        if number in table:
            raise SpeechEQError(f"{path}:{n}: utterance {m.group(1)} listed twice")
        table[number] = m.group(2)
    log.info("%s: %d transcripts (%s)", path, len(table), encoding)
    return table


def iter_utterances(
    corpus_dir: Path, skips: Skips, transcripts: Optional[Dict[int, str]], notes: Counter
) -> List[Utterance]:
    speakers = {s.lower(): s for s in SPEAKERS}
    utterances = []
    for path in sorted(corpus_dir.rglob("*.wav")):
        parts = path.relative_to(corpus_dir).parts
        if len(parts) != 3 or not _NUMBER.match(path.stem) or parts[0].lower() not in speakers:
            skips("layout", f"{path}: not <speaker>/<emotion>/<nnn>.wav with a CASIA speaker ({', '.join(SPEAKERS)})")
            continue
        speaker, emotion = speakers[parts[0].lower()], parts[1]
        text = None
        if transcripts is not None:
            text = transcripts.get(int(path.stem))
            if text is None:
                notes["no transcript line"] += 1
        utterances.append(
            Utterance(
                id=f"{CORPUS}_{speaker}_{emotion}_{path.stem}",
                audio_path=str(path),
                speaker=speaker,
                gender=SPEAKERS[speaker],
                language="zh",
                text=text,
                emotion_raw=emotion,
                extra={"number": path.stem},
            )
        )
    return utterances


def prepare_casia(
    corpus_dir, output_dir=None, *, transcripts=None, on_error: str = "skip", executor=None, g2p=None, progress=True
):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    table = read_transcripts(transcripts) if transcripts else None
    if table is None:
        log.info("%s: no transcripts given: text and phones are None (no phoneme task)", CORPUS)
    skips, notes = Skips(CORPUS, on_error), Counter()
    utterances = iter_utterances(corpus_dir, skips, table, notes)
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


def protocol(kind: Optional[str] = None):
    """{fold: {split: speakers or selector}}: 4 leave-one-speaker-out folds (module docstring)."""
    kind = kind or "texts"
    if kind == "speaker":
        folds = speaker_folds(list(SPEAKERS), [[t] for t, _ in FOLDS], [[d] for _, d in FOLDS])
        return {f"fold{k}": v for k, v in folds.items()}
    if kind != "texts":
        raise SpeechEQError(f"casia: unknown protocol {kind!r}; choose texts or speaker")
    out = {}
    for k, (test, _) in enumerate(FOLDS):
        rest = frozenset(SPEAKERS) - {test}
        out[f"fold{k}"] = {
            "train": SpeakerTextSplit(rest, DEV_NUMBERS, held_out=False),
            "dev": SpeakerTextSplit(rest, DEV_NUMBERS, held_out=True),
            "test": {test},
        }
    return out
