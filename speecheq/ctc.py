"""Batched CTC forced alignment (Viterbi over CTC log-posteriors), in torch.

:func:`ctc_forced_align` finds, for each utterance, the single best path through
the standard CTC topology (blank-interleaved label sequence ``b y1 b y2 ... yU b``;
a state may stay, advance by one, or skip the blank between two *different*
tokens) given the model's CTC log-posteriors.  Design choices:

* **Viterbi (max-sum), not forward (log-sum-exp).** We want one segmentation,
  the most probable path, not the total probability over all paths.
* **In log space.** A path score is a product of T posteriors; over a few hundred
  frames that underflows float32 (and even float64) to 0, after which every path
  ties and the backtrace is garbage.  Sums of log-probabilities are exact enough
  and ``max`` commutes with ``log``, so the argmax path is the same.
* **Batched over utterances, looped over frames.** Frame t depends on frame t-1,
  so the time loop is inherent; each step is a handful of tensor ops over the
  whole (batch, state) grid, on the device of the inputs (CPU or CUDA).  Back
  pointers are stored as int8 offsets (0/1/2): B*T*S bytes.  Frames past an
  utterance's length leave its scores frozen, so padding never changes a result.
* **``None`` for infeasible utterances, no exception.** An utterance needs at
  least ``U + (number of adjacent repeated tokens)`` encoder frames.  Very short
  emotional interjections ("oh!", laughter) with a long phone string, after the
  encoder's 4x subsampling, genuinely do not fit.  That is a property of the data,
  not a bug, and one such clip must not kill a stage over a whole corpus: the
  caller gets ``None``, counts it (:func:`alignment_summary`) and reports it.  The
  same applies when every path has probability zero (``-inf`` log-posteriors) or
  the posteriors are NaN.  An empty target gives ``[]`` (nothing to align).

Times
-----
CTC spans are in encoder frames; :func:`spans_to_alignment_items` turns them into
seconds with ``frame_shift`` (the front end's frame shift times the model's subsampling),
rounded to 1e-4 s so that they stay exact multiples of the frame shift instead of
``0.12000000000000001``.  :func:`align_cuts` yields times relative to the *cut*
start.  lhotse's own convention for ``SupervisionSegment.alignment`` is relative
to the *recording* (``Cut.truncate`` shifts supervisions, not alignment items), so
:func:`attach_alignments` adds ``cut.start`` when it is given cut-relative times
(``key="cut_id"``).  Imported MFA / HTK files are per audio file, i.e. already
recording-relative.

Floor 2: used by the align stage and by inference, with no data loading and no
model construction.
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

#: CTC item times: 1e-4 s keeps frame multiples exact (frame shifts are >= 1 ms).
CTC_TIME_NDIGITS = 4


class TokenSpan(NamedTuple):
    """One aligned token: encoder frames ``[start, end)``, mean posterior ``score``."""

    token: int
    start: int
    end: int
    score: float


# --------------------------------------------------------------------------- #
# CTC Viterbi
# --------------------------------------------------------------------------- #


def _check_inputs(log_probs: Tensor, input_lens: Tensor, targets: Tensor, target_lens: Tensor, blank: int) -> None:
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (B, T, V), got shape {tuple(log_probs.shape)}")
    B, T, V = log_probs.shape
    if targets.dim() != 2 or targets.shape[0] != B:
        raise ValueError(f"targets must be (B={B}, U), got shape {tuple(targets.shape)}")
    if tuple(input_lens.shape) != (B,) or tuple(target_lens.shape) != (B,):
        raise ValueError(
            f"input_lens and target_lens must be ({B},), got {tuple(input_lens.shape)} and {tuple(target_lens.shape)}"
        )
    if not 0 <= blank < V:
        raise ValueError(f"blank={blank} is not a valid token id for V={V}")
    if B == 0:
        return
    if int(input_lens.min()) < 0 or int(input_lens.max()) > T:
        raise ValueError(f"input_lens must lie in [0, T={T}], got {input_lens.tolist()}")
    U = targets.shape[1]
    if int(target_lens.min()) < 0 or int(target_lens.max()) > U:
        raise ValueError(f"target_lens must lie in [0, U={U}], got {target_lens.tolist()}")
    if U > 0:
        in_len = torch.arange(U, device=targets.device)[None, :] < target_lens[:, None]
        real = targets[in_len]
        if real.numel() and (int(real.min()) < 0 or int(real.max()) >= V):
            raise ValueError(f"target ids must lie in [0, V={V})")
        if bool((real == blank).any()):
            raise ValueError(f"targets contain the blank id {blank} within target_lens")


def ctc_viterbi(
    log_probs: Tensor,
    input_lens: Tensor,
    targets: Tensor,
    target_lens: Tensor,
    blank: int = 0,
) -> Tuple[Tensor, Tensor]:
    """Best CTC path per utterance.

    Args:
      log_probs: (B, T, V) CTC log-posteriors (log-softmax over V).
      input_lens: (B,) valid frames per utterance.
      targets: (B, U) token ids, padded (with anything, e.g. 0) past ``target_lens``.
      target_lens: (B,) number of tokens per utterance (0 allowed).
      blank: id of the CTC blank.

    Returns:
      ``(frame_tokens, scores)``: ``frame_tokens`` (B, T) long, the token emitted at
      each frame on the best path (``blank`` for blank frames, -1 past
      ``input_lens``); ``scores`` (B,) the path's total log-probability, ``-inf``
      where no path exists (then ``frame_tokens`` of that row is meaningless).
      An empty target over 0 frames scores 0.  Both on the device of ``log_probs``.
    """
    _check_inputs(log_probs, input_lens, targets, target_lens, blank)
    device = log_probs.device
    lp = log_probs if log_probs.dtype in (torch.float32, torch.float64) else log_probs.float()
    B, T, V = lp.shape
    input_lens = input_lens.to(device=device, dtype=torch.long)
    target_lens = target_lens.to(device=device, dtype=torch.long)
    targets = targets.to(device=device, dtype=torch.long)
    U = targets.shape[1]
    S = 2 * U + 1
    neg_inf = float("-inf")

    if T == 0 or B == 0:  # every input_len is 0 (checked above)
        scores = torch.where(
            target_lens == 0,
            torch.zeros(B, dtype=lp.dtype, device=device),
            torch.full((B,), neg_inf, dtype=lp.dtype, device=device),
        )
        return torch.full((B, T), -1, dtype=torch.long, device=device), scores

    # Extended label sequence: blank at even states, token k at state 2k+1.
    s_len = 2 * target_lens + 1  # (B,)
    state = torch.arange(S, device=device)
    valid = state[None, :] < s_len[:, None]  # (B, S)
    ext = torch.full((B, S), blank, dtype=torch.long, device=device)
    ext[:, 1::2] = targets
    ext = torch.where(valid, ext, torch.full_like(ext, blank))  # padding -> a safe id
    # Entering state s from s-2 skips a blank: only into a token that differs
    # from the token two states back.
    can_skip = torch.zeros((B, S), dtype=torch.bool, device=device)
    if S > 2:
        can_skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    can_skip &= valid

    emit = lp.gather(2, ext[:, None, :].expand(B, T, S))  # (B, T, S)
    emit = emit.masked_fill(~valid[:, None, :], neg_inf)

    alpha = torch.full((B, S), neg_inf, dtype=lp.dtype, device=device)
    alpha[:, 0] = emit[:, 0, 0]
    if S > 1:
        alpha[:, 1] = emit[:, 0, 1]
    backptr = torch.zeros((B, T, S), dtype=torch.int8, device=device)
    pad1 = torch.full((B, 1), neg_inf, dtype=lp.dtype, device=device)
    pad2 = torch.full((B, 2), neg_inf, dtype=lp.dtype, device=device)
    for t in range(1, T):
        from1 = torch.cat([pad1, alpha[:, :-1]], dim=1)
        from2 = torch.cat([pad2, alpha[:, :-2]], dim=1)[:, :S].masked_fill(~can_skip, neg_inf)
        # Candidates ordered stay / +1 / +2; ties go to the first (stay).
        best, arg = torch.stack([alpha, from1, from2], dim=-1).max(dim=-1)
        active = (t < input_lens)[:, None]
        alpha = torch.where(active, best + emit[:, t], alpha)
        backptr[:, t] = arg.to(torch.int8)

    # A path ends in the final blank or in the last token.
    last = s_len - 1
    a_last = alpha.gather(1, last[:, None]).squeeze(1)
    a_prev = alpha.gather(1, (last - 1).clamp(min=0)[:, None]).squeeze(1)
    a_prev = torch.where(target_lens > 0, a_prev, torch.full_like(a_prev, neg_inf))
    use_prev = a_prev > a_last
    end_state = torch.where(use_prev, last - 1, last)
    scores = torch.where(use_prev, a_prev, a_last)
    no_frames = input_lens == 0
    scores = torch.where(
        no_frames,
        torch.where(target_lens == 0, torch.zeros_like(scores), torch.full_like(scores, neg_inf)),
        scores,
    )

    # Backtrace, all utterances at once; each starts at its own last frame.
    states = torch.full((B, T), -1, dtype=torch.long, device=device)
    s = end_state
    for t in range(T - 1, -1, -1):
        active = t < input_lens
        states[:, t] = torch.where(active, s, torch.full_like(s, -1))
        if t > 0:
            step = backptr[:, t].gather(1, s.clamp(0, S - 1)[:, None]).squeeze(1).long()
            s = torch.where(active, s - step, s)
    frame_tokens = torch.where(states >= 0, ext.gather(1, states.clamp(min=0)), torch.full_like(states, -1))
    return frame_tokens, scores


def ctc_forced_align(
    log_probs: Tensor,
    input_lens: Tensor,
    targets: Tensor,
    target_lens: Tensor,
    blank: int = 0,
) -> List[Optional[List[TokenSpan]]]:
    """Batched CTC forced alignment (Viterbi) into token spans.

    Args as :func:`ctc_viterbi`.  Returns one entry per utterance: a list of
    :class:`TokenSpan` (one per target token, in order; frames ``[start, end)``,
    blank frames belong to no span; ``score`` = mean posterior probability of the
    token over its frames), ``[]`` for an empty target, ``None`` where no
    alignment exists (too few frames, or all paths have probability zero).
    """
    frame_tokens, scores = ctc_viterbi(log_probs, input_lens, targets, target_lens, blank)
    B = frame_tokens.shape[0]
    if B == 0:
        return []
    lp = log_probs if log_probs.dtype in (torch.float32, torch.float64) else log_probs.float()
    tok_logp = lp.gather(2, frame_tokens.clamp(min=0)[..., None]).squeeze(-1)
    # One device->host copy for the whole batch.
    frame_tokens = frame_tokens.cpu()
    tok_prob = tok_logp.to(device="cpu", dtype=torch.float64).exp()
    scores = scores.cpu()
    in_lens = input_lens.cpu().tolist()
    tgt_lens = target_lens.cpu().tolist()

    results: List[Optional[List[TokenSpan]]] = []
    for b in range(B):
        if tgt_lens[b] == 0:
            results.append([])
            continue
        if not math.isfinite(float(scores[b])):
            results.append(None)
            continue
        n = in_lens[b]
        toks, counts = torch.unique_consecutive(frame_tokens[b, :n], return_counts=True)
        ends = counts.cumsum(0)
        csum = torch.cat([tok_prob.new_zeros(1), tok_prob[b, :n].cumsum(0)])
        spans = []
        # Two adjacent frames with the same non-blank token are always the same
        # CTC state (a repeat must pass through a blank), so runs are tokens.
        for tok, e, c in zip(toks.tolist(), ends.tolist(), counts.tolist()):
            if tok == blank:
                continue
            s = e - c
            spans.append(TokenSpan(tok, s, e, float((csum[e] - csum[s]) / c)))
        results.append(spans)
    return results


# --------------------------------------------------------------------------- #
# lhotse items
# --------------------------------------------------------------------------- #


def alignment_item(symbol: str, start: float, end: float, score: Optional[float], ndigits: int):
    from lhotse.supervision import AlignmentItem

    start_r = round(start, ndigits)
    end_r = round(end, ndigits)
    # Rounding start and end (not duration) keeps adjacent items contiguous.
    return AlignmentItem(symbol=symbol, start=start_r, duration=round(end_r - start_r, ndigits), score=score)


def spans_to_alignment_items(
    spans: Sequence[TokenSpan],
    symbols: Sequence[str],
    frame_shift: float,
    offset: float = 0.0,
) -> list:
    """Token spans (encoder frames) -> ``list[lhotse.supervision.AlignmentItem]``.

    ``symbols`` maps token id -> symbol; times are ``offset + frame * frame_shift``
    seconds rounded to 1e-4 s; scores are rounded to 1e-4.
    """
    if frame_shift <= 0:
        raise ValueError(f"frame_shift must be positive, got {frame_shift}")
    items = []
    for sp in spans:
        if not 0 <= sp.token < len(symbols):
            raise ValueError(f"token id {sp.token} has no symbol (table has {len(symbols)})")
        items.append(
            alignment_item(
                symbols[sp.token],
                offset + sp.start * frame_shift,
                offset + sp.end * frame_shift,
                round(float(sp.score), 4),
                CTC_TIME_NDIGITS,
            )
        )
    return items


# --------------------------------------------------------------------------- #
# Importers
# --------------------------------------------------------------------------- #
