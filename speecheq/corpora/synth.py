"""The embedded synthetic corpus: emotional prosody rendered with espeak-ng.

SpeechEQ's default demo corpus needs no download: :func:`generate_synth` speaks
a few fixed neutral-content sentences (English, and Mandarin written in Chinese
characters and spoken from their tone-numbered pinyin) with 10 espeak-ng voices,
in 6 emotions at 2 intensity levels, by changing pitch (``-p``), pitch range
(SSML ``<prosody range>``), speaking rate (``-s``) and volume (``-a``), with a
seeded per-utterance jitter and 30 dB white noise. It is a plumbing test for
every stage (all four tasks have labels), not a model of real emotional speech.
See docs/synth-corpus.md for the prosody table and the splits.

Layout: ``<corpus_dir>/wav/<voice_id>/<utt_id>.wav`` (16 kHz mono 16-bit) and
``<corpus_dir>/metadata.tsv``. Ground-truth phones: for English, the phones
espeak-ng printed (``--ipa``) in the very call that wrote the audio, mapped onto
the ARPAbet inventory of :mod:`speecheq.text.english`; for Mandarin, the pypinyin
initial/final decomposition (:mod:`speecheq.text.mandarin`) of the exact pinyin
string espeak-ng spoke (espeak's own Mandarin phonemes follow its tone model, not
the inventory the other Mandarin corpora use).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

import numpy as np

from speecheq.corpora.common import Utterance, build_manifests, require_corpus_dir, speaker_folds, write_manifests
from speecheq.errors import SpeechEQError
from speecheq.io import TMP_PREFIX, atomic_output, changed_input, clear_done, folder_lock, is_done, mark_done

log = logging.getLogger("speecheq")

CORPUS = "synth"
SAMPLING_RATE = 16000
ESPEAK_RATE = 22050
SNR_DB = 30.0
PAD_SECONDS = 0.1  # silence kept around the trimmed speech (noise covers it)
METADATA = "metadata.tsv"
COLUMNS = (
    "id",
    "path",
    "voice",
    "speaker",
    "gender",
    "language",
    "emotion",
    "intensity_level",
    "text",
    "spoken",
    "phones",
    "prosody",
)
REQUIRED = COLUMNS[:-1]  # "prosody" is informative only


@dataclass(frozen=True)
class Voice:
    id: str  # file-system safe; the speaker of the manifests
    espeak: str  # espeak-ng voice+variant
    language: str  # "en" or "zh"
    gender: str  # "M" or "F"


# Every voice uses a different variant, so a held-out voice shares no timbre with training.
VOICES: Tuple[Voice, ...] = (
    Voice("en-us_m1", "en-us+m1", "en", "M"),
    Voice("en-us_m3", "en-us+m3", "en", "M"),
    Voice("en-us_f1", "en-us+f1", "en", "F"),
    Voice("en-us_f3", "en-us+f3", "en", "F"),
    Voice("en-gb_m2", "en-gb+m2", "en", "M"),
    Voice("en-gb_f2", "en-gb+f2", "en", "F"),
    Voice("cmn_m4", "cmn-latn-pinyin+m4", "zh", "M"),
    Voice("cmn_f4", "cmn-latn-pinyin+f4", "zh", "F"),
    Voice("cmn_m6", "cmn-latn-pinyin+m6", "zh", "M"),
    Voice("cmn_f5", "cmn-latn-pinyin+f5", "zh", "F"),
)
VOICE_IDS = tuple(v.id for v in VOICES)
TEST_VOICES = ("en-gb_f2", "cmn_m6")  # English female, Mandarin male
DEV_VOICES = ("en-us_m3", "cmn_f5")  # English male, Mandarin female

SENTENCES: Dict[str, Tuple[str, ...]] = {
    "en": (
        "The door is open now.",
        "She put the book on the table.",
        "We will meet again tomorrow.",
        "The train leaves at seven.",
        "My phone is on the desk.",
        "He walked to the store today.",
        "The water is in the glass.",
        "They painted the house last year.",
        "The bus stops near the park.",
        "I left my keys at home.",
        "Our class starts after lunch.",
        "The window faces the garden.",
    ),
    "zh": (
        "今天天气很好",
        "请把门关上",
        "这是我的朋友",
        "火车下午到站",
        "我在家做饭",
        "我们明天见面",
        "桌子上有水杯",
        "外面下雨了",
        "小猫在睡觉",
        "他去学校了",
        "电话在桌上",
        "书放在床边",
    ),
}


@dataclass(frozen=True)
class Prosody:
    pitch: float  # espeak -p, 0..99 (50 = the voice's own pitch)
    range: float  # SSML <prosody range>, percent of the voice's own pitch range
    rate: float  # espeak -s, words per minute
    volume: float  # espeak -a, 0..200 (100 is near full scale: 60 leaves headroom)


# Loosely after the rules of Murray & Arnott (1993) for synthetic emotional speech:
# happy higher, wider, a little faster; sad lower, flat, slow, soft; angry loud and
# fast; fear high, narrow, fast, soft; surprise highest and widest, slower.
EMOTIONS = ("neutral", "happy", "sad", "angry", "fear", "surprise")
LEVELS = ("normal", "strong")
PROSODY: Dict[Tuple[str, str], Prosody] = {
    ("neutral", "normal"): Prosody(50, 100, 170, 60),
    ("happy", "normal"): Prosody(58, 135, 185, 66),
    ("happy", "strong"): Prosody(66, 170, 200, 71),
    ("sad", "normal"): Prosody(43, 65, 145, 49),
    ("sad", "strong"): Prosody(37, 45, 130, 41),
    ("angry", "normal"): Prosody(54, 125, 195, 73),
    ("angry", "strong"): Prosody(58, 150, 215, 81),
    ("fear", "normal"): Prosody(63, 85, 195, 55),
    ("fear", "strong"): Prosody(72, 70, 215, 52),
    ("surprise", "normal"): Prosody(64, 165, 172, 66),
    ("surprise", "strong"): Prosody(74, 200, 165, 71),
}
# Per-utterance jitter: pitch +-4 (on 0..99), range/rate/volume times U(1-x, 1+x).
JITTER = Prosody(pitch=4, range=0.15, rate=0.07, volume=0.08)


@dataclass(frozen=True)
class UttSpec:
    id: str
    voice: Voice
    emotion: str
    level: str
    text: str
    spoken: str

    @property
    def path(self) -> str:
        return f"wav/{self.voice.id}/{self.id}.wav"


def combinations() -> List[Tuple[str, str]]:
    """The 11 (emotion, intensity level) pairs: neutral only at "normal"."""
    return [(e, lvl) for e in EMOTIONS for lvl in LEVELS if e != "neutral" or lvl == "normal"]


def spoken_form(text: str, language: str) -> str:
    """What espeak-ng is given: the English text, or the tone-numbered pinyin."""
    if language == "en":
        return text
    from speecheq.text.mandarin import characters_to_pinyin

    syllables = characters_to_pinyin(text)
    if not syllables:
        raise SpeechEQError(f"synth: cannot convert {text!r} to pinyin")
    return " ".join(syllables)


def plan(sentences_per_language: int = 8, voices: Optional[Sequence[str]] = None) -> List[UttSpec]:
    """Every utterance to generate, in a fixed order."""
    limit = min(len(s) for s in SENTENCES.values())
    if not 1 <= sentences_per_language <= limit:
        raise SpeechEQError(f"synth: sentences_per_language must be 1..{limit}, got {sentences_per_language}")
    chosen = VOICES
    if voices is not None:
        unknown = sorted(set(voices) - set(VOICE_IDS))
        if unknown:
            raise SpeechEQError(f"synth: unknown voice {unknown[0]!r}; known: {', '.join(VOICE_IDS)}")
        chosen = tuple(v for v in VOICES if v.id in set(voices))
    spoken = {lang: [spoken_form(t, lang) for t in sents[:sentences_per_language]] for lang, sents in SENTENCES.items()}
    specs = []
    for voice in chosen:
        for emotion, level in combinations():
            for k in range(sentences_per_language):
                specs.append(
                    UttSpec(
                        id=f"{voice.id}_{emotion}_{level}_{k:02d}",
                        voice=voice,
                        emotion=emotion,
                        level=level,
                        text=SENTENCES[voice.language][k],
                        spoken=spoken[voice.language][k],
                    )
                )
    return specs


def _rng(seed: int, utt_id: str) -> np.random.Generator:
    """One generator per utterance, keyed on its id: results do not depend on the
    thread order, and a subset of voices gives the same files as the full corpus."""
    return np.random.default_rng([int(seed), zlib.crc32(utt_id.encode("utf-8"))])


def jittered_prosody(spec: UttSpec, rng: np.random.Generator) -> Prosody:
    base = PROSODY[(spec.emotion, spec.level)]
    u = rng.uniform(-1.0, 1.0, size=4)
    return Prosody(
        pitch=int(round(min(99, max(0, base.pitch + JITTER.pitch * u[0])))),
        range=int(round(base.range * (1 + JITTER.range * u[1]))),
        rate=int(round(base.rate * (1 + JITTER.rate * u[2]))),
        volume=int(round(min(200, base.volume * (1 + JITTER.volume * u[3])))),
    )


def replace_edge_silence(x: np.ndarray, sr: int, pad: float = PAD_SECONDS) -> np.ndarray:
    """Replace espeak-ng's leading and trailing silence (10 ms frames under -30 dB of the loudest)
    by ``pad`` seconds of zeros on each side.

    Not ``features.trim_silence``: this shapes the raw espeak-ng waveform before any feature
    exists, so that every synthetic utterance has the same silence margin to put noise on."""
    frame = max(1, int(0.01 * sr))
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    active = np.flatnonzero(rms > 10 ** (-30 / 20) * rms.max())
    if active.size == 0:
        return x
    start = max(0, (int(active[0]) - 2) * frame)
    end = min(len(x), (int(active[-1]) + 3) * frame)
    z = np.zeros(int(round(pad * sr)), dtype=x.dtype)
    return np.concatenate([z, x[start:end], z])


def _render(spec: UttSpec, out_dir: Path, seed: int) -> Dict[str, str]:
    """Speak one utterance, post-process it, write its WAV; return its metadata row."""
    import soundfile as sf
    from scipy.signal import resample_poly

    from speecheq.text.english import ipa_to_arpabet
    from speecheq.text.espeak import synthesize
    from speecheq.text.mandarin import mandarin_phones

    rng = _rng(seed, spec.id)
    p = jittered_prosody(spec, rng)
    raw = out_dir / ".raw" / f"{spec.id}.wav"
    ssml = f'<speak><prosody range="{p.range}%">{escape(spec.spoken)}</prosody></speak>'
    ipa = synthesize(ssml, spec.voice.espeak, raw, pitch=p.pitch, speed=p.rate, amplitude=p.volume, ssml=True)
    if spec.voice.language == "en":
        phones = ipa_to_arpabet(ipa)
    else:
        phones = mandarin_phones(spec.spoken)
    if not phones:
        raise SpeechEQError(f"synth: no phones for {spec.id} ({spec.spoken!r}, espeak-ng gave {ipa!r})")

    x, sr = sf.read(str(raw), dtype="float64")
    raw.unlink()
    if x.ndim > 1:
        x = x[:, 0]
    if sr != ESPEAK_RATE:
        raise SpeechEQError(f"synth: espeak-ng wrote {sr} Hz, expected {ESPEAK_RATE}")
    y = resample_poly(replace_edge_silence(x, sr), 320, 441)  # 22050 -> 16000 Hz
    pad = int(round(PAD_SECONDS * SAMPLING_RATE))
    speech = y[pad:-pad] if len(y) > 2 * pad else y
    power = float(np.mean(speech**2))
    y = y + rng.standard_normal(len(y)) * np.sqrt(power / 10 ** (SNR_DB / 10))
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    wav = out_dir / spec.path
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(wav), pcm, SAMPLING_RATE, subtype="PCM_16", format="WAV")
    return {
        "id": spec.id,
        "path": spec.path,
        "voice": spec.voice.espeak,
        "speaker": spec.voice.id,
        "gender": spec.voice.gender,
        "language": spec.voice.language,
        "emotion": spec.emotion,
        "intensity_level": spec.level,
        "text": spec.text,
        "spoken": spec.spoken,
        "phones": " ".join(phones),
        "prosody": f"p={p.pitch} range={p.range}% s={p.rate} a={p.volume}",
        "_seconds": f"{len(pcm) / SAMPLING_RATE:.4f}",
    }


def _looks_like_synth(path: Path) -> bool:
    entries = {p.name for p in path.iterdir()}
    return not entries or entries <= {METADATA, "wav", ".raw"}


def generate_synth(
    corpus_dir,
    *,
    seed: int = 0,
    sentences_per_language: int = 8,
    voices: Optional[Sequence[str]] = None,
    num_workers: Optional[int] = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Generate the corpus into ``corpus_dir`` (atomically); return ``corpus_dir``.

    Deterministic: the same arguments give byte-identical WAVs and metadata. The
    corpus is built in a temporary sibling folder renamed into place at the end,
    then marked done (``<corpus_dir>.done``) with the arguments it was made from; a
    corpus already marked done from the same arguments is returned as it is, from
    others it is an error (``force`` generates it again). ``voices`` (voice ids) and
    ``sentences_per_language`` make smaller corpora for tests.
    """
    from tqdm import tqdm

    corpus_dir = Path(corpus_dir)
    specs = plan(sentences_per_language, voices)
    inputs = {
        "seed": seed,
        "sentences per language": sentences_per_language,
        "voices": " ".join(sorted({s.voice.id for s in specs})),
    }
    if is_done(corpus_dir) and (corpus_dir / METADATA).is_file() and not force:
        # Stop rather than regenerate: generating replaces the folder that manifests were made from.
        changed = changed_input(corpus_dir, inputs)
        if changed:
            raise SpeechEQError(
                f"synth: {corpus_dir} was generated with {changed}; re-run stage 0 with --force to generate it again"
            )
        log.info("synth: %s is already generated", corpus_dir)
        return corpus_dir
    parent = corpus_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(parent, f"synth generation ({corpus_dir.name})"):
        clear_done(corpus_dir)
        for stale in parent.glob(f"{TMP_PREFIX}*.{corpus_dir.name}"):
            if stale.name[len(TMP_PREFIX) : -len(corpus_dir.name) - 1].isdigit():
                shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
        if corpus_dir.exists():
            if not corpus_dir.is_dir() or not _looks_like_synth(corpus_dir):
                raise SpeechEQError(
                    f"synth: {corpus_dir} exists and is not an unfinished synth corpus; "
                    "remove it or choose another --corpus-dir"
                )
            shutil.rmtree(corpus_dir)  # an unfinished corpus: never trusted
        workers = num_workers or min(4, os.cpu_count() or 1)
        with atomic_output(corpus_dir) as tmp:
            tmp.mkdir()
            (tmp / ".raw").mkdir()
            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                futures = [pool.submit(_render, s, tmp, seed) for s in specs]
                rows = [f.result() for f in tqdm(futures, desc="generate synth", disable=not progress)]
            finally:
                # on an error or Ctrl-C, drop the queued work before the folder is removed
                pool.shutdown(wait=True, cancel_futures=True)
            (tmp / ".raw").rmdir()
            seconds = sum(float(r.pop("_seconds")) for r in rows)
            lines = ["\t".join(COLUMNS)] + ["\t".join(r[c] for c in COLUMNS) for r in rows]
            (tmp / METADATA).write_text("\n".join(lines) + "\n", encoding="utf-8")
        mark_done(
            corpus_dir,
            {
                "corpus": CORPUS,
                "seed": seed,
                "sentences_per_language": sentences_per_language,
                "voices": sorted({s.voice.id for s in specs}),
                "utterances": len(rows),
                "hours": round(seconds / 3600, 4),
                "inputs": inputs,
            },
        )
    log.info("synth: generated %d utterances (%.2f h) in %s", len(rows), seconds / 3600, corpus_dir)
    return corpus_dir


def read_metadata(corpus_dir: Path) -> List[Dict[str, str]]:
    """Rows of ``metadata.tsv``; a missing file or malformed row is a SpeechEQError."""
    path = corpus_dir / METADATA
    if not path.is_file():
        raise SpeechEQError(f"synth: metadata file not found: {path} (generate the corpus first)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpeechEQError(f"synth: cannot read {path}: {e}") from None
    reader = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise SpeechEQError(f"synth: {path} is empty (expected a header line)")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SpeechEQError(f"synth: {path}:1: header lacks column(s) {', '.join(missing)}")
    rows = []
    for n, fields in enumerate(reader, 2):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(header):
            raise SpeechEQError(f"synth: {path}:{n}: expected {len(header)} tab-separated fields, got {len(fields)}")
        row = dict(zip(header, fields))
        empty = [c for c in ("id", "path", "speaker", "language", "emotion", "intensity_level") if not row[c].strip()]
        if empty:
            raise SpeechEQError(f"synth: {path}:{n}: empty field(s) {', '.join(empty)}")
        rows.append(row)
    return rows


def iter_utterances(corpus_dir: Path) -> Iterator[Utterance]:
    for row in read_metadata(corpus_dir):
        phones = row["phones"].split()
        yield Utterance(
            id=f"synth_{row['id']}",
            audio_path=str(corpus_dir / row["path"]),
            speaker=row["speaker"],
            gender=row["gender"] or None,
            language=row["language"],
            text=row["text"] or None,
            emotion_raw=row["emotion"],
            intensity_level=row["intensity_level"],
            phones=phones or None,
            extra={"voice": row["voice"], "spoken": row["spoken"]},
        )


def prepare_synth(corpus_dir, output_dir=None, *, on_error: str = "skip", executor=None, g2p=None, progress=True):
    corpus_dir = require_corpus_dir(corpus_dir, CORPUS)
    utterances = list(iter_utterances(corpus_dir))
    recordings, supervisions, summary = build_manifests(
        CORPUS, utterances, on_error=on_error, executor=executor, g2p=g2p, progress=progress
    )
    if output_dir is not None:
        write_manifests(recordings, supervisions, output_dir, CORPUS)
    return {"recordings": recordings, "supervisions": supervisions, "summary": summary}


def protocol(speakers=None):
    """{"": {split: voices}}: one speaker-independent split (files ``synth_cuts_<split>``).

    Test and dev each hold out one English and one Mandarin voice, one male and
    one female; train has the other 6 voices.
    """
    folds = speaker_folds(VOICE_IDS, [TEST_VOICES], [DEV_VOICES])
    return {"": folds[0]}
