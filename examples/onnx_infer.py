#!/usr/bin/env python3
"""A SpeechEQ model.onnx without speecheq: onnxruntime, numpy, soundfile and lhotse only.

    python examples/onnx_infer.py exp/x/model.onnx a.wav b.flac ...   # one JSON line per file

The front end is rebuilt from the model's metadata (local/export.py --onnx writes it) the way
`speecheq infer` does it: down-mix, resampling, silence trimming, then for an fbank model fbank,
per-file CMVN and padding, for an ssl model (metadata input_kind=audio) the samples themselves
(the graph normalises them). The record holds what `speecheq infer` gives, CTC tokens included,
except the duration. Files longer than 30 s, which `speecheq infer` splits at pauses, are run whole.
"""

import json
import math
import os
import sys

import numpy as np
import onnxruntime as ort
import soundfile as sf
from lhotse.features.base import FeatureExtractor


def read_audio(path, sr):
    if not os.path.isfile(path):  # libsndfile would only say "System error"
        raise ValueError("file not found")
    audio, file_sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if file_sr != sr:  # speecheq's resampler (scipy is there wherever lhotse resamples)
        from scipy.signal import resample_poly

        g = math.gcd(file_sr, sr)
        audio = resample_poly(audio, sr // g, file_sr // g).astype(np.float32)
    return audio


def speech_frames(logmel, meta, frame_shift_ms, min_frames):
    """(first, last) frames that silence trimming keeps: those within trim_silence_db of the
    loudest frame, plus a margin; all of them when that would leave fewer than min_frames."""
    if float(meta["trim_silence_db"]) <= 0:
        return 0, len(logmel)
    energy = np.logaddexp.reduce(logmel.astype(np.float64), axis=1)
    loud = np.flatnonzero(energy > energy.max() - float(meta["trim_silence_db"]) * np.log(10.0) / 10.0)
    margin = int(round(float(meta["trim_margin_s"]) * 1000 / frame_shift_ms))
    first, last = max(int(loud[0]) - margin, 0), min(int(loud[-1]) + 1 + margin, len(logmel))
    return (first, last) if last - first >= min_frames else (0, len(logmel))


def fbank_input(audio, meta, fbank):
    """(1, T, F) features for a graph that reads fbank frames."""
    sr, min_frames = int(meta["sample_rate"]), int(meta["min_frames"])
    feats = fbank.extract(audio, sr)
    first, last = speech_frames(feats[:, : int(meta["num_mel_bins"])], meta, float(meta["frame_shift_ms"]), min_frames)
    feats = feats[first:last]
    if meta["speaker_cmvn"] == "1":  # trained with per-speaker CMVN: the file's own statistics stand in
        mean = feats.astype(np.float64).mean(axis=0)
        std = np.sqrt(np.maximum((feats.astype(np.float64) ** 2).mean(axis=0) - mean**2, 1e-8))
        feats = ((feats - mean) / std).astype(np.float32)
    if len(feats) < min_frames:
        raise ValueError(f"too short: {len(feats)} feature frames, the model needs {min_frames}")
    padded = np.zeros((1, max(len(feats), int(meta["min_padded_frames"])), feats.shape[1]), np.float32)
    padded[0, : len(feats)] = feats  # padding never changes a result
    return padded, len(feats)


def audio_input(audio, meta):
    """(1, N) samples for a graph that reads audio (an ssl model). Its frames hold no energy: speecheq
    trims the audio where the fbank of trim_feature_config (the fbank stage's default) says silence.
    (Its 7-frame floor needs no check: the 0.25 s margin never leaves fewer.)"""
    trim_fbank = FeatureExtractor.from_dict(json.loads(meta["trim_feature_config"]))
    sr, shift, first, last = int(meta["sample_rate"]), trim_fbank.frame_shift, 0, len(audio)
    logmel = trim_fbank.extract(audio, sr)
    lo, hi = speech_frames(logmel, meta, 1000 * shift, 1)
    if (lo, hi) != (0, len(logmel)):  # frame bounds to sample bounds
        first, last = int(round(lo * shift * sr)), min(int(round(hi * shift * sr)), len(audio))
    samples = audio[first:last]
    if len(samples) < int(meta["min_samples"]):
        raise ValueError(f"too short: {len(samples)} samples, the model needs {meta['min_samples']}")
    return samples[None].astype(np.float32), len(samples)


def main(model, paths):
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("model_type") != "speecheq":
        sys.exit(f"ERROR: {model} has no SpeechEQ metadata (export it again with local/export.py --onnx)")
    reads_audio = meta.get("input_kind") == "audio"
    if reads_audio and "trim_feature_config" not in meta:
        sys.exit(
            f"ERROR: {model}: an audio graph without trim_feature_config (export it again with local/export.py --onnx)"
        )
    if not reads_audio:
        try:  # speecheq's own extractors (fbank-pitch) are unknown to lhotse; kaldifeat needs kaldifeat
            fbank = FeatureExtractor.from_dict(json.loads(meta["feature_config"]))
            fbank.extract(np.zeros(int(meta["sample_rate"]) // 10, np.float32), int(meta["sample_rate"]))
        except Exception as e:
            why = f"{type(e).__name__}: {e}".splitlines()[0]
            sys.exit(
                f"ERROR: {model}: feature type {meta['feature_type']!r} cannot be rebuilt with lhotse alone ({why})"
            )
    categories, tasks, tokens = meta["categories"].split(","), meta["tasks"].split(","), meta["tokens"].split()
    # speecheq infer's key: a char or bpe string under "phones" would be read as phones.
    ctc_key = "phones" if meta["ctc_units"] == "phone" else "tokens"
    for path in paths:
        try:
            audio = read_audio(path, int(meta["sample_rate"]))
            x, n = audio_input(audio, meta) if reads_audio else fbank_input(audio, meta, fbank)
        except Exception as e:  # unreadable or too short: one line, the other files go on
            print(json.dumps({"path": path, "error": str(e).splitlines()[0]}), flush=True)
            continue
        values = session.run(None, {"features": x, "feature_lens": np.array([n], dtype=np.int64)})
        out = {o.name: v[0] for o, v in zip(session.get_outputs(), values)}  # by name: the graph's order may change
        probs = out["emotion_probs"]
        rec = {
            "path": path,
            "category": categories[int(probs.argmax())],
            "probabilities": dict(zip(categories, probs.tolist())),
        }
        rec["intensity"] = float(out["intensity"]) if "intensity" in tasks else None
        gender = out["gender_probs"] if "gender" in tasks else None
        rec["gender"] = None if gender is None else meta["gender_labels"].split(",")[gender.argmax()]
        rec["gender_probability"] = None if gender is None else float(gender.max())
        rec[ctc_key] = None
        if "ctc" in tasks and tokens:
            # Greedy CTC over the valid encoder frames: best token per frame, repeats merged, blank (0) dropped.
            best = out["ctc_log_probs"][: int(out["encoder_lens"])].argmax(axis=-1)
            keep = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
            rec[ctc_key] = " ".join(tokens[t] for t in best[keep])
        if ctc_key != "phones":
            rec["units"] = meta["ctc_units"]
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: onnx_infer.py MODEL.onnx AUDIO...")
    main(sys.argv[1], sys.argv[2:])
