"""The classic baseline: openSMILE functionals + SVM per fold, written in the decode layout.

A neural model trained from fbank is a result only where it beats this on the same folds
(``../shared/docs/paper.md``), so the baseline runs inside the product, on the recipe's own
fold manifests, and writes what ``local/decode.py`` writes:
``<exp-dir>/<fold>/decode/<set>-svm/{predictions.tsv,metrics.json,confusion.png}`` for the
fold's dev and test sets, so ``local/decode.py --folds``, ``local/compare_folds.py`` and
``local/fuse.py`` read it as one more run.

Protocol, per fold:

- Functionals (eGeMAPSv02: 88, ComParE_2016: 6373 per utterance) of each cut's own audio
  (the validate stage trims silence, so a cut is an offset into its recording), cached per
  corpus and feature set in ``<functionals-dir>/<corpus>_<featset>.npz``: computed once for
  every cut of every fold, reused by all folds and both normalisations.
- Optional per-speaker normalisation: each speaker's functionals z-scored by that speaker's
  own mean and std. No label is used, but a test speaker's statistics come from the test
  speaker's own (unlabelled) utterances, as in many SER papers: the rows say so.
- StandardScaler + SVC, kernel (linear, RBF) and C chosen by leave-one-speaker-out on the
  fold's **training speakers only**, scored by UA.
- The SVM is fitted on the training speakers only, as the neural rows are trained. Dev is not
  used to fit or select it; it is a second evaluation set, and the held-out set on which
  ``speecheq.fusion`` chooses its weight (an SVM fitted on dev would make its dev posteriors
  useless for that). ``fit_on="train+dev"`` fits on both (the protocol of the reference
  numbers in ``../shared/docs/paper.md``, which train on every non-test speaker) and then
  evaluates the test set only; its folder name ends in ``_traindev``. On EmoDB (6 training
  speakers instead of 8) that is worth about 5 UA points with per-speaker normalisation.
- Class probabilities by sigmoid calibration of the SVM's decision values, on out-of-fold
  predictions grouped by training speaker (``CalibratedClassifierCV``; ``SVC(probability=True)``
  is deprecated in scikit-learn 1.9 and calibrates on folds that mix speakers).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from speecheq import metrics
from speecheq.errors import SpeechEQError
from speecheq.io import atomic_output, load_cuts_lazy, write_json_atomic
from speecheq.labels import LabelScheme

log = logging.getLogger("speecheq")

OPENSMILE_SETS = ("eGeMAPSv02", "ComParE_2016")
# GE2E: a pretrained speaker encoder's utterance features (speecheq/ge2e.py), from a local weights file.
FEATURE_SETS = (*OPENSMILE_SETS, "GE2E")
KERNELS = ("linear", "rbf")
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
TAG = "svm"
SPLITS = ("train", "dev", "test")
EVAL_SPLITS = ("dev", "test")


# ---------------------------------------------------------------- folds and cuts


def fold_dir_name(fold: str) -> str:
    """The fold's folder under the exp dir, as ``fold_exp_dir`` in utils/stages.sh names it."""
    fold = str(fold)
    if fold in ("official", ""):
        return "official"
    return fold if fold.startswith("fold") else f"fold{fold}"


def fold_cuts(fbank_dir: Path, corpus: str, fold: str) -> Dict[str, Path]:
    """{split: manifest} of one fold (the names written by the validate stage)."""
    name = fold_dir_name(fold)
    prefix = "" if name == "official" else f"{name}_"
    return {split: Path(fbank_dir) / f"{corpus}_cuts_{prefix}{split}.jsonl.gz" for split in SPLITS}


@dataclass(frozen=True)
class CutInfo:
    cut_id: str
    speaker: str
    corpus: str
    emotion: int  # class index in the run's preset, -1 when outside it or unknown


def cut_info(cut, scheme: LabelScheme) -> CutInfo:
    sup = cut.supervisions[0]
    custom = sup.custom or {}
    emotion = scheme.index(custom.get("emotion"))
    return CutInfo(cut.id, str(sup.speaker), custom.get("corpus", ""), -1 if emotion is None else emotion)


def cut_signature(cut) -> str:
    """The audio span the functionals depend on (a re-run validate stage with another trim changes it)."""
    return f"{cut.recording_id}|{cut.channel}|{cut.start:.4f}|{cut.duration:.4f}"


# ---------------------------------------------------------------- functionals


def functionals_path(functionals_dir: Path, corpus: str, featset: str) -> Path:
    return Path(functionals_dir) / f"{corpus}_{featset}.npz"


class SmileFunctionals:
    """openSMILE's functionals behind the extractor interface that speecheq.ge2e.GE2EFeatures shares:
    ``feature_names``, ``source`` (what else the values depend on) and ``process(samples, rate)``."""

    source = ""

    def __init__(self, featset: str):
        import opensmile

        self.smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet[featset], feature_level=opensmile.FeatureLevel.Functionals
        )
        self.feature_names = list(self.smile.feature_names)

    def process(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        with warnings.catch_warnings():
            # "Segment too short, filling with NaN": counted by the caller as a skip instead.
            warnings.simplefilter("ignore", UserWarning)
            return self.smile.process_signal(samples, sampling_rate).to_numpy(dtype=np.float64)[0]


def make_extractor(featset: str, speaker_encoder: Optional[Path] = None):
    if featset not in FEATURE_SETS:
        raise SpeechEQError(f"unknown feature set {featset!r}; choose from {', '.join(FEATURE_SETS)}")
    if featset == "GE2E":
        if speaker_encoder is None:
            raise SpeechEQError("feature set GE2E needs --speaker-encoder (a local GE2E weights file)")
        from speecheq.ge2e import GE2EFeatures

        return GE2EFeatures(speaker_encoder)
    return SmileFunctionals(featset)


def cut_functionals(smile, cut) -> Tuple[Optional[np.ndarray], str]:
    """Functionals of one cut's audio, or (None, reason) for a cut that cannot have them."""
    try:
        audio = cut.load_audio()
    except (OSError, ValueError, RuntimeError, EOFError, KeyError) as e:
        return None, f"unreadable audio ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    audio = np.asarray(audio, dtype=np.float32)
    # openSMILE reads a 2-D signal as (channels, samples) and only its first channel; a
    # stereo clip read the other way round becomes thousands of 2-sample "channels".
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio.reshape(-1)
    if mono.size == 0 or not np.all(np.isfinite(mono)):
        return None, "empty or non-finite audio"
    values = smile.process(mono, cut.sampling_rate)
    if not np.all(np.isfinite(values)):
        return None, "too short for functionals (non-finite values)"
    return values, ""


@dataclass
class Functionals:
    """Functionals by cut id; rows of cuts that could not have them are NaN."""

    featset: str
    names: List[str]
    rows: Dict[str, np.ndarray]
    failed: Dict[str, str]

    def matrix(self, cut_ids: Sequence[str]) -> np.ndarray:
        return np.stack([self.rows[c] for c in cut_ids]) if cut_ids else np.zeros((0, len(self.names)))


def _read_cache(path: Path, source: str = ""):
    """{signature: row}, feature names, {signature: reason} of a cache file (empty when none,
    or when it was computed from another ``source``, e.g. other encoder weights)."""
    if not path.is_file():
        return {}, [], {}
    try:
        with np.load(path, allow_pickle=False) as z:
            keys, feats, names, reasons = list(z["signatures"]), z["features"], list(z["names"]), list(z["reasons"])
            cached_source = str(z["source"]) if "source" in z.files else ""
    except (OSError, ValueError, KeyError, EOFError) as e:
        log.warning("%s: unreadable functionals cache (%s); recomputing it", path, e)
        return {}, [], {}
    if cached_source != source:
        log.warning("%s: computed from %r, not %r; recomputing it", path, cached_source, source)
        return {}, [], {}
    return {k: feats[n] for n, k in enumerate(keys)}, names, {k: r for k, r in zip(keys, reasons) if r}


def compute_functionals(
    manifests: Sequence[Path],
    featset: str,
    cache: Path,
    progress: bool = True,
    speaker_encoder: Optional[Path] = None,
) -> Functionals:
    """Functionals of every cut in ``manifests``, from the cache where it holds the same
    audio span, computed and added to the cache (written atomically) otherwise.

    The cache is keyed by the span (recording, channel, start, duration), not by cut id:
    the validate stage gives a trimmed cut a new id in every fold's manifest, while its
    audio, and so its functionals, is the same in all of them."""
    # A GE2E cache is keyed by its weights, so they are read (and checked) first; openSMILE is
    # only loaded when a cut needs computing.
    smile = make_extractor(featset, speaker_encoder) if featset == "GE2E" else None
    source = smile.source if smile is not None else SmileFunctionals.source
    rows, names, failed = _read_cache(cache, source)
    span_of: Dict[str, str] = {}
    todo = {}
    for path in manifests:
        for cut in load_cuts_lazy(path):
            span = span_of[cut.id] = cut_signature(cut)
            if span not in rows and span not in todo:
                todo[span] = cut
    if todo:
        from tqdm import tqdm

        smile = smile or make_extractor(featset)
        names = list(smile.feature_names)
        if rows and len(next(iter(rows.values()))) != len(names):
            rows, failed = {}, {}
        log.info(
            "%s: computing %s functionals of %d cuts (%d cached) -> %s", featset, featset, len(todo), len(rows), cache
        )
        for span, cut in tqdm(
            todo.items(), desc=f"{featset} functionals", unit="cut", disable=not progress, mininterval=30
        ):
            values, reason = cut_functionals(smile, cut)
            rows[span] = values if values is not None else np.full(len(names), np.nan)
            if values is None:
                failed[span] = reason
        keys = sorted(rows)
        with atomic_output(cache) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                signatures=np.array(keys),
                features=np.stack([rows[k] for k in keys]).astype(np.float64),
                names=np.array(names),
                reasons=np.array([failed.get(k, "") for k in keys]),
                source=np.array(source),
            )
    else:
        log.info("%s: functionals of all cuts cached in %s", featset, cache)
    failed_cuts = {c: failed[s] for c, s in span_of.items() if s in failed}
    if failed_cuts:
        log.warning(
            "%s: %d cuts have no functionals and are skipped, e.g. %s",
            featset,
            len(failed_cuts),
            "; ".join(f"{k}: {v}" for k, v in list(failed_cuts.items())[:3]),
        )
    return Functionals(featset, names, {c: rows[s] for c, s in span_of.items()}, failed_cuts)


# ---------------------------------------------------------------- normalisation and SVM


def speaker_normalise(x: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """Each speaker's rows z-scored by that speaker's own mean and std (no labels used).
    A feature constant within a speaker is only centred."""
    speakers = np.asarray(speakers)
    out = np.empty_like(x, dtype=np.float64)
    for s in np.unique(speakers):
        rows = speakers == s
        mean, std = x[rows].mean(axis=0), x[rows].std(axis=0)
        out[rows] = (x[rows] - mean) / np.where(std > 1e-10, std, 1.0)
    return out


def kernel_from_gram(
    kind: str, gram: np.ndarray, rows: np.ndarray, cols: np.ndarray, norms: np.ndarray, gamma: float
) -> np.ndarray:
    """K(rows, cols) from the Gram matrix of the scaled features: the SVC then never
    evaluates kernels itself, which on 6373 dimensions is its whole cost (about 9 s per fit
    on 900 utterances, 100 times the Gram matrix by BLAS), with the same solution."""
    block = gram[np.ix_(rows, cols)]
    if kind == "linear":
        return block
    if kind == "rbf":
        return np.exp(-gamma * np.maximum(norms[rows, None] + norms[None, cols] - 2 * block, 0.0))
    raise SpeechEQError(f"unknown kernel {kind!r}; choose from {', '.join(KERNELS)}")


def _scaled_gram(x: np.ndarray, fit_rows: np.ndarray):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x[fit_rows])
    z = scaler.transform(x)
    gram = z @ z.T
    # gamma="scale" of SVC: 1 / (n_features * variance of the training data it sees).
    gamma = 1.0 / (x.shape[1] * max(float(z[fit_rows].var()), 1e-12))
    return scaler, z, gram, np.diag(gram).copy(), gamma


def inner_splits(groups: np.ndarray, inner_folds: int = 0):
    """Leave-one-speaker-out (``inner_folds`` 0), or that many speaker-grouped folds."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    n = len(np.unique(groups))
    if n < 2:
        raise SpeechEQError(f"model selection by speaker needs at least 2 training speakers, got {n}")
    splitter = LeaveOneGroupOut() if inner_folds <= 0 or inner_folds >= n else GroupKFold(n_splits=inner_folds)
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def select_svm(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    kernels: Sequence[str] = KERNELS,
    cs: Sequence[float] = C_GRID,
    inner_folds: int = 0,
) -> dict:
    """Kernel and C by UA over speaker-grouped folds of the training rows given (and only
    those: the caller passes the fold's training speakers). Ties: the first in grid order."""
    from sklearn.svm import SVC

    groups = np.asarray(groups)
    splits = inner_splits(groups, inner_folds)
    scores = {(k, c): [] for k in kernels for c in cs}
    for train, val in splits:
        _, _, gram, norms, gamma = _scaled_gram(x, train)
        for kind in kernels:
            k_train = kernel_from_gram(kind, gram, train, train, norms, gamma)
            k_val = kernel_from_gram(kind, gram, val, train, norms, gamma)
            for c in cs:
                svm = SVC(kernel="precomputed", C=c).fit(k_train, y[train])
                scores[(kind, c)].append(metrics.unweighted_accuracy(y[val], svm.predict(k_val)) * 100)
    grid = [{"kernel": k, "C": c, "UA": float(np.nanmean(v))} for (k, c), v in scores.items()]
    best = max(grid, key=lambda g: g["UA"])  # max keeps the first of equals
    return {
        "kernel": best["kernel"],
        "C": best["C"],
        "inner_UA": best["UA"],
        "grid": grid,
        "inner_splits": len(splits),
        "inner_speakers": sorted(set(groups.tolist())),
        "scheme": "leave-one-speaker-out"
        if len(splits) == len(set(groups.tolist()))
        else f"{len(splits)} speaker folds",
    }


class KernelSVM:
    """StandardScaler + SVC on a precomputed kernel, with calibrated class probabilities."""

    def __init__(self, kernel: str, c: float, calibration_folds: int = 5):
        self.kernel, self.c, self.calibration_folds = kernel, c, calibration_folds

    def fit(self, x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> "KernelSVM":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import GroupKFold
        from sklearn.svm import SVC

        all_rows = np.arange(len(x))
        self.scaler, self.train_z, gram, self.train_norms, self.gamma = _scaled_gram(x, all_rows)
        k_train = kernel_from_gram(self.kernel, gram, all_rows, all_rows, self.train_norms, self.gamma)
        groups = np.asarray(groups)
        folds = min(self.calibration_folds, len(np.unique(groups)))
        if folds < 2:
            raise SpeechEQError("probability calibration needs at least 2 training speakers")
        cv = list(GroupKFold(n_splits=folds).split(x, y, groups))
        self.model = CalibratedClassifierCV(
            SVC(kernel="precomputed", C=self.c), method="sigmoid", cv=cv, ensemble=False
        ).fit(k_train, y)
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.scaler.transform(x)
        cross = z @ self.train_z.T
        if self.kernel == "linear":
            k = cross
        else:
            norms = np.einsum("ij,ij->i", z, z)
            k = np.exp(-self.gamma * np.maximum(norms[:, None] + self.train_norms[None, :] - 2 * cross, 0.0))
        return self.model.predict_proba(k)


# ---------------------------------------------------------------- one fold, all folds


FIT_ON = ("train", "train+dev")


def baseline_name(featset: str, speaker_norm: bool, label_preset: str, fit_on: str = "train") -> str:
    return f"baseline_{featset}{'_spknorm' if speaker_norm else ''}{'_traindev' if fit_on != 'train' else ''}_{label_preset}"


def category_records(cut_ids: Sequence[str], corpora: Sequence[str], truths: Sequence[int], probs) -> List[dict]:
    """Decode-style records (``speecheq.predict.records_from_outputs``) of a category-only
    classifier (the SVM, a fusion): the other tasks are marked unknown so ``summarize`` leaves them out."""
    return [
        {
            "cut_id": c,
            "corpus": corpus,
            "emotion_true": int(t),
            "emotion_pred": int(p.argmax()),
            "emotion_probs": p,
            "intensity_true": float("nan"),
            "intensity_pred": float("nan"),
            "gender_true": -1,
            "gender_pred": -1,
            "gender_prob": float("nan"),
            "phones_true": None,
            "phones_pred": [],
        }
        for c, corpus, t, p in zip(cut_ids, corpora, truths, probs)
    ]


def records(infos: Sequence[CutInfo], probs: np.ndarray, classes: np.ndarray, scheme: LabelScheme) -> List[dict]:
    """The SVM's records: its probabilities over the classes it was fitted on, spread over the scheme's."""
    full = np.zeros((len(infos), scheme.num_classes))
    full[:, classes] = probs
    return category_records([i.cut_id for i in infos], [i.corpus for i in infos], [i.emotion for i in infos], full)


def write_decode_dir(
    out_dir: Path, recs: Sequence[dict], scheme: LabelScheme, extra: dict, title: str, plot: bool = True
) -> dict:
    """predictions.tsv, metrics.json (written last: its presence says the folder is whole) and
    confusion.png, computed and written by the decoder's own functions."""
    from speecheq.decode import write_predictions
    from speecheq.plots import plot_confusion
    from speecheq.predict import headline, summarize

    summary = summarize(recs, scheme)
    summary["headline"] = headline(summary)
    summary.update(extra)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(recs, scheme, None, out_dir / "predictions.tsv")
    if plot and "category" in summary:
        plot_confusion(
            np.array(summary["category"]["confusion"]),
            list(scheme.categories),
            out_dir / "confusion.png",
            title=f"{title}: UA {summary['category']['UA']:.1f} %",
        )
    write_json_atomic(out_dir / "metrics.json", summary)
    return summary


def run_fold(
    fold: str,
    paths: Dict[str, Path],
    feats: Functionals,
    scheme: LabelScheme,
    exp_dir: Path,
    *,
    speaker_norm: bool,
    kernels: Sequence[str],
    cs: Sequence[float],
    inner_folds: int,
    calibration_folds: int,
    fit_on: str = "train",
) -> Dict[str, Path]:
    """Select, fit and evaluate the SVM of one fold; returns {split: metrics.json}."""
    from speecheq.decode import set_name

    infos, skipped = {}, {}
    for split, path in paths.items():
        every = [cut_info(c, scheme) for c in load_cuts_lazy(path)]
        infos[split] = [i for i in every if i.cut_id not in feats.failed]
        skipped[split] = len(every) - len(infos[split])
        if skipped[split]:
            log.warning("%s: %d of %d cuts skipped (no functionals)", path.name, skipped[split], len(every))
    x = {s: feats.matrix([i.cut_id for i in v]) for s, v in infos.items()}
    if speaker_norm:
        # Statistics per speaker over that speaker's cuts in the fold (speakers are disjoint
        # between the splits of a speaker-independent fold, so each speaker is normalised
        # by its own utterances only).
        every = [i for s in SPLITS for i in infos[s]]
        normed = speaker_normalise(np.concatenate([x[s] for s in SPLITS]), [i.speaker for i in every])
        bounds = np.cumsum([0] + [len(infos[s]) for s in SPLITS])
        x = {s: normed[bounds[n] : bounds[n + 1]] for n, s in enumerate(SPLITS)}
    fit_splits = ("train", "dev") if fit_on == "train+dev" else ("train",)
    eval_splits = ("test",) if fit_on == "train+dev" else EVAL_SPLITS
    fit_infos = [i for s in fit_splits for i in infos[s]]
    labelled = np.array([i.emotion >= 0 for i in fit_infos], dtype=bool)
    if labelled.sum() == 0:
        raise SpeechEQError(f"{paths['train']}: no training cut has a category of the preset {scheme.preset!r}")
    x_train = np.concatenate([x[s] for s in fit_splits])[labelled]
    y_train = np.array([i.emotion for i in fit_infos])[labelled]
    groups = [i.speaker for i, keep in zip(fit_infos, labelled) if keep]
    if len(np.unique(y_train)) < 2:
        raise SpeechEQError(f"{paths['train']}: the SVM needs at least 2 classes, got {np.unique(y_train).tolist()}")
    selection = select_svm(x_train, y_train, groups, kernels, cs, inner_folds)
    log.info(
        "%s: kernel %s, C %g (inner %s UA %.2f over %d training speakers)",
        fold,
        selection["kernel"],
        selection["C"],
        selection["scheme"],
        selection["inner_UA"],
        len(selection["inner_speakers"]),
    )
    svm = KernelSVM(selection["kernel"], selection["C"], calibration_folds).fit(x_train, y_train, groups)
    fold_dir = exp_dir / fold_dir_name(fold)
    info = {
        "featset": feats.featset,
        "speaker_norm": speaker_norm,
        "kernel": selection["kernel"],
        "C": selection["C"],
        "inner_UA": selection["inner_UA"],
        "fit_on": "train speakers only (dev: second evaluation set)" if fit_on == "train" else "train and dev speakers",
        "train_speakers": sorted(set(groups)),
        "train_utterances": int(labelled.sum()),
    }
    out = {}
    for split in eval_splits:
        if not infos[split]:
            raise SpeechEQError(f"{paths[split]}: no cut with functionals to evaluate")
        probs = svm.predict_proba(x[split])
        recs = records(infos[split], probs, svm.classes_, scheme)
        name = set_name(paths[split])
        extra = {
            "corpus_aware": True,
            "speaker_cmvn": False,
            "speaker_norm": speaker_norm,
            "skipped_no_functionals": skipped[split],
            "baseline": {**info, "speakers": sorted({i.speaker for i in infos[split]})},
        }
        summary = write_decode_dir(fold_dir / "decode" / f"{name}-{TAG}", recs, scheme, extra, name)
        log.info("%s %s: %s", fold, name, json.dumps({k: round(v, 2) for k, v in summary["headline"].items()}))
        out[split] = fold_dir / "decode" / f"{name}-{TAG}" / "metrics.json"
    write_json_atomic(
        fold_dir / "svm.json",
        {**info, "selection": selection, "label_preset": scheme.preset, "skipped_no_functionals": skipped},
    )
    return out


def run_baseline(
    corpus: str,
    folds: Sequence[str],
    *,
    featset: str,
    label_preset: str,
    fbank_dir: Path,
    functionals_dir: Path,
    exp_dir: Optional[Path] = None,
    speaker_norm: bool = False,
    kernels: Sequence[str] = KERNELS,
    cs: Sequence[float] = C_GRID,
    inner_folds: int = 0,
    calibration_folds: int = 5,
    fit_on: str = "train",
    progress: bool = True,
    speaker_encoder: Optional[Path] = None,
) -> Dict[str, Dict[str, Path]]:
    """The baseline on every fold: {fold: {split: metrics.json}}."""
    scheme = LabelScheme.from_preset(label_preset)
    for k in kernels:
        if k not in KERNELS:
            raise SpeechEQError(f"unknown kernel {k!r}; choose from {', '.join(KERNELS)}")
    if not cs or any(c <= 0 for c in cs):
        raise SpeechEQError(f"C values must be positive, got {list(cs)}")
    if featset not in FEATURE_SETS:
        raise SpeechEQError(f"unknown feature set {featset!r}; choose from {', '.join(FEATURE_SETS)}")
    if fit_on not in FIT_ON:
        raise SpeechEQError(f"fit_on must be one of {', '.join(FIT_ON)}, got {fit_on!r}")
    if not folds:
        raise SpeechEQError("give at least one fold")
    exp_dir = (
        Path(exp_dir)
        if exp_dir is not None
        else Path("exp") / baseline_name(featset, speaker_norm, label_preset, fit_on)
    )
    fold_paths = {f: fold_cuts(fbank_dir, corpus, f) for f in folds}
    for paths in fold_paths.values():
        for p in paths.values():
            if not p.is_file():
                raise SpeechEQError(f"fold manifest not found: {p} (run the validate stage, stage 3, first)")
    manifests = [p for paths in fold_paths.values() for p in paths.values()]
    feats = compute_functionals(
        manifests, featset, functionals_path(functionals_dir, corpus, featset), progress, speaker_encoder
    )
    return {
        f: run_fold(
            f,
            fold_paths[f],
            feats,
            scheme,
            exp_dir,
            speaker_norm=speaker_norm,
            kernels=kernels,
            cs=cs,
            inner_folds=inner_folds,
            calibration_folds=calibration_folds,
            fit_on=fit_on,
        )
        for f in folds
    }
