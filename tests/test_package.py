"""The pretrained package: what it holds, that it loads without the recipe, and one-line errors."""

import contextlib
import logging
import shutil

import pytest
import torch

from speecheq.checkpoint import TRAINING_DATA_KEY, load_model
from speecheq.errors import SpeechEQError
from speecheq.package import FORMAT_VERSION, corpus_categories, load_package, package_from_exp, save_package


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


def test_corpus_map_comes_from_the_checkpoint(trained_exp):
    meta = torch.load(trained_exp / "epoch-2.pt", weights_only=False)
    assert meta[TRAINING_DATA_KEY]["corpus_emotions"] == {
        "synth": ["angry", "fear", "happy", "neutral", "sad", "surprise"]
    }
    # An in-house corpus registered only inside its recipe: its training data says which categories it has.
    cats = ["neutral", "happy", "sad", "angry"]
    # (A name no other test registers: labels.register_corpus tables are process-wide.)
    inhouse = "inhouse_only_in_its_recipe"
    assert corpus_categories(cats, [inhouse, "emodb", "unknown"], {inhouse: ["sad", "happy", "calm"]}) == {
        inhouse: ["happy", "sad"],
        "emodb": ["neutral", "happy", "sad", "angry"],
    }


@contextlib.contextmanager
def speecheq_warnings():
    """The warnings of the speecheq logger: train() stops it propagating, so caplog sees them or not
    depending on which test trained first."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("speecheq")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_a_run_whose_manifests_are_gone_packages_as_it_trained(synth_data, tmp_path):
    """Trimming threshold, front end and corpus map come from the checkpoint, not from the manifests."""
    from lhotse import CutSet, load_manifest
    from lhotse.utils import fastcopy

    from conftest import train_args
    from speecheq.features import trim_silence
    from speecheq.train import train

    # Not in speecheq.labels, and without "surprise": only the training cuts can say what it has.
    inhouse = "inhouse_whose_manifests_moved"
    data = tmp_path / "data"
    shutil.copytree(synth_data / "lang", data / "lang")
    (data / "fbank").mkdir()
    for split in ("train", "dev"):
        cuts = []
        for cut in load_manifest(synth_data / f"fbank/synth_cuts_{split}.jsonl.gz"):
            sups = [fastcopy(s, custom={**s.custom, "corpus": inhouse}) for s in cut.supervisions]
            if split == "dev" or sups[0].custom.get("emotion") != "surprise":
                cuts.append(fastcopy(trim_silence(cut, threshold_db=35), supervisions=sups))
        # The file name says synth: guessing from names would give the wrong corpus.
        CutSet.from_cuts(cuts).to_file(data / f"fbank/synth_cuts_{split}.jsonl.gz")
    exp = tmp_path / "exp"
    train(train_args(data, exp, "--num-epochs", "1"))
    shutil.rmtree(data)
    with speecheq_warnings() as warnings:
        package = package_from_exp(exp, epoch=1)
    assert not warnings, [r.getMessage() for r in warnings]
    assert package["feature_config"]["trim_silence_db"] == 35
    assert package["feature_config"]["extractor"] == "fbank" and package["feature_config"]["lhotse"]["dither"] == 0.0
    assert package["corpus_categories"] == {inhouse: ["neutral", "happy", "sad", "angry", "fear"]}


def test_a_checkpoint_of_older_speecheq_packages_with_the_defaults_and_one_warning(trained_exp, tmp_path):
    exp = tmp_path / "old"
    exp.mkdir()
    ckpt = torch.load(trained_exp / "epoch-2.pt", weights_only=False)
    del ckpt[TRAINING_DATA_KEY]  # the weights' fingerprint does not cover it
    torch.save(ckpt, exp / "epoch-2.pt")
    with speecheq_warnings() as warnings:
        package = package_from_exp(exp, epoch=2)
    assert len(warnings) == 1 and "records nothing of its training data" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert package["feature_config"]["trim_silence_db"] == 0 and package["feature_config"]["extractor"] == "fbank"
    assert package["corpus_categories"] == {}
    given = package_from_exp(exp, epoch=2, corpora=["synth"], trim_silence_db=30)
    assert given["feature_config"]["trim_silence_db"] == 30 and list(given["corpus_categories"]) == ["synth"]
