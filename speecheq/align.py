"""Phone alignments: CTC forced alignment, import of MFA / HTK alignments, lhotse glue.

Everything ends up in one format, lhotse's: ``dict[utterance_id, list[AlignmentItem]]``
(``AlignmentItem(symbol, start, duration, score)``, seconds), which
:func:`attach_alignments` puts on the supervisions as ``alignment[kind]``.

CTC forced alignment lives in :mod:`speecheq.ctc` (re-exported here); this module
puts its results, and users' own alignments, into lhotse cuts.

Users' own alignments
---------------------
:func:`read_textgrid_dir` reads Montreal Forced Aligner output (TextGrid, via
``praatio``); :func:`read_htk_lab_dir` reads HTK label files (100 ns units).
Faults in those files are the user's to fix and raise :class:`AlignmentError`
(a :class:`ValueError` and a :class:`~speecheq.errors.SpeechEQError`), naming
the file (and line).

This module holds no data loading and no model construction; :func:`align_cuts`
only needs an object that maps ``(features, feature_lens)`` to a dict with
``"ctc_log_probs"`` and ``"encoder_lens"``.
"""

from __future__ import annotations

import logging

from pathlib import Path
from typing import (
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch

from speecheq.ctc import TokenSpan, alignment_item, ctc_forced_align, ctc_viterbi, spans_to_alignment_items
from speecheq.errors import SpeechEQError

__all__ = [
    "AlignmentError",
    "TokenSpan",
    "ctc_viterbi",
    "ctc_forced_align",
    "spans_to_alignment_items",
    "read_textgrid_dir",
    "read_htk_lab_dir",
    "attach_alignments",
    "align_cuts",
    "alignment_summary",
    "DEFAULT_SKIP_LABELS",
    "MAX_ALIGN_PER",
    "head_per",
]

Pathlike = Union[str, Path]

#: Labels MFA writes for silence / spoken noise / empty intervals.
DEFAULT_SKIP_LABELS = ("", "sil", "sp", "spn", "<eps>")

#: Imported times: 1 us keeps sample-level (e.g. 1/16000 s) boundaries of
#: hand-made alignments while dropping float noise from text formats.
IMPORT_TIME_NDIGITS = 6

#: Above this phone error rate (%) a CTC head's alignments are refused. A head that has
#: not learnt (the demo's, 30 epochs at weight 0.1: PER 96 %) puts every phone on one or
#: two frames wherever it lies; trained heads are at 10-30 % (RESULTS.md), and a head
#: at 50 % fails to recognise half of the phones it would be asked to place.
MAX_ALIGN_PER = 50.0


log = logging.getLogger("speecheq")


class AlignmentError(SpeechEQError, ValueError):
    """User-fixable input: a bad TextGrid / HTK .lab file, a token table that
    does not match the model.  A ``ValueError`` for callers that catch those, a
    ``SpeechEQError`` so that stage scripts print it as one line."""


def require_phone_units(units: str, where: str) -> None:
    """Alignment places phones (the align stage's cuts, ``speecheq infer --align``'s items): a CTC
    head trained on characters or BPE pieces has no phone boundaries to give."""
    if units != "phone":
        raise AlignmentError(
            f"{where}: the CTC head was trained on {units} units; alignment gives phone "
            "boundaries and needs a model trained with phone units (the lang stage's default)"
        )


def _files_by_stem(directory: Pathlike, suffix: str, what: str) -> Dict[str, Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise AlignmentError(f"{what} directory not found: {directory}")
    suffix = suffix.lower()
    found: Dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or not path.name.lower().endswith(suffix):
            continue
        stem = path.name[: -len(suffix)]
        if stem in found:
            raise AlignmentError(f"two {what} files for utterance {stem!r}: {found[stem]} and {path}")
        found[stem] = path
    return found


def read_textgrid_dir(
    directory: Pathlike,
    tier: str = "phones",
    skip_labels: Iterable[str] = DEFAULT_SKIP_LABELS,
) -> Dict[str, list]:
    """Read Montreal Forced Aligner TextGrids (recursively) into lhotse items.

    Utterance id = file stem (``spk1/utt1.TextGrid`` -> ``utt1``).  Intervals whose
    stripped label matches ``skip_labels`` (case-insensitively, so ``SIL``/``spn``
    too) are dropped.  If ``tier`` is absent but exactly one tier is named
    ``"<speaker> - <tier>"`` (MFA's naming for multi-speaker files), that one is
    used.  A missing tier raises :class:`AlignmentError` naming the file and
    the tiers it has.  Scores are ``None``.
    """
    from praatio import textgrid as tgio
    from praatio.data_classes.interval_tier import IntervalTier

    skip = {s.strip().lower() for s in skip_labels}
    out: Dict[str, list] = {}
    for utt, path in _files_by_stem(directory, ".TextGrid", "TextGrid").items():
        try:
            tg = tgio.openTextgrid(str(path), includeEmptyIntervals=False)
        except Exception as e:  # praatio raises assorted errors on bad files
            raise AlignmentError(f"{path}: cannot parse TextGrid: {e}") from e
        names = list(tg.tierNames)
        name = tier
        if tier not in names:
            suffixed = [n for n in names if n.endswith(f" - {tier}")]
            if len(suffixed) != 1:
                raise AlignmentError(f"{path}: no tier {tier!r}; tiers available: {names}")
            name = suffixed[0]
        t = tg.getTier(name)
        if not isinstance(t, IntervalTier):
            raise AlignmentError(f"{path}: tier {name!r} is a point tier, need intervals")
        items = []
        for start, end, label in sorted(t.entries, key=lambda e: e[0]):
            label = label.strip()
            if label.lower() in skip:
                continue
            items.append(alignment_item(label, float(start), float(end), None, IMPORT_TIME_NDIGITS))
        out[utt] = items
    return out


def read_htk_lab_dir(
    directory: Pathlike,
    extension: str = ".lab",
    skip_labels: Iterable[str] = (),
) -> Dict[str, list]:
    """Read HTK label files (recursively) into lhotse items.

    One file per utterance (id = file stem); lines ``start end label [extra...]``
    with integer times in 100 ns units (``0 1500000 sil``); extra columns (HTK's
    score, word) are ignored, blank lines skipped.  Labels in ``skip_labels`` are
    dropped (none by default).  A malformed line raises
    :class:`AlignmentError` with ``file:line``; that includes decimal times,
    which mean a seconds-based .lab (Audacity/wavesurfer), not HTK.
    """
    skip = set(skip_labels)
    out: Dict[str, list] = {}
    for utt, path in _files_by_stem(directory, extension, "HTK label").items():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise AlignmentError(f"{path}: not UTF-8 text: {e}") from e
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{path}:{n}"
            if len(parts) < 3:
                raise AlignmentError(f"{where}: expected 'start end label', got {line!r}")
            try:
                start, end = int(parts[0]), int(parts[1])
            except ValueError:
                raise AlignmentError(f"{where}: times must be integers in 100 ns units (HTK), got {line!r}") from None
            if start < 0 or end < start:
                raise AlignmentError(f"{where}: need 0 <= start <= end, got {line!r}")
            if parts[2] in skip:
                continue
            items.append(alignment_item(parts[2], start * 1e-7, end * 1e-7, None, IMPORT_TIME_NDIGITS))
        out[utt] = items
    return out


# --------------------------------------------------------------------------- #
# Attaching to cuts
# --------------------------------------------------------------------------- #


def attach_alignments(
    cuts,
    alignments: Dict[str, list],
    kind: str = "phone",
    key: Literal["supervision_id", "recording_id", "cut_id"] = "supervision_id",
    times_relative_to: Optional[Literal["recording", "cut"]] = None,
    drop_missing: bool = False,
):
    """Put ``alignments[id]`` on each supervision as ``alignment[kind]``.

    Args:
      cuts: a ``CutSet`` (or any iterable of cuts; read once, eagerly).
      alignments: ``{id: list[AlignmentItem]}``.
      key: what the ids are: supervision ids (default), recording ids (MFA/HTK
        files named after the audio), or cut ids (output of :func:`align_cuts`).
        With recording / cut ids, each supervision gets the items whose midpoint
        lies inside it.
      times_relative_to: ``"recording"`` (lhotse's convention; default, except
        for ``key="cut_id"`` whose default is ``"cut"``) or ``"cut"``; cut-relative
        items are shifted by ``cut.start`` to become recording-relative.
      drop_missing: drop cuts with a supervision that has no alignment
        (default: keep them unchanged).

    Returns:
      ``(CutSet, missing_ids)``: ids (of ``key``'s kind) not found in
      ``alignments``, in first-seen order, each once.
    """
    from lhotse import CutSet

    if key not in ("supervision_id", "recording_id", "cut_id"):
        raise ValueError(f"key must be supervision_id, recording_id or cut_id, got {key!r}")
    rel = times_relative_to or ("cut" if key == "cut_id" else "recording")
    if rel not in ("recording", "cut"):
        raise ValueError(f"times_relative_to must be 'recording' or 'cut', got {rel!r}")

    missing: List[str] = []
    out = list(iter_attached(cuts, alignments, kind=kind, key=key, rel=rel, drop_missing=drop_missing, missing=missing))
    return CutSet.from_cuts(out), missing


def iter_attached(
    cuts, alignments: Dict[str, list], *, kind: str, key: str, rel: str, drop_missing: bool, missing: List[str]
) -> Iterator:
    """Streaming core of :func:`attach_alignments` (memory stays flat for lazy cut sets);
    appends ids without alignment to ``missing``."""
    from lhotse.utils import fastcopy

    seen_missing = set()
    for cut in cuts:
        cut_missing = False

        def attach(sup, cut=cut):
            nonlocal cut_missing
            ident = {"supervision_id": sup.id, "recording_id": sup.recording_id}.get(key, cut.id)
            items = alignments.get(ident)
            if items is None:
                cut_missing = True
                if ident not in seen_missing:
                    seen_missing.add(ident)
                    missing.append(ident)
                return sup
            items = list(items)
            if rel == "cut" and cut.start:
                items = [it.with_offset(cut.start) for it in items]
            if key != "supervision_id":
                lo = cut.start + sup.start
                hi = lo + sup.duration
                items = [it for it in items if lo <= it.start + it.duration / 2 < hi]
            # with_alignment() writes into the supervision's existing dict, which
            # would change the caller's cuts too; give it a copy to write into.
            return fastcopy(sup, alignment=dict(sup.alignment or {})).with_alignment(kind, items)

        new_cut = cut.map_supervisions(attach)
        if not (drop_missing and cut_missing):
            yield new_cut


# --------------------------------------------------------------------------- #
# Recipe glue
# --------------------------------------------------------------------------- #


def align_cuts(
    model,
    batches: Iterable[dict],
    symbols: Sequence[str],
    device: Union[str, torch.device] = "cpu",
    *,
    frame_shift: float,
    blank: int = 0,
    recognised: Optional[List[Tuple[list, list]]] = None,
) -> Iterator[Tuple[str, Optional[list]]]:
    """Align every cut of ``batches`` with the model's CTC branch.

    Each batch: ``features`` (B, T, F), ``feature_lens`` (B,), ``phones`` (B, U)
    padded with 0, ``phone_lens`` (B,), ``cut_ids`` (B strings).  The model is
    put in eval mode and called as ``model(features, feature_lens)`` under
    ``torch.inference_mode()``; it must return ``ctc_log_probs`` (B, T', V)
    log-softmax and ``encoder_lens`` (B,).

    Yields ``(cut_id, items)``: ``list[AlignmentItem]`` with times relative to
    the cut start, counted in ``frame_shift`` seconds per CTC frame (the front end's
    ``output_frame_shift(model.ctc_subsampling)``), ``[]`` for a cut without phones, ``None`` where the alignment
    is infeasible.  Feed the results to :func:`alignment_summary` and, as
    ``{cut_id: items}``, to :func:`attach_alignments` with ``key="cut_id"``.

    With ``recognised`` (a list), each cut's ``(reference phone ids, greedy CTC
    hypothesis)`` is appended to it: the PER of the very posteriors being aligned.
    """
    device = torch.device(device)
    model.eval()
    for batch in batches:
        cut_ids = list(batch["cut_ids"])
        with torch.inference_mode():
            out = model(batch["features"].to(device), batch["feature_lens"].to(device))
            log_probs = out["ctc_log_probs"]
            enc_lens = out["encoder_lens"]
            if log_probs.shape[0] != len(cut_ids):
                raise ValueError(f"model returned {log_probs.shape[0]} rows for {len(cut_ids)} cut ids")
            if log_probs.shape[-1] != len(symbols):
                raise AlignmentError(
                    f"model has {log_probs.shape[-1]} CTC outputs but the token table "
                    f"has {len(symbols)} symbols (tokens.txt and checkpoint do not match)"
                )
            if recognised is not None:
                from speecheq.predict import greedy_ctc

                refs = [row[:n].tolist() for row, n in zip(batch["phones"], batch["phone_lens"].tolist())]
                recognised.extend((r, h) for r, h in zip(refs, greedy_ctc(log_probs, enc_lens, blank)) if r)
            spans = ctc_forced_align(
                log_probs,
                enc_lens.to(device),
                batch["phones"].to(device),
                batch["phone_lens"].to(device),
                blank=blank,
            )
        # Yield outside inference_mode: the caller's code must not run inside it.
        for cut_id, sp in zip(cut_ids, spans):
            yield cut_id, (None if sp is None else spans_to_alignment_items(sp, symbols, frame_shift))


def alignment_summary(results: Iterable[Tuple[str, Optional[list]]]) -> dict:
    """Count :func:`align_cuts` results.

    Returns ``{"total", "aligned", "failed", "no_phones", "failed_ids"}``:
    ``aligned`` = non-empty item lists, ``failed`` = ``None`` (infeasible),
    ``no_phones`` = empty lists.
    """
    total = aligned = no_phones = 0
    failed_ids: List[str] = []
    for cut_id, items in results:
        total += 1
        if items is None:
            failed_ids.append(cut_id)
        elif len(items) == 0:
            no_phones += 1
        else:
            aligned += 1
    return {
        "total": total,
        "aligned": aligned,
        "failed": len(failed_ids),
        "no_phones": no_phones,
        "failed_ids": failed_ids,
    }


def align_corpus(
    exp_dir,
    cuts_path,
    output_path,
    *,
    epoch: int = 0,
    avg: int = 1,
    use_averaged_model: bool = False,
    checkpoint: str = "",
    device: str = "cpu",
    max_duration: float = 200.0,
    plot_path=None,
    max_per: float = MAX_ALIGN_PER,
    allow_untrained: bool = False,
) -> dict:
    """The align stage: CTC-align every cut's phones and write cuts with ``alignment["phone"]``.

    Cuts are streamed twice (align, then attach), so memory holds only the
    alignments, never the cut set. Cuts without phones or with an infeasible
    alignment are written unchanged and counted.

    A CTC head that has not learnt gives every phone the same few frames, and those
    "alignments" look as valid as real ones. So the weights' PER is checked first
    (:func:`head_per`): above ``max_per`` the stage refuses with one line, or, with
    ``allow_untrained``, writes the alignments with a loud warning, each aligned
    supervision marked ``custom["alignment_untrusted"]``. The summary records the PER,
    where it came from, the threshold and ``trusted``.
    """
    from pathlib import Path

    from speecheq.checkpoint import ctc_tokens, load_model, recorded_front_end
    from speecheq.data import SpeechEQDataset, make_eval_sampler, make_loader
    from speecheq.io import folder_lock, load_cuts_lazy, remove_stale_temporaries, write_cuts, write_json_atomic
    from speecheq.labels import LabelScheme
    from speecheq.tasks import was_trained

    model, meta, tag = load_model(Path(exp_dir), epoch, avg, use_averaged_model, checkpoint, device)
    # A run without the ctc task may still record the lang folder's tokens: its CTC head is untrained.
    if not meta.get("tokens") or not was_trained(meta.get("tasks"), "ctc"):
        raise AlignmentError(f"{exp_dir}: the model was trained without the ctc task; nothing to align with")
    tokens = ctc_tokens(meta)
    require_phone_units(tokens.units, str(exp_dir))
    scheme = LabelScheme(meta["label_preset"], tuple(meta["categories"]))
    where = f"{exp_dir} ({tag})"
    per, per_source = head_per(meta)
    if per is not None:
        _gate(per, per_source, max_per, allow_untrained, where)
    front_end = recorded_front_end(meta)
    loader = make_loader(
        SpeechEQDataset(scheme, tokens, front_end=front_end), make_eval_sampler(load_cuts_lazy(cuts_path), max_duration)
    )
    from tqdm import tqdm

    recognised: List[Tuple[list, list]] = [] if per is None else None
    results = list(
        tqdm(
            align_cuts(
                model,
                loader,
                tokens.symbols,
                device,
                frame_shift=front_end.output_frame_shift(model.ctc_subsampling),
                recognised=recognised,
            ),
            desc="align",
            unit="utt",
        )
    )
    if per is None and recognised:
        # No dev PER stored with these weights (trained without --dev-cuts, or before
        # checkpoints kept it): the greedy PER on the cuts being aligned stands in.
        from speecheq.metrics import phone_error_rate

        per = 100.0 * phone_error_rate([r for r, _ in recognised], [h for _, h in recognised])
        per_source = f"greedy CTC on the {len(recognised)} cuts being aligned (no dev PER stored with the weights)"
        _gate(per, per_source, max_per, allow_untrained, where)
    trusted = per is None or per <= max_per
    summary = alignment_summary(results)
    alignments = {cut_id: items for cut_id, items in results if items}

    cuts = iter_attached(
        load_cuts_lazy(cuts_path), alignments, kind="phone", key="cut_id", rel="cut", drop_missing=False, missing=[]
    )
    if not trusted:
        cuts = _mark_untrusted(cuts, f"CTC head PER {per:.1f} % > {max_per:g} % ({per_source})")
    summary = {k: v for k, v in summary.items() if k != "failed_ids"} | {
        "failed_ids": summary["failed_ids"][:20],
        "model": tag,
        "per": None if per is None else round(per, 2),
        "per_source": per_source,
        "max_per": max_per,
        "trusted": trusted,
    }
    out_dir = Path(output_path).parent
    with folder_lock(out_dir, "alignment stage"):
        # A run killed between the manifest and its summary leaves a temporary; never trusted, removed here.
        remove_stale_temporaries(out_dir)
        write_cuts(cuts, output_path)
        write_json_atomic(Path(str(output_path).replace(".jsonl.gz", "")).with_suffix(".summary.json"), summary)
    if plot_path is not None and alignments:
        from speecheq.plots import plot_alignment

        first = next(c for c in load_cuts_lazy(output_path) if c.id in alignments)
        segments = [(it.symbol, it.start - first.start, it.duration) for it in first.supervisions[0].alignment["phone"]]
        plot_alignment(first.load_features(), segments, plot_path, frame_shift=first.frame_shift, title=first.id)
    log.info(
        "aligned %d of %d cuts (%d without phones, %d infeasible) -> %s",
        summary["aligned"],
        summary["total"],
        summary["no_phones"],
        summary["failed"],
        output_path,
    )
    if not trusted:
        log.warning(
            "UNTRUSTED ALIGNMENTS: the CTC head's PER is %.1f %% (above %g %%), so these %d alignments are "
            "not phone boundaries; each aligned supervision carries custom['alignment_untrusted']",
            per,
            max_per,
            summary["aligned"],
        )
    return summary


def head_per(meta: dict) -> Tuple[Optional[float], str]:
    """The dev-set PER stored with the weights, and what it is.

    ``train.py`` stores each epoch's dev metrics in ``epoch-N.pt`` and ``best-valid.pt``
    (``valid_metrics``). For weights averaged over epochs (``--avg``,
    ``--use-averaged-model``) ``meta`` is the last epoch's checkpoint: its PER stands
    for the average, which is usually a little better. ``(None, "")`` when no dev PER
    was stored (no --dev-cuts, no ctc task, or a checkpoint older than the record).
    """
    valid = meta.get("valid_metrics") or {}
    per = valid.get("PER")
    if per is None or per != per:  # absent, or NaN (no dev cut with phones)
        return None, ""
    return float(per), f"dev set, epoch {valid.get('epoch', '?')}"


def _gate(per: float, source: str, max_per: float, allow_untrained: bool, where: str) -> None:
    if per <= max_per or allow_untrained:
        return
    raise AlignmentError(
        f"{where}: the CTC head's PER is {per:.1f} % ({source}), above {max_per:g} %: it has not "
        "learnt the phones and its alignments would be noise; train the ctc task further, or give "
        "--allow-untrained to write them marked as untrusted (or raise --max-per)"
    )


def _mark_untrusted(cuts, reason: str) -> Iterator:
    from lhotse.utils import fastcopy

    def mark(sup):
        if not (sup.alignment or {}).get("phone"):
            return sup
        return fastcopy(sup, custom={**(sup.custom or {}), "alignment_untrusted": reason})

    for cut in cuts:
        yield cut.map_supervisions(mark)


def import_alignments(cuts_path, output_path, *, textgrid_dir=None, tier: str = "phones", htk_dir=None) -> dict:
    """Write cuts with user-supplied alignments (MFA TextGrids or HTK labels, files named
    after recording ids) as ``alignment["phone"]``; cuts without a file are kept and counted."""
    from speecheq.io import load_cuts_lazy, write_cuts

    if (textgrid_dir is None) == (htk_dir is None):
        raise AlignmentError("give exactly one of a TextGrid folder and an HTK label folder")
    alignments = read_textgrid_dir(textgrid_dir, tier=tier) if textgrid_dir is not None else read_htk_lab_dir(htk_dir)
    missing: List[str] = []
    n = write_cuts(
        iter_attached(
            load_cuts_lazy(cuts_path),
            alignments,
            kind="phone",
            key="recording_id",
            rel="recording",
            drop_missing=False,
            missing=missing,
        ),
        output_path,
    )
    log.info(
        "imported %d alignments onto %d cuts (%d cuts without one) -> %s", len(alignments), n, len(missing), output_path
    )
    return {"cuts": n, "alignments": len(alignments), "missing": len(missing)}
