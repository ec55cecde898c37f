"""The self-contained pretrained package that inference and export read, made from a
recipe's exp folder (weights as decoding chooses them) or from a model in memory.

A package is one ``torch.save`` of a dict holding only tensors, strings, numbers,
lists and dicts, so :func:`load_package` reads it with ``weights_only=True``: a
package downloaded from someone else cannot run code when it is opened. It needs
nothing from the recipe that trained it: the corpus -> categories map that the
corpus-aware decision uses and the fbank settings travel inside it, copied from what
the training checkpoint recorded (speecheq.checkpoint.record_training_data).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from speecheq import __version__
from speecheq.checkpoint import (
    CTC_UNITS_KEY,
    TRAINING_DATA_KEY,
    check_fingerprint,
    fingerprint,
    load_model,
    load_model_state,
    weights_epoch,
)
from speecheq.errors import SpeechEQError
from speecheq.features import SSL_FEATURE_TYPE, FrontEnd
from speecheq.io import Pathlike, atomic_output
from speecheq.labels import EMOTION_MAPS, LabelScheme
from speecheq.model import ModelConfig, SpeechEQModel
from speecheq.tasks import default_tasks, was_trained

log = logging.getLogger("speecheq")

PACKAGE_FORMAT = "speecheq-package"
# Bump when a key changes meaning; readers refuse newer versions instead of guessing.
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #


def corpus_categories(
    categories: Sequence[str], corpora: Sequence[str], observed: Optional[Dict[str, Sequence[str]]] = None
) -> Dict[str, List[str]]:
    """corpus -> the categories of this preset it can produce: speecheq.labels' table at export
    time, else the emotions its training data actually had."""
    scheme = LabelScheme("custom", tuple(categories))
    out = {}
    for corpus in corpora:
        if corpus in EMOTION_MAPS:
            out[corpus] = scheme.corpus_categories(corpus)
        elif observed and corpus in observed:
            out[corpus] = [c for c in categories if c in set(observed[corpus])]
        else:
            log.warning("corpus %r has no label table in speecheq.labels; it gets no corpus-aware decision", corpus)
    return out


def _plain(value):
    """Only types weights_only=True can read back (paths and tuples from argparse become str and list)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    for plain in (int, float, str):  # subclasses (torch's TorchVersion is a str) are not allowed
        if isinstance(value, plain):
            return plain(value)
    return str(value)


def package_from_model(
    model: SpeechEQModel,
    *,
    categories: Sequence[str],
    label_preset: str = "custom",
    tokens: Optional[Sequence[str]] = None,
    tasks: Optional[Dict[str, float]] = None,
    corpora: Sequence[str] = (),
    observed: Optional[Dict[str, Sequence[str]]] = None,
    speaker_cmvn: bool = False,
    extractor: str = "fbank",
    source: Optional[dict] = None,
    trim_silence_db: float = 0.0,
    features: Optional[dict] = None,
    ctc_units: str = "phone",
) -> dict:
    """The package dict for a model in memory (trained or not: the benchmark packages an untrained one).

    ``features``: the front-end settings a checkpoint recorded (:meth:`FrontEnd.feature_config`); when
    None they are made for ``extractor``.
    """
    config = model.config
    features = features or FrontEnd.named(extractor, config.num_mel_bins).feature_config()
    if len(categories) != config.num_emotions:
        raise SpeechEQError(f"{len(categories)} categories for a model with {config.num_emotions} emotion outputs")
    if tokens is not None and len(tokens) != config.vocab_size:
        raise SpeechEQError(f"{len(tokens)} tokens for a model with a CTC vocabulary of {config.vocab_size}")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {
        "format": PACKAGE_FORMAT,
        "format_version": FORMAT_VERSION,
        "speecheq_version": __version__,
        "torch_version": str(torch.__version__),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "fingerprint": fingerprint(state),
        "model_state": state,
        "model_config": config.to_dict(),
        "label_preset": label_preset,
        "categories": list(categories),
        "corpus_categories": corpus_categories(categories, corpora, observed),
        "tokens": list(tokens) if tokens is not None else None,
        # What the tokens are (phone, char, bpe: speecheq.text.units); the hypotheses are in them.
        "ctc_units": str(ctc_units),
        "tasks": _plain(dict(tasks) if tasks is not None else {t: 1.0 for t in default_tasks()}),
        # Also inside model_state as buffers; stored apart so other tools can read them without torch modules.
        "normalization": {"mean": state["feature_mean"].tolist(), "std": state["feature_std"].tolist()},
        "feature_config": {**features, "trim_silence_db": float(trim_silence_db)},
        "speaker_cmvn": bool(speaker_cmvn),
        # Of the CTC frames: alignment times.
        "frame_shift": FrontEnd.from_feature_config(features).output_frame_shift(model.ctc_subsampling),
        "source": _plain(source or {}),
    }


def package_from_exp(
    exp_dir: Pathlike,
    epoch: int = 0,
    avg: int = 1,
    use_averaged_model: bool = False,
    checkpoint: str = "",
    corpora: Optional[Sequence[str]] = None,
    extractor: str = "fbank",
    trim_silence_db: Optional[float] = None,
) -> dict:
    """The package dict of a recipe's trained model (weights as decode.py would use them).

    ``trim_silence_db`` None: the threshold the training cuts were trimmed with, as the checkpoint recorded it.
    """
    exp_dir = Path(exp_dir)
    model, meta, tag = load_model(exp_dir, epoch, avg, use_averaged_model, checkpoint, "cpu")
    for key in ("categories", "label_preset"):
        if key not in meta:
            raise SpeechEQError(f"{exp_dir}: checkpoint {tag} has no {key!r}; was it written by speecheq's train.py?")
    recorded = meta.get(TRAINING_DATA_KEY)
    if not isinstance(recorded, dict):
        # One behaviour for checkpoints of older speecheq: the defaults of a package whose training
        # manifests could not be found (no trimming, --extractor's front end, no corpus map).
        log.warning(
            "checkpoint %s in %s records nothing of its training data (older speecheq): the package trims "
            "silence only with --trim-silence-db, takes --extractor as the front end and has a corpus-aware "
            "decision only for --corpora",
            tag,
            exp_dir,
        )
        recorded = {}
    observed = recorded.get("corpus_emotions") or {}
    if corpora is None:
        corpora = list(observed)
        if not corpora and recorded:
            log.warning("the training cuts name no corpus; the package has no corpus-aware decision (give --corpora)")
    trained = (recorded.get("feature_config") or {}).get("extractor")
    if trained == SSL_FEATURE_TYPE:
        # The model reads audio; its encoder's weights are in the state dict, its description recorded.
        extractor = trained
    elif trained is not None and trained != extractor and "fbank-pitch" in (trained, extractor):
        # fbank and fbank-pitch differ in dimension: inference must rebuild what the model was trained on.
        log.warning("the training cuts have %s features; the package records %s (not %s)", trained, trained, extractor)
        extractor = trained
    return package_from_model(
        model,
        categories=meta["categories"],
        label_preset=meta["label_preset"],
        tokens=meta.get("tokens"),
        ctc_units=(meta.get(CTC_UNITS_KEY) or {}).get("units", "phone"),
        tasks=meta.get("tasks"),
        corpora=corpora,
        observed=observed,
        speaker_cmvn=bool(meta.get("speaker_cmvn")),
        extractor=extractor,
        features=recorded["feature_config"] if trained == extractor else None,
        trim_silence_db=float(recorded.get("trim_silence_db", 0.0)) if trim_silence_db is None else trim_silence_db,
        source={
            "exp_dir": str(exp_dir.resolve()),
            "weights": tag,
            "epoch": weights_epoch(meta),
            "checkpoint_version": meta.get("version"),
            "train_args": meta.get("train_args"),
        },
    )


def save_package(package: dict, path: Pathlike) -> Path:
    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save(package, tmp)
    return path


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


@dataclass
class Package:
    """A loaded package: the eval-mode model and everything needed to feed it and read its outputs."""

    path: Path
    model: SpeechEQModel
    config: ModelConfig
    label_preset: str
    categories: List[str]
    corpus_categories: Dict[str, List[str]]
    tokens: Optional[List[str]]
    tasks: Dict[str, float]
    feature_config: dict
    speaker_cmvn: bool
    normalization: dict
    fingerprint: str
    version: str
    format_version: int
    frame_shift: float  # seconds per CTC frame: alignment times
    source: dict = field(default_factory=dict)
    #: The units of ``tokens`` (packages from before units were recorded: phones).
    ctc_units: str = "phone"

    @property
    def trim_silence_db(self) -> float:
        """Inference trims leading/trailing silence as the training cuts were trimmed (0: off)."""
        return float(self.feature_config.get("trim_silence_db", 0.0) or 0.0)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_config["sampling_rate"])

    @property
    def front_end(self) -> FrontEnd:
        """The front end the model was trained on, as the package recorded it."""
        return FrontEnd.from_feature_config(self.feature_config)

    def has_task(self, task: str) -> bool:
        """Heads of tasks the model never trained give numbers that mean nothing; readers skip them
        (speecheq.tasks.was_trained)."""
        return was_trained(self.tasks, task)

    def allowed_categories(self, corpus: str) -> List[str]:
        """Categories of ``corpus`` for the corpus-aware decision: the package's map first,
        then speecheq.labels' tables (for a known corpus the training run did not see)."""
        if corpus in self.corpus_categories:
            return list(self.corpus_categories[corpus])
        if corpus in EMOTION_MAPS:
            log.warning("corpus %r was not in this model's training data; using speecheq.labels' table", corpus)
            return LabelScheme("custom", tuple(self.categories)).corpus_categories(corpus)
        known = sorted(set(self.corpus_categories) | set(EMOTION_MAPS))
        raise SpeechEQError(f"unknown corpus {corpus!r} for --corpus; known: {', '.join(known)}")

    def make_extractor(self, device="cpu"):
        """The front-end with the package's recorded settings: the extractor rebuilt from its stored
        ``to_dict()`` (a later lhotse may change a default; the stored settings are what the model
        was trained on)."""
        front_end = self.front_end
        try:
            extractor = front_end.extractor(device)
        except (KeyError, TypeError, ValueError) as e:
            raise SpeechEQError(
                f"{self.path}: the package's feature config ({front_end.feature_type}) "
                f"cannot be rebuilt ({type(e).__name__}: {e}); upgrade speecheq"
            ) from None
        dim = extractor.feature_dim(self.sampling_rate)
        if dim != self.config.num_mel_bins:
            raise SpeechEQError(
                f"{self.path}: the package's front-end gives {dim} features per frame, "
                f"the model takes {self.config.num_mel_bins}"
            )
        return extractor


def _read_package_file(path: Path) -> dict:
    if path.is_dir():  # the Hugging Face layout (speecheq.hf); the same checks follow
        from speecheq.hf import read_package_dir

        obj = read_package_dir(path)
    elif not path.is_file():
        raise SpeechEQError(f"model package not found: {path}")
    else:
        obj = _torch_load_package(path)
    if not isinstance(obj, dict) or obj.get("format") != PACKAGE_FORMAT:
        hint = ""
        if isinstance(obj, dict) and "model" in obj and "model_config" in obj:
            hint = "; it looks like a training checkpoint: make a package with local/export.py"
        raise SpeechEQError(f"{path} is not a SpeechEQ package (no format marker {PACKAGE_FORMAT!r}){hint}")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SpeechEQError(
            f"{path}: package format version {version!r} is newer than this speecheq reads "
            f"({FORMAT_VERSION}); upgrade speecheq"
        )
    return obj


def _torch_load_package(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:120]
        reason = f"{type(e).__name__}: {reason}" if reason else type(e).__name__
        if "Unsupported global" in str(e):
            raise SpeechEQError(
                f"{path} is not a SpeechEQ package (it holds Python objects a package never has; "
                "a training checkpoint? make a package with local/export.py)"
            ) from None
        raise SpeechEQError(f"{path} is not a readable SpeechEQ package (corrupt or truncated; {reason})") from None


def load_package(path: Pathlike, device="cpu") -> Package:
    """Read a package written by :func:`save_package` (one file) or :func:`speecheq.hf.save_package_dir`
    (a folder); any fault is one SpeechEQError line."""
    path = Path(path)
    obj = _read_package_file(path)
    try:
        config = ModelConfig.from_dict(obj["model_config"])
        categories = list(obj["categories"])
        state = obj["model_state"]
        feature_cfg = dict(obj["feature_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise SpeechEQError(f"{path}: package is incomplete or inconsistent ({type(e).__name__}: {e})") from None
    if len(categories) != config.num_emotions:
        raise SpeechEQError(f"{path}: {len(categories)} categories for {config.num_emotions} emotion outputs")
    if int(feature_cfg.get("num_mel_bins", -1)) != config.num_mel_bins:
        raise SpeechEQError(
            f"{path}: feature config has {feature_cfg.get('num_mel_bins')} mel bins, "
            f"the model takes {config.num_mel_bins}"
        )
    if not isinstance(state, dict):
        raise SpeechEQError(f"{path}: package is incomplete or inconsistent (model_state is a {type(state).__name__})")
    check_fingerprint(path, "model", obj.get("fingerprint"), state)
    model = SpeechEQModel(config)
    load_model_state(model, state, f"package {path}")
    return Package(
        path=path,
        model=model.to(device).eval(),
        config=config,
        label_preset=str(obj.get("label_preset", "custom")),
        categories=categories,
        corpus_categories={k: list(v) for k, v in (obj.get("corpus_categories") or {}).items()},
        tokens=list(obj["tokens"]) if obj.get("tokens") else None,
        tasks=dict(obj.get("tasks") or {t: 1.0 for t in default_tasks()}),
        feature_config=feature_cfg,
        speaker_cmvn=bool(obj.get("speaker_cmvn")),
        normalization=dict(obj.get("normalization") or {}),
        fingerprint=str(obj.get("fingerprint", "")),
        version=str(obj.get("speecheq_version", "")),
        format_version=int(obj["format_version"]),
        frame_shift=float(
            obj.get("frame_shift")
            or FrontEnd.from_feature_config(feature_cfg).output_frame_shift(model.ctc_subsampling)
        ),
        source=dict(obj.get("source") or {}),
        ctc_units=str(obj.get("ctc_units") or "phone"),
    )
