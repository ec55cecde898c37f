"""Run a model over batches and turn its outputs into per-utterance records and metrics.

Validation during training, decoding and inference all read the model the same
way, so they share this module: each task of speecheq.tasks reads its own outputs
(the corpus-aware category decision, the greedy CTC phone string, ...) and metrics.
"""

from __future__ import annotations

from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import torch

from speecheq.labels import LabelScheme
from speecheq.tasks import Task, corpus_aware_log_probs, greedy_ctc, readout_order, restricted_log_probs  # noqa: F401


def records_from_outputs(
    out: dict, batch: dict, scheme: LabelScheme, corpus_aware: bool = True, tasks: Optional[Sequence[Task]] = None
) -> List[dict]:
    """One record per utterance of a batch the model has already run on: truths (where
    known) next to predictions, for each of ``tasks`` (None: every evaluated task) whose output
    the model has. Decoding and validation pass the tasks the model trained
    (:func:`speecheq.tasks.trained_readout`): the other heads exist but give noise.
    Validation calls it with the outputs it computed its loss on."""
    corpora = batch.get("corpus") or [""] * len(batch["cut_ids"])
    records = [{"cut_id": cut_id, "corpus": corpus} for cut_id, corpus in zip(batch["cut_ids"], corpora)]
    for task in readout_order(tasks):
        if task.output in out:
            for record, fields in zip(records, task.records(out, batch, scheme, corpus_aware)):
                record.update(fields)
    return records


@torch.inference_mode()
def predict_batches(
    model,
    batches: Iterable[dict],
    scheme: LabelScheme,
    device="cpu",
    corpus_aware: bool = True,
    amp_dtype: Optional[torch.dtype] = None,
    tasks: Optional[Sequence[Task]] = None,
) -> Iterator[dict]:
    """Run the model over batches and yield one record per utterance (of ``tasks``: :func:`records_from_outputs`)."""
    model.eval()
    device = torch.device(device)
    for batch in batches:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(batch["features"].to(device), batch["feature_lens"].to(device))
        yield from records_from_outputs(out, batch, scheme, corpus_aware, tasks)


def summarize(records: Sequence[dict], scheme: LabelScheme) -> Dict[str, object]:
    """The metrics SER papers report, per task, over utterances that have the label."""
    result: Dict[str, object] = {"utterances": len(records)}
    for task in readout_order():
        summary = task.summary(records, scheme)
        if summary is not None:
            result[task.summary_key] = summary
    return result


def headline(summary: Dict[str, object]) -> Dict[str, float]:
    """The one-line figures: UA, WA, macro-F1, intensity CCC, gender accuracy, PER (each task's own)."""
    out: Dict[str, float] = {}
    for task in readout_order():
        if task.summary_key in summary:
            out.update(task.headline(summary[task.summary_key]))
    return out
