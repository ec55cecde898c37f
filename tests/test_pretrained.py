"""A model anyone can use: speecheq.from_pretrained, torch.hub, the Hugging Face-layout folder, --version.

The model is a tiny randomly initialised one: these tests are about the plumbing
around a package, which does not depend on what the weights learned.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speecheq.errors import SpeechEQError
from speecheq.package import load_package, save_package
from tests.conftest import tone, write_wav

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ["neutral", "happy", "sad", "angry", "fear", "surprise"]
TOKENS = ["<blk>", "a", "e", "i", "o", "u"]
SR = 16000


def tiny_package(trim_silence_db=30.0, speaker_cmvn=True, source=None, corpora=("ravdess",)):
    """A package dict of a tiny random model whose outputs are far from uniform (so that a
    front-end difference shows in the posteriors)."""
    from speecheq.model import ModelConfig, SpeechEQModel
    from speecheq.package import package_from_model

    torch.manual_seed(3)
    config = ModelConfig(
        d_model=32,
        num_layers=1,
        num_heads=2,
        ff_dim=64,
        conv_kernel=7,
        subsampling_channels=8,
        pooling_dim=16,
        num_emotions=len(CATEGORIES),
        vocab_size=len(TOKENS),
    )
    model = SpeechEQModel(config).eval()
    with torch.no_grad():
        model.utterance_heads.emotion.weight.mul_(20.0)
        model.feature_mean.fill_(-8.0)
        model.feature_std.fill_(4.0)
    return package_from_model(
        model,
        categories=CATEGORIES,
        label_preset="6class",
        tokens=TOKENS,
        corpora=corpora,
        speaker_cmvn=speaker_cmvn,
        trim_silence_db=trim_silence_db,
        source=source,
    )


def speech_with_silence(seconds=1.2, silence=0.6, sr=SR, freq=190.0, seed=0):
    """A tone between stretches of near-silence: trimming at 30 dB cuts most of the silence away."""
    rng = np.random.default_rng(seed)
    quiet = lambda: (1e-4 * rng.standard_normal(int(silence * sr))).astype(np.float32)  # noqa: E731
    return np.concatenate([quiet(), tone(seconds, sr=sr, freq=freq, seed=seed), quiet()])


@pytest.fixture(scope="module")
def package_path(tmp_path_factory):
    return save_package(tiny_package(), tmp_path_factory.mktemp("pretrained") / "speecheq-package.pt")


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wavs")
    write_wav(d / "a.wav", speech_with_silence(seed=1))
    write_wav(d / "b_8k.wav", speech_with_silence(1.6, sr=8000, freq=260.0, seed=2), sr=8000)
    return d


def infer_records(model, inputs, tmp_path, *extra):
    from speecheq.cli import main

    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as e:
        main(["infer", "--no-progress", "--model", str(model), *map(str, inputs), "--output", str(out), *extra])
        raise SystemExit(0)
    assert e.value.code == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_classify_file_and_batch_give_what_speecheq_infer_gives(package_path, wavs, tmp_path):
    import soundfile as sf

    import speecheq

    clf = speecheq.from_pretrained(package_path)
    assert clf.categories == CATEGORIES and clf.sample_rate == SR
    recs = infer_records(package_path, [wavs / "a.wav", wavs / "b_8k.wav"], tmp_path)
    for rec in recs:
        assert rec["duration"] < sf.info(rec["path"]).duration - 0.5  # trimmed: the package says 30 dB
        out_prob, score, index, labels = clf.classify_file(rec["path"])
        assert out_prob.shape == (1, len(CATEGORIES)) and score.shape == index.shape == (1,)
        assert labels == [rec["category"]] and CATEGORIES[int(index[0])] == rec["category"]
        np.testing.assert_allclose(out_prob[0].numpy(), [rec["probabilities"][c] for c in CATEGORIES], atol=1e-4)
        assert float(score[0]) == pytest.approx(float(out_prob[0].max()))
    assert clf.predict_file(wavs / "a.wav") == recs[:1]
    # Waveforms in memory: a list of any lengths at the file's rate gives the files' posteriors.
    a, _ = sf.read(wavs / "a.wav", dtype="float32")
    b, _ = sf.read(wavs / "b_8k.wav", dtype="float32")
    probs_a = clf.classify_file(wavs / "a.wav")[0]
    got = clf.classify_batch([torch.from_numpy(a)])[0]
    np.testing.assert_allclose(got.numpy(), probs_a.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        clf.classify_batch([b], sample_rate=8000)[0].numpy(), clf.classify_file(wavs / "b_8k.wav")[0].numpy(), atol=1e-6
    )
    # A padded (B, N) batch with SpeechBrain's relative lengths: the padding is cut off, results do not mix.
    padded = torch.zeros(2, len(a) + 8000)
    padded[0, : len(a)] = torch.from_numpy(a)
    padded[1] = torch.from_numpy(speech_with_silence(1.7, seed=4))  # 46400 samples, as padded
    out_prob, score, index, labels = clf.classify_batch(
        padded, SR, wav_lens=torch.tensor([len(a) / padded.shape[1], 1.0])
    )
    assert out_prob.shape == (2, len(CATEGORIES)) and len(labels) == 2
    np.testing.assert_allclose(out_prob[0].numpy(), probs_a[0].numpy(), atol=1e-5)


def test_bad_input_is_one_clear_error(package_path, tmp_path):
    import speecheq

    clf = speecheq.from_pretrained(package_path)
    with pytest.raises(SpeechEQError, match="NaN or Inf"):
        clf.classify_batch(np.full(SR, np.nan, dtype=np.float32))
    with pytest.raises(SpeechEQError, match="too short"):
        clf.classify_batch(np.zeros(100, dtype=np.float32))
    with pytest.raises(SpeechEQError, match="file not found"):
        clf.classify_file(tmp_path / "missing.wav")
    with pytest.raises(SpeechEQError, match="one channel"):
        clf.classify_batch([np.zeros((SR, 2), dtype=np.float32)])
    with pytest.raises(SpeechEQError, match="model package not found"):
        speecheq.from_pretrained(tmp_path / "nothing.pt")


def test_corpus_aware_decision(package_path, wavs):
    import speecheq
    from speecheq.labels import LabelScheme

    allowed = LabelScheme("6class", tuple(CATEGORIES)).corpus_categories("ravdess")
    clf = speecheq.from_pretrained(package_path, corpus="ravdess")
    out_prob, score, index, labels = clf.classify_file(wavs / "a.wav")
    assert labels[0] in allowed
    assert float(score[0]) == pytest.approx(max(float(out_prob[0, CATEGORIES.index(c)]) for c in allowed))


def test_torch_hub_loads_from_the_repository_folder(package_path, wavs):
    import speecheq

    # torch.hub.load takes the entry point's name as ``model``: the package is positional or ``path=``.
    clf = torch.hub.load(str(REPO), "speecheq", str(package_path), source="local")
    by_name = torch.hub.load(str(REPO), "speecheq", source="local", path=str(package_path))
    direct = speecheq.from_pretrained(package_path)
    want = direct.classify_file(wavs / "a.wav")[0].numpy()
    for loaded in (clf, by_name):
        np.testing.assert_array_equal(loaded.classify_file(wavs / "a.wav")[0].numpy(), want)
    with pytest.raises(SpeechEQError, match="give the package"):
        torch.hub.load(str(REPO), "speecheq", source="local")


def test_hugging_face_folder_round_trip(tmp_path, wavs):
    from speecheq.hf import save_package_dir

    exp = tmp_path / "exp" / "fold0"
    (exp / "decode" / "ravdess_fold0_test-epoch-3-avg-2").mkdir(parents=True)
    (exp / "decode" / "ravdess_fold0_test-epoch-3-avg-2" / "metrics.json").write_text(
        json.dumps({"utterances": 360, "headline": {"UA": 61.5, "WA": 62.25, "macro_F1": 60.0}})
    )
    source = {
        "exp_dir": str(exp),
        "weights": "epoch-3-avg-2",
        "epoch": 3,
        "train_args": {
            "train_cuts": ["data/fbank/ravdess_cuts_fold0_train.jsonl.gz"],
            "dev_cuts": "data/fbank/ravdess_cuts_fold0_dev.jsonl.gz",
        },
    }
    raw = tiny_package(source=source)
    single = save_package(raw, tmp_path / "speecheq-package.pt")
    folder = save_package_dir(raw, tmp_path / "speecheq-model")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "tokens.txt", "README.md"}
    config = json.loads((folder / "config.json").read_text())
    assert config["feature_config"]["lhotse"]["feature_type"] == "kaldi-fbank"
    assert config["feature_config"]["trim_silence_db"] == 30.0 and config["speaker_cmvn"] is True
    assert config["feature_config"]["sampling_rate"] == SR and config["categories"] == CATEGORIES
    assert config["tokens"] == TOKENS and config["label_preset"] == "6class" and config["source"]["epoch"] == 3
    assert config["metrics"] == {"ravdess_fold0_test": {"utterances": 360, "UA": 61.5, "WA": 62.25, "macro_F1": 60.0}}
    assert (folder / "tokens.txt").read_text().splitlines()[:2] == ["<blk> 0", "a 1"]
    card = (folder / "README.md").read_text()
    for text in (
        "ravdess",
        "CC BY-NC-SA 4.0",
        "ravdess_cuts_fold0_train.jsonl.gz",
        "| ravdess_fold0_test | 360 |",
        "61.50",
        "Intended use and limits",
        "epoch-3-avg-2",
        "Per-utterance CMN: no",
    ):
        assert text in card, text
    # Both layouts load to the same model; the folder runs through speecheq infer like the file.
    a, b = load_package(single), load_package(folder)
    assert a.fingerprint == b.fingerprint and a.tokens == b.tokens and a.feature_config == b.feature_config
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    recs_file = infer_records(single, [wavs / "a.wav"], tmp_path)
    recs_dir = infer_records(folder, [wavs / "a.wav"], tmp_path)
    assert recs_file == recs_dir
    # A broken folder is one line.
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(SpeechEQError, match="not a readable safetensors file"):
        load_package(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(SpeechEQError, match="model.safetensors is missing"):
        load_package(folder)


def test_export_converts_a_package_into_a_folder(package_path, tmp_path):
    from speecheq.cli import run_export

    run_export(["--package", str(package_path), "--output", str(tmp_path / "model")])
    assert load_package(tmp_path / "model").fingerprint == load_package(package_path).fingerprint
    assert not json.loads((tmp_path / "model" / "config.json").read_text())["metrics"]


def test_version(capsys):
    from speecheq import __version__
    from speecheq.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"speecheq {__version__}"
