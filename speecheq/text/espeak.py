"""espeak-ng access: IPA phones from the ``phonemizer`` library or the binary.

Two ways in, both returning IPA phone tokens with stress marks removed:

* :func:`phonemize` goes through ``phonemizer``'s espeak backend (the
  libespeak-ng shared library, no process per call); the G2P fallback for
  English words cmudict lacks and the G2P of every language other than English
  and Mandarin use it. Backends are created lazily, once per language. If
  ``phonemizer`` cannot be imported, the ``espeak-ng`` binary is used instead.
* :func:`synthesize` runs the ``espeak-ng`` binary once to write a WAV file and
  print, from the same call, the IPA phones it spoke (``--ipa --sep=' '``): the
  synthetic corpus takes its ground-truth phones from there.

Stress marks (ˈ ˌ) and the tie bar are dropped; length marks and diacritics stay
part of their phone (``uː``, ``ɔ̃``), so one token is one espeak phoneme.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from speecheq.errors import SpeechEQError

log = logging.getLogger("speecheq")

STRESS_MARKS = "ˈˌ\u0361"  # primary, secondary stress; tie bar
_backends: Dict[str, object] = {}
_lock = threading.Lock()
_supported: Optional[set] = None


def espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechEQError("espeak-ng not found on PATH (install it: apt-get install espeak-ng)")
    return path


def clean_phone(token: str) -> str:
    return "".join(c for c in token if c not in STRESS_MARKS)


def split_ipa(text: str) -> List[str]:
    """Phones of espeak's ``--ipa --sep=' '`` output (or phonemizer's): whitespace
    separates phones (two spaces or a newline separate words and clauses)."""
    phones = [clean_phone(t) for t in text.replace("|", " ").split()]
    return [p for p in phones if p]


def _resolve_language(language: str) -> Optional[str]:
    """A language code phonemizer's espeak backend accepts ("fr" -> "fr-fr"), or None."""
    global _supported
    from phonemizer.backend import EspeakBackend

    if _supported is None:
        _supported = set(EspeakBackend.supported_languages())
    lang = language.lower()
    for candidate in (lang, f"{lang}-{lang}", lang.replace("_", "-")):
        if candidate in _supported:
            return candidate
    return None


def _backend(language: str):
    from phonemizer.backend import EspeakBackend

    if language not in _backends:
        quiet = logging.getLogger("speecheq.phonemizer")
        quiet.setLevel(logging.ERROR)
        _backends[language] = EspeakBackend(language, with_stress=False, language_switch="remove-flags", logger=quiet)
    return _backends[language]


def phonemize(texts: Sequence[str], language: str) -> Optional[List[List[str]]]:
    """IPA phones of each text (one list per text, possibly empty), or None when
    espeak-ng does not know ``language``."""
    texts = list(texts)
    if not texts:
        return []
    try:
        import phonemizer  # noqa: F401
    except ImportError:  # pragma: no cover - phonemizer is a dependency
        return _phonemize_binary(texts, language)
    from phonemizer.separator import Separator

    with _lock:
        lang = _resolve_language(language)
        if lang is None:
            log.warning("espeak-ng has no language %r", language)
            return None
        out = _backend(lang).phonemize(texts, separator=Separator(phone=" ", word=" | "), strip=True, njobs=1)
    return [split_ipa(o) for o in out]


def _phonemize_binary(texts: List[str], language: str) -> Optional[List[List[str]]]:
    results = []
    for text in texts:
        proc = subprocess.run(
            [espeak_binary(), "-q", "-v", language, "--ipa", "--sep= ", text.replace("\n", " ")],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or "Failed to read voice" in proc.stderr:
            log.warning("espeak-ng has no language %r", language)
            return None
        results.append(split_ipa(proc.stdout))
    return results


def synthesize(
    text: str,
    voice: str,
    wav_path: Path,
    *,
    pitch: Optional[int] = None,
    speed: Optional[int] = None,
    amplitude: Optional[int] = None,
    ssml: bool = False,
) -> List[str]:
    """Speak ``text`` with ``voice`` into ``wav_path`` (espeak's 22050 Hz WAV) and
    return the IPA phones espeak-ng spoke, from the same call."""
    cmd = [espeak_binary(), "-v", voice, "-w", str(wav_path), "--ipa", "--sep= "]
    if pitch is not None:
        cmd += ["-p", str(int(pitch))]
    if speed is not None:
        cmd += ["-s", str(int(speed))]
    if amplitude is not None:
        cmd += ["-a", str(int(amplitude))]
    if ssml:
        cmd.append("-m")
    cmd += ["--", text]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not Path(wav_path).is_file() or Path(wav_path).stat().st_size <= 44:
        reason = proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else f"exit code {proc.returncode}"
        raise SpeechEQError(f"espeak-ng failed for voice {voice!r} on {text!r}: {reason}")
    return split_ipa(proc.stdout)
