"""Where two code paths were made one, the one gives what each of the two gave."""

from types import SimpleNamespace

import numpy as np
import torch

from speecheq.data import CmvnStats, speaker_cmvn_stats
from speecheq.infer import corpus_probs
from speecheq.labels import LabelScheme
from speecheq.predict import corpus_aware_log_probs


def test_cmvn_stats_give_what_training_and_inference_computed_each_their_own_way(monkeypatch):
    rng = np.random.default_rng(0)
    segments = [rng.normal(-8.0, 3.0, size=(n, 80)).astype(np.float32) for n in (120, 37, 301)]

    # Inference's own formula: one file's segments, concatenated.
    frames = np.concatenate(segments).astype(np.float64)
    mean = frames.mean(axis=0)
    std = np.sqrt(np.maximum((frames**2).mean(axis=0) - mean**2, 1e-8))
    got_mean, got_std = CmvnStats().add(np.concatenate(segments)).mean_std()
    assert np.array_equal(got_mean, mean) and np.array_equal(got_std, std)

    # Training's own formula: running sums over a speaker's cuts, one cut at a time.
    n, s1, s2 = 0, 0.0, 0.0
    for f in segments:
        f = f.astype(np.float64)
        n, s1, s2 = n + f.shape[0], s1 + f.sum(axis=0), s2 + (f**2).sum(axis=0)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-8))
    cuts = [SimpleNamespace(supervisions=[SimpleNamespace(speaker="spk")], feats=f) for f in segments]
    monkeypatch.setattr("speecheq.features.load_features", lambda cut: cut.feats)
    got_mean, got_std = speaker_cmvn_stats(cuts)["spk"]
    assert torch.equal(got_mean, torch.tensor(mean, dtype=torch.float32))
    assert torch.equal(got_std, torch.tensor(std, dtype=torch.float32))


def test_inference_corpus_decision_is_validations_and_what_inference_gave():
    scheme = LabelScheme("test", ("neutral", "happy", "sad", "surprise"))
    corpora = ["emodb", "ravdess", "nope"]  # EmoDB has no surprise; an unknown corpus allows every category
    logits = torch.randn(len(corpora), len(scheme.categories), generator=torch.Generator().manual_seed(0)) * 3
    validation = corpus_aware_log_probs(logits, corpora, scheme).exp().numpy()
    for i, corpus in enumerate(corpora):
        mask = np.array(scheme.corpus_mask(corpus))
        probs = torch.softmax(logits[i], -1).numpy().astype(np.float64)  # what the engines give
        got = corpus_probs(probs, mask)
        assert np.argmax(got) == np.argmax(validation[i])
        assert np.allclose(got, validation[i], atol=1e-6)
        # Inference's own renormalisation, before it went through predict.
        restricted = np.where(mask, probs, 0.0)
        assert np.argmax(got) == np.argmax(restricted)
        assert np.allclose(got, restricted / restricted.sum(), rtol=0, atol=1e-12)
