#!/usr/bin/env python3
"""A SpeechEQ model.onnx without speecheq: onnxruntime, numpy and lhotse's Fbank only.

    python examples/onnx_infer.py exp/x/model.onnx a.wav b.flac ...   # one JSON line per file

The front end is rebuilt from the model's metadata (local/export.py --onnx writes it) the way
`speecheq infer` does it: down-mix, fbank, silence trimming, per-file CMVN, padding. Files longer
than 30 s, which `speecheq infer` splits at pauses, are run whole here.
"""

import json
import math
import os
import sys

import numpy as np
import onnxruntime as ort
import soundfile as sf
from lhotse.features.base import FeatureExtractor


def features(path, meta, fbank):
    if not os.path.isfile(path):  # libsndfile would only say "System error"
        raise ValueError("file not found")
    audio, file_sr = sf.read(path, dtype="float32", always_2d=True)
    audio, sr = audio.mean(axis=1), int(meta["sample_rate"])
    if file_sr != sr:  # speecheq's resampler (scipy is there wherever lhotse resamples)
        from scipy.signal import resample_poly

        g = math.gcd(file_sr, sr)
        audio = resample_poly(audio, sr // g, file_sr // g).astype(np.float32)
    feats, min_frames = fbank.extract(audio, sr), int(meta["min_frames"])
    if float(meta["trim_silence_db"]) > 0:  # keep what is within trim_silence_db of the loudest frame, plus a margin
        energy = np.logaddexp.reduce(feats[:, : int(meta["num_mel_bins"])].astype(np.float64), axis=1)
        loud = np.flatnonzero(energy > energy.max() - float(meta["trim_silence_db"]) * np.log(10.0) / 10.0)
        margin = int(round(float(meta["trim_margin_s"]) * 1000 / float(meta["frame_shift_ms"])))
        first, last = max(int(loud[0]) - margin, 0), min(int(loud[-1]) + 1 + margin, len(feats))
        feats = feats[first:last] if last - first >= min_frames else feats
    if meta["speaker_cmvn"] == "1":  # trained with per-speaker CMVN: the file's own statistics stand in
        mean = feats.astype(np.float64).mean(axis=0)
        std = np.sqrt(np.maximum((feats.astype(np.float64) ** 2).mean(axis=0) - mean**2, 1e-8))
        feats = ((feats - mean) / std).astype(np.float32)
    if len(feats) < min_frames:
        raise ValueError(f"too short: {len(feats)} feature frames, the model needs {min_frames}")
    return feats


def main(model, paths):
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("model_type") != "speecheq":
        sys.exit(f"ERROR: {model} has no SpeechEQ metadata (export it again with local/export.py --onnx)")
    fbank = FeatureExtractor.from_dict(json.loads(meta["feature_config"]))
    categories, tasks = meta["categories"].split(","), meta["tasks"].split(",")
    for path in paths:
        try:
            feats = features(path, meta, fbank)
        except Exception as e:  # unreadable or too short: one line, the other files go on
            print(json.dumps({"path": path, "error": str(e).splitlines()[0]}), flush=True)
            continue
        padded = np.zeros((1, max(len(feats), int(meta["min_padded_frames"])), feats.shape[1]), np.float32)
        padded[0, : len(feats)] = feats  # padding never changes a result
        probs, intensity, gender, *_ = session.run(None, {"features": padded, "feature_lens": np.array([len(feats)])})
        rec = {
            "path": path,
            "category": categories[int(probs[0].argmax())],
            "probabilities": dict(zip(categories, probs[0].tolist())),
        }
        rec["intensity"] = float(intensity[0]) if "intensity" in tasks else None
        rec["gender"] = meta["gender_labels"].split(",")[int(gender[0].argmax())] if "gender" in tasks else None
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: onnx_infer.py MODEL.onnx AUDIO...")
    main(sys.argv[1], sys.argv[2:])
