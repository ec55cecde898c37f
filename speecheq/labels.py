"""The unified metric: Emotion State Category + Emotion Intensity Scale.

SpeechEQ trains several corpora at once by mapping each corpus's own labels onto
one multi-scale metric. This module is the only place that names emotions:
corpora ask it to map their raw labels, the data pipeline asks it for class
indices of a preset, decoding asks it which categories a corpus can produce, and
the validate stage and training ask it what a cut set has to learn from (``label_summary``).

Choices (the paper's abstract gives none; see docs/unified-metric.md):

* Categories are the union of the basic categories the supported corpora use.
* Intensity is a float in [0, 1]. Neutral is 0 by definition; a corpus's own
  intensity levels are spread evenly over (0, 1] (RAVDESS normal 0.5, strong
  1.0; CREMA-D LO 1/3, MD 2/3, HI 1). A corpus without levels has no intensity
  (None), except IEMOCAP, whose arousal rating (1..5) is rescaled to [0, 1].
* A raw label missing from a corpus's table is an error (LabelError), never a
  guess. A raw label mapped to None (IEMOCAP "oth", "xxx") is a known
  non-emotion: the utterance is kept for the other tasks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from speecheq.errors import LabelError, SpeechEQError

# Gender labels in the order of the gender head's outputs and of the loss targets' indices.
GENDERS: Tuple[str, ...] = ("M", "F")

CATEGORIES: Tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fear",
    "disgust",
    "surprise",
    "boredom",
    "frustration",
)

PRESETS: Dict[str, Tuple[str, ...]] = {
    "4class": ("neutral", "happy", "sad", "angry"),
    "6class": ("neutral", "happy", "sad", "angry", "fear", "surprise"),
    "all": CATEGORIES,
}

NEUTRAL = "neutral"

# raw label -> unified category (None: a known label that is not an emotion).
EMOTION_MAPS: Dict[str, Dict[str, Optional[str]]] = {
    "ravdess": {
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fear",
        "07": "disgust",
        "08": "surprise",
    },
    "synth": {e: e for e in ("neutral", "happy", "sad", "angry", "fear", "surprise")},
    "casia": {e: e for e in ("angry", "fear", "happy", "neutral", "sad", "surprise")},
    "esd": {
        "Neutral": "neutral",
        "Angry": "angry",
        "Happy": "happy",
        "Sad": "sad",
        "Surprise": "surprise",
        "中立": "neutral",
        "生气": "angry",
        "快乐": "happy",
        "伤心": "sad",
        "惊喜": "surprise",
    },
    "iemocap": {
        "neu": "neutral",
        "hap": "happy",
        "exc": "happy",
        "ang": "angry",
        "sad": "sad",
        "fru": "frustration",
        "sur": "surprise",
        "fea": "fear",
        "dis": "disgust",
        "oth": None,
        "xxx": None,
    },
    "emodb": {
        "W": "angry",
        "L": "boredom",
        "E": "disgust",
        "A": "fear",
        "F": "happy",
        "T": "sad",
        "N": "neutral",
    },
    "cremad": {
        "ANG": "angry",
        "DIS": "disgust",
        "FEA": "fear",
        "HAP": "happy",
        "NEU": "neutral",
        "SAD": "sad",
    },
}

# raw intensity level -> Emotion Intensity Scale value (None: level unknown).
INTENSITY_LEVELS: Dict[str, Dict[str, Optional[float]]] = {
    "ravdess": {"01": 0.5, "02": 1.0},
    "synth": {"normal": 0.5, "strong": 1.0},
    "cremad": {"LO": 1 / 3, "MD": 2 / 3, "HI": 1.0, "XX": None},
}


def register_corpus(
    corpus: str,
    emotion_map: Mapping[str, Optional[str]],
    intensity_levels: Optional[Mapping[str, Optional[float]]] = None,
) -> None:
    """Add a corpus (e.g. an in-house one from its label-mapping YAML) to the metric."""
    for raw, emotion in emotion_map.items():
        if emotion is not None and emotion not in CATEGORIES:
            raise LabelError(
                f"corpus {corpus!r}: label {raw!r} maps to {emotion!r}, "
                f"which is not a unified category ({', '.join(CATEGORIES)})"
            )
    for level, value in (intensity_levels or {}).items():
        if value is not None and not 0.0 <= float(value) <= 1.0:
            raise LabelError(f"corpus {corpus!r}: intensity level {level!r} = {value} is outside [0, 1]")
    EMOTION_MAPS[corpus] = dict(emotion_map)
    if intensity_levels is not None:
        INTENSITY_LEVELS[corpus] = {k: (None if v is None else float(v)) for k, v in intensity_levels.items()}


def unify_emotion(corpus: str, raw: str) -> Optional[str]:
    """Map a corpus's raw emotion label to a unified category (or None for non-emotions)."""
    table = EMOTION_MAPS.get(corpus)
    if table is None:
        raise LabelError(f"no emotion mapping for corpus {corpus!r}; known: {', '.join(sorted(EMOTION_MAPS))}")
    if raw not in table:
        raise LabelError(f"unknown emotion label {raw!r} for corpus {corpus!r}; known: {', '.join(table)}")
    return table[raw]


def unify_intensity(corpus: str, emotion: Optional[str], level: Optional[str]) -> Optional[float]:
    """Emotion Intensity Scale value for a raw intensity level; neutral is 0."""
    if emotion == NEUTRAL:
        return 0.0
    if level is None or emotion is None:
        return None
    table = INTENSITY_LEVELS.get(corpus)
    if table is None:
        raise LabelError(f"corpus {corpus!r} has no intensity levels")
    if level not in table:
        raise LabelError(f"unknown intensity level {level!r} for corpus {corpus!r}; known: {', '.join(table)}")
    return table[level]


def arousal_to_intensity(arousal: float, low: float = 1.0, high: float = 5.0) -> float:
    """Rescale a dimensional arousal rating (IEMOCAP: 1..5) onto [0, 1]."""
    return min(1.0, max(0.0, (float(arousal) - low) / (high - low)))


@dataclass(frozen=True)
class LabelScheme:
    """The category task of one run: a preset's categories and their indices."""

    preset: str
    categories: Tuple[str, ...]

    @classmethod
    def from_preset(cls, preset: str) -> "LabelScheme":
        if preset not in PRESETS:
            raise LabelError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        return cls(preset, PRESETS[preset])

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def index(self, emotion: Optional[str]) -> Optional[int]:
        """Class index, or None where the emotion is outside the preset (excluded, not remapped)."""
        if emotion is None or emotion not in self.categories:
            return None
        return self.categories.index(emotion)

    def corpus_categories(self, corpus: str) -> List[str]:
        """Categories of this preset that ``corpus`` can produce: the corpus-aware decision."""
        table = EMOTION_MAPS.get(corpus)
        if table is None:
            return list(self.categories)
        present = {e for e in table.values() if e is not None}
        return [c for c in self.categories if c in present]

    def corpus_mask(self, corpus: str) -> List[bool]:
        allowed = set(self.corpus_categories(corpus))
        return [c in allowed for c in self.categories]


def label_summary(cuts, scheme: LabelScheme) -> Dict[str, object]:
    """What each task has to learn from in a cut set: the stage summary and a guard
    against training on a split that filtering emptied."""
    n = 0
    emotion = Counter()
    excluded = Counter()
    has = Counter()
    seconds = 0.0
    for cut in cuts:
        n += 1
        seconds += cut.duration
        sup = cut.supervisions[0]
        custom = sup.custom or {}
        e = custom.get("emotion")
        if scheme.index(e) is None:
            excluded[str(e)] += 1
        else:
            emotion[e] += 1
        has["intensity"] += custom.get("intensity") is not None
        has["gender"] += sup.gender in GENDERS
        has["phones"] += bool(custom.get("phones"))
    return {
        "cuts": n,
        "hours": round(seconds / 3600, 4),
        "emotion": dict(emotion),
        "excluded": dict(excluded),
        **{f"with_{k}": v for k, v in has.items()},
    }


def require_nonempty(summary: Dict[str, object], what: str, tasks: Sequence[str]) -> None:
    if summary["cuts"] == 0:
        raise SpeechEQError(f"{what}: no cuts after filtering")
    if "emotion" in tasks and not summary["emotion"]:
        raise SpeechEQError(f"{what}: no cut has an emotion of the chosen preset (excluded: {summary['excluded']})")
