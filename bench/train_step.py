#!/usr/bin/env python3
"""Training throughput and inference real-time factor of the model presets on CPU.

For each preset, in its own process (so peak RSS is its own): training steps
(forward, all four task losses, backward, AdamW) on batches of 3-second
utterances, reported as seconds of audio trained per second; and eval-mode
forward passes, reported as real-time factor (compute seconds per audio second).
Inputs are random fbank of realistic shape: the model's cost does not depend on
the values.

    python bench/train_step.py [--threads 1] [--batch 16] [--seconds 3] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def child(preset: str, threads: int, batch: int, seconds: float, steps: int) -> dict:
    import torch

    from speecheq.losses import MultitaskLoss
    from speecheq.model import SpeechEQModel, config_from_preset

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SpeechEQModel(config_from_preset(preset, num_emotions=8, vocab_size=40))
    frames = int(seconds * 100)
    feats = torch.randn(batch, frames, 80)
    lens = torch.full((batch,), frames)
    targets = {
        "emotion": torch.randint(0, 8, (batch,)),
        "intensity": torch.rand(batch),
        "gender": torch.randint(0, 2, (batch,)),
        "phones": torch.randint(1, 40, (batch, 30)),
        "phone_lens": torch.full((batch,), 30),
    }
    loss_fn = MultitaskLoss()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    model.train()

    def step():
        loss, _ = loss_fn(model(feats, lens), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    train_time = (time.perf_counter() - t0) / steps
    model.eval()
    one = torch.randn(1, frames, 80)
    with torch.inference_mode():
        model(one, torch.tensor([frames]))
        t0 = time.perf_counter()
        for _ in range(steps * 4):
            model(one, torch.tensor([frames]))
        infer_time = (time.perf_counter() - t0) / (steps * 4)
    return {
        "preset": preset,
        "parameters": model.num_parameters(),
        "train_audio_seconds_per_second": batch * seconds / train_time,
        "train_step_seconds": train_time,
        "infer_rtf": infer_time / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["small", "default"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.batch, args.seconds, args.steps)))
        return
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"CPU, {args.threads} thread(s); training batches of {args.batch} x {args.seconds:g} s; inference one utterance"
    )
    print("| preset | parameters | train: s audio / s | train step s | inference RTF | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for preset in args.presets:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            preset,
            "--threads",
            str(args.threads),
            "--batch",
            str(args.batch),
            "--seconds",
            str(args.seconds),
            "--steps",
            str(args.steps),
        ]
        r = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
            .stdout.strip()
            .splitlines()[-1]
        )
        print(
            f"| {preset} | {r['parameters']:,} | {r['train_audio_seconds_per_second']:.1f} | "
            f"{r['train_step_seconds']:.3f} | {r['infer_rtf']:.4f} | {r['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
