"""Command-line options of the training and decoding stages, and the process's thread count.

No torch here: ``local/train.py --help`` and ``local/decode.py --help`` build these
parsers, and a help text must come back at once, not after torch's import (seconds
on a loaded machine).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speecheq.labels import PRESETS as LABEL_PRESETS
from speecheq.model.config import PRESETS as MODEL_PRESETS
from speecheq.tasks import TABLE as TASK_TABLE
from speecheq.tasks import default_tasks

#: Stage scripts run one torch thread per process: recipes get their parallelism from
#: processes (--nj, folds side by side), and on a loaded machine intra-op threads cost
#: more than they give (bench/infer.py prints the ratio; RESULTS.md "Threads").
RECIPE_THREADS = 1


def add_num_threads(parser, default: int = RECIPE_THREADS) -> None:
    parser.add_argument(
        "--num-threads",
        type=int,
        default=default,
        help="torch CPU threads in this process (0: torch's default, one per core or $OMP_NUM_THREADS)",
    )


def set_num_threads(n: int) -> None:
    """The one place that sets torch's intra-op thread count (0 or less: leave torch's default)."""
    if n and n > 0:
        import torch

        torch.set_num_threads(n)


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train the SpeechEQ multitask model.", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    g = p.add_argument_group("data")
    g.add_argument("--train-cuts", type=Path, nargs="+", required=True, help="one or more cut manifests with features")
    g.add_argument(
        "--dev-cuts", type=Path, nargs="*", default=[], help="validation cut manifests (best-valid.pt by UA)"
    )
    g.add_argument(
        "--lang-dir", type=Path, default=Path("data/lang"), help="folder with tokens.txt (needed by the ctc task)"
    )
    g.add_argument(
        "--label-preset",
        default="4class",
        choices=sorted(LABEL_PRESETS),
        help="the unified categories the emotion head learns (docs/unified-metric.md)",
    )
    g.add_argument("--max-duration", type=float, default=120.0, help="seconds of audio per batch")
    g.add_argument(
        "--max-utterance-duration", type=float, default=20.0, help="longer training cuts are dropped (counted)"
    )
    g.add_argument("--balanced", action="store_true", help="class-balanced sampling (inverse class frequency)")
    g.add_argument("--corpus-weights", default="", help="corpus=weight,... sampling shares across corpora")
    g.add_argument(
        "--speaker-cmvn",
        action="store_true",
        help="normalise fbank per speaker over each speaker's own utterances (uses test speakers' unlabelled audio)",
    )
    g.add_argument("--num-workers", type=int, default=0, help="dataloader workers (0 keeps resume bit-exact)")
    g = p.add_argument_group("augmentation (training cuts only)")
    g.add_argument(
        "--speed-perturb",
        default="",
        metavar="FACTORS",
        help="e.g. 0.9,1.1: each training cut runs at one of these speeds or 1.0, drawn per epoch; "
        "perturbed features are computed on the fly",
    )
    g.add_argument(
        "--random-crop",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="train on a random window of this length of longer cuts (their phones are not used)",
    )
    g.add_argument(
        "--mixup-alpha",
        type=float,
        default=0.0,
        help="mix fbank within each batch with lam ~ Beta(a, a) and soft emotion targets (0: off)",
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--model-preset", default="small", choices=sorted(MODEL_PRESETS), help="encoder size (docs/model.md)"
    )
    g.add_argument("--model-config", default="", help="JSON overrides of the preset, e.g. '{\"num_layers\": 2}'")
    g = p.add_argument_group("tasks and loss")
    g.add_argument(
        "--tasks",
        default=",".join(default_tasks()),
        help="comma list of active tasks; 'speaker' adds a gradient-reversal speaker adversary",
    )
    for t, task in TASK_TABLE.items():
        g.add_argument(
            f"--{t}-weight",
            type=float,
            default=task.weight,
            help=f"weight of the {t} loss in the sum (0: the task is off)",
        )
    g.add_argument(
        "--intensity-loss",
        default="mse",
        choices=["mse", "ccc"],
        help="intensity regression loss: mean squared error, or 1 - concordance correlation",
    )
    g = p.add_argument_group("optimisation")
    g.add_argument("--num-epochs", type=int, default=30, help="epochs to train (epoch-N.pt after each)")
    g.add_argument("--start-epoch", type=int, default=1, help="resume from epoch-(N-1).pt")
    g.add_argument("--start-batch", type=int, default=0, help="resume from checkpoint-N.pt (overrides --start-epoch)")
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW), reached after the warm-up")
    g.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay")
    g.add_argument("--warmup-batches", type=int, default=100, help="linear learning-rate warm-up, in batches")
    g.add_argument(
        "--lr-schedule",
        default="noam",
        choices=["noam", "cosine"],
        help="after warm-up: inverse square root (open-ended), or cosine down to --final-lr-ratio "
        "at the end of --num-epochs (anneals within a fixed budget)",
    )
    g.add_argument("--final-lr-ratio", type=float, default=0.01, help="cosine: last learning rate / --lr")
    g.add_argument("--grad-clip", type=float, default=5.0, help="clip the gradient norm to this")
    g.add_argument("--use-fp16", action="store_true", help="float16 autocast with a grad scaler (CUDA)")
    g.add_argument("--use-bf16", action="store_true", help="bfloat16 autocast")
    g.add_argument("--seed", type=int, default=42, help="seeds model initialisation, sampling and augmentation")
    g.add_argument("--deterministic", action="store_true", help="deterministic kernels (bit-exact resume on CPU)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    add_num_threads(g)
    g = p.add_argument_group("checkpoints and logs")
    g.add_argument("--exp-dir", type=Path, required=True, help="output folder: checkpoints, log/, tensorboard/")
    g.add_argument("--save-every-n", type=int, default=0, help="checkpoint-N.pt every N batches (0: off)")
    g.add_argument("--keep-last-k", type=int, default=3, help="batch checkpoints to keep")
    g.add_argument("--average-period", type=int, default=10, help="update the running averaged model every N batches")
    g.add_argument("--log-interval", type=int, default=20, help="log the running training losses every N batches")
    g.add_argument(
        "--tensorboard", type=int, default=1, choices=[0, 1], help="write TensorBoard scalars to EXP_DIR/tensorboard"
    )
    g.add_argument("--stop-after-batches", type=int, default=0, help=argparse.SUPPRESS)  # tests: simulate a kill
    return p


def decode_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Decode test sets with a trained SpeechEQ model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--exp-dir", type=Path, required=True, help="training folder with epoch-*.pt / best-valid.pt")
    p.add_argument("--cuts", type=Path, nargs="+", help="test cut manifests; the set name is the file name")
    p.add_argument("--epoch", type=int, default=0, help="last epoch to use (0: the latest)")
    p.add_argument("--avg", type=int, default=1, help="average this many epochs ending at --epoch")
    p.add_argument(
        "--use-averaged-model", action="store_true", help="use the running average between epoch-avg and epoch"
    )
    p.add_argument("--checkpoint", default="", help="a checkpoint file instead (e.g. best-valid.pt)")
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per batch")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    add_num_threads(p)
    p.add_argument("--no-corpus-aware", action="store_true", help="decide among all preset categories")
    p.add_argument("--results", type=Path, default=None, help="append a row to this RESULTS.md")
    p.add_argument("--run-name", default="", help="label for the RESULTS.md row")
    p.add_argument(
        "--folds",
        type=Path,
        nargs="*",
        default=None,
        help="metrics.json files of several folds: print and write their mean and std instead of decoding",
    )
    p.add_argument("--summary-out", type=Path, default=None, help="with --folds: where to write the summary JSON")
    return p
