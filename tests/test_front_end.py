"""The front end has one owner (speecheq.features.FrontEnd): a 20 ms front end flows into the model's
output frame rate, alignment times, trimming, batch budgets, datasets and the package."""

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from lhotse import Fbank, FbankConfig
from lhotse.features.base import FeatureExtractor, register_extractor

from speecheq.align import align_cuts
from speecheq.checkpoint import TRAINING_DATA_KEY, recorded_front_end
from speecheq.errors import SpeechEQError
from speecheq.features import FrontEnd, default_front_end
from speecheq.package import load_package, package_from_model, save_package
from tests import test_model
from tests.conftest import tone

PACKAGE = Path(__file__).resolve().parents[1] / "speecheq"
SHIFT_LITERAL = re.compile(r"0\.01\b|0\.04\b|0\.02\b")
# Literals of those values that are no frame shift of the model's front end, each with its reason.
NOT_FRONT_END = {
    ("baseline.py", "C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)"): "the SVM's regularisation grid",
    ("cli.py", "default=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0],"): "the SVM's regularisation grid",
    ("options.py", "--final-lr-ratio"): "a learning-rate ratio",
    ("options.py", "final_lr_ratio: float"): "a learning-rate ratio",
    ("train.py", "final_ratio: float"): "a learning-rate ratio",
    ("segments.py", "ENERGY_HOP = 0.01"): "the pause finder's own waveform energy hop, before any front end",
    ("corpora/synth.py", "frame = max(1, int(0.01 * sr))"): "espeak-ng waveform silence frames, before any front end",
}
TOKENS = ["<blk>", "AA", "B", "K"]
CATEGORIES = ["neutral", "happy", "sad", "angry"]


def fbank_20ms() -> Fbank:
    return Fbank(FbankConfig(frame_shift=0.02, frame_length=0.04))


def tiny_model():
    return test_model.tiny_model(num_emotions=len(CATEGORIES), vocab_size=len(TOKENS))


def test_no_frame_shift_literal_outside_the_front_end():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name == "features.py":  # the owner
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SHIFT_LITERAL.search(line) and not any(
                where == name and known in line for where, known in NOT_FRONT_END
            ):
                found.append(f"speecheq/{name}:{number}: {line.strip()}")
    assert not found, "frame shifts belong to speecheq.features.FrontEnd:\n" + "\n".join(found)


def test_default_front_end_is_lhotse_fbank_as_recorded_before():
    front_end = default_front_end()
    assert (front_end.frame_shift, front_end.frame_length, front_end.sampling_rate) == (0.01, 0.025, 16000)
    assert front_end.feature_dim == front_end.energy_dims == 80 and front_end.name == "fbank"
    assert front_end.output_frame_shift(tiny_model().ctc_subsampling) == 0.04
    # The shortest cut the trainer keeps, as the literal it replaced computed it.
    assert front_end.min_duration(7) == 7 * 0.01 + 0.015
    pitch = FrontEnd.named("fbank-pitch", 84)
    assert pitch.feature_dim == 84 and pitch.energy_dims == 80 and pitch.feature_config()["frame_shift"] == 0.01


def test_a_20ms_front_end_flows_into_model_rate_alignment_and_package(tmp_path):
    front_end = FrontEnd.from_extractor(fbank_20ms())
    model = tiny_model()
    assert front_end.frame_shift == 0.02 and front_end.min_duration(7) == pytest.approx(0.16)
    assert front_end.output_frame_shift(model.ctc_subsampling) == pytest.approx(0.08)

    # Checkpoints record it; the align stage reads it back for its times.
    recorded = {TRAINING_DATA_KEY: {"feature_config": front_end.feature_config()}}
    assert recorded_front_end(recorded) == front_end
    batch = {
        "features": torch.randn(1, 60, 80) - 5,
        "feature_lens": torch.tensor([60]),
        "phones": torch.tensor([[1, 2]]),
        "phone_lens": torch.tensor([2]),
        "cut_ids": ["a"],
    }
    shift = recorded_front_end(recorded).output_frame_shift(model.ctc_subsampling)
    ((_, items),) = align_cuts(model, [batch], TOKENS, frame_shift=shift)
    assert all(round(i.start / 0.08, 6).is_integer() and round(i.duration / 0.08, 6).is_integer() for i in items)

    # The package records the front end and the CTC frames' rate; inference rebuilds the extractor.
    raw = package_from_model(
        model, categories=CATEGORIES, tokens=TOKENS, features=front_end.feature_config(), trim_silence_db=30
    )
    assert raw["feature_config"]["frame_shift"] == 0.02 and raw["feature_config"]["frame_length"] == 0.04
    assert raw["frame_shift"] == pytest.approx(0.08)
    pkg = load_package(save_package(raw, tmp_path / "pkg.pt"))
    assert pkg.front_end == front_end and pkg.frame_shift == pytest.approx(0.08)
    assert pkg.make_extractor().frame_shift == 0.02

    from speecheq.infer import Inferencer, Source, make_engine

    audio = np.concatenate([np.zeros(16000, np.float32), tone(1.0, seed=4), np.zeros(16000, np.float32)])
    runner = Inferencer(pkg, make_engine(pkg))
    (unit,) = runner.prepare(Source("tone", lambda: audio)).units
    # Trimmed on 20 ms frames: the second of tone plus the 0.25 s margins, its start counted in 20 ms.
    assert 1.4 < unit.feats.shape[0] * 0.02 < 1.6 and 0.7 < unit.start < 0.8
    assert round(unit.start / 0.02, 6).is_integer()


def test_old_packages_default_what_they_lack(tmp_path):
    raw = package_from_model(tiny_model(), categories=CATEGORIES, tokens=TOKENS)
    del raw["frame_shift"]
    raw["feature_config"] = {"extractor": "fbank", "num_mel_bins": 80, "sampling_rate": 16000}
    pkg = load_package(save_package(raw, tmp_path / "old.pt"))
    assert pkg.frame_shift == 0.04 and pkg.front_end == default_front_end()
    assert pkg.make_extractor().frame_shift == 0.01
    assert recorded_front_end({}) == default_front_end()


def test_dataset_reads_through_the_front_ends_input_strategy(tmp_path):
    from lhotse import CutSet, LilcomChunkyWriter, Recording
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    from speecheq.data import SpeechEQDataset
    from speecheq.labels import LabelScheme
    from tests.conftest import write_wav

    recording = Recording.from_file(write_wav(tmp_path / "a.wav", tone(1.0, seed=5)))
    supervision = dummy_supervision(0, duration=1.0)
    supervision.custom = {"emotion": "happy", "corpus": "synth"}
    cut = dummy_cut(0, duration=1.0, recording=recording, supervisions=[supervision]).with_id("a")
    scheme = LabelScheme.from_preset("4class")
    fbank20 = FrontEnd.from_extractor(fbank_20ms())

    # Features computed on the fly by the front end's extractor: 50 frames for a second.
    on_the_fly = FrontEnd(fbank20.lhotse, input="on-the-fly")
    batch = SpeechEQDataset(scheme, front_end=on_the_fly)[CutSet([cut])]
    assert batch["features"].shape == (1, 50, 80) and batch["feature_lens"].tolist() == [50]

    # Stored features: read as stored, and refused by a dataset whose front end frames otherwise.
    with LilcomChunkyWriter(tmp_path / "feats") as storage:
        stored = cut.compute_and_store_features(fbank_20ms(), storage)
    batch = SpeechEQDataset(scheme, front_end=fbank20)[CutSet([stored])]
    assert batch["features"].shape == (1, 50, 80)
    with pytest.raises(SpeechEQError, match="features every 0.02 s"):
        SpeechEQDataset(scheme)[CutSet([stored])]


@dataclass
class FakeSSLConfig:
    frame_shift: float = 0.02
    dim: int = 768
    sampling_rate: int = 16000

    def to_dict(self):
        return asdict(self)

    @staticmethod
    def from_dict(data):
        return FakeSSLConfig(**data)


@register_extractor
class FakeSSL(FeatureExtractor):
    """Stands for an SSL encoder's frames: describing it must not build it (that would load a model)."""

    name = "speecheq-test-fake-ssl"
    config_type = FakeSSLConfig

    def __init__(self, config=None):
        raise AssertionError("a front end is described from its config, not by building its extractor")

    @property
    def frame_shift(self) -> float:
        return self.config.frame_shift

    def feature_dim(self, sampling_rate: int) -> int:
        return self.config.dim

    def extract(self, samples, sampling_rate):
        raise NotImplementedError


def test_an_ssl_like_front_end_reads_audio_and_has_no_energies_to_trim():
    from lhotse.dataset.input_strategies import AudioSamples

    front_end = FrontEnd({**FakeSSLConfig().to_dict(), "feature_type": FakeSSL.name}, input="audio")
    assert front_end.frame_shift == 0.02 and front_end.feature_dim == 768 and front_end.energy_dims == 0
    assert front_end.frame_length == 0.02 and front_end.name == FakeSSL.name
    assert front_end.output_frame_shift(2) == pytest.approx(0.04)
    assert isinstance(front_end.input_strategy(), AudioSamples)
    assert FrontEnd.from_feature_config(front_end.feature_config(), input="audio") == front_end
