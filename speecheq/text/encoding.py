"""Reading corpus text files whose encoding is not known in advance.

Copies of the same corpus arrive in different encodings (ESD's speaker files
are UTF-8, UTF-8 with a BOM, UTF-16 or GB18030 depending on who re-packed
them). :func:`read_text` detects, in this order:

1. a byte-order mark: UTF-8 (``EF BB BF``), UTF-16 LE / BE (``FF FE`` / ``FE FF``);
2. UTF-16 without a BOM, when most NUL bytes of a mostly-ASCII text sit at odd
   (LE) or even (BE) positions;
3. strict UTF-8 (ASCII is UTF-8);
4. strict GB18030 (a superset of GB2312 and GBK).

UTF-8 is tried before GB18030 because valid multi-byte UTF-8 is almost never
valid Chinese text in GB18030 by accident, while the reverse is common. A file
that none of them decodes, or that decodes to control characters, raises
:class:`SpeechEQError` naming the file: a wrong guess would silently put
garbage into the transcripts.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Tuple

from speecheq.errors import SpeechEQError

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "gb18030")
_ALLOWED_CONTROLS = {"\t", "\n", "\r", "\f", "\v"}


def _plausible(text: str) -> bool:
    """No NUL or other C0 control characters besides whitespace, no U+FFFD."""
    return not any((ord(c) < 32 and c not in _ALLOWED_CONTROLS) or c == "\ufffd" for c in text)


def _bomless_utf16(data: bytes) -> str:
    """'utf-16-le' / 'utf-16-be' when the NUL bytes sit at odd / even positions, else ''."""
    if len(data) < 4 or len(data) % 2:
        return ""
    even, odd = data[0::2].count(0), data[1::2].count(0)
    n = len(data) // 2
    if odd >= 0.3 * n and even <= odd / 4:
        return "utf-16-le"
    if even >= 0.3 * n and odd <= even / 4:
        return "utf-16-be"
    return ""


def decode_bytes(data: bytes) -> Tuple[str, str]:
    """(text, encoding name) of ``data``; raises ValueError when nothing fits."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = [c for c in (_bomless_utf16(data), "utf-8", "gb18030") if c]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _plausible(text):
            return text, encoding
    raise ValueError(f"not {', '.join(candidates)}")


def read_text(path, what: str = "text file") -> Tuple[str, str]:
    """(text, encoding) of a text file in UTF-8, UTF-8 with BOM, UTF-16 or GB18030.

    Line endings are left as they are (``str.splitlines`` handles all of them).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpeechEQError(f"{what} not found: {path}") from None
    except OSError as e:
        raise SpeechEQError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        return decode_bytes(data)
    except ValueError:
        raise SpeechEQError(
            f"{path}: cannot decode {what} (tried UTF-8, UTF-8 with BOM, UTF-16, GB18030); re-save it as UTF-8"
        ) from None
