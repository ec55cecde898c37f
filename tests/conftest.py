"""Shared fixtures: generated audio (never corpus audio in the repository) and the RAVDESS location."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def real_corpus_dir(corpus: str) -> Path:
    """Where the recipes read a real corpus: $SPEECHEQ_<CORPUS>_DIR, else ../shared/data/<corpus>."""
    return Path(os.environ.get(f"SPEECHEQ_{corpus.upper()}_DIR", REPO.parent / "shared" / "data" / corpus))


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 220.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voiced-like signal: a harmonic tone with a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    x = x * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)) * 0.2 + 0.005 * rng.standard_normal(t.shape)
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_wav(path: Path, data: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def _real_corpus_or_skip(corpus: str, name: str, marker: str) -> Path:
    folder = real_corpus_dir(corpus)
    if not (folder / marker).is_dir():
        pytest.skip(f"{name} not found at {folder} (set SPEECHEQ_{corpus.upper()}_DIR)")
    return folder


@pytest.fixture
def ravdess_dir() -> Path:
    return _real_corpus_or_skip("ravdess", "RAVDESS", "Actor_01")


@pytest.fixture
def emodb_dir() -> Path:
    return _real_corpus_or_skip("emodb", "EmoDB", "wav")


def recipe_copy(dest: Path, corpus: str) -> Path:
    """A scratch copy of egs/<corpus> at dest: its scripts linked, its data/ and exp/ dest's own."""
    dest.mkdir(parents=True)
    for name in ("run.sh", "local", "utils", "path.sh"):
        (dest / name).symlink_to((REPO / "egs" / corpus / name).resolve())
    return dest


# utils/kill_test.py owns the tiny model and its training options; the suite trains the same model
if "kill_test" not in sys.modules:  # conftest is imported both as conftest and as tests.conftest
    _spec = importlib.util.spec_from_file_location("kill_test", REPO / "utils" / "kill_test.py")
    sys.modules["kill_test"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["kill_test"])
kill_test = sys.modules["kill_test"]
TINY_MODEL = kill_test.TINY_MODEL


def train_args(data: Path, exp_dir: Path, *extra: str):
    """The TrainConfig of the tiny model's command line, with ``extra`` options."""
    from speecheq.options import TrainConfig
    from speecheq.train import get_parser

    argv = [*kill_test.tiny_train_argv(data / "fbank", data / "lang", exp_dir), *extra]
    return TrainConfig.from_args(get_parser().parse_args(argv))


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """A small synthetic corpus through stages 0-3 (manifests, lang, fbank, splits)."""
    from speecheq.corpora import prepare_corpus
    from speecheq.corpora.synth import generate_synth
    from speecheq.features import compute_corpus_fbank
    from speecheq.splits import validate_and_split
    from speecheq.text import G2P
    from speecheq.text.lang import prepare_lang

    root = tmp_path_factory.mktemp("synth")
    corpus = generate_synth(root / "corpus", sentences_per_language=1, progress=False)
    prepare_corpus("synth", corpus, root / "manifests", g2p=G2P(), progress=False)
    prepare_lang([root / "manifests/synth_supervisions_all.jsonl.gz"], root / "lang")
    compute_corpus_fbank("synth", root / "manifests", root / "fbank", nj=1)
    validate_and_split("synth", root / "fbank", "6class")
    return root


@pytest.fixture(scope="session")
def trained_exp(synth_data, tmp_path_factory) -> Path:
    """A tiny model trained for 2 epochs on the small synthetic corpus (exp dir with epoch-1/2.pt, best-valid.pt)."""
    from speecheq.train import train

    exp = tmp_path_factory.mktemp("exp") / "tiny"
    train(train_args(synth_data, exp))
    return exp
