"""The options of the training and decoding stages, and the process's thread count.

``TrainConfig`` and ``DecodeConfig`` are what ``speecheq.train.train`` and
``speecheq.decode.decode`` take, so the library runs from Python without argv;
their fields hold the defaults, and the parsers (which the scripts and the CLI
share) read them from there and fill a config with ``from_args``.

No torch here: ``local/train.py --help`` and ``local/decode.py --help`` build these
parsers, and a help text must come back at once, not after torch's import (seconds
on a loaded machine).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from speecheq.errors import SpeechEQError
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


def _paths(value: Union[os.PathLike, str, Sequence[Union[os.PathLike, str]]]) -> List[Path]:
    # One manifest given alone would otherwise be read as a sequence of characters.
    return [Path(value)] if isinstance(value, (str, os.PathLike)) else [Path(v) for v in value]


def default_tasks_option() -> str:
    # Read when a config or parser is made, not at import: the task table can grow (tests add a toy task).
    return ",".join(default_tasks())


def default_task_weights() -> Dict[str, float]:
    return {name: task.weight for name, task in TASK_TABLE.items()}


#: --front-end: the cuts' stored features (fbank or fbank-pitch, from the fbank stage), or a
#: self-supervised encoder reading the cuts' audio (speecheq.model.ssl).
FRONT_ENDS = ("fbank", "ssl")


@dataclass(kw_only=True)
class TrainConfig:
    """The training options; ``train_parser()`` describes each one (field ``x_y`` is ``--x-y``,
    ``task_weights[t]`` is ``--t-weight``). A missing weight takes the task table's default."""

    # data
    train_cuts: List[Path]
    dev_cuts: List[Path] = field(default_factory=list)
    lang_dir: Path = Path("data/lang")
    label_preset: str = "4class"
    max_duration: float = 120.0
    max_utterance_duration: float = 20.0
    balanced: bool = False
    corpus_weights: str = ""
    speaker_cmvn: bool = False
    num_workers: int = 0
    # augmentation
    speed_perturb: str = ""
    random_crop: float = 0.0
    copy_paste: float = 0.0
    mixup_alpha: float = 0.0
    # model
    model_preset: str = "small"
    model_config: str = ""
    # front end (docs/ssl.md)
    front_end: str = "fbank"
    ssl_model: Optional[Path] = None
    ssl_finetune_top: int = 0
    # tasks and loss
    tasks: str = field(default_factory=default_tasks_option)
    task_weights: Dict[str, float] = field(default_factory=default_task_weights)
    intensity_loss: str = "mse"
    # optimisation
    num_epochs: int = 30
    start_epoch: int = 1
    start_batch: int = 0
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_batches: int = 100
    lr_schedule: str = "noam"
    final_lr_ratio: float = 0.01
    grad_clip: float = 5.0
    use_fp16: bool = False
    use_bf16: bool = False
    seed: int = 42
    deterministic: bool = False
    device: str = "auto"
    num_threads: int = RECIPE_THREADS
    # checkpoints and logs
    exp_dir: Path
    save_every_n: int = 0
    keep_last_k: int = 3
    average_period: int = 10
    log_interval: int = 20
    tensorboard: int = 1
    stop_after_batches: int = 0

    def __post_init__(self) -> None:
        self.train_cuts = _paths(self.train_cuts)
        self.dev_cuts = _paths(self.dev_cuts)
        self.lang_dir, self.exp_dir = Path(self.lang_dir), Path(self.exp_dir)
        self.ssl_model = None if self.ssl_model is None else Path(self.ssl_model)
        if self.front_end not in FRONT_ENDS:
            raise SpeechEQError(
                f"--front-end: unknown front end {self.front_end!r}; choose from {', '.join(FRONT_ENDS)}"
            )
        if (self.front_end == "ssl") != (self.ssl_model is not None):
            raise SpeechEQError("--front-end ssl and --ssl-model DIR go together (the encoder's folder, docs/ssl.md)")
        unknown = sorted(set(self.task_weights) - set(TASK_TABLE))
        if unknown:
            raise SpeechEQError(f"task_weights: unknown task(s) {unknown}; choose from {', '.join(TASK_TABLE)}")
        self.task_weights = {**default_task_weights(), **self.task_weights}

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        """The config ``train_parser()`` parsed (options other parsers add, as the CLI's, stay out)."""
        given = vars(args)
        weights = {name: given[f"{name}_weight"] for name in TASK_TABLE}
        return cls(**{f.name: given[f.name] for f in fields(cls) if f.name != "task_weights"}, task_weights=weights)

    def as_options(self) -> Dict[str, object]:
        """The options named as ``train_parser()`` names them: the ``train_args`` a checkpoint
        keeps, in the shape checkpoints have always had (one ``<task>_weight`` per task)."""
        options: Dict[str, object] = {}
        for f in fields(self):
            if f.name == "task_weights":
                options.update({f"{name}_weight": weight for name, weight in self.task_weights.items()})
            else:
                options[f.name] = getattr(self, f.name)
        return options


@dataclass(kw_only=True)
class DecodeConfig:
    """The decoding options; ``decode_parser()`` describes each one (field ``x_y`` is ``--x-y``)."""

    exp_dir: Path
    cuts: Optional[List[Path]] = None
    epoch: int = 0
    avg: int = 1
    use_averaged_model: bool = False
    checkpoint: str = ""
    max_duration: float = 200.0
    device: str = "cpu"
    num_threads: int = RECIPE_THREADS
    no_corpus_aware: bool = False
    results: Optional[Path] = None
    run_name: str = ""
    folds: Optional[List[Path]] = None
    summary_out: Optional[Path] = None

    def __post_init__(self) -> None:
        self.exp_dir = Path(self.exp_dir)
        self.cuts = None if self.cuts is None else _paths(self.cuts)
        self.folds = None if self.folds is None else _paths(self.folds)
        self.results = None if self.results is None else Path(self.results)
        self.summary_out = None if self.summary_out is None else Path(self.summary_out)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DecodeConfig":
        """The config ``decode_parser()`` parsed (options other parsers add, as ``--metrics-list``, stay out)."""
        given = vars(args)
        return cls(**{f.name: given[f.name] for f in fields(cls)})


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
        "--lang-dir", type=Path, default=TrainConfig.lang_dir, help="folder with tokens.txt (needed by the ctc task)"
    )
    g.add_argument(
        "--label-preset",
        default=TrainConfig.label_preset,
        choices=sorted(LABEL_PRESETS),
        help="the unified categories the emotion head learns (docs/unified-metric.md)",
    )
    g.add_argument("--max-duration", type=float, default=TrainConfig.max_duration, help="seconds of audio per batch")
    g.add_argument(
        "--max-utterance-duration",
        type=float,
        default=TrainConfig.max_utterance_duration,
        help="longer training cuts are dropped (counted)",
    )
    g.add_argument("--balanced", action="store_true", help="class-balanced sampling (inverse class frequency)")
    g.add_argument(
        "--corpus-weights", default=TrainConfig.corpus_weights, help="corpus=weight,... sampling shares across corpora"
    )
    g.add_argument(
        "--speaker-cmvn",
        action="store_true",
        help="normalise fbank per speaker over each speaker's own utterances (uses test speakers' unlabelled audio)",
    )
    g.add_argument(
        "--num-workers", type=int, default=TrainConfig.num_workers, help="dataloader workers (0 keeps resume bit-exact)"
    )
    g = p.add_argument_group("augmentation (training cuts only)")
    g.add_argument(
        "--speed-perturb",
        default=TrainConfig.speed_perturb,
        metavar="FACTORS",
        help="e.g. 0.9,1.1: each training cut runs at one of these speeds or 1.0, drawn per epoch; "
        "perturbed features are computed on the fly",
    )
    g.add_argument(
        "--random-crop",
        type=float,
        default=TrainConfig.random_crop,
        metavar="SECONDS",
        help="train on a random window of this length of longer cuts (their phones are not used)",
    )
    g.add_argument(
        "--copy-paste",
        type=float,
        default=TrainConfig.copy_paste,
        metavar="PROB",
        help="join each training cut, with this probability per epoch, to a neutral utterance of its speaker "
        "(before or after it); the cut's labels stay, CTC learns both transcripts",
    )
    g.add_argument(
        "--mixup-alpha",
        type=float,
        default=TrainConfig.mixup_alpha,
        help="mix fbank within each batch with lam ~ Beta(a, a) and soft emotion targets (0: off)",
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--model-preset",
        default=TrainConfig.model_preset,
        choices=sorted(MODEL_PRESETS),
        help="encoder size (docs/model.md)",
    )
    g.add_argument(
        "--model-config",
        default=TrainConfig.model_config,
        help="JSON overrides of the preset, e.g. '{\"num_layers\": 2}'",
    )
    g = p.add_argument_group("front end (docs/ssl.md)")
    g.add_argument(
        "--front-end",
        default=TrainConfig.front_end,
        choices=FRONT_ENDS,
        help="fbank: the cuts' stored features (fbank or fbank-pitch); ssl: a WavLM/HuBERT/wav2vec 2.0 "
        "encoder reading the cuts' audio (needs --ssl-model)",
    )
    g.add_argument(
        "--ssl-model",
        type=Path,
        default=TrainConfig.ssl_model,
        metavar="DIR",
        help="local Hugging Face folder of the ssl encoder (config.json and weights; never downloaded)",
    )
    g.add_argument(
        "--ssl-finetune-top",
        type=int,
        default=TrainConfig.ssl_finetune_top,
        metavar="N",
        help="train the top N layers of the ssl encoder too (0: frozen, only its layer weights learn)",
    )
    g = p.add_argument_group("tasks and loss")
    g.add_argument(
        "--tasks",
        default=default_tasks_option(),
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
        default=TrainConfig.intensity_loss,
        choices=["mse", "ccc"],
        help="intensity regression loss: mean squared error, or 1 - concordance correlation",
    )
    g = p.add_argument_group("optimisation")
    g.add_argument(
        "--num-epochs", type=int, default=TrainConfig.num_epochs, help="epochs to train (epoch-N.pt after each)"
    )
    g.add_argument("--start-epoch", type=int, default=TrainConfig.start_epoch, help="resume from epoch-(N-1).pt")
    g.add_argument(
        "--start-batch",
        type=int,
        default=TrainConfig.start_batch,
        help="resume from checkpoint-N.pt (overrides --start-epoch)",
    )
    g.add_argument(
        "--lr", type=float, default=TrainConfig.lr, help="peak learning rate (AdamW), reached after the warm-up"
    )
    g.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay, help="AdamW weight decay")
    g.add_argument(
        "--warmup-batches",
        type=int,
        default=TrainConfig.warmup_batches,
        help="linear learning-rate warm-up, in batches",
    )
    g.add_argument(
        "--lr-schedule",
        default=TrainConfig.lr_schedule,
        choices=["noam", "cosine"],
        help="after warm-up: inverse square root (open-ended), or cosine down to --final-lr-ratio "
        "at the end of --num-epochs (anneals within a fixed budget)",
    )
    g.add_argument(
        "--final-lr-ratio", type=float, default=TrainConfig.final_lr_ratio, help="cosine: last learning rate / --lr"
    )
    g.add_argument("--grad-clip", type=float, default=TrainConfig.grad_clip, help="clip the gradient norm to this")
    g.add_argument("--use-fp16", action="store_true", help="float16 autocast with a grad scaler (CUDA)")
    g.add_argument("--use-bf16", action="store_true", help="bfloat16 autocast")
    g.add_argument(
        "--seed", type=int, default=TrainConfig.seed, help="seeds model initialisation, sampling and augmentation"
    )
    g.add_argument("--deterministic", action="store_true", help="deterministic kernels (bit-exact resume on CPU)")
    g.add_argument("--device", default=TrainConfig.device, help="auto, cpu, cuda, cuda:N")
    add_num_threads(g)
    g = p.add_argument_group("checkpoints and logs")
    g.add_argument("--exp-dir", type=Path, required=True, help="output folder: checkpoints, log/, tensorboard/")
    g.add_argument(
        "--save-every-n", type=int, default=TrainConfig.save_every_n, help="checkpoint-N.pt every N batches (0: off)"
    )
    g.add_argument("--keep-last-k", type=int, default=TrainConfig.keep_last_k, help="batch checkpoints to keep")
    g.add_argument(
        "--average-period",
        type=int,
        default=TrainConfig.average_period,
        help="update the running averaged model every N batches",
    )
    g.add_argument(
        "--log-interval",
        type=int,
        default=TrainConfig.log_interval,
        help="log the running training losses every N batches",
    )
    g.add_argument(
        "--tensorboard",
        type=int,
        default=TrainConfig.tensorboard,
        choices=[0, 1],
        help="write TensorBoard scalars to EXP_DIR/tensorboard",
    )
    g.add_argument(
        "--stop-after-batches", type=int, default=TrainConfig.stop_after_batches, help=argparse.SUPPRESS
    )  # tests: simulate a kill
    return p


def decode_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Decode test sets with a trained SpeechEQ model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--exp-dir", type=Path, required=True, help="training folder with epoch-*.pt / best-valid.pt")
    p.add_argument("--cuts", type=Path, nargs="+", help="test cut manifests; the set name is the file name")
    p.add_argument("--epoch", type=int, default=DecodeConfig.epoch, help="last epoch to use (0: the latest)")
    p.add_argument("--avg", type=int, default=DecodeConfig.avg, help="average this many epochs ending at --epoch")
    p.add_argument(
        "--use-averaged-model", action="store_true", help="use the running average between epoch-avg and epoch"
    )
    p.add_argument(
        "--checkpoint", default=DecodeConfig.checkpoint, help="a checkpoint file instead (e.g. best-valid.pt)"
    )
    p.add_argument("--max-duration", type=float, default=DecodeConfig.max_duration, help="seconds of audio per batch")
    p.add_argument("--device", default=DecodeConfig.device, help="cpu, cuda or cuda:N")
    add_num_threads(p)
    p.add_argument("--no-corpus-aware", action="store_true", help="decide among all preset categories")
    p.add_argument("--results", type=Path, default=None, help="append a row to this RESULTS.md")
    p.add_argument("--run-name", default=DecodeConfig.run_name, help="label for the RESULTS.md row")
    p.add_argument(
        "--folds",
        type=Path,
        nargs="*",
        default=None,
        help="metrics.json files of several folds: print and write their mean and std instead of decoding",
    )
    p.add_argument("--summary-out", type=Path, default=None, help="with --folds: where to write the summary JSON")
    return p
