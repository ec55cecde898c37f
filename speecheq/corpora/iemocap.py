"""IEMOCAP: 5 dyadic sessions, 10 English speakers, categorical and dimensional labels.

* Audio ``Session{1..5}/sentences/wav/<dialog>/<utt>.wav``.
* Labels ``Session*/dialog/EmoEvaluation/<dialog>.txt``: one summary line per
  utterance, ``[start - end]<TAB><utt><TAB><cat><TAB>[valence, arousal, dominance]``
  (the annotators' lines below it are ignored).
* Transcripts ``Session*/dialog/transcriptions/<dialog>.txt``:
  ``<utt> [start-end]: text``. Bracketed non-speech markers (``[LAUGHTER]``,
  ``[BREATHING]``...) are removed from the text before G2P.

Speaker = session + the letter after the utterance id's last underscore
(``Ses01F_impro01_M013`` is ``Ses01M``, male): that letter is the gender.
Category through the label table (``exc`` merged into happy; ``oth``/``xxx``
kept with emotion None). Intensity = ``arousal_to_intensity(arousal)``, neutral
0; utterances with category None keep their arousal-based intensity (the
dimensional rating does not depend on the category). The 4-class choice is the
validate stage's ``--label-preset``: the manifest keeps every utterance with its
unified category.

A wav without a label line is skipped and counted (``no label``); a label line
without its wav is a counted ``audio`` skip (file not found).

Protocol: leave-one-session-out, ``fold0..fold4``: fold k tests Session k+1
(both speakers); dev is one speaker of the next session (female for even k,
male for odd k, so each gender is dev in some folds); train the other 7 speakers.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

from speecheq import labels
from speecheq.corpora.common import Utterance, require_corpus_dir, speaker_folds
from speecheq.corpora.common import Skips, finish

log = logging.getLogger("speecheq")

CORPUS = "iemocap"
SESSIONS = (1, 2, 3, 4, 5)
_LABEL = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses0[1-5][FM]_\S+)\s+(\S+)\s+"
    r"\[\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\]\s*$"
)
_TRANSCRIPT = re.compile(r"^(Ses0[1-5][FM]_\S+)\s+\[[^\]]*\]:\s*(.*)$")
_UTT = re.compile(r"^Ses0([1-5])[FM]_.+_([FM])\d+\w*$")
_MARKER = re.compile(r"\[[^\]]*\]")


def speaker_name(session: int, gender: str) -> str:
    return f"Ses{session:02d}{gender}"


def read_labels(path: Path, notes: Counter) -> Dict[str, Tuple[str, float, float, float, float, float]]:
    """{utt: (category, valence, arousal, dominance, start, end)} from an EmoEvaluation file."""
    from speecheq.text.encoding import read_text

    text, _ = read_text(path, "IEMOCAP label file")
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("["):
            continue  # header, blank, annotator lines
        m = _LABEL.match(line.strip())
        if not m:
            log.warning("%s:%d: not '[start - end] utt cat [v, a, d]': %r", path, n, line[:80])
            notes["unparsed label lines"] += 1
            continue
        start, end, utt, cat, v, a, d = m.groups()
        out[utt] = (cat, float(v), float(a), float(d), float(start), float(end))
    return out


def read_transcripts(path: Path) -> Dict[str, str]:
    """{utt: text without bracketed markers}; lines of other shapes are ignored."""
    from speecheq.text.encoding import read_text

    text, _ = read_text(path, "IEMOCAP transcription file")
    out = {}
    for line in text.splitlines():
        m = _TRANSCRIPT.match(line.strip())
        if m:
            clean = " ".join(_MARKER.sub(" ", m.group(2)).split())
            out[m.group(1)] = clean
    return out


def iter_utterances(corpus_dir: Path, skips: Skips, notes: Counter) -> List[Utterance]:
    utterances = []
    for session in SESSIONS:
        sdir = corpus_dir / f"Session{session}"
        if not sdir.is_dir():
            log.warning("%s: %s missing", CORPUS, sdir)
            notes[f"Session{session} missing"] += 1
            continue
        label_files = sorted((sdir / "dialog" / "EmoEvaluation").glob("*.txt"))
        found: Dict[str, Path] = {}
        for wav in sorted((sdir / "sentences" / "wav").glob("*/*.wav")):
            if wav.name.startswith("._") or not _UTT.match(wav.stem) or not wav.stem.startswith(wav.parent.name):
                skips("layout", f"{wav}: not sentences/wav/<dialog>/<dialog>_<F|M>nnn.wav")
                continue
            found[wav.stem] = wav
        labelled = set()
        for label_file in label_files:
            dialog = label_file.stem
            trans_file = sdir / "dialog" / "transcriptions" / f"{dialog}.txt"
            texts = read_transcripts(trans_file) if trans_file.is_file() else {}
            for utt, (cat, valence, arousal, dominance, start, end) in read_labels(label_file, notes).items():
                m = _UTT.match(utt)
                if not m or int(m.group(1)) != session:
                    notes["label lines of another session"] += 1
                    continue
                labelled.add(utt)
                gender = m.group(2)
                neutral = labels.EMOTION_MAPS[CORPUS].get(cat) == labels.NEUTRAL
                text = texts.get(utt) or None
                if text is None:
                    notes["no transcript"] += 1
                utterances.append(
                    Utterance(
                        id=f"{CORPUS}_{utt}",
                        audio_path=str(found.get(utt, sdir / "sentences" / "wav" / dialog / f"{utt}.wav")),
                        speaker=speaker_name(session, gender),
                        gender=gender,
                        language="en",
                        text=text,
                        emotion_raw=cat,
                        intensity=None if neutral else labels.arousal_to_intensity(arousal),
                        extra={
                            "session": session,
                            "dialog": dialog,
                            "valence": valence,
                            "arousal": arousal,
                            "dominance": dominance,
                            "dialog_start": start,
                            "dialog_end": end,
                        },
                    )
                )
        for utt in sorted(set(found) - labelled):
            skips("no label", f"{found[utt]}: no line in dialog/EmoEvaluation/*.txt")
    return utterances


def prepare_iemocap(corpus_dir, output_dir=None, *, on_error: str = "skip", executor=None, g2p=None, progress=True):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    skips, notes = Skips(CORPUS, on_error), Counter()
    utterances = iter_utterances(corpus_dir, skips, notes)
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


def protocol():
    """{fold: {split: speakers}}: leave one session out, dev = one speaker of the next session."""
    speakers = [speaker_name(s, g) for s in SESSIONS for g in "FM"]
    tests = [[speaker_name(s, "F"), speaker_name(s, "M")] for s in SESSIONS]
    devs = [[speaker_name(SESSIONS[(k + 1) % 5], "F" if k % 2 == 0 else "M")] for k in range(5)]
    return {f"fold{k}": v for k, v in speaker_folds(speakers, tests, devs).items()}
