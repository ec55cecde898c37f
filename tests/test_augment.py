"""Training levers on generated audio: speed perturbation, random crops, CopyPaste, mixup, the
speaker adversary and the tiny preset."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import train_args
from speecheq.augment import CutAugment, cut_rng, mixup, neutral_partners, parse_factors
from speecheq.errors import SpeechEQError


def _train_cuts(synth_data):
    from lhotse import load_manifest

    return load_manifest(synth_data / "fbank/synth_cuts_train.jsonl.gz")


def test_speed_factors_keep_the_original_and_reject_nonsense():
    assert parse_factors("") == ()
    assert parse_factors("0.9,1.1") == (1.0, 0.9, 1.1)
    assert parse_factors("1.0,0.9") == (1.0, 0.9)
    with pytest.raises(SpeechEQError):
        parse_factors("0.9,fast")
    with pytest.raises(SpeechEQError):
        parse_factors("3.0")


def test_speed_perturbed_cut_has_its_own_id_duration_and_features(synth_data):
    cut = next(iter(_train_cuts(synth_data)))
    augment = CutAugment(speed_factors=(1.0, 0.9, 1.1), seed=3)
    seen = {}
    for epoch in range(1, 40):
        augment.epoch = epoch
        new, feats, phones_valid = augment.apply(cut)
        seen[new.id] = (new, feats, phones_valid)
    # Every factor is drawn at some epoch; 1.0 reads the stored features.
    assert set(seen) == {cut.id, f"{cut.id}_sp0.9", f"{cut.id}_sp1.1"}
    assert seen[cut.id][1] is None
    for factor in (0.9, 1.1):
        new, feats, phones_valid = seen[f"{cut.id}_sp{factor}"]
        assert new.duration == pytest.approx(cut.duration / factor, abs=0.01)
        frames = cut.num_frames
        assert feats.shape[1] == cut.num_features
        assert feats.shape[0] == pytest.approx(frames / factor, abs=3)
        assert phones_valid  # same words, only slower or faster
    # Slowing down shifts the spectrum down: the features really differ from the stored ones.
    stored = torch.from_numpy(cut.load_features())
    slow = seen[f"{cut.id}_sp0.9"][1]
    assert not torch.allclose(stored.mean(0), slow.mean(0), atol=0.05)


def test_cut_choices_depend_only_on_seed_epoch_and_id():
    a = cut_rng(1, 2, "x").random()
    assert a == cut_rng(1, 2, "x").random()
    assert a != cut_rng(1, 3, "x").random() and a != cut_rng(2, 2, "x").random()


def test_random_crop_reads_a_window_and_drops_the_phones(synth_data):
    cuts = [c for c in _train_cuts(synth_data) if c.duration > 1.2][:3]
    assert cuts, "the synthetic corpus should have cuts longer than the crop"
    augment = CutAugment(crop=1.0, seed=0, epoch=1)
    for cut in cuts:
        new, feats, phones_valid = augment.apply(cut)
        assert feats is None and not phones_valid
        assert new.duration == pytest.approx(1.0, abs=0.011)
        assert cut.start <= new.start and new.end <= cut.end + 1e-6
        assert new.load_features().shape[0] == pytest.approx(100, abs=2)
    short = CutAugment(crop=100.0, seed=0, epoch=1).apply(cuts[0])
    assert short[0].duration == cuts[0].duration and short[2]


def test_dataset_batch_with_augmentation_masks_cropped_phones(synth_data):
    from lhotse import CutSet

    from speecheq.data import SpeechEQDataset
    from speecheq.labels import LabelScheme
    from speecheq.text.tokens import TokenTable

    cuts = CutSet.from_cuts(list(_train_cuts(synth_data))[:4])
    tokens = TokenTable.from_file(synth_data / "lang/tokens.txt")
    speakers = {c.supervisions[0].speaker: i for i, c in enumerate(cuts)}
    ds = SpeechEQDataset(
        LabelScheme.from_preset("6class"), tokens, augment=CutAugment(crop=0.8, seed=0, epoch=1), speakers=speakers
    )
    batch = ds[cuts]
    assert batch["features"].shape[0] == 4 and int(batch["feature_lens"].max()) <= 81
    assert (batch["phone_lens"] == 0).all()  # every cut was cropped
    assert (batch["speaker"] >= 0).all()
    plain = SpeechEQDataset(LabelScheme.from_preset("6class"), tokens)[cuts]
    assert (plain["phone_lens"] > 0).all() and (plain["speaker"] == -1).all()


def test_copy_paste_joins_a_neutral_utterance_of_the_same_speaker(synth_data):
    cuts = list(_train_cuts(synth_data))
    partners = neutral_partners(cuts)
    assert partners and all(
        c.supervisions[0].custom["emotion"] == "neutral" and c.supervisions[0].speaker == spk
        for spk, group in partners.items()
        for c in group
    )
    augment = CutAugment(seed=0, copy_paste=1.0, partners=partners)
    firsts = set()
    for epoch in range(1, 12):
        augment.epoch = epoch
        for cut in cuts:
            pasted = augment.partner(cut)
            others = [c for c in partners.get(cut.supervisions[0].speaker, []) if c.id != cut.id]
            if not others:
                assert pasted is None
                continue
            partner, first = pasted
            assert partner.id != cut.id and partner.supervisions[0].speaker == cut.supervisions[0].speaker
            assert partner.supervisions[0].custom["emotion"] == "neutral"
            firsts.add(first)
            assert augment.partner(cut) == pasted  # the same draw for the same seed, epoch and cut
    assert firsts == {True, False}  # before and after
    # At probability 0.3 about 30 % of the cuts are joined in an epoch.
    half = CutAugment(seed=0, copy_paste=0.3, partners=partners)
    eligible = [c for c in cuts if any(p.id != c.id for p in partners.get(c.supervisions[0].speaker, []))]
    joined = 0
    for epoch in range(1, 21):
        half.epoch = epoch
        joined += sum(half.partner(c) is not None for c in eligible)
    assert 0.2 < joined / (20 * len(eligible)) < 0.4, (joined, len(eligible))
    assert CutAugment(seed=0).partner(cuts[0]) is None and not CutAugment(seed=0).active
    with pytest.raises(SpeechEQError, match="neutral"):
        CutAugment(copy_paste=0.5, partners={})
    with pytest.raises(SpeechEQError, match="probability"):
        CutAugment(copy_paste=1.5, partners=partners)


def test_dataset_batch_with_copy_paste_speaks_both_transcripts(synth_data):
    from lhotse import CutSet

    from speecheq.data import SpeechEQDataset
    from speecheq.labels import LabelScheme
    from speecheq.text.tokens import TokenTable

    all_cuts = list(_train_cuts(synth_data))
    partners = neutral_partners(all_cuts)
    emotional = [
        c
        for c in all_cuts
        if c.supervisions[0].custom["emotion"] != "neutral" and c.supervisions[0].speaker in partners
    ][:3]
    cuts = CutSet.from_cuts(emotional)
    tokens = TokenTable.from_file(synth_data / "lang/tokens.txt")
    scheme = LabelScheme.from_preset("6class")
    augment = CutAugment(seed=0, epoch=1, copy_paste=1.0, partners=partners)
    batch = SpeechEQDataset(scheme, tokens, augment=augment)[cuts]
    plain = SpeechEQDataset(scheme, tokens)[cuts]
    assert torch.equal(batch["emotion"], plain["emotion"])  # the emotional cut's labels stay
    assert torch.equal(batch["gender"], plain["gender"])
    for i, cut_id in enumerate(batch["cut_ids"]):
        cut = next(c for c in emotional if c.id == cut_id)
        partner, first = augment.partner(cut)
        own, other = cut.load_features(), partner.load_features()
        n = int(batch["feature_lens"][i])
        assert n == own.shape[0] + other.shape[0]
        head = other if first else own
        assert torch.allclose(batch["features"][i, : head.shape[0]], torch.from_numpy(head))
        j = plain["cut_ids"].index(cut_id)
        own_ids = plain["phones"][j, : int(plain["phone_lens"][j])].tolist()
        other_ids = tokens.encode(tokens.spell(partner.supervisions[0]))
        expected = other_ids + own_ids if first else own_ids + other_ids
        assert batch["phones"][i, : int(batch["phone_lens"][i])].tolist() == expected


def test_mixup_mixes_features_and_gives_soft_emotion_targets():
    from speecheq.losses import MultitaskLoss

    torch.manual_seed(0)
    feats = torch.stack([torch.full((10, 4), 1.0), torch.full((10, 4), 3.0)])
    lens = torch.tensor([10, 6])
    mixed, perm, lam = mixup(feats, lens, alpha=0.4)
    assert (lam >= 0.5).all() and (lam <= 1).all()
    for i in range(2):
        j = int(perm[i])
        valid = min(10, int(lens[j]))
        expected = lam[i] * feats[i, :valid] + (1 - lam[i]) * feats[j, :valid]
        assert torch.allclose(mixed[i, :valid], expected)
        assert torch.equal(mixed[i, valid:], feats[i, valid:])  # past the partner's end: own frames

    # The emotion loss is lam * CE(own) + (1 - lam) * CE(partner).
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    targets = torch.tensor([0, 2])
    partner, lam = torch.tensor([1, 0]), torch.tensor([0.7, 0.6])
    loss_fn = MultitaskLoss({"emotion": 1.0})
    total, _ = loss_fn({"emotion_logits": logits}, {"emotion": targets, "mix_partner": partner, "mix_lam": lam})
    ce = torch.nn.functional.cross_entropy
    own = ce(logits, targets, reduction="none")
    other = ce(logits, targets[partner], reduction="none")
    assert total.item() == pytest.approx(float((lam * own + (1 - lam) * other).mean()), rel=1e-6)
    # A partner without a label leaves the utterance's own class with all the weight.
    total, _ = loss_fn(
        {"emotion_logits": logits},
        {"emotion": torch.tensor([0, -1]), "mix_partner": torch.tensor([1, 0]), "mix_lam": lam},
    )
    assert total.item() == pytest.approx(float(own[0]), rel=1e-6)


def test_gradient_reversal_flips_the_encoder_gradient_only():
    from speecheq.model.heads import GradientReversal

    x = torch.randn(3, 5, requires_grad=True)
    w = torch.randn(5, 2, requires_grad=True)
    (GradientReversal(0.5)(x) @ w).sum().backward()
    g_rev, gw_rev = x.grad.clone(), w.grad.clone()
    x.grad, w.grad = None, None
    (x @ w).sum().backward()
    assert torch.allclose(g_rev, -0.5 * x.grad)
    assert torch.allclose(gw_rev, w.grad)  # the head itself still learns to find speakers


def test_speaker_adversary_and_levers_train_end_to_end(synth_data, tmp_path):
    from speecheq.checkpoint import load_checkpoint
    from speecheq.train import train

    exp = tmp_path / "adv"
    train(
        train_args(
            synth_data,
            exp,
            "--tasks",
            "emotion,speaker,ctc",
            "--speed-perturb",
            "0.9,1.1",
            "--random-crop",
            "1.5",
            "--copy-paste",
            "0.5",
            "--mixup-alpha",
            "0.4",
            "--num-epochs",
            "1",
        )
    )
    ckpt = load_checkpoint(exp / "epoch-1.pt")
    speakers = {c.supervisions[0].speaker for c in _train_cuts(synth_data)}
    assert ckpt["model_config"]["num_speakers"] == len(speakers)
    assert "speaker" in ckpt["tasks"]
    log = next((exp / "log").glob("log-train-*.txt")).read_text()
    losses = json.loads(log.split("epoch 1 done")[1].split("train losses ")[1].splitlines()[0])
    assert losses["speaker"] > 0 and losses["emotion"] > 0


def test_tiny_preset_is_under_half_a_million_parameters():
    from speecheq.model import SpeechEQModel, config_from_preset

    tiny = SpeechEQModel(config_from_preset("tiny", num_emotions=8, vocab_size=60)).num_parameters()
    small = SpeechEQModel(config_from_preset("small", num_emotions=8, vocab_size=60)).num_parameters()
    assert tiny < 500_000 < small


def test_speed_perturbation_recomputes_fbank_pitch_with_its_own_extractor(tmp_path):
    """A cut whose stored features are fbank + pitch gets on-the-fly features of the same kind."""
    from lhotse import CutSet, LilcomChunkyWriter, Recording, RecordingSet

    from conftest import tone, write_wav
    from speecheq.features import make_extractor

    wav = write_wav(tmp_path / "a.wav", tone(1.5, freq=150))
    cut = CutSet.from_manifests(recordings=RecordingSet.from_recordings([Recording.from_file(wav)])).to_eager()[0]
    with LilcomChunkyWriter(tmp_path / "feats") as storage:
        cut = cut.compute_and_store_features(make_extractor("fbank-pitch"), storage)
    new, feats, _ = CutAugment(speed_factors=(1.0, 0.9), seed=0, epoch=1).apply(cut)
    for epoch in range(2, 20):
        if feats is not None:
            break
        new, feats, _ = CutAugment(speed_factors=(1.0, 0.9), seed=0, epoch=epoch).apply(cut)
    assert new.id.endswith("_sp0.9") and feats.shape[1] == cut.num_features == 84
