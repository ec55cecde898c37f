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
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from speecheq import __version__
from speecheq.augment import CutAugment, mixup, parse_factors
from speecheq.checkpoint import (
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
from speecheq.features import feature_statistics
from speecheq.io import atomic_output, folder_lock, load_cuts_lazy, remove_stale_temporaries, write_json_atomic
from speecheq.labels import LabelScheme, label_summary, require_nonempty
from speecheq.losses import MultitaskLoss
from speecheq.model import MIN_INPUT_FRAMES, SpeechEQModel, config_from_preset
from speecheq.options import set_num_threads
from speecheq.options import train_parser as get_parser  # noqa: F401  (its old home)
from speecheq.predict import headline, records_from_outputs, summarize
from speecheq.tasks import TABLE as TASK_TABLE
from speecheq.text.tokens import TokenTable

log = logging.getLogger("speecheq")


def parse_tasks(args) -> Dict[str, float]:
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASK_TABLE]
    if unknown or not tasks:
        raise SpeechEQError(f"--tasks: unknown task(s) {unknown}; choose from {', '.join(TASK_TABLE)}")
    return {t: getattr(args, f"{t}_weight") for t in tasks if getattr(args, f"{t}_weight") > 0}


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


def setup_logging(exp_dir: Path, rank: int) -> None:
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


class Trainer:
    def __init__(self, args):
        self.args = args
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(args.device)
        if self.device.type == "cuda" and self.world_size > 1:
            self.device = torch.device("cuda", self.local_rank)
        if self.world_size > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if args.use_fp16 and args.use_bf16:
            raise SpeechEQError("choose one of --use-fp16 and --use-bf16")
        if args.use_fp16 and self.device.type != "cuda":
            raise SpeechEQError("--use-fp16 needs a CUDA device (use --use-bf16 on CPU)")
        self.amp_dtype = torch.float16 if args.use_fp16 else (torch.bfloat16 if args.use_bf16 else None)
        self.weights = parse_tasks(args)
        self.scheme = LabelScheme.from_preset(args.label_preset)
        self.exp_dir: Path = args.exp_dir
        self.is_main = self.rank == 0

    # ---------------------------------------------------------------- setup
    def load_cuts(self, paths, train: bool):
        from lhotse import CutSet

        sets = [load_cuts_lazy(p) for p in paths]
        cuts = sets[0] if len(sets) == 1 else CutSet.from_cuts(c for s in sets for c in s)
        min_dur = MIN_INPUT_FRAMES * 0.01 + 0.015
        max_dur = self.args.max_utterance_duration if train else float("inf")
        dropped = {"too short": 0, "too long": 0}

        def keep(c) -> bool:
            if not c.has_features:
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

    def build(self):
        args = self.args
        self.train_cuts = self.load_cuts(args.train_cuts, train=True)
        summary = label_summary(self.train_cuts, self.scheme)
        log.info("train cuts: %s", json.dumps(summary))
        require_nonempty(summary, "training set", list(self.weights))
        self.labels_per_corpus = labels_per_corpus(self.train_cuts, self.scheme, list(self.weights))
        for corpus, counts in self.labels_per_corpus.items():
            unlabelled = [t for t in self.weights if counts.get(t) == 0]
            log.info(
                "train cuts of %s: %s%s",
                corpus or "(no corpus)",
                json.dumps(counts),
                f"; no {', '.join(unlabelled)} labels: those tasks learn from the other corpora" if unlabelled else "",
            )
        self.dev_cuts = self.load_cuts(args.dev_cuts, train=False) if args.dev_cuts else None
        self.tokens = None
        if "ctc" in self.weights or (args.lang_dir / "tokens.txt").is_file():
            self.tokens = TokenTable.from_file(args.lang_dir / "tokens.txt")
        overrides = json.loads(args.model_config) if args.model_config else {}
        # The adversary predicts the training speakers; dev and test speakers are unknown to it.
        self.speakers = None
        if "speaker" in self.weights:
            self.speakers = {
                spk: i for i, spk in enumerate(sorted({c.supervisions[0].speaker for c in self.train_cuts}))
            }
            overrides.setdefault("num_speakers", len(self.speakers))
        # The model's input is whatever the feature stage stored (fbank, fbank + pitch, ...).
        overrides.setdefault("num_mel_bins", self.train_cuts[0].num_features)
        try:
            self.model_config = config_from_preset(
                args.model_preset,
                num_emotions=self.scheme.num_classes,
                vocab_size=len(self.tokens) if self.tokens else 2,
                **overrides,
            )
        except (TypeError, ValueError) as e:
            raise SpeechEQError(f"--model-config: {e}") from None
        self.model = SpeechEQModel(self.model_config).to(self.device)
        self.model_avg = copy.deepcopy(self.model).to("cpu") if self.is_main else None
        self.speaker_cmvn = None
        if args.speaker_cmvn:
            self.speaker_cmvn = speaker_cmvn_stats(self.train_cuts)
            if self.dev_cuts is not None:
                self.speaker_cmvn.update(speaker_cmvn_stats(self.dev_cuts))
        tokens = self.tokens if "ctc" in self.weights else None
        self.augment = CutAugment(parse_factors(args.speed_perturb), args.random_crop, args.seed)
        if args.mixup_alpha < 0 or args.random_crop < 0:
            raise SpeechEQError("--mixup-alpha and --random-crop must be >= 0")
        self.dataset = SpeechEQDataset(
            self.scheme, tokens, self.speaker_cmvn, augment=self.augment, speakers=self.speakers
        )
        self.eval_dataset = SpeechEQDataset(self.scheme, tokens, self.speaker_cmvn)
        self.loss_fn = MultitaskLoss(self.weights, intensity_loss=args.intensity_loss)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.sampler = make_train_sampler(
            self.train_cuts,
            max_duration=args.max_duration,
            seed=args.seed,
            balanced=args.balanced,
            scheme=self.scheme,
            corpus_weights=parse_corpus_weights(args.corpus_weights) or None,
            world_size=self.world_size,
            rank=self.rank,
        )
        total = 0
        if args.lr_schedule == "cosine":
            per_epoch = batches_per_epoch(self.sampler)
            total = per_epoch * args.num_epochs
            log.info("cosine schedule over %d batches (%d per epoch x %d epochs)", total, per_epoch, args.num_epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(args.warmup_batches, args.lr_schedule, total, args.final_lr_ratio)
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
        return record_training_data(self.train_cuts, self.model_config.num_mel_bins)

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
            "tasks": self.weights,
            "speaker_cmvn": self.args.speaker_cmvn,
            "train_args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args).items()},
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
        weight = self.args.average_period / self.batch_idx_train
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
        loader = make_loader(self.eval_dataset, make_eval_sampler(self.dev_cuts, self.args.max_duration))
        # Dev loss and metrics in one pass: collect batches' losses while predicting.
        totals: Dict[str, list] = defaultdict(lambda: [0.0, 0])
        records = []
        self.model.eval()
        with torch.inference_mode():
            for batch in loader:
                out = self.model(batch["features"].to(self.device), batch["feature_lens"].to(self.device))
                _, stats = self.loss_fn(
                    out, {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                )
                for task, s in stats.items():
                    totals[task][0] += s["loss"]
                    totals[task][1] += s["count"]
                records.extend(records_from_outputs(out, batch, self.scheme))
        self.model.train()
        result = headline(summarize(records, self.scheme))
        result.update({f"loss_{t}": (s / n if n else float("nan")) for t, (s, n) in totals.items()})
        log.info("epoch %d validation: %s", epoch, json.dumps({k: round(v, 4) for k, v in result.items()}))
        if tb is not None:
            for k, v in result.items():
                tb.add_scalar(f"valid/{k}", v, self.batch_idx_train)
        return result

    def train(self) -> None:
        args = self.args
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        import random

        random.seed(args.seed)
        if args.deterministic:
            torch.use_deterministic_algorithms(True)
        self.build()
        start_epoch, resume_sampler, skip_to = args.start_epoch, None, 0
        if args.start_batch > 0:
            ckpt = load_checkpoint(self.exp_dir / f"checkpoint-{args.start_batch}.pt")
            self.restore(ckpt, f"checkpoint-{args.start_batch}.pt")
            start_epoch, resume_sampler, skip_to = ckpt["epoch"], ckpt["sampler"], ckpt["batch_in_epoch"]
            log.info("resuming epoch %d after batch %d (global batch %d)", start_epoch, skip_to, self.batch_idx_train)
        elif start_epoch > 1:
            ckpt = load_checkpoint(self.exp_dir / f"epoch-{start_epoch - 1}.pt")
            self.restore(ckpt, f"epoch-{start_epoch - 1}.pt")
            log.info("resuming from epoch-%d.pt", start_epoch - 1)
        else:
            self.normalisation()
        if start_epoch > args.num_epochs:
            log.info("nothing to do: start epoch %d > --num-epochs %d", start_epoch, args.num_epochs)
            self.finish()  # a run killed between its last checkpoint and its summary
            return

        tb = None
        if self.is_main and args.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))
        self.model.train()
        for epoch in range(start_epoch, args.num_epochs + 1):
            self.sampler.set_epoch(epoch)
            self.augment.epoch = epoch
            batch_in_epoch = 0
            if resume_sampler is not None:
                self.sampler.load_state_dict(resume_sampler)
                batch_in_epoch, resume_sampler = skip_to, None
            loader = make_loader(self.dataset, self.sampler, args.num_workers, seed=args.seed + epoch)
            totals: Dict[str, list] = defaultdict(lambda: [0.0, 0])
            t0 = time.time()
            audio_seconds = 0.0
            # Ranks may get different numbers of batches; DDP's join() shadows the
            # all-reduces of a rank that ran out instead of waiting for it forever.
            uneven = self.ddp_model.join() if self.world_size > 1 else contextlib.nullcontext()
            with uneven:
                for batch in loader:
                    batch_in_epoch += 1
                    if not torch.isfinite(batch["features"]).all():
                        self.skipped_nonfinite += 1
                        log.warning(
                            "skipping batch %d of epoch %d: non-finite features in %s (%d skipped so far)",
                            batch_in_epoch,
                            epoch,
                            batch["cut_ids"][:3],
                            self.skipped_nonfinite,
                        )
                        continue
                    if args.mixup_alpha > 0:
                        batch["features"], batch["mix_partner"], batch["mix_lam"] = mixup(
                            batch["features"], batch["feature_lens"], args.mixup_alpha
                        )
                    batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                    with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                        out = self.ddp_model(batch["features"], batch["feature_lens"])
                        loss, stats = self.loss_fn(
                            {k: v.float() if v.is_floating_point() else v for k, v in out.items()}, batch
                        )
                    if not torch.isfinite(loss):
                        self.skipped_nonfinite += 1
                        log.warning(
                            "skipping batch %d of epoch %d: non-finite loss (%d skipped so far)",
                            batch_in_epoch,
                            epoch,
                            self.skipped_nonfinite,
                        )
                        self.optimizer.zero_grad(set_to_none=True)
                        continue
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.grad_clip)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.scheduler.step()
                    self.batch_idx_train += 1
                    audio_seconds += float(batch["feature_lens"].sum()) * 0.01
                    for task, s in stats.items():
                        totals[task][0] += s["loss"]
                        totals[task][1] += s["count"]
                    if self.batch_idx_train % args.average_period == 0:
                        self.update_average()
                    if self.is_main and self.batch_idx_train % args.log_interval == 0:
                        means = {t: s / max(n, 1) for t, (s, n) in totals.items()}
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
                    if args.save_every_n and self.batch_idx_train % args.save_every_n == 0:
                        self.save(
                            self.exp_dir / f"checkpoint-{self.batch_idx_train}.pt",
                            epoch,
                            batch_in_epoch,
                            self.sampler.state_dict(),
                        )
                        if self.is_main:
                            remove_old_batch_checkpoints(self.exp_dir, args.keep_last_k)
                        log.info(
                            "saved checkpoint-%d.pt (resume: --start-batch %d)",
                            self.batch_idx_train,
                            self.batch_idx_train,
                        )
                    if args.stop_after_batches and self.batch_idx_train >= args.stop_after_batches:
                        log.info("stopping after %d batches (--stop-after-batches)", self.batch_idx_train)
                        return
            elapsed = time.time() - t0
            means = {t: round(s / max(n, 1), 4) for t, (s, n) in totals.items()}
            log.info(
                "epoch %d done in %.1f s (%.1f s of audio/s): train losses %s",
                epoch,
                elapsed,
                audio_seconds / max(elapsed, 1e-9),
                json.dumps(means),
            )
            if batch_in_epoch == 0 and self.world_size == 1:
                raise SpeechEQError(
                    f"epoch {epoch}: the sampler produced no batch (training set empty after filtering?)"
                )
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
        if tb is not None:
            tb.close()
        self.finish()

    def finish(self) -> None:
        """The outputs that make a run finished: a best-valid.pt that matches the best-epoch
        record (repaired from that epoch's checkpoint if a kill left it stale), then the summary."""
        args = self.args
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
                "epochs": args.num_epochs,
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


def train(args) -> None:
    set_num_threads(args.num_threads)
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(args)
    setup_logging(args.exp_dir, trainer.rank)
    log.info("environment: %s", json.dumps(environment_info()))
    log.info("arguments: %s", json.dumps({k: str(v) for k, v in vars(args).items()}))
    if trainer.is_main:
        with folder_lock(args.exp_dir, "training"):
            remove_stale_temporaries(args.exp_dir)  # half-saved checkpoints of a killed run
            trainer.train()
    else:
        trainer.train()
