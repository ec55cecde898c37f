"""Checkpoints: save with everything needed to resume, load with clear errors, average.

A checkpoint holds the model, its running average, optimizer, scheduler, grad
scaler, sampler state and every RNG, plus the configuration that built the
model, so a run killed at any point resumes to the same weights, and a
checkpoint from another configuration is refused with one line rather than a
wall of missing-key errors. It also records what inference needs from the
training data (front end, silence trimming, corpus -> emotions), so a package
made from it does not depend on the training manifests still being where they were.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from speecheq.errors import SpeechEQError
from speecheq.features import EXTRACTOR_OF_FEATURE_TYPE, FrontEnd
from speecheq.io import Pathlike, atomic_output
from speecheq.model import ModelConfig, SpeechEQModel

log = logging.getLogger("speecheq")


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(state: Dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's names, dtypes and bytes.

    Checkpoints and packages store it next to their weights: torch.load does not
    check the zip's CRCs, so bytes damaged inside a tensor would load as other
    weights. Exported graphs carry it too, so a stale model.onnx next to a new
    package is caught.
    """
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# The state dicts of a checkpoint that hold weights (optimizer moments are not checked:
# damage there changes how training goes on, and resuming recomputes nothing from them).
WEIGHT_KEYS = ("model", "model_avg")
HASH_KEY = "weights_fingerprint"


def _weight_fingerprints(content: dict) -> Dict[str, str]:
    return {k: fingerprint(content[k]) for k in WEIGHT_KEYS if isinstance(content.get(k), dict)}


def check_fingerprint(path: Pathlike, what: str, stored: Optional[str], state: Dict[str, torch.Tensor]) -> None:
    """Refuse weights whose bytes changed since they were written; note files older than the hash."""
    if not stored:
        log.info("%s has no weight fingerprint (written before speecheq stored one); its weights are not checked", path)
        return
    found = fingerprint(state)
    if found != stored:
        raise SpeechEQError(
            f"{path}: the {what} weights do not match their stored fingerprint ({found} != {stored}); "
            "the file is damaged: restore or re-create it"
        )


def save_checkpoint(path: Pathlike, **content) -> Path:
    """torch.save under a temporary name, then rename: a kill never leaves half a checkpoint.
    The weights' fingerprints go with them, so damage inside a tensor is caught on load."""
    content[HASH_KEY] = _weight_fingerprints(content)
    with atomic_output(path) as tmp:
        torch.save(content, tmp)
    return Path(path)


def load_checkpoint(path: Pathlike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpeechEQError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated zip, pickle errors...
        raise SpeechEQError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(ckpt, dict):
        raise SpeechEQError(f"checkpoint {path} is not a SpeechEQ checkpoint (a {type(ckpt).__name__})")
    if HASH_KEY not in ckpt:
        check_fingerprint(path, "model", None, {})  # the note for files written before the hash
        return ckpt
    for key, stored in ckpt[HASH_KEY].items():
        if not isinstance(ckpt.get(key), dict):
            raise SpeechEQError(f"{path}: the {key} weights are missing (the file is damaged)")
        check_fingerprint(path, key, stored, ckpt[key])
    return ckpt


def weights_epoch(ckpt: dict) -> Optional[int]:
    """The epoch whose weights a checkpoint holds.

    Its ``epoch`` is where training resumes: the next epoch for the end-of-epoch
    files (epoch-N.pt, best-valid.pt: ``batch_in_epoch`` 0), the running one for
    mid-epoch checkpoint-B.pt files.
    """
    epoch = ckpt.get("epoch")
    if epoch is None:
        return None
    return int(epoch) - 1 if not ckpt.get("batch_in_epoch") else int(epoch)


def load_model_state(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Strict load that explains a configuration mismatch in one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        detail = []
        if wrong:
            k = wrong[0]
            detail.append(f"{len(wrong)} shape mismatches, e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}")
        if missing:
            detail.append(f"{len(missing)} missing keys, e.g. {missing[0]}")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[0]}")
        raise SpeechEQError(f"{source} was written by another model configuration ({'; '.join(detail)})")
    model.load_state_dict(state)


def epoch_checkpoints(exp_dir: Pathlike) -> List[int]:
    return sorted(
        int(m.group(1)) for p in Path(exp_dir).glob("epoch-*.pt") if (m := re.fullmatch(r"epoch-(\d+)\.pt", p.name))
    )


def batch_checkpoints(exp_dir: Pathlike) -> List[int]:
    return sorted(
        int(m.group(1))
        for p in Path(exp_dir).glob("checkpoint-*.pt")
        if (m := re.fullmatch(r"checkpoint-(\d+)\.pt", p.name))
    )


def remove_old_batch_checkpoints(exp_dir: Pathlike, keep_last_k: int) -> None:
    if keep_last_k <= 0:
        return
    for n in batch_checkpoints(exp_dir)[:-keep_last_k]:
        (Path(exp_dir) / f"checkpoint-{n}.pt").unlink(missing_ok=True)


def average_state_dicts(states: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Plain mean of float tensors; integer buffers (counters) come from the last state."""
    avg = {}
    for k, v in states[-1].items():
        if v.is_floating_point():
            avg[k] = sum(s[k].double() for s in states).div(len(states)).to(v.dtype)
        else:
            avg[k] = v.clone()
    return avg


def averaged_model_between(start: dict, end: dict) -> Dict[str, torch.Tensor]:
    """Average of the weights seen between two epoch checkpoints, from their running
    averages (icefall's trick): avg = (avg_end * n_end - avg_start * n_start) / (n_end - n_start)."""
    n_start, n_end = start["batch_idx_train"], end["batch_idx_train"]
    if n_end <= n_start:
        raise SpeechEQError("cannot average: the later checkpoint has not trained more batches")
    out = {}
    for k, v in end["model_avg"].items():
        if v.is_floating_point():
            out[k] = ((v.double() * n_end - start["model_avg"][k].double() * n_start) / (n_end - n_start)).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def weights_tag(
    epoch: Optional[int] = None, avg: int = 1, use_averaged_model: bool = False, checkpoint: Optional[str] = None
) -> str:
    """The name decoding gives a choice of weights (its output folders end in it):
    ``best-valid`` for a file, ``epoch-E-avg-A[-use-averaged]`` for epochs."""
    if checkpoint:
        return Path(checkpoint).stem
    return f"epoch-{epoch}-avg-{avg}" + ("-use-averaged" if use_averaged_model else "")


def resolve_model_weights(
    exp_dir: Pathlike,
    epoch: Optional[int],
    avg: int = 1,
    use_averaged_model: bool = False,
    checkpoint: Optional[str] = None,
):
    """The weights that decoding/export use, and a tag naming them.

    ``checkpoint`` names a file (e.g. best-valid.pt). Otherwise epoch E with avg A
    averages epochs E-A+1..E, or with ``use_averaged_model`` uses the running
    average between epoch E-A and E.
    """
    exp_dir = Path(exp_dir)
    if checkpoint:
        ckpt = load_checkpoint(exp_dir / checkpoint if not Path(checkpoint).is_file() else checkpoint)
        return ckpt, ckpt["model"], weights_tag(checkpoint=checkpoint)
    available = epoch_checkpoints(exp_dir)
    if not available:
        raise SpeechEQError(f"no epoch-*.pt checkpoints in {exp_dir} (train first)")
    epoch = epoch or available[-1]
    if avg < 1:
        raise SpeechEQError("--avg must be at least 1")
    last = load_checkpoint(exp_dir / f"epoch-{epoch}.pt")
    tag = weights_tag(epoch, avg, use_averaged_model)
    if avg == 1:
        return last, (last["model_avg"] if use_averaged_model else last["model"]), tag
    if use_averaged_model:
        start_epoch = epoch - avg
        if start_epoch < 1:
            raise SpeechEQError(f"--use-averaged-model with --epoch {epoch} --avg {avg} needs epoch-{start_epoch}.pt")
        start = load_checkpoint(exp_dir / f"epoch-{start_epoch}.pt")
        return last, averaged_model_between(start, last), tag
    epochs = list(range(epoch - avg + 1, epoch + 1))
    missing = [e for e in epochs if e not in available]
    if missing:
        raise SpeechEQError(f"cannot average epochs {epochs}: missing {missing} in {exp_dir}")
    states = [load_checkpoint(exp_dir / f"epoch-{e}.pt")["model"] for e in epochs]
    return last, average_state_dicts(states), tag


def load_model(
    exp_dir: Path, epoch: int = 0, avg: int = 1, use_averaged_model: bool = False, checkpoint: str = "", device="cpu"
):
    """Build the model from the configuration stored in its checkpoint; returns (model, meta, tag)."""
    meta, weights, tag = resolve_model_weights(exp_dir, epoch or None, avg, use_averaged_model, checkpoint or None)
    try:
        config = ModelConfig.from_dict(meta["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise SpeechEQError(f"{exp_dir}: checkpoint has no usable model configuration ({e})") from None
    model = SpeechEQModel(config)
    load_model_state(model, weights, f"checkpoint {tag} in {exp_dir}")
    return model.to(device).eval(), meta, tag


# --------------------------------------------------------------------------- #
# What inference needs from the training data
# --------------------------------------------------------------------------- #

#: Checkpoint key of :func:`record_training_data`'s dict.
TRAINING_DATA_KEY = "training_data"


def recorded_front_end(meta: dict) -> FrontEnd:
    """The front end a checkpoint's model was trained on (checkpoints of older speecheq: the default fbank)."""
    return FrontEnd.from_feature_config((meta.get(TRAINING_DATA_KEY) or {}).get("feature_config"))


#: Checkpoint key of the CTC token table's units (:meth:`speecheq.text.tokens.TokenTable.record`).
CTC_UNITS_KEY = "ctc_units"


def ctc_tokens(meta: dict):
    """The CTC token table a checkpoint trained with, spelling test transcripts in its units as
    training did (a BPE checkpoint carries its sentencepiece model); None without the ctc task.
    Checkpoints from before units were recorded are phones."""
    from speecheq.text.tokens import TokenTable

    if not meta.get("tokens"):
        return None
    try:
        return TokenTable.from_record(meta["tokens"], meta.get(CTC_UNITS_KEY))
    except ValueError as e:
        raise SpeechEQError(f"the checkpoint's CTC tokens are unusable ({e})") from None


def record_training_data(cuts, num_mel_bins: int, front_end: Optional[FrontEnd] = None) -> dict:
    """What a package made from this checkpoint needs to know about the cuts the model trains on.

    ``feature_config``: the front end that made their features (None for a feature type
    speecheq cannot rebuild); ``trim_silence_db``: the threshold their silence was trimmed
    with (0: untrimmed); ``corpus_emotions``: corpus -> the unified emotions its cuts have,
    which gives in-house corpora registered only inside their recipe a corpus-aware decision.
    ``front_end``: the one the model reads, when it is not what made the cuts' features (ssl).
    """
    from speecheq.features import TRIM_MARK

    first = next(iter(cuts))
    extractor = EXTRACTOR_OF_FEATURE_TYPE.get(first.features.type) if first.has_features else None
    seen: Dict[str, set] = {}
    for cut in cuts:
        for sup in cut.supervisions:
            custom = sup.custom or {}
            if custom.get("corpus"):
                seen.setdefault(custom["corpus"], set()).add(custom.get("emotion"))
    return {
        "feature_config": (
            front_end.feature_config()
            if front_end is not None
            else FrontEnd.named(extractor, num_mel_bins).feature_config()
            if extractor
            else None
        ),
        "trim_silence_db": float((first.custom or {}).get(TRIM_MARK, 0.0)),
        "corpus_emotions": {c: sorted(e for e in emotions if e) for c, emotions in seen.items()},
    }
