"""The token inventory of the CTC branch, stored as ``data/lang/tokens.txt``.

Format follows icefall: one ``symbol id`` pair per line, blank ``<blk>`` is id 0
(torch's CTC loss default), so a tokens file from one recipe reads in any tool
that reads icefall's. A table also knows its units (:mod:`speecheq.text.units`):
how a supervision is spelt in its symbols (:meth:`TokenTable.spell`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from speecheq.errors import SpeechEQError, decode_problem
from speecheq.io import Pathlike, write_text_atomic
from speecheq.text import units as _units

BLANK = "<blk>"


class TokenTable:
    def __init__(self, symbols: Sequence[str], units: str = _units.DEFAULT_UNITS, bpe_model: Optional[bytes] = None):
        if not symbols or symbols[0] != BLANK:
            raise ValueError(f"token 0 must be {BLANK}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("duplicate symbols in token table")
        if units not in _units.UNITS:
            raise ValueError(f"unknown units {units!r}")
        if (units == "bpe") != (bpe_model is not None):
            raise ValueError("a BPE model goes with bpe units, and only with them")
        self.symbols: List[str] = list(symbols)
        self._ids: Dict[str, int] = {s: i for i, s in enumerate(self.symbols)}
        self.units = units
        self.bpe_model = bpe_model
        self._processor = None

    blank_id = 0

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str] | None], units: str = _units.DEFAULT_UNITS) -> "TokenTable":
        inventory = set()
        for seq in sequences:
            if seq:
                inventory.update(seq)
        inventory.discard(BLANK)
        return cls([BLANK, *sorted(inventory)], units)

    @classmethod
    def from_file(cls, path: Pathlike) -> "TokenTable":
        path = Path(path)
        if not path.is_file():
            raise SpeechEQError(f"token table not found: {path} (run the lang stage first)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise SpeechEQError(
                f"{path}: {decode_problem(e)}; a token table is UTF-8 (re-run the lang stage)"
            ) from None
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise SpeechEQError(f"{path}:{n}: expected 'symbol id', got {line!r}")
            pairs.append((parts[0], int(parts[1])))
        pairs.sort(key=lambda p: p[1])
        if [i for _, i in pairs] != list(range(len(pairs))):
            raise SpeechEQError(f"{path}: ids must be 0..N-1 without gaps")
        try:
            return cls([s for s, _ in pairs])
        except ValueError as e:
            raise SpeechEQError(f"{path}: {e}") from None

    @classmethod
    def from_lang_dir(cls, lang_dir: Pathlike) -> "TokenTable":
        """tokens.txt with the units its folder's lang.json names (none: phones) and, for bpe, bpe.model."""
        import json

        lang_dir = Path(lang_dir)
        table = cls.from_file(lang_dir / "tokens.txt")
        info_path = lang_dir / _units.LANG_INFO
        units = _units.DEFAULT_UNITS
        if info_path.is_file():
            try:
                units = json.loads(info_path.read_text(encoding="utf-8"))["units"]
            except (ValueError, KeyError, TypeError) as e:
                raise SpeechEQError(f"{info_path}: not a lang description ({type(e).__name__}: {e})") from None
            if units not in _units.UNITS:
                raise SpeechEQError(f"{info_path}: unknown units {units!r} (re-run the lang stage)")
        if units != "bpe":
            return cls(table.symbols, units)
        model_path = lang_dir / _units.BPE_MODEL
        if not model_path.is_file():
            raise SpeechEQError(f"{model_path} not found: a bpe lang folder needs its model (re-run the lang stage)")
        model = model_path.read_bytes()
        if _units.bpe_pieces(_units.bpe_processor(model)) != table.symbols:
            raise SpeechEQError(f"{lang_dir}: tokens.txt is not the pieces of bpe.model (re-run the lang stage)")
        return cls(table.symbols, units, model)

    def record(self) -> dict:
        """What a checkpoint keeps to spell its test transcripts as training spelt them."""
        return {"units": self.units, "bpe_model": self.bpe_model}

    @classmethod
    def from_record(cls, symbols: Sequence[str], record: Optional[dict]) -> "TokenTable":
        """The table of a checkpoint's symbols and :meth:`record` (None: phones, as before units)."""
        record = record or {}
        return cls(symbols, record.get("units", _units.DEFAULT_UNITS), record.get("bpe_model"))

    def spell(self, supervision) -> Optional[List[str]]:
        """The supervision in this table's symbols: its phones, or its transcript's characters or
        pieces (None: nothing to spell)."""
        if self.units == "phone":
            return (supervision.custom or {}).get("phones") or None
        if self.units == "bpe" and self._processor is None:
            self._processor = _units.bpe_processor(self.bpe_model)
        return _units.text_symbols(supervision.text, self.units, self._processor)

    def __getstate__(self) -> dict:
        # Dataloader workers get a copy: the sentencepiece processor is made again from the bytes.
        return {**self.__dict__, "_processor": None}

    def to_file(self, path: Pathlike) -> None:
        write_text_atomic(path, "".join(f"{s} {i}\n" for i, s in enumerate(self.symbols)))

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def encode(self, phones: Sequence[str]) -> List[int]:
        try:
            return [self._ids[p] for p in phones]
        except KeyError as e:
            raise SpeechEQError(f"{self.units} {e.args[0]!r} is not in the token table") from None

    def decode(self, ids: Iterable[int]) -> List[str]:
        return [self.symbols[i] for i in ids if i != self.blank_id]
