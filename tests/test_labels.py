import math
from types import SimpleNamespace

import pytest

from speecheq import labels
from speecheq.errors import LabelError


def test_presets_are_subsets_of_the_canonical_categories():
    for name, cats in labels.PRESETS.items():
        assert set(cats) <= set(labels.CATEGORIES), name
    assert labels.PRESETS["4class"] == ("neutral", "happy", "sad", "angry")
    assert set(labels.PRESETS["6class"]) == {"neutral", "happy", "sad", "angry", "fear", "surprise"}


def test_every_corpus_maps_into_the_categories():
    for corpus, table in labels.EMOTION_MAPS.items():
        for raw, emo in table.items():
            assert emo is None or emo in labels.CATEGORIES, (corpus, raw)


@pytest.mark.parametrize(
    "corpus,raw,expected",
    [
        ("ravdess", "02", "calm"),
        ("ravdess", "06", "fear"),
        ("iemocap", "exc", "happy"),
        ("iemocap", "xxx", None),
        ("emodb", "L", "boredom"),
        ("esd", "惊喜", "surprise"),
        ("cremad", "DIS", "disgust"),
    ],
)
def test_unify_emotion(corpus, raw, expected):
    assert labels.unify_emotion(corpus, raw) == expected


def test_unknown_label_is_an_error_not_a_guess():
    with pytest.raises(LabelError, match="unknown emotion label 'joy'"):
        labels.unify_emotion("casia", "joy")
    with pytest.raises(LabelError, match="no emotion mapping"):
        labels.unify_emotion("nope", "happy")


def test_intensity_scale():
    assert labels.unify_intensity("ravdess", "neutral", "01") == 0.0
    assert labels.unify_intensity("ravdess", "angry", "01") == 0.5
    assert labels.unify_intensity("ravdess", "angry", "02") == 1.0
    assert math.isclose(labels.unify_intensity("cremad", "sad", "LO"), 1 / 3)
    assert labels.unify_intensity("cremad", "sad", "XX") is None
    assert labels.unify_intensity("casia", "sad", None) is None
    assert labels.arousal_to_intensity(3.0) == 0.5
    assert labels.arousal_to_intensity(5.5) == 1.0
    with pytest.raises(LabelError):
        labels.unify_intensity("ravdess", "sad", "03")


def test_scheme_excludes_outside_labels_and_is_corpus_aware():
    s = labels.LabelScheme.from_preset("4class")
    assert s.index("sad") == 2 and s.index("calm") is None and s.index(None) is None
    assert labels.LabelScheme.from_preset("all").corpus_categories("casia") == [
        "neutral",
        "happy",
        "sad",
        "angry",
        "fear",
        "surprise",
    ]
    assert labels.LabelScheme.from_preset("all").corpus_mask("emodb")[labels.CATEGORIES.index("calm")] is False
    cuts = [
        SimpleNamespace(duration=1.0, supervisions=[SimpleNamespace(gender="F", custom={"emotion": e})])
        for e in ("sad", "calm", "calm", None)
    ]
    counts = labels.label_summary(cuts, s)
    assert counts["emotion"]["sad"] == 1 and counts["excluded"]["calm"] == 2 and counts["excluded"]["None"] == 1
    with pytest.raises(LabelError):
        labels.LabelScheme.from_preset("5class")


def test_register_corpus_validates():
    labels.register_corpus("inhouse_test", {"joy": "happy", "meh": None}, {"lo": 0.3, "hi": 1.0})
    assert labels.unify_emotion("inhouse_test", "joy") == "happy"
    assert labels.unify_intensity("inhouse_test", "happy", "lo") == 0.3
    with pytest.raises(LabelError, match="not a unified category"):
        labels.register_corpus("bad", {"x": "ecstatic"})
    with pytest.raises(LabelError, match="outside"):
        labels.register_corpus("bad", {"x": "happy"}, {"lo": 2})
