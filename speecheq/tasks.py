"""The task table: every task the model learns, described once.

A task is a target read from each cut, a head on the shared encoder, a loss, a
default weight, and what its predictions become: fields of decode's records,
metrics, RESULTS.md columns, outputs of the inference graph, fields of infer's
records and TSV columns. The data, model, loss, validation, decoding, export and
inference code iterate over :data:`TABLE`, so a new task is one entry here
(docs/model.md, "Adding a task").

Heads and losses are named by kind (``Task.head``: ``classifier``, ``regressor``,
``adversary``; ``Task.loss``: a kind of :class:`speecheq.losses.MultitaskLoss`): the
model and the loss own the torch code, the table says which one a task uses.
No torch at import: the option parsers read the table for ``--help``; the methods
that handle tensors import it when called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from speecheq.errors import SpeechEQError
from speecheq.labels import GENDERS, LabelScheme

MISSING_CLASS = -1


@dataclass
class TargetContext:
    """What reading a cut's targets needs besides the cut: the run's categories, the phone
    table (None: no phone targets) and the training speakers (None: no speaker targets)."""

    scheme: LabelScheme
    tokens: Any = None
    speakers: Optional[Dict[str, int]] = None


def _custom(cut) -> dict:
    return cut.supervisions[0].custom or {}


@dataclass
class Task:
    """One task. Subclasses say how its target is read and its predictions are read out."""

    name: str
    #: Default loss weight (``--NAME-weight``).
    weight: float
    #: In the default ``--tasks``.
    on_by_default: bool = False
    #: The kind of MultitaskLoss computes (MultitaskLoss._<kind>).
    loss: str = "classification"
    #: The kind of utterance head speecheq.model.heads builds on the pooled embedding (None: no such head).
    head: Optional[str] = None
    #: Validation, decoding and inference read its predictions (the speaker adversary only trains).
    evaluated: bool = True
    #: Reads every encoder frame (CTC) rather than the pooled embedding: its outputs come last.
    frame_level: bool = False
    #: Counted per corpus in the training log (labels_per_corpus).
    counted: bool = True
    #: What the loss says when the model has no head for it.
    needs: str = "a model with its head"

    # ------------------------------------------------------------ training
    @property
    def output(self) -> str:
        """The model's output key."""
        return f"{self.name}_logits"

    missing: Any = MISSING_CLASS

    def target(self, cut, ctx: TargetContext):
        raise NotImplementedError

    def is_missing(self, value) -> bool:
        return value == self.missing

    def labelled(self, cut, ctx: TargetContext) -> bool:
        return not self.is_missing(self.target(cut, ctx))

    def collate(self, values: Sequence) -> dict:
        import torch

        return {self.name: torch.tensor(list(values), dtype=torch.long)}

    def num_outputs(self, config) -> int:
        """Width of the head for a ModelConfig (0: the model has no head for it)."""
        return 1

    # ------------------------------------------------------------ validation and decoding
    def inference_outputs(self) -> List[Tuple[str, str, str]]:
        """(name, model output key, transform) of each output the inference graph gives for this
        task: the names are the ONNX output names, the transforms speecheq.engines applies
        (``softmax``: probabilities, ``float``: float32, ``as_is``)."""
        return []

    def records(self, out: dict, batch: dict, scheme: LabelScheme, corpus_aware: bool) -> List[dict]:
        """Per utterance of a batch: its truth (where known) and prediction fields."""
        return []

    summary_key: str = ""

    def summary(self, records: Sequence[dict], scheme: LabelScheme) -> Optional[dict]:
        """Metrics over the records that have this task's label (None: none has)."""
        return None

    def headline(self, summary: dict) -> Dict[str, float]:
        return {}

    #: (headline key, RESULTS.md column title, decimals).
    result_columns: Tuple[Tuple[str, str, int], ...] = ()

    def columns_for(self, figures: Dict[str, Any]) -> Tuple[Tuple[str, str, int], ...]:
        """The RESULTS.md columns of a row of these headline figures (the CTC task's name its units' rate)."""
        return self.result_columns

    def prediction_columns(self, scheme: LabelScheme) -> List[str]:
        """Columns of decode's predictions.tsv."""
        return []

    def prediction_cells(self, record: dict, scheme: LabelScheme, tokens) -> List[str]:
        return []

    # ------------------------------------------------------------ inference (speecheq infer)
    def readout(self, values: Dict[str, Any], runner) -> dict:
        """Fields of infer's record from this task's inference outputs (one utterance, numpy);
        ``runner`` gives the categories, the corpus and its category mask."""
        return {}

    def unknown(self) -> dict:
        """The same fields for a package whose model never trained the task."""
        return {}

    def tsv_columns(self, categories: Sequence[str]) -> List[str]:
        return []

    def tsv_cells(self, record: dict, categories: Sequence[str]) -> list:
        return []


# ------------------------------------------------------------------ readout helpers
def restricted_log_probs(scores, mask):
    """log_softmax over the categories ``mask`` (B, C) allows in each row; a row that allows none: all.

    ``scores`` may be logits or log-probabilities (what the exported engines give):
    either way the result is the distribution renormalised over the allowed categories,
    in ``scores``' precision, and its argmax is the corpus-aware decision.
    """
    import torch

    mask = mask.clone()
    mask[~mask.any(dim=1)] = True
    return torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def corpus_aware_log_probs(logits, corpora: Sequence[str], scheme: LabelScheme):
    """Softmax restricted to the categories each utterance's corpus has.

    A corpus that never labels "calm" cannot be right to predict it, so the
    decision is taken among the categories its corpus has (unknown corpora: all).
    """
    import torch

    mask = torch.tensor([scheme.corpus_mask(c) for c in corpora], dtype=torch.bool, device=logits.device)
    return restricted_log_probs(logits.float(), mask)


def corpus_probs(probs, mask):
    """``probs`` renormalised over the categories ``mask`` allows (0 elsewhere), in float64: validation's
    and decoding's corpus-aware decision (:func:`restricted_log_probs`) on what the engines give,
    probabilities, whose logs are logits up to a constant per row."""
    import torch

    log_probs = torch.log(torch.as_tensor(probs, dtype=torch.float64))
    return restricted_log_probs(log_probs[None], torch.as_tensor(mask, dtype=torch.bool)[None])[0].exp().numpy()


def greedy_ctc(log_probs, lens, blank: int = 0) -> List[List[int]]:
    import torch

    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for seq, n in zip(best, lens.cpu().tolist()):
        seq = torch.unique_consecutive(seq[:n]).tolist()
        out.append([t for t in seq if t != blank])
    return out


def _truth(batch: dict, key: str, i: int, cast, missing):
    return cast(batch[key][i]) if key in batch else missing


# ------------------------------------------------------------------ the kinds of task
@dataclass
class EmotionTask(Task):
    """The unified emotion category: the run's preset, decided among the categories of each
    utterance's corpus (corpus-aware), with mixup and class weights in its loss."""

    loss: str = "emotion"
    head: Optional[str] = "classifier"
    summary_key: str = "category"
    result_columns: Tuple[Tuple[str, str, int], ...] = (
        ("UA", "UA %", 2),
        ("WA", "WA %", 2),
        ("macro_F1", "macro-F1 %", 2),
    )

    def target(self, cut, ctx):
        index = ctx.scheme.index(_custom(cut).get("emotion"))
        return MISSING_CLASS if index is None else index

    def num_outputs(self, config) -> int:
        return config.num_emotions

    def inference_outputs(self):
        return [("emotion_probs", self.output, "softmax")]

    def records(self, out, batch, scheme, corpus_aware):
        import torch

        corpora = batch.get("corpus") or [""] * len(batch["cut_ids"])
        if corpus_aware:
            log_probs = corpus_aware_log_probs(out[self.output], corpora, scheme)
        else:
            log_probs = torch.log_softmax(out[self.output].float(), dim=-1)
        probs = log_probs.exp().cpu().numpy()
        return [
            {
                "emotion_true": _truth(batch, self.name, i, int, MISSING_CLASS),
                "emotion_pred": int(p.argmax()),
                "emotion_probs": p,
            }
            for i, p in enumerate(probs)
        ]

    def summary(self, records, scheme):
        import numpy as np

        from speecheq import metrics

        cat = [r for r in records if r["emotion_true"] >= 0]
        if not cat:
            return None
        return metrics.classification_report(
            np.array([r["emotion_true"] for r in cat]),
            np.array([r["emotion_pred"] for r in cat]),
            list(scheme.categories),
        )

    def headline(self, summary):
        return {"UA": summary["UA"], "WA": summary["WA"], "macro_F1": summary["macro_F1"]}

    def prediction_columns(self, scheme):
        return ["emotion_true", "emotion_pred", *[f"p_{c}" for c in scheme.categories]]

    def prediction_cells(self, record, scheme, tokens):
        cat = lambda i: scheme.categories[i] if i >= 0 else "-"  # noqa: E731
        return [
            cat(record["emotion_true"]),
            cat(record["emotion_pred"]),
            *[f"{p:.4f}" for p in record["emotion_probs"]],
        ]

    def readout(self, values, runner):
        import numpy as np

        probs = values["emotion_probs"]
        decision = probs if runner.mask is None else corpus_probs(probs, runner.mask)
        rec = {
            "category": runner.categories[int(np.argmax(decision))],
            "probabilities": {c: round(float(p), 4) for c, p in zip(runner.categories, probs)},
        }
        if runner.mask is not None:
            rec["corpus"] = runner.corpus
            rec["corpus_probabilities"] = {
                c: round(float(p), 4) for c, p, m in zip(runner.categories, decision, runner.mask) if m
            }
        return rec

    def unknown(self):
        return {"category": None, "probabilities": None}

    def tsv_columns(self, categories):
        return ["category", *[f"p_{c}" for c in categories]]

    def tsv_cells(self, record, categories):
        probs = record.get("probabilities") or {}
        return [record.get("category"), *[probs.get(c) for c in categories]]


@dataclass
class RegressionTask(Task):
    """A score in [0, 1] per utterance (NaN: unlabelled), read from a supervision's custom field."""

    loss: str = "regression"
    head: Optional[str] = "regressor"
    missing: Any = math.nan
    #: The headline key of its CCC (default NAME_CCC).
    ccc_key: str = ""

    def __post_init__(self):
        self.summary_key = self.summary_key or self.name
        self.ccc_key = self.ccc_key or f"{self.name}_CCC"
        self.result_columns = self.result_columns or ((self.ccc_key, f"{self.name} CCC", 3),)

    @property
    def output(self) -> str:
        return self.name

    def target(self, cut, ctx):
        value = _custom(cut).get(self.name)
        return math.nan if value is None else float(value)

    def is_missing(self, value) -> bool:
        return math.isnan(value)

    def collate(self, values):
        import torch

        return {self.name: torch.tensor(list(values), dtype=torch.float32)}

    def inference_outputs(self):
        return [(self.name, self.output, "float")]

    def records(self, out, batch, scheme, corpus_aware):
        pred = out[self.output].float().cpu().numpy()
        return [
            {f"{self.name}_true": _truth(batch, self.name, i, float, math.nan), f"{self.name}_pred": float(p)}
            for i, p in enumerate(pred)
        ]

    def summary(self, records, scheme):
        import numpy as np

        from speecheq import metrics

        key = f"{self.name}_true"
        labelled = [r for r in records if not math.isnan(r.get(key, math.nan))]
        if not labelled:
            return None
        return metrics.regression_report(
            np.array([r[key] for r in labelled]), np.array([r[f"{self.name}_pred"] for r in labelled])
        )

    def headline(self, summary):
        return {self.ccc_key: summary["CCC"]}

    def prediction_columns(self, scheme):
        return [f"{self.name}_true", f"{self.name}_pred"]

    def prediction_cells(self, record, scheme, tokens):
        true = record.get(f"{self.name}_true", math.nan)
        return ["-" if math.isnan(true) else f"{true:.3f}", f"{record[f'{self.name}_pred']:.3f}"]

    def readout(self, values, runner):
        return {self.name: round(float(values[self.name]), 4)}

    def unknown(self):
        return {self.name: None}

    def tsv_columns(self, categories):
        return [self.name]

    def tsv_cells(self, record, categories):
        return [record.get(self.name)]


@dataclass
class ClassificationTask(Task):
    """One of ``classes`` per utterance; ``label`` reads a cut's class name (None or another
    name: unlabelled). Reported as accuracy; infer gives the class and its probability."""

    classes: Tuple[str, ...] = ()
    label: Optional[Callable[[Any], Optional[str]]] = None
    head: Optional[str] = "classifier"

    def __post_init__(self):
        self.summary_key = self.summary_key or self.name
        if self.evaluated and not self.result_columns:
            self.result_columns = ((f"{self.name}_acc", f"{self.name} acc %", 2),)

    def target(self, cut, ctx):
        value = self.label(cut)
        return self.classes.index(value) if value in self.classes else MISSING_CLASS

    def num_outputs(self, config) -> int:
        return len(self.classes)

    def inference_outputs(self):
        return [(f"{self.name}_probs", self.output, "softmax")]

    def records(self, out, batch, scheme, corpus_aware):
        import torch

        probs = torch.softmax(out[self.output].float(), dim=-1).cpu().numpy()
        return [
            {
                f"{self.name}_true": _truth(batch, self.name, i, int, MISSING_CLASS),
                f"{self.name}_pred": int(p.argmax()),
                f"{self.name}_prob": float(p.max()),
            }
            for i, p in enumerate(probs)
        ]

    def summary(self, records, scheme):
        import numpy as np

        labelled = [r for r in records if r.get(f"{self.name}_true", MISSING_CLASS) >= 0]
        if not labelled:
            return None
        acc = float(np.mean([r[f"{self.name}_true"] == r[f"{self.name}_pred"] for r in labelled]) * 100)
        return {"accuracy": acc, "count": len(labelled)}

    def headline(self, summary):
        return {f"{self.name}_acc": summary["accuracy"]}

    def _class(self, i) -> str:
        return self.classes[i] if i >= 0 else "-"

    def prediction_columns(self, scheme):
        return [f"{self.name}_true", f"{self.name}_pred", f"{self.name}_prob"]

    def prediction_cells(self, record, scheme, tokens):
        return [
            self._class(record.get(f"{self.name}_true", MISSING_CLASS)),
            self._class(record.get(f"{self.name}_pred", MISSING_CLASS)),
            f"{record.get(f'{self.name}_prob', math.nan):.3f}",
        ]

    def readout(self, values, runner):
        import numpy as np

        probs = values[f"{self.name}_probs"]
        best = int(np.argmax(probs))
        return {self.name: self.classes[best], f"{self.name}_probability": round(float(probs[best]), 4)}

    def unknown(self):
        return {self.name: None, f"{self.name}_probability": None}

    def tsv_columns(self, categories):
        return [self.name, f"{self.name}_prob"]

    def tsv_cells(self, record, categories):
        return [record.get(self.name), record.get(f"{self.name}_probability")]


@dataclass
class SpeakerAdversaryTask(ClassificationTask):
    """The gradient-reversal adversary: its head learns the training speakers while the
    encoder gets the reversed gradient (speecheq.model.heads). Training only."""

    head: Optional[str] = "adversary"
    evaluated: bool = False
    counted: bool = False
    needs: str = "a model with an adversary head (ModelConfig.num_speakers > 0)"

    def target(self, cut, ctx):
        return ctx.speakers.get(cut.supervisions[0].speaker, MISSING_CLASS) if ctx.speakers else MISSING_CLASS

    def num_outputs(self, config) -> int:
        return config.num_speakers


@dataclass
class CtcTask(Task):
    """Recognition with CTC on every encoder frame; targets are the cut's phones, or its
    transcript's characters or BPE pieces, as the token table's units spell it
    (speecheq.text.units), as token ids (a random crop drops them, speecheq.data). Reported as
    the units' token error rate: PER, CER or TER (metrics.TOKEN_ERROR_RATES)."""

    loss: str = "ctc"
    frame_level: bool = True
    missing: Any = ()
    summary_key: str = "phones"
    result_columns: Tuple[Tuple[str, str, int], ...] = (("PER", "PER %", 2),)

    @property
    def output(self) -> str:
        return "ctc_log_probs"

    def target(self, cut, ctx):
        symbols = ctx.tokens.spell(cut.supervisions[0]) if ctx.tokens is not None else None
        if not symbols:
            return []
        unknown = [p for p in symbols if p not in ctx.tokens]
        if unknown:
            raise SpeechEQError(
                f"cut {cut.id}: {'phones' if ctx.tokens.units == 'phone' else 'characters'} {unknown[:3]} "
                "are not in tokens.txt "
                "(was the lang stage run on other data?)"
            )
        return ctx.tokens.encode(symbols)

    def labelled(self, cut, ctx) -> bool:
        if ctx.tokens is not None:
            return bool(ctx.tokens.spell(cut.supervisions[0]))
        return bool(_custom(cut).get("phones"))

    def is_missing(self, value) -> bool:
        return not value

    def collate(self, values):
        import torch

        values = list(values)
        phones = torch.zeros(len(values), max([len(v) for v in values] + [1]), dtype=torch.long)
        for i, v in enumerate(values):
            phones[i, : len(v)] = torch.tensor(v, dtype=torch.long)
        return {"phones": phones, "phone_lens": torch.tensor([len(v) for v in values], dtype=torch.long)}

    def inference_outputs(self):
        # "encoder_lens" counts the valid frames of "ctc_log_probs".
        return [("ctc_log_probs", self.output, "float"), ("encoder_lens", "encoder_lens", "as_is")]

    def records(self, out, batch, scheme, corpus_aware):
        hyps = greedy_ctc(out["ctc_log_probs"], out["encoder_lens"])
        # Phone records stay as they were before units; other units say theirs for the summary.
        units = {"ctc_units": batch["ctc_units"]} if batch.get("ctc_units", "phone") != "phone" else {}
        records = []
        for i, hyp in enumerate(hyps):
            n = int(batch["phone_lens"][i]) if "phone_lens" in batch else 0
            records.append({"phones_true": batch["phones"][i, :n].tolist() if n else None, "phones_pred": hyp, **units})
        return records

    def summary(self, records, scheme):
        from speecheq import metrics

        labelled = [r for r in records if r.get("phones_true")]
        if not labelled:
            return None
        units = labelled[0].get("ctc_units", "phone")
        rate = metrics.phone_error_rate([r["phones_true"] for r in labelled], [r["phones_pred"] for r in labelled])
        return {
            metrics.TOKEN_ERROR_RATES[units]: rate * 100,
            "count": len(labelled),
            **({"units": units} if units != "phone" else {}),
        }

    def headline(self, summary):
        from speecheq.metrics import TOKEN_ERROR_RATES

        key = TOKEN_ERROR_RATES[summary.get("units", "phone")]
        return {key: summary[key]}

    def columns_for(self, figures):
        from speecheq.metrics import TOKEN_ERROR_RATES

        for units, key in TOKEN_ERROR_RATES.items():
            if units != "phone" and figures.get(key) is not None:
                return ((key, f"{key} % ({units})", 2),)
        return self.result_columns

    def prediction_columns(self, scheme):
        return ["phones_pred"]

    def prediction_cells(self, record, scheme, tokens):
        return [" ".join(tokens.decode(record["phones_pred"])) if tokens else ""]

    def tsv_columns(self, categories):
        return ["phones", "alignment"]

    def tsv_cells(self, record, categories):
        ali = record.get("alignment")
        return [
            # One header for every package: a char or bpe package's tokens sit in this column.
            record.get("phones", record.get("tokens")),
            " ".join(f"{a['phone']}:{a['start']}:{a['end']}" for a in ali) if ali else None,
        ]


# ------------------------------------------------------------------ the table
#: Every task, in loss order (the order the weighted losses are summed in, and --help's).
#: Utterance heads are built in this order too, so a new task goes at the end: earlier
#: heads keep their initialisation and older checkpoints their parameter order.
TABLE: Dict[str, Task] = {
    t.name: t
    for t in (
        EmotionTask("emotion", weight=1.0, on_by_default=True),
        RegressionTask("intensity", weight=0.5, on_by_default=True, ccc_key="CCC"),
        CtcTask("ctc", weight=0.1, on_by_default=True),
        ClassificationTask("gender", weight=0.1, on_by_default=True, classes=GENDERS,
                           label=lambda cut: cut.supervisions[0].gender),
        SpeakerAdversaryTask("speaker", weight=0.1),
    )
}  # fmt: skip


def task_names() -> Tuple[str, ...]:
    return tuple(TABLE)


def default_tasks() -> Tuple[str, ...]:
    return tuple(n for n, t in TABLE.items() if t.on_by_default)


def default_weights() -> Dict[str, float]:
    """The weights of the tasks on by default (the loss's default)."""
    return {n: t.weight for n, t in TABLE.items() if t.on_by_default}


def readout_order(tasks: Optional[Sequence[Task]] = None) -> List[Task]:
    """The evaluated tasks in the order their outputs, records, metrics and columns appear:
    utterance-level tasks in table order, then frame-level ones (the inference graph's output
    tuple keeps emotion, intensity, gender first, as exported models and their readers expect)."""
    tasks = [t for t in (TABLE.values() if tasks is None else tasks) if t.evaluated]
    return [t for t in tasks if not t.frame_level] + [t for t in tasks if t.frame_level]


#: Decoding and validation read it out of every model: UA chooses the best epoch, and fusion and
#: every RESULTS.md row read the category.
MAIN_TASK = "emotion"


def was_trained(weights: Optional[Mapping[str, float]], name: str) -> bool:
    """Whether a model trained the head of task ``name``, from the task -> loss weight its
    checkpoint (``tasks``) or package recorded. The model has a head for every task whatever it
    was trained on, and heads of tasks it never trained give numbers that mean nothing; readers
    skip them. ``weights`` None: a checkpoint from before the weights were recorded cannot tell
    a trained head from an untrained one, so every head counts, as every head was read then."""
    if weights is None:
        return True
    return float(weights.get(name, 0.0) or 0.0) > 0


def trained_readout(weights: Optional[Mapping[str, float]]) -> List[Task]:
    """The evaluated tasks that decoding and validation read out of a model trained with
    ``weights`` (:func:`was_trained`), in :func:`readout_order`; the main task always."""
    return [t for t in readout_order() if t.name == MAIN_TASK or was_trained(weights, t.name)]


def utterance_tasks() -> List[Task]:
    """Tasks with a head on the pooled embedding, in table order (the order their heads are built)."""
    return [t for t in TABLE.values() if t.head is not None]
