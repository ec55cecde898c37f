"""The units the CTC branch spells a transcript in: phones, characters or BPE pieces.

* ``phone`` (default, ``data/lang``): the supervision's ``custom["phones"]`` from G2P;
* ``char`` (``data/lang_char``): the characters of the normalised transcript, ``▁`` between
  words (sentencepiece's word mark, so that no symbol of tokens.txt holds whitespace);
* ``bpe`` (``data/lang_bpe_<N>``): sentencepiece BPE pieces of the normalised transcript,
  from a model trained on the training transcripts (:func:`train_bpe`); the lang folder holds
  ``bpe.model`` and a ``tokens.txt`` whose ids are the model's own (``<blk>`` 0, ``<unk>`` 1),
  as icefall's ``data/lang_bpe_<N>``.

Characters and pieces need a transcript but no lexicon: they serve corpora whose G2P is weak
(a language espeak-ng spells badly, names, code-switching). Each lang folder says its units
in ``lang.json``; a folder without one is a phone folder written before units existed.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Iterable, List, Optional

from speecheq.errors import SpeechEQError
from speecheq.metrics import TOKEN_ERROR_RATES

#: The units, in the order --units lists them; each has its error rate's name in metrics.
UNITS = tuple(TOKEN_ERROR_RATES)
DEFAULT_UNITS = "phone"
WORD_MARK = "▁"
UNK = "<unk>"
LANG_INFO = "lang.json"
BPE_MODEL = "bpe.model"


def check_units(units: str, bpe_vocab_size: Optional[int] = None) -> None:
    if units not in UNITS:
        raise SpeechEQError(f"unknown CTC units {units!r}: choose one of {', '.join(UNITS)}")
    if units == "bpe" and (bpe_vocab_size is None or bpe_vocab_size < 3):
        raise SpeechEQError(f"bpe units need a vocabulary size of at least 3 (got {bpe_vocab_size})")


def lang_dir_name(units: str, bpe_vocab_size: Optional[int] = None) -> str:
    """icefall's folder names: data/lang (phones, as before units existed), lang_char, lang_bpe_<N>."""
    check_units(units, bpe_vocab_size)
    return {"phone": "lang", "char": "lang_char"}.get(units) or f"lang_bpe_{bpe_vocab_size}"


def normalize_text(text: Optional[str]) -> str:
    """The transcript as the units see it: NFKC, lower case (German ß stays ß), words of letters, marks and digits
    joined by one space. Punctuation is not spoken, so it only separates words; an apostrophe
    inside a word ("don't") is kept."""
    out = []
    for ch in unicodedata.normalize("NFKC", text or "").lower():
        if ch == "'" or unicodedata.category(ch)[0] in "LMN":
            out.append(ch)
        else:
            out.append(" ")
    words = [w.strip("'") for w in "".join(out).split()]
    return " ".join(w for w in words if w)


def char_symbols(text: str) -> List[str]:
    """Characters of a normalised transcript, spaces written as the word mark."""
    return [WORD_MARK if ch == " " else ch for ch in text]


def train_bpe(texts: Iterable[str], vocab_size: int) -> bytes:
    """A sentencepiece BPE model (its serialised bytes) of normalised transcripts, made the same
    way on every machine: sorted input, all of it (no sampling, no shuffling), one thread,
    identity normalisation (:func:`normalize_text` already normalised). ``<blk>`` is piece 0 and
    ``<unk>`` piece 1, so the model's ids are the token ids of tokens.txt."""
    import sentencepiece as spm

    sentences = sorted(t for t in texts if t)
    if not sentences:
        raise SpeechEQError("no transcript to train a BPE model on")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type="bpe",
            vocab_size=vocab_size,
            character_coverage=1.0,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            num_threads=1,
            normalization_rule_name="identity",
            user_defined_symbols=["<blk>"],
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            minloglevel=2,
        )
    except RuntimeError as e:
        reason = str(e).split("] ", 1)[-1].strip()
        raise SpeechEQError(
            f"sentencepiece cannot make {vocab_size} BPE pieces from {len(sentences)} transcripts: {reason}"
        ) from None
    return model.getvalue()


def bpe_processor(model: bytes):
    import sentencepiece as spm

    try:
        return spm.SentencePieceProcessor(model_proto=model)
    except RuntimeError as e:
        raise SpeechEQError(f"not a sentencepiece model ({str(e)[:120]})") from None


def bpe_pieces(processor) -> List[str]:
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def text_symbols(text: Optional[str], units: str, processor=None) -> Optional[List[str]]:
    """The char or bpe symbols of a transcript (None without one). A character the BPE model
    never saw becomes ``<unk>``: sentencepiece would give its surface form as a piece."""
    text = normalize_text(text)
    if not text:
        return None
    if units == "char":
        return char_symbols(text)
    return [processor.id_to_piece(i) for i in processor.encode(text)]
