"""RAVDESS speech (Livingstone & Russo 2018): 24 actors, 8 emotions, 2 intensities.

Everything is in the file name ``Actor_AA/03-01-EE-II-SS-RR-AA.wav``; odd actors
are male. The two fixed statements give real phone targets. Protocol: 4
speaker-independent folds, fold k tests actors 6k+1..6k+6 (3 male, 3 female);
dev is two actors (one male, one female) of the next group, train the other 16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from speecheq.corpora.common import Skips, Utterance, finish, require_corpus_dir, speaker_folds

STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
NUM_ACTORS = 24
NUM_FOLDS = 4


def actor_name(n: int) -> str:
    return f"Actor_{n:02d}"


def iter_utterances(corpus_dir: Path, skip: Skips) -> Iterator[Utterance]:
    for path in sorted(corpus_dir.glob("Actor_*/*.wav")):
        fields = path.stem.split("-")
        if len(fields) != 7 or fields[0] != "03" or fields[1] != "01":
            skip("file name", f"{path}: not a speech file name 03-01-EE-II-SS-RR-AA")
            continue
        _, _, emotion, intensity, statement, repetition, actor = fields
        if statement not in STATEMENTS or not actor.isdigit():
            skip("file name", f"{path}: unknown statement {statement!r} or actor {actor!r}")
            continue
        yield Utterance(
            id=f"ravdess_{path.stem}",
            audio_path=str(path),
            speaker=actor_name(int(actor)),
            gender="M" if int(actor) % 2 == 1 else "F",
            language="en",
            text=STATEMENTS[statement],
            emotion_raw=emotion,
            intensity_level=intensity,
            extra={"statement": statement, "repetition": repetition},
        )


def prepare_ravdess(corpus_dir, output_dir=None, *, on_error: str = "skip", executor=None, g2p=None, progress=True):
    corpus_dir = require_corpus_dir(corpus_dir, "ravdess")
    skips = Skips("ravdess", on_error)
    utterances = list(iter_utterances(corpus_dir, skips))
    return finish(
        "ravdess", utterances, skips, output_dir, on_error=on_error, executor=executor, g2p=g2p, progress=progress
    )


def protocol(speakers=None):
    """{fold: {split: speakers}} for the 4 speaker-independent folds."""
    actors = [actor_name(n) for n in range(1, NUM_ACTORS + 1)]
    tests = [actors[6 * k : 6 * k + 6] for k in range(NUM_FOLDS)]
    devs = [tests[(k + 1) % NUM_FOLDS][:2] for k in range(NUM_FOLDS)]
    return {f"fold{k}": v for k, v in speaker_folds(actors, tests, devs).items()}
