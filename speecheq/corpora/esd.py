"""ESD, the Emotional Speech Dataset: 10 Mandarin + 10 English speakers, 5 emotions, parallel texts.

Layout ``<root>/<spk>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav``;
copies with and without the split level are both read (file by file). The
emotion folder is the label. Speakers 0001-0010 speak Mandarin (language "zh"),
0011-0020 English ("en"); ``language="zh"|"en"|"all"`` chooses which are read.

Transcripts ``<root>/<spk>/<spk>.txt``: ``utt_id<TAB>text<TAB>emotion`` lines,
the emotion in Chinese for the Mandarin speakers. Their encoding differs between
copies (UTF-8, UTF-8 with BOM, UTF-16, GB18030) and is detected per file
(:mod:`speecheq.text.encoding`). Text gives phones through G2P. An utterance
without a transcript line keeps text/phones None (counted in the notes); one
whose transcript names another emotion than its folder is skipped and counted
(``label mismatch``).

Gender is not in the corpus: ``speaker_table=FILE`` (``speaker<TAB>M|F`` lines,
an optional header) gives it; speakers it does not list, or all of them without
it, have gender None (masked, never guessed).

Protocols (``kind``):

* ``"si"`` (default): 5 speaker-independent folds ``fold0..fold4`` (named like
  every other corpus's folds, so multi-corpus recipes find them). Fold k tests
  Mandarin speakers k+1 and k+6 and English speakers k+11 and k+16 (``fold0``: 0001,
  0006, 0011, 0016); dev is the first Mandarin and the first English test speaker
  of fold k+1 (``fold0``: 0002, 0012); train the other 14. With ``language="zh"``
  or ``"en"`` the other language's speakers drop out: test 2, dev 1, train 7.
* ``"official"``: the corpus's own utterance-level split, fold ``""``:
  train / dev (= evaluation) / test, from the split folders (read from each
  supervision's ``custom["split"]``); it needs copies with the split level.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from speecheq import labels
from speecheq.corpora.common import Utterance, normalize_gender, require_corpus_dir, speaker_folds
from speecheq.corpora.common import Skips, finish, utterance_split_protocol
from speecheq.errors import LabelError, SpeechEQError

log = logging.getLogger("speecheq")

CORPUS = "esd"
SPEAKERS = [f"{n:04d}" for n in range(1, 21)]
LANGUAGES = ("zh", "en", "all")
SPLIT_FOLDERS = {"train": "train", "evaluation": "dev", "test": "test"}
NUM_FOLDS = 5
_FILE = re.compile(r"^(\d{4})_(\d{6})$")
# flag -> (keyword of prepare_esd / protocol, help) in local/prepare.py and local/validate.py
PREPARE_OPTIONS = {
    "--language": ("language", "zh, en or all speakers"),
    "--speaker-table": ("speaker_table", "speaker<TAB>M|F file (else gender is unknown)"),
}
VALIDATE_OPTIONS = {
    "--protocol": ("kind", "si or official"),
    "--language": ("language", "zh, en or all speakers"),
}


def speaker_language(speaker: str) -> str:
    return "zh" if int(speaker) <= 10 else "en"


def speakers_of(language: str = "all") -> List[str]:
    if language not in LANGUAGES:
        raise SpeechEQError(f"{CORPUS}: --language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return [s for s in SPEAKERS if language == "all" or speaker_language(s) == language]


def read_speaker_table(path) -> Dict[str, Optional[str]]:
    """{speaker: "M" | "F" | None} from ``speaker<TAB>gender`` lines (numeric ids padded to 4 digits)."""
    from speecheq.text.encoding import read_text

    text, _ = read_text(path, "speaker table")
    table: Dict[str, Optional[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if not table and n <= 2 and fields[0].lower() in ("speaker", "spk", "speaker_id", "id"):
            continue  # header
        if len(fields) != 2:
            raise SpeechEQError(f"{path}:{n}: expected 'speaker<TAB>M|F', got {line.strip()[:40]!r}")
        speaker = fields[0].zfill(4) if fields[0].isdigit() else fields[0]
        try:
            table[speaker] = normalize_gender(fields[1])
        except LabelError as e:
            raise SpeechEQError(f"{path}:{n}: {e}") from None
    return table


def read_transcripts(path: Path, notes: Counter) -> Dict[str, Tuple[str, Optional[str]]]:
    """{utt_id: (text, emotion or None)}; unparsable lines are logged and counted."""
    from speecheq.text.encoding import read_text

    text, encoding = read_text(path, "ESD transcript file")
    table: Dict[str, Tuple[str, Optional[str]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        fields = [f for f in fields if f]
        if len(fields) < 2 or not _FILE.match(fields[0]):
            log.warning("%s:%d: not 'utt_id<TAB>text<TAB>emotion': %r", path, n, line[:60])
            notes["unparsed transcript lines"] += 1
            continue
        table[fields[0]] = (fields[1], fields[2] if len(fields) > 2 else None)
    log.debug("%s: %d lines (%s)", path, len(table), encoding)
    return table


def _mismatch(folder: str, said: Optional[str]) -> bool:
    """True when the transcript names a known emotion other than the folder's."""
    table = labels.EMOTION_MAPS[CORPUS]
    return said is not None and said in table and folder in table and table[said] != table[folder]


def iter_utterances(
    corpus_dir: Path, language: str, genders: Dict[str, Optional[str]], skips: Skips, notes: Counter
) -> List[Utterance]:
    wanted = set(speakers_of(language))
    transcripts: Dict[str, Dict[str, Tuple[str, Optional[str]]]] = {}
    utterances = []
    for path in sorted(corpus_dir.rglob("*.wav")):
        parts = path.relative_to(corpus_dir).parts
        m = _FILE.match(path.stem)
        split_folder = parts[2].lower() if len(parts) == 4 else None
        if (
            len(parts) not in (3, 4)
            or m is None
            or m.group(1) != parts[0]
            or parts[0] not in SPEAKERS
            or (split_folder is not None and split_folder not in SPLIT_FOLDERS)
        ):
            skips(
                "layout",
                f"{path}: not <spk>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav with an ESD speaker 0001-0020",
            )
            continue
        speaker, emotion = parts[0], parts[1]
        if speaker not in wanted:
            notes[f"other language than --language {language}"] += 1
            continue
        if speaker not in transcripts:
            txt = corpus_dir / speaker / f"{speaker}.txt"
            if txt.is_file():
                transcripts[speaker] = read_transcripts(txt, notes)
            else:
                log.warning("%s: %s missing: text and phones of speaker %s are None", CORPUS, txt, speaker)
                transcripts[speaker] = {}
        text, said = transcripts[speaker].get(path.stem, (None, None))
        if text is None:
            notes["no transcript line"] += 1
        if _mismatch(emotion, said):
            skips("label mismatch", f"{path}: folder {emotion!r} but transcript says {said!r}")
            continue
        utterances.append(
            Utterance(
                id=f"{CORPUS}_{path.stem}",
                audio_path=str(path),
                speaker=speaker,
                gender=genders.get(speaker),
                language=speaker_language(speaker),
                text=text,
                emotion_raw=emotion,
                extra={"split": SPLIT_FOLDERS.get(split_folder) if split_folder else None},
            )
        )
    return utterances


def prepare_esd(
    corpus_dir,
    output_dir=None,
    *,
    language: str = "all",
    speaker_table=None,
    on_error: str = "skip",
    executor=None,
    g2p=None,
    progress=True,
):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    speakers_of(language)  # checks the option before any work
    genders = read_speaker_table(speaker_table) if speaker_table else {}
    if not speaker_table:
        log.info("%s: no speaker table given: gender is None (masked) for every speaker", CORPUS)
    skips, notes = Skips(CORPUS, on_error), Counter()
    utterances = iter_utterances(corpus_dir, language, genders, skips, notes)
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


def protocol(language: str = "all", kind: str = "si"):
    """``si``: {"fold0".."fold4": {split: speakers}}; ``official``: {"": {split: UtteranceSplit}}."""
    if kind == "official":
        return utterance_split_protocol()
    if kind != "si":
        raise SpeechEQError(f"{CORPUS}: unknown protocol {kind!r}; choose si or official")
    keep = set(speakers_of(language))
    tests = [[f"{n:04d}" for n in (k + 1, k + 6, k + 11, k + 16)] for k in range(NUM_FOLDS)]
    devs = [[t[0], t[2]] for t in tests[1:] + tests[:1]]
    folds = speaker_folds(SPEAKERS, tests, devs)
    return {f"fold{k}": {split: s & keep for split, s in v.items()} for k, v in folds.items()}
