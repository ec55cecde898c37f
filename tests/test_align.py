"""Tests for speecheq.align: CTC Viterbi vs brute force, importers, lhotse glue."""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
import pytest
import torch

from speecheq.align import (
    AlignmentError,
    TokenSpan,
    align_cuts,
    alignment_summary,
    attach_alignments,
    ctc_forced_align,
    ctc_viterbi,
    read_htk_lab_dir,
    read_textgrid_dir,
    spans_to_alignment_items,
)
from speecheq.errors import SpeechEQError

V = 4  # blank + 3 tokens


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _collapse(path, blank=0):
    out, prev = [], None
    for p in path:
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return tuple(out)


@lru_cache(maxsize=None)
def _all_paths(T: int, V: int):
    paths = np.array(list(itertools.product(range(V), repeat=T)), dtype=np.int64).reshape(-1, T)
    labels = [_collapse(p) for p in paths.tolist()]
    return paths, labels


def brute_force_best(lp: np.ndarray, target) -> float:
    """Max over all CTC paths of (T, V) log-probs that collapse to ``target``."""
    T, V_ = lp.shape
    if T == 0:
        return 0.0 if len(target) == 0 else -math.inf
    paths, labels = _all_paths(T, V_)
    scores = lp[np.arange(T)[None, :], paths].sum(axis=1)
    target = tuple(target)
    ok = np.array([lab == target for lab in labels])
    return float(scores[ok].max()) if ok.any() else -math.inf


def reference_viterbi(lp: np.ndarray, target, blank=0) -> float:
    """Plain per-item Python DP over the CTC topology (for sizes beyond brute force)."""
    ext = [blank]
    for y in target:
        ext += [y, blank]
    S, T = len(ext), lp.shape[0]
    if T == 0:
        return 0.0 if not target else -math.inf
    a = [-math.inf] * S
    a[0] = lp[0, ext[0]]
    if S > 1:
        a[1] = lp[0, ext[1]]
    for t in range(1, T):
        n = [-math.inf] * S
        for s in range(S):
            best = a[s]
            if s >= 1:
                best = max(best, a[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                best = max(best, a[s - 2])
            n[s] = best + lp[t, ext[s]]
        a = n
    return max(a[-1], a[-2] if S > 1 else -math.inf)


def rand_log_probs(g, B, T, V_=V, dtype=torch.float64):
    return torch.randn(B, T, V_, generator=g, dtype=dtype).mul(2).log_softmax(-1)


def pad_batch(items, pad_frames=0, target_pad=0, garbage=None):
    """items: list of (lp (T,V), target list) -> batched tensors."""
    T = max(lp.shape[0] for lp, _ in items) + pad_frames
    U = max([len(t) for _, t in items] + [0])
    B = len(items)
    lps = torch.full((B, T, V), -math.log(V), dtype=torch.float64)
    if garbage is not None:
        lps = garbage(B, T)
    tg = torch.full((B, U), target_pad, dtype=torch.long)
    for b, (lp, t) in enumerate(items):
        lps[b, : lp.shape[0]] = lp
        tg[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    in_lens = torch.tensor([lp.shape[0] for lp, _ in items])
    tg_lens = torch.tensor([len(t) for _, t in items])
    return lps, in_lens, tg, tg_lens


def check_spans(spans, lp, target, T):
    """Spans are one per target token, ordered, disjoint, inside [0, T), score = mean prob."""
    assert [s.token for s in spans] == list(target)
    prev_end = 0
    for s in spans:
        assert isinstance(s, TokenSpan)
        assert prev_end <= s.start < s.end <= T
        prev_end = s.end
        expect = lp[s.start : s.end, s.token].exp().mean().item()
        assert s.score == pytest.approx(expect, rel=1e-9, abs=1e-12)
        assert 0.0 <= s.score <= 1.0 + 1e-12


def random_case(g, max_T=6, max_U=3):
    T = int(torch.randint(0, max_T + 1, (1,), generator=g))
    U = int(torch.randint(0, max_U + 1, (1,), generator=g))
    target = torch.randint(1, V, (U,), generator=g).tolist()
    lp = rand_log_probs(g, 1, T)[0]
    return lp, target


# --------------------------------------------------------------------------- #
# Viterbi correctness
# --------------------------------------------------------------------------- #


def test_matches_brute_force_on_random_tiny_inputs():
    g = torch.Generator().manual_seed(0)
    n_feasible = n_infeasible = 0
    for _ in range(300):
        lp, target = random_case(g)
        T = lp.shape[0]
        lps, in_lens, tg, tg_lens = pad_batch([(lp, target)])
        frame_tokens, scores = ctc_viterbi(lps, in_lens, tg, tg_lens)
        (spans,) = ctc_forced_align(lps, in_lens, tg, tg_lens)
        best = brute_force_best(lp.numpy(), target)
        if best == -math.inf:
            n_infeasible += 1
            assert scores[0].item() == -math.inf
            assert spans is None if target else spans == []
            continue
        n_feasible += 1
        assert scores[0].item() == pytest.approx(best, abs=1e-9)
        # The returned path is a real CTC path for the target with that score.
        path = frame_tokens[0, :T].tolist()
        assert _collapse(path) == tuple(target)
        assert all(x == -1 for x in frame_tokens[0, T:].tolist())
        assert sum(lp[t, k].item() for t, k in enumerate(path)) == pytest.approx(best, abs=1e-9)
        if target:
            check_spans(spans, lp, target, T)
            # Spans are exactly the runs of non-blank frames of the path.
            covered = [0] * T
            for s in spans:
                for t in range(s.start, s.end):
                    covered[t] = s.token
            assert covered == path
        else:
            assert spans == []
    assert n_feasible > 100 and n_infeasible > 10  # both branches exercised


def test_matches_reference_dp_on_larger_inputs():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        T = int(torch.randint(10, 40, (1,), generator=g))
        U = int(torch.randint(1, 10, (1,), generator=g))
        target = torch.randint(1, V, (U,), generator=g).tolist()
        lp = rand_log_probs(g, 1, T)[0]
        lps, in_lens, tg, tg_lens = pad_batch([(lp, target)])
        _, scores = ctc_viterbi(lps, in_lens, tg, tg_lens)
        ref = reference_viterbi(lp.numpy(), target)
        if ref == -math.inf:
            assert scores[0].item() == -math.inf
        else:
            assert scores[0].item() == pytest.approx(ref, abs=1e-8)


@pytest.mark.parametrize(
    "target,T,feasible",
    [
        ([1, 1], 2, False),  # needs a blank between the repeats
        ([1, 1], 3, True),
        ([1, 2], 2, True),  # different tokens may be adjacent
        ([1, 2, 3], 2, False),
        ([2, 2, 2], 4, False),
        ([2, 2, 2], 5, True),
        ([1], 0, False),
        ([], 0, True),
        ([], 3, True),
    ],
)
def test_feasibility(target, T, feasible):
    lp = torch.zeros(T, V, dtype=torch.float64).log_softmax(-1)
    lps, in_lens, tg, tg_lens = pad_batch([(lp, target)])
    (spans,) = ctc_forced_align(lps, in_lens, tg, tg_lens)
    if not target:
        assert spans == []
    elif feasible:
        check_spans(spans, lp, target, T)
    else:
        assert spans is None


def test_peaky_posteriors_give_expected_spans():
    T = 8
    frames = [0, 1, 1, 0, 2, 2, 2, 0]  # blank a a blank b b b blank
    lp = torch.full((T, V), -20.0, dtype=torch.float64)
    lp[torch.arange(T), torch.tensor(frames)] = 0.0
    lp = lp.log_softmax(-1)
    lps, in_lens, tg, tg_lens = pad_batch([(lp, [1, 2])])
    (spans,) = ctc_forced_align(lps, in_lens, tg, tg_lens)
    assert [(s.token, s.start, s.end) for s in spans] == [(1, 1, 3), (2, 4, 7)]
    assert all(s.score > 0.99 for s in spans)


def test_repeated_token_split_by_blank():
    # a a (same token twice): path must be a ... blank ... a
    frames = [1, 1, 0, 1]
    lp = torch.full((4, V), -20.0, dtype=torch.float64)
    lp[torch.arange(4), torch.tensor(frames)] = 0.0
    lp = lp.log_softmax(-1)
    lps, in_lens, tg, tg_lens = pad_batch([(lp, [1, 1])])
    (spans,) = ctc_forced_align(lps, in_lens, tg, tg_lens)
    assert [(s.token, s.start, s.end) for s in spans] == [(1, 0, 2), (1, 3, 4)]


def test_batch_equals_single_items():
    g = torch.Generator().manual_seed(2)
    items = [random_case(g, max_T=12, max_U=5) for _ in range(25)]
    lps, in_lens, tg, tg_lens = pad_batch(items)
    batch_spans = ctc_forced_align(lps, in_lens, tg, tg_lens)
    _, batch_scores = ctc_viterbi(lps, in_lens, tg, tg_lens)
    assert len(batch_spans) == len(items)
    for b, (lp, target) in enumerate(items):
        single = pad_batch([(lp, target)])
        (s_spans,) = ctc_forced_align(*single)
        _, s_score = ctc_viterbi(*single)
        assert batch_spans[b] == s_spans
        assert batch_scores[b].item() == s_score[0].item()


def test_padding_does_not_change_results():
    g = torch.Generator().manual_seed(3)
    lp = rand_log_probs(g, 1, 9)[0]
    target = [2, 2, 3, 1]
    ref_spans = ctc_forced_align(*pad_batch([(lp, target)]))[0]
    ref_score = ctc_viterbi(*pad_batch([(lp, target)]))[1][0].item()
    assert ref_spans is not None

    def garbage(B, T):  # padded frames strongly favour token 3 / blank
        x = torch.full((B, T, V), -50.0, dtype=torch.float64)
        x[..., 3] = 0.0
        return x

    # Long-padded companion item forces padding of both frames and targets; the
    # target padding is non-zero garbage on purpose.
    other = (rand_log_probs(g, 1, 20)[0], [1, 2, 3, 1, 2, 3, 1])
    lps, in_lens, tg, tg_lens = pad_batch([(lp, target), other], pad_frames=5, target_pad=3, garbage=garbage)
    spans = ctc_forced_align(lps, in_lens, tg, tg_lens)
    frame_tokens, scores = ctc_viterbi(lps, in_lens, tg, tg_lens)
    assert spans[0] == ref_spans
    assert scores[0].item() == ref_score
    assert (frame_tokens[0, 9:] == -1).all()


def test_float32_and_float16_inputs():
    g = torch.Generator().manual_seed(4)
    items = [random_case(g, max_T=10, max_U=4) for _ in range(6)]
    lps, in_lens, tg, tg_lens = pad_batch(items)
    ref = ctc_viterbi(lps, in_lens, tg, tg_lens)[1]
    got32 = ctc_viterbi(lps.float(), in_lens, tg, tg_lens)[1]
    torch.testing.assert_close(got32.double(), ref, atol=1e-4, rtol=0, equal_nan=True)
    spans16 = ctc_forced_align(lps.half(), in_lens, tg, tg_lens)  # upcast internally
    assert len(spans16) == len(items)


def test_minus_inf_and_nan_posteriors_give_none():
    lp = torch.full((5, V), -math.inf, dtype=torch.float64)
    lp[:, 0] = 0.0  # only blank possible
    (spans,) = ctc_forced_align(*pad_batch([(lp, [1])]))
    assert spans is None
    lp = torch.full((5, V), float("nan"), dtype=torch.float64)
    (spans,) = ctc_forced_align(*pad_batch([(lp, [1])]))
    assert spans is None


def test_empty_batch_and_bad_inputs():
    assert (
        ctc_forced_align(
            torch.zeros(0, 3, V),
            torch.zeros(0, dtype=torch.long),
            torch.zeros(0, 2, dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
        )
        == []
    )
    lps, in_lens, tg, tg_lens = pad_batch([(torch.zeros(4, V).log_softmax(-1), [1, 2])])
    with pytest.raises(ValueError, match="blank"):
        ctc_forced_align(lps, in_lens, torch.tensor([[1, 0]]), tg_lens)
    with pytest.raises(ValueError, match="input_lens"):
        ctc_forced_align(lps, torch.tensor([9]), tg, tg_lens)
    with pytest.raises(ValueError, match="target ids"):
        ctc_forced_align(lps, in_lens, torch.tensor([[1, 7]]), tg_lens)
    with pytest.raises(ValueError):
        ctc_forced_align(lps[0], in_lens, tg, tg_lens)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(5)
    items = [random_case(g, max_T=30, max_U=8) for _ in range(16)]
    lps, in_lens, tg, tg_lens = pad_batch(items)
    cpu = ctc_forced_align(lps, in_lens, tg, tg_lens)
    gpu = ctc_forced_align(lps.cuda(), in_lens.cuda(), tg.cuda(), tg_lens.cuda())
    assert gpu == cpu


# --------------------------------------------------------------------------- #
# lhotse items
# --------------------------------------------------------------------------- #


def test_spans_to_alignment_items_exact_times():
    spans = [TokenSpan(1, 3, 5, 0.912345678), TokenSpan(2, 5, 6, 0.5)]
    items = spans_to_alignment_items(spans, ["<blk>", "AA", "B"], frame_shift=0.04)
    assert [it.symbol for it in items] == ["AA", "B"]
    assert items[0].start == 0.12 and items[0].duration == 0.08
    assert items[1].start == 0.2 and items[1].duration == 0.04
    assert items[0].score == 0.9123
    shifted = spans_to_alignment_items(spans, ["<blk>", "AA", "B"], 0.04, offset=1.5)
    assert shifted[0].start == 1.62 and shifted[0].duration == 0.08
    with pytest.raises(ValueError, match="no symbol"):
        spans_to_alignment_items([TokenSpan(5, 0, 1, 1.0)], ["<blk>", "AA"], 0.04)


# --------------------------------------------------------------------------- #
# TextGrid / HTK import
# --------------------------------------------------------------------------- #


def _write_textgrid(path, tiers, max_t=1.0):
    from praatio import textgrid
    from praatio.utilities.constants import Interval

    tg = textgrid.Textgrid()
    for name, entries in tiers.items():
        tg.addTier(textgrid.IntervalTier(name, [Interval(*e) for e in entries], 0.0, max_t))
    path.parent.mkdir(parents=True, exist_ok=True)
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


PHONES = [
    (0.0, 0.3, "sil"),
    (0.3, 0.45, "HH"),
    (0.45, 0.62, "AH0"),
    (0.62, 0.7, "sp"),
    (0.7, 0.9, "L"),
    (0.9, 1.0, "spn"),
]
WORDS = [(0.3, 0.62, "huh"), (0.7, 0.9, "l")]


def test_read_textgrid_dir(tmp_path):
    _write_textgrid(tmp_path / "spk1" / "utt1.TextGrid", {"words": WORDS, "phones": PHONES})
    _write_textgrid(tmp_path / "spk2" / "deep" / "utt2.TextGrid", {"phones": PHONES[:3]})
    (tmp_path / "notes.txt").write_text("not a textgrid")
    ali = read_textgrid_dir(tmp_path)
    assert set(ali) == {"utt1", "utt2"}
    items = ali["utt1"]
    assert [(i.symbol, i.start, i.duration) for i in items] == [("HH", 0.3, 0.15), ("AH0", 0.45, 0.17), ("L", 0.7, 0.2)]
    assert all(i.score is None for i in items)
    assert [i.symbol for i in ali["utt2"]] == ["HH", "AH0"]
    words = read_textgrid_dir(tmp_path / "spk1", tier="words")
    assert [i.symbol for i in words["utt1"]] == ["huh", "l"]
    keep_all = read_textgrid_dir(tmp_path / "spk1", skip_labels=())
    assert [i.symbol for i in keep_all["utt1"]][0] == "sil"


def test_textgrid_missing_tier_names_file_and_tiers(tmp_path):
    _write_textgrid(tmp_path / "u.TextGrid", {"words": WORDS})
    with pytest.raises(ValueError) as e:
        read_textgrid_dir(tmp_path)
    msg = str(e.value)
    assert "u.TextGrid" in msg and "'phones'" in msg and "words" in msg
    assert isinstance(e.value, SpeechEQError)


def test_textgrid_mfa_speaker_prefixed_tier_and_duplicates(tmp_path):
    _write_textgrid(tmp_path / "a" / "u.TextGrid", {"spk - words": WORDS, "spk - phones": PHONES})
    assert [i.symbol for i in read_textgrid_dir(tmp_path)["u"]] == ["HH", "AH0", "L"]
    _write_textgrid(tmp_path / "b" / "u.TextGrid", {"phones": PHONES})
    with pytest.raises(AlignmentError, match="two TextGrid files"):
        read_textgrid_dir(tmp_path)


def test_textgrid_bad_file_and_missing_dir(tmp_path):
    (tmp_path / "x.TextGrid").write_text("garbage\n")
    with pytest.raises(ValueError, match="x.TextGrid"):
        read_textgrid_dir(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        read_textgrid_dir(tmp_path / "nope")


def test_read_htk_lab_dir(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "utt1.lab").write_text("0 1500000 sil\n1500000 2300000 AH -12.5 word\n\n2300000 2300000 T\n")
    (tmp_path / "utt2.lab").write_text("0 400000 B\n")
    (tmp_path / "utt3.rec").write_text("0 400000 C\n")
    ali = read_htk_lab_dir(tmp_path)
    assert set(ali) == {"utt1", "utt2"}
    assert [(i.symbol, i.start, i.duration) for i in ali["utt1"]] == [
        ("sil", 0.0, 0.15),
        ("AH", 0.15, 0.08),
        ("T", 0.23, 0.0),
    ]
    assert read_htk_lab_dir(tmp_path, extension=".rec")["utt3"][0].symbol == "C"
    no_sil = read_htk_lab_dir(tmp_path, skip_labels=("sil",))
    assert [i.symbol for i in no_sil["utt1"]] == ["AH", "T"]


@pytest.mark.parametrize(
    "bad",
    ["0 100 \n", "0 abc sil\n", "0.0 0.15 sil\n", "500 100 sil\n", "-5 100 sil\n"],
)
def test_htk_malformed_line_names_file_and_line(tmp_path, bad):
    (tmp_path / "u.lab").write_text("0 100 a\n" + bad)
    with pytest.raises(ValueError) as e:
        read_htk_lab_dir(tmp_path)
    assert f"{tmp_path / 'u.lab'}:2" in str(e.value)


# --------------------------------------------------------------------------- #
# attach_alignments
# --------------------------------------------------------------------------- #


def _cuts():
    from lhotse import CutSet
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    cuts = []
    for i in range(3):
        sup = dummy_supervision(i, start=0.0, duration=1.0, alignment=None)
        cuts.append(dummy_cut(i, start=0.0, duration=1.0, supervisions=[sup]))
    return CutSet.from_cuts(cuts)


def _items(*triples):
    from lhotse.supervision import AlignmentItem

    return [AlignmentItem(s, st, d) for s, st, d in triples]


def test_attach_by_supervision_id():
    cuts = _cuts()
    ali = {"dummy-segment-0000": _items(("A", 0.1, 0.2)), "dummy-segment-0002": _items()}
    out, missing = attach_alignments(cuts, ali)
    assert missing == ["dummy-segment-0001"]
    out = list(out)
    assert len(out) == 3
    assert out[0].supervisions[0].alignment["phone"][0].symbol == "A"
    assert out[1].supervisions[0].alignment is None
    assert out[2].supervisions[0].alignment["phone"] == []
    # the input cuts are untouched
    assert all(c.supervisions[0].alignment is None for c in cuts)
    kept, _ = attach_alignments(cuts, ali, kind="word", drop_missing=True)
    assert [c.id for c in kept] == ["dummy-mono-cut-0000", "dummy-mono-cut-0002"]
    assert "word" in kept[0].supervisions[0].alignment


def test_attach_does_not_mutate_existing_alignment_dict():
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    sup = dummy_supervision(0, alignment={"word": _items(("w", 0.0, 1.0))})
    cut = dummy_cut(0, supervisions=[sup])
    out, missing = attach_alignments([cut], {sup.id: _items(("p", 0.0, 0.5))})
    assert missing == []
    assert set(out[cut.id].supervisions[0].alignment) == {"word", "phone"}
    assert set(cut.supervisions[0].alignment) == {"word"}


def test_attach_by_recording_id_and_cut_id_time_reference():
    from lhotse.testing.dummies import dummy_cut, dummy_recording, dummy_supervision
    from lhotse.utils import fastcopy

    rec = dummy_recording(7, duration=5.0)
    sups = [
        dummy_supervision(0, start=0.0, duration=1.0, alignment=None),
        dummy_supervision(1, start=1.0, duration=1.0, alignment=None),
    ]
    sups = [fastcopy(s, recording_id=rec.id) for s in sups]
    cut = dummy_cut(0, start=2.0, duration=2.0, recording=rec, supervisions=sups)
    # Recording-relative items (as MFA / HTK give): sup 0 covers rec [2, 3), sup 1 [3, 4).
    rec_ali = {rec.id: _items(("x", 0.5, 0.5), ("a", 2.1, 0.4), ("b", 3.2, 0.3))}
    out, missing = attach_alignments([cut], rec_ali, key="recording_id")
    assert missing == []
    s0, s1 = out[cut.id].supervisions
    assert [i.symbol for i in s0.alignment["phone"]] == ["a"]
    assert [i.symbol for i in s1.alignment["phone"]] == ["b"]
    # Cut-relative items (as align_cuts gives) become recording-relative.
    cut_ali = {cut.id: _items(("a", 0.1, 0.4), ("b", 1.2, 0.3))}
    out, _ = attach_alignments([cut], cut_ali, key="cut_id")
    s0, s1 = out[cut.id].supervisions
    assert [(i.symbol, i.start) for i in s0.alignment["phone"]] == [("a", 2.1)]
    assert [(i.symbol, i.start) for i in s1.alignment["phone"]] == [("b", 3.2)]
    with pytest.raises(ValueError):
        attach_alignments([cut], cut_ali, key="speaker")


# --------------------------------------------------------------------------- #
# align_cuts with a fake model
# --------------------------------------------------------------------------- #

SYMBOLS = ["<blk>", "AA", "B", "C"]


class FakeModel(torch.nn.Module):
    """4x subsampling; CTC logits are read from features[..., :V] of every 4th frame."""

    def __init__(self, n_out=V):
        super().__init__()
        self.n_out = n_out
        self.calls = []

    def forward(self, features, feature_lens):
        self.calls.append((self.training, torch.is_inference_mode_enabled()))
        logits = features[:, ::4, : self.n_out]
        return {
            "ctc_log_probs": logits.log_softmax(-1),
            "encoder_lens": (feature_lens + 3) // 4,
        }


def _feats_for(frame_tokens, T_feat):
    x = torch.full((T_feat, 80), -10.0)
    for t, k in enumerate(frame_tokens):
        x[4 * t, k] = 10.0
    return x


def _make_batch():
    # cut a: 6 encoder frames (24 feature frames), path blank AA AA blank B blank
    # cut b: no phones
    # cut c: 2 encoder frames but phones [C, C] -> infeasible
    fa = _feats_for([0, 1, 1, 0, 2, 0], 24)
    fb = _feats_for([0, 0, 0], 12)
    fc = _feats_for([3, 3], 8)
    feats = torch.full((3, 24, 80), -10.0)
    feats[0], feats[1, :12], feats[2, :8] = fa, fb, fc
    return {
        "features": feats,
        "feature_lens": torch.tensor([24, 12, 8]),
        "phones": torch.tensor([[1, 2], [0, 0], [3, 3]]),
        "phone_lens": torch.tensor([2, 0, 2]),
        "cut_ids": ["a", "b", "c"],
    }


def test_align_cuts_with_fake_model():
    model = FakeModel()
    model.train()
    results = list(align_cuts(model, [_make_batch(), _make_batch()], SYMBOLS, frame_shift=0.04))
    assert model.calls == [(False, True), (False, True)]
    assert not torch.is_inference_mode_enabled()
    assert [cid for cid, _ in results] == ["a", "b", "c"] * 2
    a = dict(results[:3])
    assert [(i.symbol, i.start, i.duration) for i in a["a"]] == [("AA", 0.04, 0.08), ("B", 0.16, 0.04)]
    assert all(i.score > 0.99 for i in a["a"])
    assert a["b"] == []
    assert a["c"] is None
    summary = alignment_summary(results)
    assert summary == {"total": 6, "aligned": 2, "failed": 2, "no_phones": 2, "failed_ids": ["c", "c"]}


def test_align_cuts_results_attach_by_cut_id():
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    results = dict(align_cuts(FakeModel(), [_make_batch()], SYMBOLS, frame_shift=0.04))
    cuts = [
        dummy_cut(
            i, start=0.5, duration=1.0, supervisions=[dummy_supervision(i, start=0.0, duration=1.0, alignment=None)]
        )
        for i in range(1)
    ]
    cuts = [c.with_id("a") for c in cuts]
    aligned = {k: v for k, v in results.items() if v}
    out, missing = attach_alignments(cuts, aligned, key="cut_id")
    assert missing == []
    items = out["a"].supervisions[0].alignment["phone"]
    assert [(i.symbol, i.start) for i in items] == [("AA", 0.54), ("B", 0.66)]


def test_align_cuts_symbol_table_mismatch():
    with pytest.raises(AlignmentError, match="token table"):
        list(align_cuts(FakeModel(), [_make_batch()], SYMBOLS[:3], frame_shift=0.04))
