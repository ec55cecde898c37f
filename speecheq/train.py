"""The multitask training loop, after icefall's zipformer/train.py.

Resume: ``--start-epoch E`` loads ``epoch-(E-1).pt``; ``--start-batch B`` loads
``checkpoint-B.pt`` (saved every ``--save-every-n`` batches) and continues inside
its epoch: model, running average, optimizer, scheduler, grad scaler, sampler
position and every RNG are restored, so on CPU with a fixed seed a killed and
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from speecheq import __version__
from speecheq.augment import CutAugment, mixup, neutral_partners, parse_factors
from speecheq.checkpoint import (
    CTC_UNITS_KEY,
    TRAINING_DATA_KEY,
    load_checkpoint,
    load_model_state,
    record_training_data,
    remove_old_batch_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from speecheq.data import (
    SpeechEQDataset,
    labels_per_corpus,
    make_eval_sampler,
    make_loader,
    make_train_sampler,
    speaker_cmvn_stats,
)
from speecheq.errors import SpeechEQError
from speecheq.features import FrontEnd, default_front_end, feature_statistics
from speecheq.io import atomic_output, folder_lock, load_cuts_lazy, remove_stale_temporaries, write_json_atomic
from speecheq.labels import LabelScheme, label_summary, require_nonempty
from speecheq.losses import MultitaskLoss
from speecheq.model import MIN_INPUT_FRAMES, SpeechEQModel, config_from_preset
from speecheq.options import TrainConfig, set_num_threads
from speecheq.options import train_parser as get_parser  # noqa: F401  (its old home)
from speecheq.predict import headline, records_from_outputs, summarize
from speecheq.tasks import TABLE as TASK_TABLE
from speecheq.tasks import trained_readout
from speecheq.text.tokens import TokenTable

log = logging.getLogger("speecheq")


def parse_tasks(config: TrainConfig) -> Dict[str, float]:
    tasks = [t.strip() for t in config.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASK_TABLE]
    if unknown or not tasks:
        raise SpeechEQError(f"--tasks: unknown task(s) {unknown}; choose from {', '.join(TASK_TABLE)}")
    return {t: config.task_weights[t] for t in tasks if config.task_weights[t] > 0}


def parse_corpus_weights(text: str) -> Dict[str, float]:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise SpeechEQError(f"--corpus-weights: expected corpus=weight, got {item!r}") from None
    return out


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpeechEQError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def environment_info() -> dict:
    def git(*a):
        try:
            return subprocess.run(
                ["git", *a], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
            ).stdout.strip()
        except Exception:
            return ""

    import lhotse

    return {
        "speecheq": __version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "torch": torch.__version__,
        "lhotse": lhotse.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
        "hostname": platform.node(),
        "command": " ".join(sys.argv),
    }


def setup_logging(exp_dir: Path, rank: int) -> logging.Handler:
    """Adds this run's log file (the console once); returns the file's handler, which the run removes when it ends."""
    log_dir = exp_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s")
    # One run's file per process: a second train() in the same process (tests, notebooks)
    # must not keep writing into the first run's log.
    for old in [h for h in log.handlers if getattr(h, "speecheq_run_log", False)]:
        log.removeHandler(old)
        old.close()
    handler = logging.FileHandler(log_dir / f"log-train-{time.strftime('%Y-%m-%d-%H-%M-%S')}-rank{rank}.txt")
    handler.setFormatter(fmt)
    handler.speecheq_run_log = True
    log.addHandler(handler)
    if rank == 0 and not any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in log.handlers
    ):
        console = logging.StreamHandler()
        console.setFormatter(fmt)
        log.addHandler(console)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def lr_lambda(warmup: int, schedule: str = "noam", total: int = 0, final_ratio: float = 0.01):
    """Learning-rate factor as a function of the batch: linear warm-up, then either
    inverse square-root decay (Noam) or a cosine that reaches ``final_ratio`` at batch ``total``.

    Both depend on the batch index alone, so a resumed run follows the same curve;
    the cosine's ``total`` comes from ``--num-epochs``, so extending a finished cosine
    run re-shapes its tail (a Noam run can be extended freely).
    """
    warmup = max(warmup, 1)

    def noam(step: int) -> float:
        step = max(step, 1)
        return min(step / warmup, math.sqrt(warmup / step))

    def cosine(step: int) -> float:
        step = max(step, 1)
        if step < warmup:
            return step / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    if schedule == "noam":
        return noam
    if schedule == "cosine":
        if total <= 0:
            raise SpeechEQError("--lr-schedule cosine needs the number of training batches")
        return cosine
    raise SpeechEQError(f"--lr-schedule: unknown schedule {schedule!r}")


def batches_per_epoch(sampler) -> int:
    """How many batches one epoch of this sampler yields (iterates a copy: metadata only, no features)."""
    probe = copy.deepcopy(sampler)
    probe.set_epoch(1)
    return sum(1 for _ in probe)


class LossTotals:
    """Each task's summed loss and the number of utterances it was computed on, over many
    batches (``MultitaskLoss``'s stats): the means are per utterance, not per batch."""

    def __init__(self) -> None:
        self.sums: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}

    def add(self, stats: Mapping[str, Mapping[str, float]]) -> None:
        for task, s in stats.items():
            self.sums[task] = self.sums.get(task, 0.0) + s["loss"]
            self.counts[task] = self.counts.get(task, 0) + s["count"]

    def means(self, unlabelled: float = math.nan) -> Dict[str, float]:
        """Each task's mean loss; ``unlabelled`` where none of its utterances had a label (training
        logs say 0 there, as the loss such a task added, validation NaN: no measurement)."""
        return {task: self.sums[task] / count if count else unlabelled for task, count in self.counts.items()}


class Trainer:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(config.device)
        if self.device.type == "cuda" and self.world_size > 1:
            self.device = torch.device("cuda", self.local_rank)
        if self.world_size > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if config.use_fp16 and config.use_bf16:
            raise SpeechEQError("choose one of --use-fp16 and --use-bf16")
        if config.use_fp16 and self.device.type != "cuda":
            raise SpeechEQError("--use-fp16 needs a CUDA device (use --use-bf16 on CPU)")
        self.amp_dtype = torch.float16 if config.use_fp16 else (torch.bfloat16 if config.use_bf16 else None)
        self.weights = parse_tasks(config)
        self.scheme = LabelScheme.from_preset(config.label_preset)
        self.exp_dir: Path = config.exp_dir
        self.is_main = self.rank == 0
        # What batches are made for; build() loads an ssl encoder and replaces it (load_front_end).
        self.front_end = default_front_end()

    # ---------------------------------------------------------------- setup
    def load_cuts(self, paths, train: bool):
        from lhotse import CutSet

        sets = [load_cuts_lazy(p) for p in paths]
        cuts = sets[0] if len(sets) == 1 else CutSet.from_cuts(c for s in sets for c in s)
        front_end = self.front_end
        # An ssl encoder gives a frame from one receptive field of audio; the Conformer's
        # subsampling needs MIN_INPUT_FRAMES fbank frames.
        min_dur = front_end.min_duration(1 if front_end.reads_audio else MIN_INPUT_FRAMES)
        max_dur = self.config.max_utterance_duration if train else float("inf")
        dropped = {"too short": 0, "too long": 0}

        def keep(c) -> bool:
            if front_end.reads_audio:
                if not c.has_recording:
                    raise SpeechEQError(
                        f"cut {c.id} in {[str(p) for p in paths]} has no recording for the ssl front end"
                    )
            elif not c.has_features:
                raise SpeechEQError(
                    f"cut {c.id} in {[str(p) for p in paths]} has no features (run the fbank stage on it)"
                )
            if c.duration < min_dur:
                dropped["too short"] += 1
                return False
            if c.duration > max_dur:
                dropped["too long"] += 1
                return False
            return True

        cuts = cuts.filter(keep).to_eager()
        if any(dropped.values()):
            log.info("dropped cuts from %s: %s", [str(p) for p in paths], dropped)
        return cuts

    def load_front_end(self):
        """The front end batches are made for, and the ssl encoder (with its pre-trained weights) or None."""
        config = self.config
        if config.front_end != "ssl":
            return default_front_end(), None
        from speecheq.model.ssl import SSLEncoder

        # Feature-level operations have no audio-level twin here: refused rather than silently skipped.
        for flag, on in (
            ("--speaker-cmvn", config.speaker_cmvn),
            ("--mixup-alpha", config.mixup_alpha > 0),
            ("--speed-perturb", bool(parse_factors(config.speed_perturb))),
            ("--random-crop", config.random_crop > 0),
            ("--copy-paste", config.copy_paste > 0),
        ):
            if on:
                raise SpeechEQError(f"{flag} works on stored fbank features; the ssl front end reads audio (drop it)")
        encoder = SSLEncoder.from_pretrained(config.ssl_model, config.ssl_finetune_top)
        log.info(
            "ssl front end: %s from %s, %d layers, width %d, frames every %g s, top %d layers fine-tuned",
            encoder.hf_config["model_type"],
            config.ssl_model,
            encoder.hf_config["num_hidden_layers"],
            encoder.output_dim,
            encoder.frame_shift,
            encoder.finetune_top,
        )
        return FrontEnd(encoder.frames_config(), "audio"), encoder

    def build(self):
        config = self.config
        self.front_end, ssl_encoder = self.load_front_end()
        self.train_cuts = self.load_cuts(config.train_cuts, train=True)
        summary = label_summary(self.train_cuts, self.scheme)
        log.info("train cuts: %s", json.dumps(summary))
        require_nonempty(summary, "training set", list(self.weights))
        self.tokens = None
        if "ctc" in self.weights or (config.lang_dir / "tokens.txt").is_file():
            self.tokens = TokenTable.from_lang_dir(config.lang_dir)
        # Counted with the token table: a char or bpe run's ctc labels are transcripts, not G2P phones.
        self.labels_per_corpus = labels_per_corpus(self.train_cuts, self.scheme, list(self.weights), self.tokens)
        ctc_name = f"ctc ({self.tokens.units})" if self.tokens is not None else "ctc"
        for corpus, counts in self.labels_per_corpus.items():
            unlabelled = [t for t in self.weights if counts.get(t) == 0]
            log.info(
                "train cuts of %s: %s%s",
                corpus or "(no corpus)",
                json.dumps({ctc_name if k == "ctc" else k: v for k, v in counts.items()}),
                f"; no {', '.join(unlabelled)} labels: those tasks learn from the other corpora" if unlabelled else "",
            )
        self.dev_cuts = self.load_cuts(config.dev_cuts, train=False) if config.dev_cuts else None
        overrides = json.loads(config.model_config) if config.model_config else {}
        # The adversary predicts the training speakers; dev and test speakers are unknown to it.
        self.speakers = None
        if "speaker" in self.weights:
            self.speakers = {
                spk: i for i, spk in enumerate(sorted({c.supervisions[0].speaker for c in self.train_cuts}))
            }
            overrides.setdefault("num_speakers", len(self.speakers))
        if ssl_encoder is not None:
            # The encoder's settings rebuild it from the checkpoint alone; its frames feed the Conformer.
            overrides.update(num_mel_bins=ssl_encoder.output_dim, ssl=ssl_encoder.to_settings())
        else:
            # The model's input is whatever the feature stage stored (fbank, fbank + pitch, ...).
            overrides.setdefault("num_mel_bins", self.train_cuts[0].num_features)
        try:
            self.model_config = config_from_preset(
                config.model_preset,
                num_emotions=self.scheme.num_classes,
                vocab_size=len(self.tokens) if self.tokens else 2,
                **overrides,
            )
        except (TypeError, ValueError) as e:
            raise SpeechEQError(f"--model-config: {e}") from None
        self.model = SpeechEQModel(self.model_config)
        if ssl_encoder is not None:
            self.model.ssl.load_state_dict(ssl_encoder.state_dict())
            del ssl_encoder
        self.model.to(self.device)
        self.model_avg = copy.deepcopy(self.model).to("cpu") if self.is_main else None
        self.speaker_cmvn = None
        if config.speaker_cmvn:
            self.speaker_cmvn = speaker_cmvn_stats(self.train_cuts)
            if self.dev_cuts is not None:
                self.speaker_cmvn.update(speaker_cmvn_stats(self.dev_cuts))
        tokens = self.tokens if "ctc" in self.weights else None
        self.augment = CutAugment(
            parse_factors(config.speed_perturb),
            config.random_crop,
            config.seed,
            copy_paste=config.copy_paste,
            partners=neutral_partners(self.train_cuts) if config.copy_paste > 0 else None,
        )
        if config.mixup_alpha < 0 or config.random_crop < 0:
            raise SpeechEQError("--mixup-alpha and --random-crop must be >= 0")
        self.dataset = SpeechEQDataset(
            self.scheme,
            tokens,
            self.speaker_cmvn,
            augment=self.augment,
            speakers=self.speakers,
            front_end=self.front_end,
        )
        self.eval_dataset = SpeechEQDataset(self.scheme, tokens, self.speaker_cmvn, front_end=self.front_end)
        self.loss_fn = MultitaskLoss(self.weights, intensity_loss=config.intensity_loss)
        # A frozen ssl encoder's weights get no gradient and no AdamW state (or weight decay).
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        log.info("model: %d parameters, %d trainable", self.model.num_parameters(), self.model.num_parameters(True))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.sampler = make_train_sampler(
            self.train_cuts,
            max_duration=config.max_duration,
            seed=config.seed,
            balanced=config.balanced,
            scheme=self.scheme,
            corpus_weights=parse_corpus_weights(config.corpus_weights) or None,
            world_size=self.world_size,
            rank=self.rank,
        )
        total = 0
        if config.lr_schedule == "cosine":
            per_epoch = batches_per_epoch(self.sampler)
            total = per_epoch * config.num_epochs
            log.info("cosine schedule over %d batches (%d per epoch x %d epochs)", total, per_epoch, config.num_epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config.warmup_batches, config.lr_schedule, total, config.final_lr_ratio)
        )
        self.ddp_model = self.model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp_model = DistributedDataParallel(
                self.model, device_ids=[self.local_rank] if self.device.type == "cuda" else None
            )
        self.batch_idx_train = 0
        self.best_valid_ua = -1.0
        self.best_valid_epoch = -1
        # The dev metrics of the weights being saved: stage 6 reads their PER to judge the CTC head.
        self.valid_metrics: Optional[dict] = None
        self.skipped_nonfinite = 0

    def normalisation(self) -> None:
        cuts = self.train_cuts
        if self.model.ssl is not None:
            return  # the encoder normalises each waveform as it was pre-trained; the buffers stay 0 and 1
        if self.speaker_cmvn is not None:
            # Features arrive normalised per speaker, so the model's global layer stays the identity.
            mean, std = (
                np.zeros(self.model_config.num_mel_bins, np.float32),
                np.ones(self.model_config.num_mel_bins, np.float32),
            )
        else:
            mean, std = feature_statistics(cuts)
        self.model.set_normalization(mean, std)
        if self.model_avg is not None:
            self.model_avg.set_normalization(mean, std)

    # ---------------------------------------------------------- checkpoints
    @functools.cached_property
    def training_data(self) -> dict:
        # Read from the cuts once; packages made from any checkpoint of the run take it from there.
        return record_training_data(
            self.train_cuts,
            self.model_config.num_mel_bins,
            self.front_end if self.model.ssl is not None else None,
        )

    def state(self, epoch: int, batch_in_epoch: int, sampler_state: Optional[dict]) -> dict:
        return {
            "model": self.model.state_dict(),
            "model_avg": self.model_avg.state_dict() if self.model_avg is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "sampler": sampler_state,
            "rng": rng_state(),
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "batch_idx_train": self.batch_idx_train,
            "best_valid_ua": self.best_valid_ua,
            "best_valid_epoch": self.best_valid_epoch,
            "valid_metrics": self.valid_metrics,
            "skipped_nonfinite": self.skipped_nonfinite,
            "model_config": self.model_config.to_dict(),
            "label_preset": self.scheme.preset,
            "categories": list(self.scheme.categories),
            "tokens": self.tokens.symbols if self.tokens else None,
            CTC_UNITS_KEY: self.tokens.record() if self.tokens else None,
            "tasks": self.weights,
            "speaker_cmvn": self.config.speaker_cmvn,
            "train_args": {k: str(v) if isinstance(v, Path) else v for k, v in self.config.as_options().items()},
            TRAINING_DATA_KEY: self.training_data,
            "version": __version__,
        }

    def restore(self, ckpt: dict, source: str) -> None:
        if ckpt.get("model_config") != self.model_config.to_dict():
            diff = {
                k: (ckpt.get("model_config", {}).get(k), v)
                for k, v in self.model_config.to_dict().items()
                if ckpt.get("model_config", {}).get(k) != v
            }
            raise SpeechEQError(f"{source} was written by another model configuration: {diff} (checkpoint, now)")
        load_model_state(self.model, ckpt["model"], source)
        if self.model_avg is not None and ckpt.get("model_avg") is not None:
            self.model_avg.load_state_dict(ckpt["model_avg"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["grad_scaler"])
        self.batch_idx_train = ckpt["batch_idx_train"]
        self.best_valid_ua = ckpt.get("best_valid_ua", -1.0)
        self.best_valid_epoch = ckpt.get("best_valid_epoch", -1)
        self.skipped_nonfinite = ckpt.get("skipped_nonfinite", 0)
        set_rng_state(ckpt["rng"])

    def save(self, path: Path, epoch: int, batch_in_epoch: int, sampler_state) -> None:
        if self.is_main:
            save_checkpoint(path, **self.state(epoch, batch_in_epoch, sampler_state))

    def update_average(self) -> None:
        """Running mean of the weights over all batches so far (icefall's model_avg)."""
        if self.model_avg is None:
            return
        weight = self.config.average_period / self.batch_idx_train
        with torch.no_grad():
            own = self.model.state_dict()
            for k, v in self.model_avg.state_dict().items():
                if v.is_floating_point():
                    v.mul_(1 - weight).add_(own[k].detach().to("cpu", v.dtype), alpha=weight)
                else:
                    v.copy_(own[k])

    # ---------------------------------------------------------------- loops
    def validate(self, epoch: int, tb) -> Optional[dict]:
        if self.dev_cuts is None:
            return None
        loader = make_loader(self.eval_dataset, make_eval_sampler(self.dev_cuts, self.config.max_duration))
        # Dev loss and metrics in one pass: collect batches' losses while predicting.
        totals = LossTotals()
        records = []
        # The heads of tasks this run does not train would log noise as if it were a measurement.
        tasks = trained_readout(self.weights)
        self.model.eval()
        with torch.inference_mode():
            for batch in loader:
                out = self.model(batch["features"].to(self.device), batch["feature_lens"].to(self.device))
                _, stats = self.loss_fn(
                    out, {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                )
                totals.add(stats)
                records.extend(records_from_outputs(out, batch, self.scheme, tasks=tasks))
        self.model.train()
        result = headline(summarize(records, self.scheme))
        result.update({f"loss_{t}": mean for t, mean in totals.means().items()})
        log.info("epoch %d validation: %s", epoch, json.dumps({k: round(v, 4) for k, v in result.items()}))
        if tb is not None:
            for k, v in result.items():
                tb.add_scalar(f"valid/{k}", v, self.batch_idx_train)
        return result

    def train(self) -> None:
        """The run (icefall's ``run``): seed, build, resume, then each epoch and its end-of-epoch work."""
        config = self.config
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        self.build()
        start_epoch, resume_sampler, batches_done = self.resume()
        if start_epoch > config.num_epochs:
            log.info("nothing to do: start epoch %d > --num-epochs %d", start_epoch, config.num_epochs)
            self.finish()  # a run killed between its last checkpoint and its summary
            return

        tb = None
        if self.is_main and config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))
        self.model.train()
        for epoch in range(start_epoch, config.num_epochs + 1):
            if not self.train_one_epoch(epoch, tb, resume_sampler, batches_done):
                return  # --stop-after-batches stands for a kill: nothing after it may run
            resume_sampler, batches_done = None, 0
            self.validate_and_save(epoch, tb)
        if tb is not None:
            tb.close()
        self.finish()

    def resume(self) -> Tuple[int, Optional[dict], int]:
        """Restores the state this run continues from; returns its first epoch, and for a run
        resumed inside that epoch the sampler's state and how many of its batches were done."""
        config = self.config
        if config.start_batch > 0:
            source = f"checkpoint-{config.start_batch}.pt"
            ckpt = load_checkpoint(self.exp_dir / source)
            self.restore(ckpt, source)
            log.info(
                "resuming epoch %d after batch %d (global batch %d)",
                ckpt["epoch"],
                ckpt["batch_in_epoch"],
                self.batch_idx_train,
            )
            return ckpt["epoch"], ckpt["sampler"], ckpt["batch_in_epoch"]
        if config.start_epoch > 1:
            ckpt = load_checkpoint(self.exp_dir / f"epoch-{config.start_epoch - 1}.pt")
            self.restore(ckpt, f"epoch-{config.start_epoch - 1}.pt")
            log.info("resuming from epoch-%d.pt", config.start_epoch - 1)
        else:
            self.normalisation()
        return config.start_epoch, None, 0

    def train_one_epoch(self, epoch: int, tb, resume_sampler: Optional[dict] = None, batches_done: int = 0) -> bool:
        """One epoch's batches, from batch ``batches_done + 1`` when ``resume_sampler`` continues
        an interrupted epoch; False when --stop-after-batches ended the run inside it."""
        config = self.config
        self.sampler.set_epoch(epoch)
        self.augment.epoch = epoch
        batch_in_epoch = 0
        if resume_sampler is not None:
            self.sampler.load_state_dict(resume_sampler)
            batch_in_epoch = batches_done
        loader = make_loader(self.dataset, self.sampler, config.num_workers, seed=config.seed + epoch)
        totals = LossTotals()
        t0 = time.time()
        audio_seconds = 0.0
        # Ranks may get different numbers of batches; DDP's join() shadows the
        # all-reduces of a rank that ran out instead of waiting for it forever.
        uneven = self.ddp_model.join() if self.world_size > 1 else contextlib.nullcontext()
        with uneven:
            for batch in loader:
                batch_in_epoch += 1
                stats = self.train_step(batch, epoch, batch_in_epoch)
                if stats is None:
                    continue
                audio_seconds += float(batch["feature_lens"].sum()) * self.dataset.front_end.input_step
                totals.add(stats)
                self.after_step(epoch, batch_in_epoch, totals, tb)
                if config.stop_after_batches and self.batch_idx_train >= config.stop_after_batches:
                    log.info("stopping after %d batches (--stop-after-batches)", self.batch_idx_train)
                    return False
        elapsed = time.time() - t0
        log.info(
            "epoch %d done in %.1f s (%.1f s of audio/s): train losses %s",
            epoch,
            elapsed,
            audio_seconds / max(elapsed, 1e-9),
            json.dumps({t: round(v, 4) for t, v in totals.means(unlabelled=0.0).items()}),
        )
        if batch_in_epoch == 0 and self.world_size == 1:
            raise SpeechEQError(f"epoch {epoch}: the sampler produced no batch (training set empty after filtering?)")
        return True

    def compute_loss(self, batch: dict) -> Tuple[torch.Tensor, Dict[str, dict]]:
        """The weighted multitask loss of a training batch already on the device, and its per-task stats."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            out = self.ddp_model(batch["features"], batch["feature_lens"])
            return self.loss_fn({k: v.float() if v.is_floating_point() else v for k, v in out.items()}, batch)

    def train_step(self, batch: dict, epoch: int, batch_in_epoch: int) -> Optional[Dict[str, dict]]:
        """One optimiser step on one batch; its per-task loss stats, or None when it was skipped
        for non-finite features or loss (counted in train-summary.json)."""
        config = self.config
        if not torch.isfinite(batch["features"]).all():
            self.skipped_nonfinite += 1
            log.warning(
                "skipping batch %d of epoch %d: non-finite features in %s (%d skipped so far)",
                batch_in_epoch,
                epoch,
                batch["cut_ids"][:3],
                self.skipped_nonfinite,
            )
            return None
        if config.mixup_alpha > 0:
            batch["features"], batch["mix_partner"], batch["mix_lam"] = mixup(
                batch["features"], batch["feature_lens"], config.mixup_alpha
            )
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        loss, stats = self.compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            self.skipped_nonfinite += 1
            log.warning(
                "skipping batch %d of epoch %d: non-finite loss (%d skipped so far)",
                batch_in_epoch,
                epoch,
                self.skipped_nonfinite,
            )
            return None
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.batch_idx_train += 1
        return stats

    def after_step(self, epoch: int, batch_in_epoch: int, totals: LossTotals, tb) -> None:
        """The work due every so many batches: the running average, a progress line, a batch checkpoint."""
        config = self.config
        if self.batch_idx_train % config.average_period == 0:
            self.update_average()
        if self.is_main and self.batch_idx_train % config.log_interval == 0:
            means = totals.means(unlabelled=0.0)
            lr = self.scheduler.get_last_lr()[0]
            log.info(
                "epoch %d batch %d (global %d) lr %.2e losses %s",
                epoch,
                batch_in_epoch,
                self.batch_idx_train,
                lr,
                json.dumps({k: round(v, 4) for k, v in means.items()}),
            )
            if tb is not None:
                for t, v in means.items():
                    tb.add_scalar(f"train/loss_{t}", v, self.batch_idx_train)
                tb.add_scalar("train/lr", lr, self.batch_idx_train)
        if config.save_every_n and self.batch_idx_train % config.save_every_n == 0:
            self.save(
                self.exp_dir / f"checkpoint-{self.batch_idx_train}.pt",
                epoch,
                batch_in_epoch,
                self.sampler.state_dict(),
            )
            if self.is_main:
                remove_old_batch_checkpoints(self.exp_dir, config.keep_last_k)
            log.info(
                "saved checkpoint-%d.pt (resume: --start-batch %d)",
                self.batch_idx_train,
                self.batch_idx_train,
            )

    def validate_and_save(self, epoch: int, tb) -> None:
        """The end of an epoch: its validation, best-valid.pt when it is the best so far, epoch-N.pt."""
        result = self.validate(epoch, tb) if self.is_main else None
        self.valid_metrics = None if result is None else {"epoch": epoch, **result}
        if result is not None and result.get("UA", -1) > self.best_valid_ua:
            self.best_valid_ua, self.best_valid_epoch = result["UA"], epoch
        # best-valid.pt before epoch-N.pt: resume starts after the last epoch-N.pt, so a
        # kill between the two re-runs epoch N and rewrites best-valid.pt; the other order
        # would leave a stale best-valid.pt behind a checkpoint that claims epoch N is best.
        if result is not None and self.best_valid_epoch == epoch:
            self.save(self.exp_dir / "best-valid.pt", epoch + 1, 0, None)
            log.info("new best validation UA %.2f at epoch %d", self.best_valid_ua, epoch)
        self.save(self.exp_dir / f"epoch-{epoch}.pt", epoch + 1, 0, None)

    def finish(self) -> None:
        """The outputs that make a run finished: a best-valid.pt that matches the best-epoch
        record (repaired from that epoch's checkpoint if a kill left it stale), then the summary."""
        config = self.config
        if not self.is_main:
            return
        if self.best_valid_epoch > 0:
            best = self.exp_dir / "best-valid.pt"
            record = load_checkpoint(best) if best.is_file() else None
            if record is None or record.get("best_valid_epoch") != self.best_valid_epoch:
                source = self.exp_dir / f"epoch-{self.best_valid_epoch}.pt"
                if not source.is_file():
                    raise SpeechEQError(
                        f"{best} does not hold epoch {self.best_valid_epoch}'s weights and "
                        f"{source.name} is gone: retrain that fold (--start-epoch 1)"
                    )
                log.warning("best-valid.pt was stale (a kill before it was written?): restored from %s", source.name)
                with atomic_output(best) as tmp:
                    shutil.copyfile(source, tmp)
        write_json_atomic(
            self.exp_dir / "train-summary.json",
            {
                "epochs": config.num_epochs,
                "batches": self.batch_idx_train,
                "best_valid_ua": self.best_valid_ua,
                "best_valid_epoch": self.best_valid_epoch,
                "skipped_nonfinite_batches": self.skipped_nonfinite,
                "labelled_train_cuts_per_corpus": getattr(self, "labels_per_corpus", None),
            },
        )
        log.info(
            "training finished: %d batches, best validation UA %.2f at epoch %d, %d non-finite batches skipped",
            self.batch_idx_train,
            self.best_valid_ua,
            self.best_valid_epoch,
            self.skipped_nonfinite,
        )


def train(config: TrainConfig) -> None:
    """Train one model; the command line's config is ``TrainConfig.from_args(train_parser().parse_args(argv))``."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train() takes a TrainConfig (TrainConfig.from_args(namespace)), not {type(config).__name__}")
    set_num_threads(config.num_threads)
    config.exp_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config)
    run_log = setup_logging(config.exp_dir, trainer.rank)
    try:
        log.info("environment: %s", json.dumps(environment_info()))
        log.info("arguments: %s", json.dumps({k: str(v) for k, v in config.as_options().items()}))
        if trainer.is_main:
            with folder_lock(config.exp_dir, "training"):
                remove_stale_temporaries(config.exp_dir)  # half-saved checkpoints of a killed run
                trainer.train()
        else:
            trainer.train()
    finally:
        # What the process logs after this run (a decode, a second run) is not this run's.
        log.removeHandler(run_log)
        run_log.close()
