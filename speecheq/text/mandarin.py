"""Mandarin text to phones: pypinyin initials and tonal finals.

Style (one for every Mandarin corpus): each syllable becomes its initial (if it
has one) followed by its final with the tone digit, in pypinyin's *strict*
style (``Style.INITIALS`` / ``Style.FINALS_TONE3`` with ``strict=True``):

* 就是下 / ``jiu4 shi4 xia4`` -> ``j iou4 sh i4 x ia4``; ``ü`` is written ``v``
  (绿 ``lv4`` -> ``l v4``, 雨 ``yu3`` -> ``v3``).
* Zero-initial syllables give only their final, with y/w restored to the
  vowel they stand for: 我 ``wo3`` -> ``uo3``, 有 ``you3`` -> ``iou3``.
* The neutral tone is 5 (了 ``le5`` -> ``l e5``).
* Syllabic nasals (嗯 ``n2``, ``m``, ``ng``, ``hm``, ``hng``) give ``n2`` etc.

Input is either Chinese characters or tone-numbered pinyin syllables (tone 1-5,
0 or no digit meaning neutral), told apart by whether the text contains a Han
character. Characters are converted with pypinyin's phrase dictionary and its
tone changes of 一 and 不 (no third-tone sandhi). Punctuation is dropped; any
other non-Chinese token (Latin letters or digits among characters, a string that
is not a pinyin syllable) makes the utterance unspellable (None).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import List, Optional

log = logging.getLogger("speecheq")

# Finals of pypinyin's strict style (ü written v).
FINALS = frozenset(
    "a o e ê ai ei ao ou an en ang eng ong er "
    "i ia io ie iao iou ian in iang ing iong "
    "u ua uo uai uei uan uen uang ueng "
    "v ve van vn".split()
)
INITIALS = frozenset("b p m f d t n l g k h j q x zh ch sh r z c s".split())
SYLLABIC_NASALS = {"m": ["m"], "n": ["n"], "ng": ["ng"], "hm": ["h", "m"], "hng": ["h", "ng"]}

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_SYLLABLE = re.compile(r"^([a-zü]+)([0-5]?)$")


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def _is_punct_or_space(c: str) -> bool:
    cat = unicodedata.category(c)
    return cat.startswith("P") or cat.startswith("Z") or c.isspace()


def characters_to_pinyin(text: str) -> Optional[List[str]]:
    """Tone-numbered pinyin syllables (``v`` for ü, neutral tone 5) of Chinese
    characters, or None if the text holds non-Chinese, non-punctuation characters."""
    from pypinyin import Style, lazy_pinyin

    bad: List[str] = []

    def errors(chunk: str):
        word = "".join(c for c in chunk if not _is_punct_or_space(c))
        if word:
            bad.append(word)
        return []

    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=errors)
    if bad:
        log.warning("G2P (zh): cannot spell %r in %r", bad[0], text)
        return None
    return syllables


def syllable_phones(syllable: str) -> Optional[List[str]]:
    """``jiu4`` -> ``["j", "iou4"]``; None if ``syllable`` is not a pinyin syllable."""
    from pypinyin.contrib.tone_convert import to_finals, to_finals_tone3, to_initials

    m = _SYLLABLE.match(syllable.lower().replace("u:", "v").replace("ü", "v"))
    if not m:
        return None
    base, tone = m.group(1), m.group(2)
    tone = "5" if tone in ("", "0") else tone
    if base in SYLLABIC_NASALS:
        phones = list(SYLLABIC_NASALS[base])
        return phones[:-1] + [phones[-1] + tone]
    numbered = base + tone
    initial = to_initials(numbered, strict=True)
    final = to_finals_tone3(numbered, strict=True, neutral_tone_with_five=True)
    # Reject strings that are not a syllable: the non-strict split must spell the input back.
    loose = to_initials(numbered, strict=False) + to_finals(numbered, strict=False)
    if loose.replace("ü", "v") != base or final[:-1] not in FINALS or (initial and initial not in INITIALS):
        return None
    return ([initial] if initial else []) + [final]


def pinyin_tokens(text: str) -> List[str]:
    """Split tone-numbered pinyin text into syllable candidates (punctuation, apostrophes drop)."""
    text = text.replace("u:", "v").replace("U:", "v")
    return "".join(" " if _is_punct_or_space(c) else c for c in text).split()


def to_pinyin(text: str) -> Optional[List[str]]:
    """Tone-numbered pinyin syllables of ``text`` (characters or pinyin)."""
    if has_han(text):
        return characters_to_pinyin(text)
    return pinyin_tokens(text)


def mandarin_phones(text: str) -> Optional[List[str]]:
    """Initials and tonal finals of Mandarin ``text``, or None if it cannot be spelled."""
    syllables = to_pinyin(text)
    if syllables is None:
        return None
    out: List[str] = []
    for syl in syllables:
        phones = syllable_phones(syl)
        if phones is None:
            log.warning("G2P (zh): cannot spell %r (not a pinyin syllable) in %r", syl, text)
            return None
        out.extend(phones)
    if not out:
        log.warning("G2P (zh): no syllables in %r", text)
        return None
    return out
