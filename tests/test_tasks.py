"""The task table (speecheq.tasks): a new task is one entry, and training and decoding follow it."""

from __future__ import annotations

import json

from conftest import train_args

from speecheq import tasks


def test_table_keeps_the_order_exported_models_and_old_checkpoints_rely_on():
    from speecheq.engines import INFERENCE_OUTPUTS
    from speecheq.losses import MultitaskLoss

    assert tasks.task_names() == ("emotion", "intensity", "ctc", "gender", "speaker")
    assert MultitaskLoss().weights == {"emotion": 1.0, "intensity": 0.5, "ctc": 0.1, "gender": 0.1}
    assert INFERENCE_OUTPUTS == ("emotion_probs", "intensity", "gender_probs", "ctc_log_probs", "encoder_lens")


def arousal(cut):
    """A toy binary task: high or low arousal, read from the cut's intensity."""
    value = (cut.supervisions[0].custom or {}).get("intensity")
    return None if value is None else ("high" if value >= 0.5 else "low")


def test_a_toy_task_trains_and_decodes(synth_data, tmp_path, monkeypatch):
    import torch

    from speecheq.decode import decode
    from speecheq.options import DecodeConfig, decode_parser
    from speecheq.train import train

    toy = tasks.ClassificationTask("arousal", weight=1.0, classes=("low", "high"), label=arousal)
    monkeypatch.setitem(tasks.TABLE, "arousal", toy)

    exp = tmp_path / "exp"
    train(train_args(synth_data, exp, "--tasks", "emotion,arousal", "--num-epochs", "1"))
    ckpt = torch.load(exp / "epoch-1.pt", map_location="cpu", weights_only=False)
    assert ckpt["tasks"] == {"emotion": 1.0, "arousal": 1.0}
    assert ckpt["model"]["utterance_heads.arousal.weight"].shape[0] == 2

    [metrics_json] = decode(
        DecodeConfig.from_args(
            decode_parser().parse_args(
                ["--exp-dir", str(exp), "--cuts", str(synth_data / "fbank/synth_cuts_test.jsonl.gz"), "--epoch", "1"]
            )
        )
    )
    summary = json.loads(metrics_json.read_text())
    assert summary["arousal"]["count"] > 0 and 0 <= summary["headline"]["arousal_acc"] <= 100
    header, *rows = (metrics_json.parent / "predictions.tsv").read_text().splitlines()
    columns = header.split("\t")
    # Untrained heads (intensity, gender, ctc) have no columns.
    assert columns[-3:] == ["arousal_true", "arousal_pred", "arousal_prob"] and "phones_pred" not in columns
    assert {row.split("\t")[columns.index("arousal_pred")] for row in rows} <= {"low", "high"}
