"""Several corpora, one model: which fold of each corpus a unified model uses, the check
that keeps its tests speaker-independent, and the reports that only a multi-corpus model
has (the cross-corpus matrix over folds, the intensity scale on a corpus without intensity).

**Fold pairing.** Corpora have different fold counts (RAVDESS 4, EmoDB 5, CASIA 4, a
corpus with one official split: 1). With M = the largest count, unified model m trains on
fold ``m mod n_c`` of every corpus c (its train splits together, its dev splits together)
and is tested on those folds' test splits. Model m is corpus c's *primary* model for fold
m when m < n_c; the models m >= n_c repeat a fold of c that a primary model already tested.
Each corpus's reported figures (mean ± std over folds) come from its primary models only, so
every test speaker of every corpus is tested exactly once; the repeats (a second model on
the same test speakers, trained with another fold of the other corpora) are reported on
their own line, as a measure of how much the other corpora's fold moves the result. A model
never trains on the test or dev speakers of the folds it is tested on because each corpus's
own protocol guarantees it for its fold and different corpora have different speakers;
``check_pairing`` verifies it on the split files themselves (a corpus whose dev split is held-out
texts of its training speakers, CASIA's default, is held to no dev recording in training).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from itertools import combinations
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Set

import numpy as np

from speecheq import metrics
from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, load_cuts_lazy, write_json_atomic, write_text_atomic

log = logging.getLogger("speecheq")


def link_prepared(
    corpora: List[str],
    egs_dir: Pathlike,
    data_dir: Pathlike = "data",
    feat_dir: Pathlike = "data/fbank",
    feature_type: str = "fbank",
) -> Dict[str, List[Path]]:
    """Make corpora prepared by their own recipes visible to a multi-corpus recipe.

    Feature manifests store storage paths relative to the recipe folder
    (``<feat_dir>/<corpus>_feats_all``), so the files are linked into the same
    relative place here (``feat_dir``, relative to the current folder, as in each corpus's
    recipe folder) rather than copied: nothing is extracted twice. Every corpus must have
    finished stage 2 with ``feature_type`` features in its ``feat_dir``; one that has not
    stops the call with one line before anything is linked.
    """
    from speecheq.corpora import get_corpus
    from speecheq.features import done_extractor

    egs_dir, data_dir, feat_dir = Path(egs_dir), Path(data_dir), Path(feat_dir)
    if feat_dir.is_absolute() or ".." in feat_dir.parts:
        raise SpeechEQError(f"feat dir {feat_dir}: give a folder inside the recipe folder, e.g. data/fbank_pitch")
    own = feat_dir == Path("data/fbank") and feature_type == "fbank"  # the corpus recipes' defaults
    how = "" if own else f" --feature-type {feature_type} --feat-dir {feat_dir}"
    for corpus in corpora:
        get_corpus(corpus)
        cuts = egs_dir / corpus / feat_dir / f"{corpus}_cuts_all.jsonl.gz"
        marker = cuts.with_name(cuts.name + ".done")
        if not marker.exists():
            what = "" if own else f" with {feature_type} features in {feat_dir}"
            raise SpeechEQError(
                f"{corpus} is not prepared{what}: run egs/{corpus}/run.sh --stop-stage 3{how} first (missing {marker})"
            )
        done_with = done_extractor(cuts)
        if done_with != feature_type:
            raise SpeechEQError(
                f"{corpus}'s {feat_dir} holds {done_with} features, not {feature_type}: every corpus needs the same "
                f"feature type; prepare it with egs/{corpus}/run.sh --stop-stage 3 --feature-type {feature_type} "
                f"--feat-dir <a folder of its own, e.g. data/fbank_pitch> and pass that --feat-dir here"
            )
    linked: Dict[str, List[Path]] = {}
    for corpus in corpora:
        linked[corpus] = []
        for src_dir, dst_dir in (
            (egs_dir / corpus / "data" / "manifests", data_dir / "manifests"),
            (egs_dir / corpus / feat_dir, feat_dir),
        ):
            dst_dir.mkdir(parents=True, exist_ok=True)
            for src in sorted(src_dir.glob(f"{corpus}_*")):
                dst = dst_dir / src.name
                if dst.is_symlink() or dst.exists():
                    if dst.resolve() == src.resolve():
                        continue
                    dst.unlink()
                dst.symlink_to(src.resolve())
                linked[corpus].append(dst)
        log.info("%s: linked %d prepared files from %s", corpus, len(linked[corpus]), egs_dir / corpus)
    return linked


SPLITS = ("train", "dev", "test")


def split_path(fbank_dir: Pathlike, corpus: str, fold: str, split: str) -> Path:
    """``<corpus>_cuts_<fold>_<split>`` (fold "": the corpus's single split, ``<corpus>_cuts_<split>``)."""
    name = f"{fold}_{split}" if fold else split
    return Path(fbank_dir) / f"{corpus}_cuts_{name}.jsonl.gz"


def discover_folds(corpus: str, fbank_dir: Pathlike) -> List[str]:
    """The folds whose test split the corpus's validate stage wrote: ``fold0..`` or [""].

    Read from the files rather than the protocol so that options of the corpus's own recipe
    (custom's fold count, ESD's official split) need not be repeated here."""
    fbank_dir = Path(fbank_dir)
    pattern = re.compile(rf"^{re.escape(corpus)}_cuts_fold(\d+)_test\.jsonl\.gz$")
    numbers = sorted(
        int(m.group(1)) for p in fbank_dir.glob(f"{corpus}_cuts_fold*_test.jsonl.gz") if (m := pattern.match(p.name))
    )
    if numbers:
        if numbers != list(range(len(numbers))):
            raise SpeechEQError(
                f"{corpus}: the test splits in {fbank_dir} are folds {numbers}, not 0..{len(numbers) - 1}: "
                f"re-run egs/{corpus}/run.sh --stage 3 --stop-stage 3 for all folds"
            )
        return [f"fold{k}" for k in numbers]
    if split_path(fbank_dir, corpus, "", "test").exists():
        return [""]
    raise SpeechEQError(
        f"{corpus}: no test split in {fbank_dir} ({corpus}_cuts_fold<k>_test.jsonl.gz or "
        f"{corpus}_cuts_test.jsonl.gz): run egs/{corpus}/run.sh --stop-stage 3 first"
    )


def pair_folds(folds: Mapping[str, Sequence[str]]) -> List[Dict[str, Dict[str, object]]]:
    """[model m: {corpus: {"fold": its fold, "primary": bool}}] for m in 0..max(fold counts)-1."""
    if not folds:
        raise SpeechEQError("no corpora to pair")
    for corpus, fs in folds.items():
        if not fs:
            raise SpeechEQError(f"{corpus}: no folds")
    num_models = max(len(fs) for fs in folds.values())
    return [
        {c: {"fold": fs[m % len(fs)], "primary": m < len(fs)} for c, fs in folds.items()} for m in range(num_models)
    ]


def fold_plan(corpora: Sequence[str], fbank_dir: Pathlike) -> List[Dict[str, Dict[str, object]]]:
    """``pair_folds`` over the folds found in ``fbank_dir``, with every split file checked to exist."""
    if len(set(corpora)) != len(corpora):
        raise SpeechEQError(f"a corpus is named twice in {list(corpora)}")
    plan = pair_folds({c: discover_folds(c, fbank_dir) for c in corpora})
    for model in plan:
        for corpus, entry in model.items():
            for split in SPLITS:
                path = split_path(fbank_dir, corpus, entry["fold"], split)
                if not path.exists():
                    raise SpeechEQError(
                        f"{corpus}: {path} is missing: re-run egs/{corpus}/run.sh --stage 3 --stop-stage 3"
                    )
                entry[split] = str(path)
    return plan


def split_members(path: Pathlike) -> Dict[str, Set[str]]:
    """The speakers and recordings of a split file (recordings: cut ids change when the
    validate stage trims silence, recording ids do not)."""
    speakers, recordings = set(), set()
    for c in load_cuts_lazy(path):
        speakers.add(c.supervisions[0].speaker)
        recordings.add(c.recording_id)
    return {"speakers": speakers, "recordings": recordings}


def check_pairing(
    plan: Sequence[Mapping[str, Mapping[str, object]]], members: Callable[[str], Mapping[str, Set[str]]] = split_members
) -> Dict[str, object]:
    """Raise unless, for every model and every corpus it is tested on, no test speaker is in its
    training set, nor any dev speaker, and every corpus's test speakers are tested exactly once by
    a primary model. A corpus whose protocol holds out texts of the training speakers as dev
    (CASIA's default, docs/protocols.md) passes when no dev recording is in training; its dev
    rule is reported as "utterances". ``members(path)`` gives a split file's speakers and
    recordings. Returns per corpus: speakers, speakers tested, dev rule."""
    memo: Dict[str, Mapping[str, Set[str]]] = {}

    def get(corpus: str, path: str, what: str) -> Set[tuple]:
        if path not in memo:
            memo[path] = members(path)
        return {(corpus, s) for s in memo[path][what]}  # different corpora, different people

    tested: Dict[str, List[tuple]] = {}
    everyone: Dict[str, Set[tuple]] = {}
    dev_rule: Dict[str, str] = {}
    for m, model in enumerate(plan):
        train = set().union(*(get(c, e["train"], "speakers") for c, e in model.items()))
        train_rec = set().union(*(get(c, e["train"], "recordings") for c, e in model.items()))
        for corpus, entry in model.items():
            where = f"unified model {m}: {corpus} {entry['fold'] or 'split'}"
            leak = sorted(s for _, s in train & get(corpus, entry["test"], "speakers"))
            if leak:
                raise SpeechEQError(f"{where} test speakers {leak[:5]} are in its training set")
            dev = get(corpus, entry["dev"], "speakers")
            if train & dev:
                overlap = sorted(r for _, r in train_rec & get(corpus, entry["dev"], "recordings"))
                if overlap:
                    raise SpeechEQError(f"{where} dev recordings {overlap[:3]} are in its training set")
                dev_rule[corpus] = "utterances"
            else:
                dev_rule.setdefault(corpus, "speakers")
            everyone.setdefault(corpus, set()).update(
                get(corpus, entry["train"], "speakers") | dev | get(corpus, entry["test"], "speakers")
            )
            if entry["primary"]:
                tested.setdefault(corpus, []).extend(get(corpus, entry["test"], "speakers"))
    counts = {}
    for corpus, people in everyone.items():
        seen = tested.get(corpus, [])
        twice = sorted({s for _, s in seen if seen.count((corpus, s)) > 1})
        if twice:
            raise SpeechEQError(f"{corpus}: speakers {twice[:5]} are tested by more than one primary model")
        counts[corpus] = {"speakers": len(people), "tested": len(seen), "dev_rule": dev_rule[corpus]}
    return counts


def decode_set_name(entry: Mapping[str, object]) -> str:
    """The decode folder's set name of a plan entry's test split (``speecheq.decode.set_name``)."""
    return Path(str(entry["test"])).name.replace(".jsonl.gz", "").replace("_cuts_", "_")


def select_models(plan, models: Optional[Sequence[int]] = None) -> List[int]:
    """Model indices to run or report (default: all); an index outside the plan is an error."""
    if models is None:
        return list(range(len(plan)))
    bad = [m for m in models if not 0 <= m < len(plan)]
    if bad:
        raise SpeechEQError(f"unified model(s) {bad} do not exist: the corpora pair into models 0..{len(plan) - 1}")
    return list(models)


def model_metric_files(
    plan, exp_root: Pathlike, name: str, corpus: str, tag: str, models: Optional[Sequence[int]] = None
) -> Dict[str, List[Path]]:
    """{"primary": [...], "repeat": [...]} metrics.json files of ``corpus``'s test sets decoded by
    ``<exp_root>/<name>_fold<m>`` (the layout of egs/unified/run.sh's stage 5)."""
    out: Dict[str, List[Path]] = {"primary": [], "repeat": []}
    for m in select_models(plan, models):
        entry = plan[m][corpus]
        path = Path(exp_root) / f"{name}_fold{m}" / "decode" / f"{decode_set_name(entry)}-{tag}" / "metrics.json"
        out["primary" if entry["primary"] else "repeat"].append(path)
    return out


# ------------------------------------------------------------------ shared categories


def read_predictions(path: Pathlike) -> List[Dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise SpeechEQError(f"predictions not found: {path} (decode that model on that test set first)")
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def shared_category_metrics(predictions: Pathlike, categories: Sequence[str]) -> Dict[str, object]:
    """UA/WA of a decode restricted to ``categories``: utterances of other categories are left
    out and the decision is the most probable of ``categories`` (the probabilities of
    predictions.tsv are enough: no second decode)."""
    rows = read_predictions(predictions)
    missing = [c for c in categories if rows and f"p_{c}" not in rows[0]]
    if missing:
        raise SpeechEQError(f"{predictions}: the model's preset has no {missing}")
    rows = [r for r in rows if r["emotion_true"] in categories]
    if not rows:
        raise SpeechEQError(f"{predictions}: no utterance of {list(categories)}")
    true = np.array([categories.index(r["emotion_true"]) for r in rows])
    pred = np.array([int(np.argmax([float(r[f"p_{c}"]) for c in categories])) for r in rows])
    report = metrics.classification_report(true, pred, list(categories))
    return {"UA": report["UA"], "WA": report["WA"], "utterances": len(rows), "categories": list(categories)}


def corpus_categories(corpora: Sequence[str], preset: str) -> List[str]:
    """The preset's categories that every one of ``corpora`` has (the cross-corpus decision)."""
    from speecheq.labels import LabelScheme

    scheme = LabelScheme.from_preset(preset)
    shared = [c for c in scheme.categories if all(c in scheme.corpus_categories(k) for k in corpora)]
    if not shared:
        raise SpeechEQError(f"{list(corpora)} share no category of preset {preset}")
    return shared


def cross_corpus_folds(
    plan,
    rows: Mapping[str, Callable[[int, Mapping], Optional[Path]]],
    tag: str,
    categories: Sequence[str],
    out_dir: Pathlike,
    decode: Optional[Callable] = None,
    models: Optional[Sequence[int]] = None,
) -> Dict[str, object]:
    """The cross-corpus matrix over folds: row r, column c = mean ± std over c's primary models m
    of UA on ``categories`` for the model ``rows[r](m, plan[m])`` (an exp dir, or None where that
    row has no model) on c's test split of fold m.

    ``decode(exp_dir, cuts_path, tag)`` is called when that decode is missing (egs/unified
    passes one that decodes with the recipe's weights)."""
    corpora = list(plan[0])
    table: Dict[str, Dict[str, Dict[str, object]]] = {}
    for row, model_of in rows.items():
        table[row] = {}
        for corpus in corpora:
            values, folds = [], []
            for m in select_models(plan, models):
                entry = plan[m][corpus]
                exp_dir = model_of(m, plan[m])
                if not entry["primary"] or exp_dir is None:
                    continue
                pred = Path(exp_dir) / "decode" / f"{decode_set_name(entry)}-{tag}" / "predictions.tsv"
                if not pred.is_file() and decode is not None:
                    decode(Path(exp_dir), Path(entry["test"]), tag)
                values.append(shared_category_metrics(pred, categories)["UA"])
                folds.append(entry["fold"] or "split")
            mean, std = metrics.mean_std(values) if values else (float("nan"), float("nan"))
            table[row][corpus] = {"mean": mean, "std": std, "per_fold": dict(zip(folds, values))}
    out_dir = Path(out_dir)
    lines = [
        f"UA % on the categories all corpora share ({', '.join(categories)}), mean ± std over each test "
        "corpus's folds (each fold tested by the row's model for that fold):",
        "",
        "| train \\ test | " + " | ".join(corpora) + " |",
        "|---" * (len(corpora) + 1) + "|",
    ]
    for row, cells in table.items():
        lines.append(
            f"| {row} | "
            + " | ".join("—" if math.isnan(v["mean"]) else f"{v['mean']:.2f} ± {v['std']:.2f}" for v in cells.values())
            + " |"
        )
    write_text_atomic(out_dir / "cross_corpus_folds.md", "\n".join(lines) + "\n")
    write_json_atomic(out_dir / "cross_corpus_folds.json", {"categories": list(categories), "tag": tag, "table": table})
    print("\n".join(lines))
    return table


# ------------------------------------------------------------------ the intensity scale


def intensity_by_category(predictions: Mapping[str, Pathlike], out: Optional[Pathlike] = None) -> Dict[str, object]:
    """Mean predicted intensity per true category, per fold (``predictions``: {fold: predictions.tsv}),
    the categories' order per fold (lowest first), the order of the means over folds, how often
    neutral is lowest and the mean pairwise Kendall tau between the folds' orders (1: the same order
    in every fold). For a corpus without intensity labels this is the scale learnt from the others."""
    per_fold: Dict[str, Dict[str, Dict[str, float]]] = {}
    for fold, path in predictions.items():
        values: Dict[str, List[float]] = {}
        rows = read_predictions(path)
        if rows and "intensity_pred" not in rows[0]:
            # Decoding writes no column for a head the model never trained.
            raise SpeechEQError(f"{path}: no intensity_pred column (the model was trained without the intensity task)")
        for r in rows:
            if r["emotion_true"] != "-":
                values.setdefault(r["emotion_true"], []).append(float(r["intensity_pred"]))
        if not values:
            raise SpeechEQError(f"{path}: no utterance with a category")
        per_fold[fold] = {c: {"mean": float(np.mean(v)), "n": len(v)} for c, v in values.items()}
    categories = sorted({c for f in per_fold.values() for c in f})
    orders = {f: sorted(v, key=lambda c: v[c]["mean"]) for f, v in per_fold.items()}
    over_folds = {c: metrics.mean_std([v[c]["mean"] for v in per_fold.values() if c in v]) for c in categories}
    taus = [
        kendall_tau(
            [per_fold[a][c]["mean"] for c in categories if c in per_fold[a] and c in per_fold[b]],
            [per_fold[b][c]["mean"] for c in categories if c in per_fold[a] and c in per_fold[b]],
        )
        for a, b in combinations(per_fold, 2)
    ]
    result = {
        "per_fold": per_fold,
        "order_per_fold": orders,
        "mean_over_folds": {c: {"mean": m, "std": s} for c, (m, s) in over_folds.items()},
        "order_over_folds": sorted(categories, key=lambda c: over_folds[c][0]),
        "neutral_lowest_in": sum(o[0] == "neutral" for o in orders.values()),
        "folds": len(per_fold),
        "kendall_tau_mean": float(np.mean(taus)) if taus else None,
    }
    if out is not None:
        out = Path(out)
        write_json_atomic(out.with_suffix(".json"), result)
        folds = list(per_fold)
        cats = result["order_over_folds"]
        lines = [
            "| category | " + " | ".join(f or "split" for f in folds) + " | mean ± std |",
            "|---" * (len(folds) + 2) + "|",
        ]
        for c in cats:
            cells = [f"{per_fold[f][c]['mean']:.3f}" if c in per_fold[f] else "—" for f in folds]
            lines.append(f"| {c} | " + " | ".join(cells) + f" | {over_folds[c][0]:.3f} ± {over_folds[c][1]:.3f} |")
        lines += ["", "order (lowest first) over folds: " + " < ".join(cats)]
        lines += [f"fold {f or 'split'}: " + " < ".join(o) for f, o in orders.items()]
        tau = result["kendall_tau_mean"]
        lines += [
            f"neutral lowest in {result['neutral_lowest_in']} of {len(folds)} folds; mean pairwise Kendall tau "
            f"between the folds' orders: {'—' if tau is None else f'{tau:.2f}'}"
        ]
        write_text_atomic(out.with_suffix(".md"), "\n".join(lines) + "\n")
        print("\n".join(lines))
    return result


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-a of two score lists over the same items (ties count as neither)."""
    n = len(a)
    if n < 2:
        return float("nan")
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in combinations(range(n), 2))
    return float(s / (n * (n - 1) / 2))


def fold_rows(
    plan,
    exp_root: Pathlike,
    name: str,
    tag: str,
    corpora_label: str,
    models: Optional[Sequence[int]] = None,
    results: Optional[Pathlike] = None,
    command: str = "",
) -> Dict[str, Dict[str, object]]:
    """Per corpus: the fold summary of its primary models (the reported row) and, separately,
    of its repeats. Appends one RESULTS.md row per summary when ``results`` is given."""
    from speecheq.decode import append_result, fold_summary, format_row

    out: Dict[str, Dict[str, object]] = {}
    for corpus in plan[0]:
        files = model_metric_files(plan, exp_root, name, corpus, tag, models)
        out[corpus] = {}
        for kind in ("primary", "repeat"):
            if not files[kind]:
                continue
            summary = fold_summary(files[kind])
            out[corpus][kind] = {"summary": summary, "files": [str(f) for f in files[kind]]}
            folds = [
                plan[m][corpus]["fold"] or "split"
                for m in select_models(plan, models)
                if plan[m][corpus]["primary"] == (kind == "primary")
            ]
            label = f"{name} ({corpora_label}) on {corpus}, {tag}, " + (
                f"folds: {' '.join(folds)}"
                if kind == "primary"
                else f"REPEATS (not in the mean above) of folds: {' '.join(folds)}"
            )
            if results is not None:
                append_result(Path(results), format_row(label, summary, command))
    write_json_atomic(Path(exp_root) / f"{name}-folds-summary-{tag}.json", out)
    print(
        json.dumps(
            {
                c: {k: {m: round(v["mean"], 2) for m, v in s["summary"].items()} for k, s in d.items()}
                for c, d in out.items()
            },
            indent=1,
        )
    )
    return out


# ------------------------------------------------------------------ the report of run_folds.sh


def decoder(weights: Mapping[str, object], device: str = "cpu", max_duration: float = 200.0) -> Callable:
    """``decode(exp_dir, cuts_path, tag)`` for the decodes a report needs and stage 5 did not do
    (single-corpus models on the other corpora's test speakers), with the recipe's weights."""
    import torch

    from speecheq.checkpoint import load_model
    from speecheq.decode import decode_set, set_name

    def decode(exp_dir: Path, cuts_path: Path, tag: str) -> None:
        model, meta, got = load_model(exp_dir, device=torch.device(device), **weights)
        if got != tag:
            raise SpeechEQError(f"weights {got} of {exp_dir} are not the report's {tag}")
        # Another corpus's phones are not in a single-corpus model's tokens.txt: no PER here, only categories.
        meta = {**meta, "tokens": None}
        decode_set(
            model,
            meta,
            cuts_path,
            exp_dir / "decode" / f"{set_name(cuts_path)}-{tag}",
            max_duration=max_duration,
            device=torch.device(device),
            corpus_aware=True,
        )

    return decode


def fold_pattern(pattern: str, fold: str) -> Path:
    """``../ravdess/exp/all4_all/fold{k}`` with k = the fold's number (fold3 -> 3)."""
    if "{k}" not in pattern:
        raise SpeechEQError(f"single-corpus exp pattern {pattern!r} has no {{k}} for the fold")
    return Path(pattern.format(k=fold[len("fold") :] if fold.startswith("fold") else fold))


def parse_single(specs: Sequence[str], corpora: Sequence[str]) -> Dict[str, str]:
    """``corpus=pattern`` pairs -> {corpus: pattern}."""
    out = {}
    for spec in specs:
        corpus, sep, pattern = spec.partition("=")
        if not sep or corpus not in corpora:
            raise SpeechEQError(f"--single {spec!r}: give CORPUS=EXP_PATTERN with CORPUS one of {list(corpora)}")
        out[corpus] = pattern
    return out


def report(
    corpora: Sequence[str],
    fbank_dir: Pathlike,
    exp_root: Pathlike,
    name: str,
    weights: Mapping[str, object],
    label_preset: str,
    models: Optional[Sequence[int]] = None,
    single: Optional[Mapping[str, str]] = None,
    intensity_on: Sequence[str] = (),
    results: Optional[Pathlike] = None,
    command: str = "",
    device: str = "cpu",
) -> Dict[str, object]:
    """After stage 5 of every unified model: the per-corpus fold rows (primary models; repeats
    apart), the cross-corpus matrix over folds on the shared categories (the unified model and
    each ``single`` corpus's own fold models), and the intensity scale on ``intensity_on``."""
    from speecheq.checkpoint import weights_tag

    plan = fold_plan(corpora, fbank_dir)
    check_pairing(plan)
    tag = weights_tag(**weights)
    exp_root = Path(exp_root)
    out: Dict[str, object] = {
        "folds": fold_rows(plan, exp_root, name, tag, " + ".join(corpora), models, results, command)
    }
    rows: Dict[str, Callable] = {name: lambda m, model: exp_root / f"{name}_fold{m}"}
    for corpus, pattern in (single or {}).items():
        rows[f"{corpus} only"] = lambda m, model, c=corpus, p=pattern: fold_pattern(p, model[c]["fold"])
    if len(corpora) > 1:
        out["cross_corpus"] = cross_corpus_folds(
            plan,
            rows,
            tag,
            corpus_categories(corpora, label_preset),
            exp_root / f"{name}_cross_corpus_{tag}",
            decoder(weights, device),
            models,
        )
    out["intensity"] = {}
    for corpus in intensity_on:
        if corpus not in corpora:
            raise SpeechEQError(f"--intensity-on {corpus}: not one of the corpora {list(corpora)}")
        files = {
            plan[m][corpus]["fold"] or "split": exp_root
            / f"{name}_fold{m}"
            / "decode"
            / f"{decode_set_name(plan[m][corpus])}-{tag}"
            / "predictions.tsv"
            for m in select_models(plan, models)
            if plan[m][corpus]["primary"]
        }
        out["intensity"][corpus] = intensity_by_category(files, exp_root / f"{name}_intensity_{corpus}_{tag}.md")
    return out
