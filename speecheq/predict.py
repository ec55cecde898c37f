"""Run a model over batches and turn its outputs into per-utterance records and metrics.

Validation during training, decoding and inference all read the model the same
way, so they share this module: the corpus-aware category decision, the greedy
CTC phone string, the intensity and gender readouts, and the metric summary.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch

from speecheq import metrics
from speecheq.labels import LabelScheme


def corpus_aware_log_probs(logits: torch.Tensor, corpora: Sequence[str], scheme: LabelScheme) -> torch.Tensor:
    """Softmax restricted to the categories each utterance's corpus has.

    A corpus that never labels "calm" cannot be right to predict it, so the
    decision is taken among the categories its corpus has (unknown corpora: all).
    """
    mask = torch.tensor([scheme.corpus_mask(c) for c in corpora], dtype=torch.bool, device=logits.device)
    return restricted_log_probs(logits.float(), mask)


def restricted_log_probs(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log_softmax over the categories ``mask`` (B, C) allows in each row; a row that allows none: all.

    ``scores`` may be logits or log-probabilities (what the exported engines give):
    either way the result is the distribution renormalised over the allowed categories,
    in ``scores``' precision, and its argmax is the corpus-aware decision.
    """
    mask = mask.clone()
    mask[~mask.any(dim=1)] = True
    return torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def greedy_ctc(log_probs: torch.Tensor, lens: torch.Tensor, blank: int = 0) -> List[List[int]]:
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for seq, n in zip(best, lens.cpu().tolist()):
        seq = torch.unique_consecutive(seq[:n]).tolist()
        out.append([t for t in seq if t != blank])
    return out


def records_from_outputs(out: dict, batch: dict, scheme: LabelScheme, corpus_aware: bool = True) -> List[dict]:
    """One record per utterance of a batch the model has already run on: truths (where
    known) next to predictions. Validation calls it with the outputs it computed its loss on."""
    corpora = batch.get("corpus") or [""] * len(batch["cut_ids"])
    if corpus_aware:
        emo_lp = corpus_aware_log_probs(out["emotion_logits"], corpora, scheme)
    else:
        emo_lp = torch.log_softmax(out["emotion_logits"].float(), dim=-1)
    probs = emo_lp.exp().cpu().numpy()
    gender_p = torch.softmax(out["gender_logits"].float(), dim=-1).cpu().numpy()
    intensity = out["intensity"].float().cpu().numpy()
    hyps = greedy_ctc(out["ctc_log_probs"], out["encoder_lens"])
    records = []
    for i, cut_id in enumerate(batch["cut_ids"]):
        n_ph = int(batch["phone_lens"][i]) if "phone_lens" in batch else 0
        records.append(
            {
                "cut_id": cut_id,
                "corpus": corpora[i],
                "emotion_true": int(batch["emotion"][i]) if "emotion" in batch else -1,
                "emotion_pred": int(probs[i].argmax()),
                "emotion_probs": probs[i],
                "intensity_true": float(batch["intensity"][i]) if "intensity" in batch else math.nan,
                "intensity_pred": float(intensity[i]),
                "gender_true": int(batch["gender"][i]) if "gender" in batch else -1,
                "gender_pred": int(gender_p[i].argmax()),
                "gender_prob": float(gender_p[i].max()),
                "phones_true": batch["phones"][i, :n_ph].tolist() if n_ph else None,
                "phones_pred": hyps[i],
            }
        )
    return records


@torch.inference_mode()
def predict_batches(
    model,
    batches: Iterable[dict],
    scheme: LabelScheme,
    device="cpu",
    corpus_aware: bool = True,
    amp_dtype: Optional[torch.dtype] = None,
) -> Iterator[dict]:
    """Run the model over batches and yield one record per utterance."""
    model.eval()
    device = torch.device(device)
    for batch in batches:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(batch["features"].to(device), batch["feature_lens"].to(device))
        yield from records_from_outputs(out, batch, scheme, corpus_aware)


def summarize(records: Sequence[dict], scheme: LabelScheme) -> Dict[str, object]:
    """The metrics SER papers report, per task, over utterances that have the label."""
    result: Dict[str, object] = {"utterances": len(records)}
    cat = [r for r in records if r["emotion_true"] >= 0]
    if cat:
        report = metrics.classification_report(
            np.array([r["emotion_true"] for r in cat]),
            np.array([r["emotion_pred"] for r in cat]),
            list(scheme.categories),
        )
        result["category"] = report
    inten = [r for r in records if not math.isnan(r["intensity_true"])]
    if inten:
        result["intensity"] = metrics.regression_report(
            np.array([r["intensity_true"] for r in inten]), np.array([r["intensity_pred"] for r in inten])
        )
    gen = [r for r in records if r["gender_true"] >= 0]
    if gen:
        acc = float(np.mean([r["gender_true"] == r["gender_pred"] for r in gen]) * 100)
        result["gender"] = {"accuracy": acc, "count": len(gen)}
    ph = [r for r in records if r["phones_true"]]
    if ph:
        result["phones"] = {
            "PER": metrics.phone_error_rate([r["phones_true"] for r in ph], [r["phones_pred"] for r in ph]) * 100,
            "count": len(ph),
        }
    return result


def headline(summary: Dict[str, object]) -> Dict[str, float]:
    """The one-line figures: UA, WA, macro-F1, intensity CCC, gender accuracy, PER."""
    out: Dict[str, float] = {}
    if "category" in summary:
        c = summary["category"]
        out.update(UA=c["UA"], WA=c["WA"], macro_F1=c["macro_F1"])
    if "intensity" in summary:
        out["CCC"] = summary["intensity"]["CCC"]
    if "gender" in summary:
        out["gender_acc"] = summary["gender"]["accuracy"]
    if "phones" in summary:
        out["PER"] = summary["phones"]["PER"]
    return out
