"""The pretrained package: what it holds, that it loads without the recipe, and one-line errors."""

import shutil

import pytest
import torch

from speecheq.checkpoint import load_model
from speecheq.errors import SpeechEQError
from speecheq.package import (
    FORMAT_VERSION,
    corpus_categories,
    load_package,
    observed_corpora,
    package_from_exp,
    save_package,
)


@pytest.fixture(scope="module")
def package_path(trained_exp, tmp_path_factory):
    # Built from a copy of the exp dir that is deleted afterwards: loading must not need it.
    copy = tmp_path_factory.mktemp("exp_copy") / "tiny"
    copy.mkdir()
    for name in ("epoch-1.pt", "epoch-2.pt"):
        shutil.copy(trained_exp / name, copy / name)
    path = tmp_path_factory.mktemp("pkg") / "speecheq-package.pt"
    save_package(package_from_exp(copy, epoch=2, avg=2), path)
    shutil.rmtree(copy)
    return path


def test_package_holds_everything_inference_needs(package_path, trained_exp):
    raw = torch.load(package_path, weights_only=True)  # plain types only: no code runs when opening one
    assert raw["format"] == "speecheq-package" and raw["format_version"] == FORMAT_VERSION
    ckpt = torch.load(trained_exp / "epoch-2.pt", weights_only=False)
    assert raw["categories"] == ckpt["categories"] == ["neutral", "happy", "sad", "angry", "fear", "surprise"]
    assert raw["label_preset"] == "6class" and raw["tokens"] == ckpt["tokens"] and raw["tokens"][0] == "<blk>"
    assert raw["model_config"] == ckpt["model_config"] and raw["tasks"] == ckpt["tasks"]
    assert raw["corpus_categories"] == {"synth": ["neutral", "happy", "sad", "angry", "fear", "surprise"]}
    assert raw["feature_config"]["num_mel_bins"] == 80 and raw["feature_config"]["sampling_rate"] == 16000
    assert raw["feature_config"]["frame_length"] == 0.025 and raw["feature_config"]["frame_shift"] == 0.01
    assert raw["feature_config"]["extractor"] == "fbank" and raw["feature_config"]["lhotse"]["dither"] == 0.0
    assert raw["speaker_cmvn"] is False and raw["speecheq_version"] and raw["source"]["weights"] == "epoch-2-avg-2"
    assert raw["normalization"]["mean"] == raw["model_state"]["feature_mean"].tolist()
    assert raw["normalization"]["std"] == raw["model_state"]["feature_std"].tolist()
    assert raw["normalization"]["mean"] != [0.0] * 80


def test_loaded_package_equals_the_averaged_checkpoint_weights(package_path, trained_exp):
    pkg = load_package(package_path)
    reference, _, _ = load_model(trained_exp, epoch=2, avg=2)
    assert not pkg.model.training
    assert pkg.categories[3] == "angry" and pkg.tokens[0] == "<blk>" and pkg.sampling_rate == 16000
    assert pkg.allowed_categories("emodb") == ["neutral", "happy", "sad", "angry", "fear"]
    with pytest.raises(SpeechEQError, match="unknown corpus 'nope'"):
        pkg.allowed_categories("nope")
    feats, lens = torch.randn(2, 150, 80) - 5, torch.tensor([150, 90])
    with torch.no_grad():
        a, b = pkg.model(feats, lens), reference(feats, lens)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert pkg.make_extractor().extract(torch.zeros(16000).numpy() + 0.01, 16000).shape == (100, 80)


def test_bad_package_files_give_one_line_errors(package_path, trained_exp, tmp_path):
    data = package_path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a model\n")
    torch.save({"something": 1}, tmp_path / "other.pt")
    raw = torch.load(package_path, weights_only=True)
    torch.save({**raw, "format_version": FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    torch.save({**raw, "categories": raw["categories"][:2]}, tmp_path / "inconsistent.pt")
    cases = {
        "truncated.pt": "corrupt or truncated",
        "text.pt": "corrupt or truncated",
        "other.pt": "no format marker",
        "newer.pt": "newer than this speecheq reads",
        "inconsistent.pt": "2 categories for 6 emotion outputs",
        "missing.pt": "model package not found",
    }
    for name, message in cases.items():
        with pytest.raises(SpeechEQError, match=message) as e:
            load_package(tmp_path / name)
        assert "\n" not in str(e.value), name
    with pytest.raises(SpeechEQError, match="training checkpoint.*local/export.py"):
        load_package(trained_exp / "epoch-1.pt")


def test_corpus_map_comes_from_the_training_manifests(trained_exp):
    meta = torch.load(trained_exp / "epoch-2.pt", weights_only=False)
    assert observed_corpora(meta["train_args"], trained_exp) == {
        "synth": ["angry", "fear", "happy", "neutral", "sad", "surprise"]
    }
    assert observed_corpora({"train_cuts": ["/nowhere/x_cuts_train.jsonl.gz"]}, trained_exp) == {}
    # An in-house corpus registered only inside its recipe: its training data says which categories it has.
    cats = ["neutral", "happy", "sad", "angry"]
    # (A name no other test registers: labels.register_corpus tables are process-wide.)
    inhouse = "inhouse_only_in_its_recipe"
    assert corpus_categories(cats, [inhouse, "emodb", "unknown"], {inhouse: ["sad", "happy", "calm"]}) == {
        inhouse: ["happy", "sad"],
        "emodb": ["neutral", "happy", "sad", "angry"],
    }
