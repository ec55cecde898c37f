"""The phone inventory of the CTC branch, stored as ``data/lang/tokens.txt``.

Format follows icefall: one ``symbol id`` pair per line, blank ``<blk>`` is id 0
(torch's CTC loss default), so a tokens file from one recipe reads in any tool
that reads icefall's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from speecheq.errors import SpeechEQError, decode_problem
from speecheq.io import Pathlike, write_text_atomic

BLANK = "<blk>"


class TokenTable:
    def __init__(self, symbols: Sequence[str]):
        if not symbols or symbols[0] != BLANK:
            raise ValueError(f"token 0 must be {BLANK}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("duplicate symbols in token table")
        self.symbols: List[str] = list(symbols)
        self._ids: Dict[str, int] = {s: i for i, s in enumerate(self.symbols)}

    blank_id = 0

    @classmethod
    def build(cls, phone_sequences: Iterable[Sequence[str] | None]) -> "TokenTable":
        inventory = set()
        for seq in phone_sequences:
            if seq:
                inventory.update(seq)
        inventory.discard(BLANK)
        return cls([BLANK, *sorted(inventory)])

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
            raise SpeechEQError(f"phone {e.args[0]!r} is not in the token table") from None

    def decode(self, ids: Iterable[int]) -> List[str]:
        return [self.symbols[i] for i in ids if i != self.blank_id]
