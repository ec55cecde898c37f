"""Decoding: predictions.tsv, metrics.json, confusion.png per test set, and fold summaries.

Output folder: ``<exp-dir>/decode/<set>-<tag>/`` where the tag names the weights
(``epoch-E-avg-A``, ``best-valid``...). The recipe appends one row per run to
RESULTS.md with the exact command, so every number carries its provenance.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from speecheq import metrics
from speecheq.checkpoint import ctc_tokens, load_model, recorded_front_end
from speecheq.data import SpeechEQDataset, make_eval_sampler, make_loader, speaker_cmvn_stats
from speecheq.errors import SpeechEQError
from speecheq.io import load_cuts_lazy, write_json_atomic, write_text_atomic
from speecheq.labels import LabelScheme
from speecheq.options import decode_parser as get_parser  # noqa: F401  (its old home)
from speecheq.options import DecodeConfig, set_num_threads
from speecheq.plots import plot_confusion
from speecheq.predict import headline, predict_batches, summarize
from speecheq.tasks import Task, readout_order, trained_readout

log = logging.getLogger("speecheq")


def set_name(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.replace("_cuts_", "_")


def write_predictions(
    records: Sequence[dict], scheme: LabelScheme, tokens, path: Path, tasks: Optional[Sequence[Task]] = None
) -> None:
    """One row per record, the columns of ``tasks`` (None: every evaluated task)."""
    tasks = readout_order(tasks)
    header = ["cut_id", "corpus", *[c for t in tasks for c in t.prediction_columns(scheme)]]
    lines = ["\t".join(header)]
    for r in records:
        cells = [r["cut_id"], r["corpus"], *[c for t in tasks for c in t.prediction_cells(r, scheme, tokens)]]
        lines.append("\t".join(cells))
    write_text_atomic(path, "\n".join(lines) + "\n")


def decode_set(
    model, meta: dict, cuts_path: Path, out_dir: Path, *, max_duration: float, device, corpus_aware: bool
) -> dict:
    scheme = LabelScheme(meta["label_preset"], tuple(meta["categories"]))
    tokens = ctc_tokens(meta)
    # Only what the model trained is read out, summarised and written; a checkpoint without
    # "tasks" (older speecheq) gets every head, as it did then (speecheq.tasks.was_trained).
    tasks = trained_readout(meta.get("tasks"))
    cuts = load_cuts_lazy(cuts_path)
    cmvn = speaker_cmvn_stats(cuts) if meta.get("speaker_cmvn") else None
    dataset = SpeechEQDataset(scheme, tokens, cmvn, front_end=recorded_front_end(meta))
    loader = make_loader(dataset, make_eval_sampler(cuts, max_duration))
    from tqdm import tqdm

    records = list(
        tqdm(
            predict_batches(model, loader, scheme, device, corpus_aware, tasks=tasks),
            desc=f"decode {cuts_path.name}",
            unit="utt",
        )
    )
    if not records:
        raise SpeechEQError(f"{cuts_path}: no cuts to decode")
    summary = summarize(records, scheme)
    summary["headline"] = headline(summary)
    summary["corpus_aware"] = corpus_aware
    summary["speaker_cmvn"] = bool(meta.get("speaker_cmvn"))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(records, scheme, tokens, out_dir / "predictions.tsv", tasks)
    write_json_atomic(out_dir / "metrics.json", summary)
    if "category" in summary:
        plot_confusion(
            np.array(summary["category"]["confusion"]),
            list(scheme.categories),
            out_dir / "confusion.png",
            title=f"{cuts_path.name}: UA {summary['category']['UA']:.1f} %",
        )
    log.info("%s: %s", cuts_path.name, json.dumps({k: round(v, 2) for k, v in summary["headline"].items()}))
    return summary


def fold_summary(metric_files: Sequence[Path]) -> Dict[str, Dict[str, float]]:
    """Mean and sample std over folds of every headline figure."""
    values: Dict[str, List[float]] = {}
    for f in metric_files:
        if not f.is_file():
            raise SpeechEQError(f"fold metrics not found: {f}")
        for k, v in json.loads(f.read_text())["headline"].items():
            values.setdefault(k, []).append(float(v))
    out = {}
    for k, vs in values.items():
        mean, std = metrics.mean_std(vs)
        out[k] = {"mean": mean, "std": std, "folds": len(vs)}
    return out


def fold_values(metric_files: Sequence[Path], metric: str) -> List[float]:
    """One headline figure per fold, in the order given."""
    out = []
    for f in metric_files:
        if not f.is_file():
            raise SpeechEQError(f"fold metrics not found: {f}")
        headline = json.loads(f.read_text())["headline"]
        if headline.get(metric) is None:
            raise SpeechEQError(
                f"{f}: no {metric!r} in the headline ({', '.join(headline)}; a task the model did not train has none)"
            )
        out.append(float(headline[metric]))
    return out


def paired_difference(a_files: Sequence[Path], b_files: Sequence[Path], metric: str = "UA") -> Dict[str, object]:
    """B minus A fold by fold: on the same test speakers, the spread between folds (which
    speakers are hard) cancels, so the paired mean and std say more than two mean ± std.
    ``b_better`` counts the folds where B is the better model (for PER: the lower)."""
    if len(a_files) != len(b_files) or not a_files:
        raise SpeechEQError(f"paired comparison needs the same folds on both sides ({len(a_files)} vs {len(b_files)})")
    a, b = fold_values(a_files, metric), fold_values(b_files, metric)
    diff = [y - x for x, y in zip(a, b)]
    mean, std = metrics.mean_std(diff)
    return {
        "metric": metric,
        "a": a,
        "b": b,
        "difference": diff,
        "mean": mean,
        "std": std,
        "b_better": sum(d < 0 if metric in metrics.LOWER_IS_BETTER else d > 0 for d in diff),
        "folds": len(diff),
    }


def result_columns(figures: Optional[Dict[str, object]] = None) -> List[tuple]:
    """(headline key, column title, decimals) of every task's RESULTS.md columns for a row of
    these figures: a CTC head of char or bpe units has its CER or TER column instead of PER."""
    return [c for t in readout_order() for c in t.columns_for(figures or {})]


def format_row(name: str, figures: Dict[str, object], command: str) -> str:
    def cell(key, digits):
        v = figures.get(key)
        if v is None:
            return "—"
        if isinstance(v, dict):
            return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"
        return f"{v:.{digits}f}"

    return f"| {name} | " + " | ".join(cell(k, d) for k, _, d in result_columns(figures)) + f" | `{command}` |"


def results_header(figures: Optional[Dict[str, object]] = None) -> str:
    titles = [title for _, title, _ in result_columns(figures)]
    return "| run | " + " | ".join(titles) + " | command |\n" + "|---" * (len(titles) + 2) + "|\n"


def append_result(results: Path, row: str, figures: Optional[Dict[str, object]] = None) -> None:
    """Append one row, creating the table when the file has none (``figures``: the row's, when
    its columns may differ from the default ones: a CTC head of char or bpe units)."""
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    header = results_header(figures)
    if header.splitlines()[0] not in text:
        text += ("\n" if text and not text.endswith("\n") else "") + "\n" + header
    write_text_atomic(results, text + row + "\n")


def decode(config: DecodeConfig, command: Optional[str] = None) -> List[Path]:
    """Decode ``config.cuts`` (or summarise ``config.folds``); returns the metrics.json files written,
    so a caller learns the decode folders' names (the weights tag) instead of rebuilding them.
    ``command``: the command line the RESULTS.md row names (default: this process's, as local/decode.py)."""
    if not isinstance(config, DecodeConfig):
        raise TypeError(
            f"decode() takes a DecodeConfig (DecodeConfig.from_args(namespace)), not {type(config).__name__}"
        )
    command = command or " ".join(["local/decode.py", *sys.argv[1:]])
    set_num_threads(config.num_threads)
    if config.folds:
        summary = fold_summary(config.folds)
        print(json.dumps(summary, indent=2))
        if config.summary_out:
            write_json_atomic(config.summary_out, summary)
        if config.results:
            append_result(config.results, format_row(config.run_name or "folds", summary, command), summary)
        return []
    if not config.cuts:
        raise SpeechEQError("give --cuts to decode, or --folds to summarise")
    device = torch.device(config.device)
    model, meta, tag = load_model(
        config.exp_dir, config.epoch, config.avg, config.use_averaged_model, config.checkpoint, device
    )
    written = []
    for cuts_path in config.cuts:
        out_dir = config.exp_dir / "decode" / f"{set_name(cuts_path)}-{tag}"
        summary = decode_set(
            model,
            meta,
            cuts_path,
            out_dir,
            max_duration=config.max_duration,
            device=device,
            corpus_aware=not config.no_corpus_aware,
        )
        if config.results:
            append_result(
                config.results,
                format_row(
                    config.run_name or f"{config.exp_dir.name} {set_name(cuts_path)}", summary["headline"], command
                ),
                summary["headline"],
            )
        written.append(out_dir / "metrics.json")
    return written


def cross_corpus_matrix(
    cells: Dict[str, Dict[str, Path]], out_dir: Path, metric: str = "UA"
) -> Dict[str, Dict[str, float]]:
    """Train-set x test-set table of one headline metric, as Markdown and a heat map.

    ``cells[model][test_set]`` is a metrics.json path; a missing file leaves the cell
    empty (NaN) so a partial matrix still renders.
    """
    from speecheq.plots import plot_heatmap

    models = list(cells)
    tests = sorted({t for row in cells.values() for t in row})
    table: Dict[str, Dict[str, float]] = {}
    for m in models:
        table[m] = {}
        for t in tests:
            path = cells[m].get(t)
            value = float("nan")
            if path is not None and Path(path).is_file():
                value = float(json.loads(Path(path).read_text())["headline"].get(metric, float("nan")))
            table[m][t] = value
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"| train \\ test ({metric} %) | " + " | ".join(tests) + " |", "|---" * (len(tests) + 1) + "|"]
    for m in models:
        lines.append(f"| {m} | " + " | ".join("—" if np.isnan(v) else f"{v:.1f}" for v in table[m].values()) + " |")
    write_text_atomic(out_dir / "cross_corpus.md", "\n".join(lines) + "\n")
    write_json_atomic(out_dir / "cross_corpus.json", table)
    plot_heatmap(
        np.array([[table[m][t] for t in tests] for m in models]),
        models,
        tests,
        out_dir / "cross_corpus.png",
        title=f"cross-corpus {metric} (%)",
    )
    print("\n".join(lines))
    return table
