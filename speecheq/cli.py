"""Command-line front-ends: the ``speecheq`` console script and the recipes' ``local/*.py``
stage scripts.

Each stage has one parser and one ``run_<stage>`` here; ``speecheq <stage>`` and its
``local/`` script (a two-line file calling :func:`stage_main`) both run it, so the two take
the same options and reach the same library call. Parsers import nothing heavy: ``--help``
answers before torch is imported.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from speecheq.errors import exit_on_error
from speecheq.options import add_num_threads, set_num_threads


def script(main: Callable[[], None]) -> None:
    """Run a stage script's ``main`` with console logging and one-line errors."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s")
    logging.getLogger("lhotse").setLevel(logging.WARNING)
    exit_on_error(main)()


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones that the help text already explains."""

    def _get_help_string(self, action):
        if (
            action.default is None
            or action.default is False
            or action.default == ""
            or action.default is argparse.SUPPRESS
        ):
            return action.help
        return super()._get_help_string(action)


class _RawHelp(_Help, argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks: its examples are command lines."""


def _parser(prog: Optional[str], description: str, formatter=_Help) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=formatter)


def _add_executor_options(p: argparse.ArgumentParser, nj: int, nj_help: str, what: str) -> None:
    p.add_argument("--nj", type=int, default=nj, help=nj_help)
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "dask"],
        help=f"where {what} run: local processes, or a dask cluster (docs/scaling.md)",
    )
    p.add_argument(
        "--dask-scheduler",
        default=None,
        metavar="ADDRESS",
        help="dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster of --nj workers)",
    )


def _add_weights_options(p: argparse.ArgumentParser) -> None:
    """Which weights of an exp dir (align, export; decode's parser in speecheq.options has the same)."""
    p.add_argument("--epoch", type=int, default=0, help="last epoch to use (0: the latest)")
    p.add_argument("--avg", type=int, default=1, help="average this many epochs ending at --epoch")
    p.add_argument(
        "--use-averaged-model", action="store_true", help="use the running average between epoch-avg and epoch"
    )
    p.add_argument("--checkpoint", default="", help="a checkpoint file instead (e.g. best-valid.pt)")


# Stage 0


def prepare_parser(prog: Optional[str] = "speecheq prepare") -> argparse.ArgumentParser:
    from speecheq.corpora import add_stage_options

    p = _parser(prog, "Stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all.jsonl.gz")
    p.add_argument("--corpus", required=True, help="registered corpus name (speecheq.corpora.CORPORA)")
    p.add_argument("--corpus-dir", required=True, help="the corpus as distributed (its own layout)")
    p.add_argument("--output-dir", default="data/manifests", help="where the recordings and supervisions manifests go")
    p.add_argument(
        "--on-error", default="skip", choices=["skip", "stop"], help="per-file faults: skip and count, or stop"
    )
    _add_executor_options(p, 1, "processes for the per-file audio checks", "the per-file checks")
    p.add_argument("--force", action="store_true", help="redo even if marked done")
    add_stage_options(p, "prepare")  # each corpus declares its own (speecheq/corpora/<corpus>.py)
    return p


def run_prepare(argv=None, prog: Optional[str] = "speecheq prepare") -> None:
    args = prepare_parser(prog).parse_args(argv)
    from speecheq.corpora import get_corpus, prepare_corpus
    from speecheq.executors import executor_scope
    from speecheq.text import G2P

    options = get_corpus(args.corpus).given_options("prepare", args)
    with executor_scope(args.executor, args.nj, args.dask_scheduler) as executor:
        prepare_corpus(
            args.corpus,
            args.corpus_dir,
            args.output_dir,
            force=args.force,
            on_error=args.on_error,
            executor=executor,
            g2p=G2P(),
            **options,
        )


# Stage 1


def lang_parser(prog: Optional[str] = "speecheq lang") -> argparse.ArgumentParser:
    p = _parser(prog, "Stage 1: CTC token inventory of the prepared supervisions -> data/lang/tokens.txt (blank = 0)")
    p.add_argument(
        "--supervisions",
        nargs="+",
        required=True,
        help="supervision manifests, or cut manifests (bpe: the training cuts only)",
    )
    p.add_argument(
        "--units",
        default="phone",
        help="CTC units: phone (G2P phones), char (transcript characters) or bpe (sentencepiece pieces "
        "trained on these transcripts); docs/model.md, 'CTC units'",
    )
    p.add_argument("--bpe-vocab-size", type=int, default=None, help="with --units bpe: the number of pieces")
    p.add_argument(
        "--lang-dir",
        default=None,
        help="where tokens.txt goes (default: data/lang, data/lang_char or data/lang_bpe_<N> by --units)",
    )
    return p


def run_lang(argv=None, prog: Optional[str] = "speecheq lang") -> None:
    args = lang_parser(prog).parse_args(argv)
    from speecheq.text.lang import prepare_lang
    from speecheq.text.units import lang_dir_name

    lang_dir = args.lang_dir or Path("data") / lang_dir_name(args.units, args.bpe_vocab_size)
    prepare_lang(args.supervisions, lang_dir, args.units, args.bpe_vocab_size)


# Stage 2


def fbank_parser(prog: Optional[str] = "speecheq fbank") -> argparse.ArgumentParser:
    p = _parser(
        prog,
        "Stage 2: 80-dim fbank (or fbank + 4 pitch dims) for a corpus -> <output-dir>/<corpus>_cuts_<split>.jsonl.gz",
    )
    p.add_argument(
        "--corpus",
        required=True,
        help="corpus name: reads <manifest-dir>/<corpus>_{recordings,supervisions}_<split>.jsonl.gz",
    )
    p.add_argument("--manifest-dir", default="data/manifests", help="folder of the stage-0 manifests")
    p.add_argument(
        "--output-dir",
        default="data/fbank",
        help="features folder; give each --extractor its own (e.g. data/fbank_pitch) so both can coexist",
    )
    p.add_argument("--split", default="all", help="which manifests: the <split> in their names (stage 0 writes 'all')")
    _add_executor_options(
        p, 2, "CPU worker processes, or feature chunks with --executor dask (ignored on CUDA)", "the CPU chunks"
    )
    p.add_argument("--device", default="cpu", help="cpu, or cuda for batched GPU extraction")
    p.add_argument(
        "--extractor",
        "--feature-type",
        dest="extractor",
        default="fbank",
        choices=["fbank", "kaldifeat", "fbank-pitch"],
        help="fbank-pitch: lhotse's fbank + log F0, voicing and their deltas (84 dims; speecheq.pitch)",
    )
    p.add_argument("--batch-duration", type=float, default=600.0, help="seconds per batch on CUDA")
    p.add_argument("--force", action="store_true", help="recompute even when the output is marked done")
    add_num_threads(p)
    return p


def run_fbank(argv=None, prog: Optional[str] = "speecheq fbank") -> None:
    args = fbank_parser(prog).parse_args(argv)
    from speecheq.executors import executor_scope
    from speecheq.features import compute_corpus_fbank

    set_num_threads(args.num_threads)  # the main process extracts too (--nj 1, CUDA batches)
    # local: compute_fbank starts its own nj spawned processes; dask: the chunks go to the cluster
    kind = args.executor if not args.device.startswith("cuda") else "local"
    with executor_scope(kind, args.nj if kind == "dask" else 1, args.dask_scheduler) as executor:
        compute_corpus_fbank(
            args.corpus,
            args.manifest_dir,
            args.output_dir,
            args.split,
            force=args.force,
            extractor=args.extractor,
            device=args.device,
            nj=args.nj,
            batch_duration=args.batch_duration,
            executor=executor,
        )


# Stage 3


def validate_parser(prog: Optional[str] = "speecheq validate") -> argparse.ArgumentParser:
    from speecheq.corpora import add_stage_options

    p = _parser(prog, "Stage 3: validate cuts (lhotse + manifest contract) and write the protocol's splits.")
    p.add_argument("--corpus", required=True, help="corpus name: reads <fbank-dir>/<corpus>_cuts_all.jsonl.gz")
    p.add_argument(
        "--fbank-dir",
        "--feat-dir",
        dest="fbank_dir",
        default="data/fbank",
        help="features folder of stage 2 (reads <corpus>_cuts_all there, writes the splits next to it)",
    )
    p.add_argument(
        "--label-preset",
        default="4class",
        help="the unified categories (docs/unified-metric.md) the split summaries count labels in",
    )
    p.add_argument("--folds", nargs="*", default=None, help="only these folds (default: all of the protocol)")
    p.add_argument(
        "--trim-silence-db",
        type=float,
        default=0.0,
        help="cut leading/trailing frames more than this many dB below each cut's peak (0: keep all)",
    )
    add_stage_options(p, "validate")  # each corpus declares its own (speecheq/corpora/<corpus>.py)
    return p


def run_validate(argv=None, prog: Optional[str] = "speecheq validate") -> None:
    args = validate_parser(prog).parse_args(argv)
    from speecheq.corpora import get_corpus
    from speecheq.splits import validate_and_split

    options = get_corpus(args.corpus).given_options("validate", args)
    validate_and_split(args.corpus, args.fbank_dir, args.label_preset, args.folds, args.trim_silence_db, **options)


# Stage 4


def train_parser(prog: Optional[str] = "speecheq train") -> argparse.ArgumentParser:
    from speecheq.options import train_parser as options_parser  # owns the training options (speecheq.train reads them)

    p = options_parser()
    if prog:  # argparse formats the usage line from .prog when it prints, so setting it late is enough
        p.prog = prog
    return p


def run_train(argv=None, prog: Optional[str] = "speecheq train") -> None:
    args = train_parser(prog).parse_args(argv)  # before torch's import: --help answers at once
    from speecheq.options import TrainConfig
    from speecheq.train import train

    train(TrainConfig.from_args(args))


# Stage 5


def decode_parser(prog: Optional[str] = "speecheq decode") -> argparse.ArgumentParser:
    from speecheq.options import decode_parser as options_parser  # owns the decoding options (speecheq.decode)

    p = options_parser()
    if prog:
        p.prog = prog
    p.add_argument(
        "--metrics-list",
        type=Path,
        default=None,
        help="write the metrics.json paths this run produced here, one a line (the recipes read the "
        "decode folders' names from it instead of rebuilding them)",
    )
    return p


def run_decode(argv=None, prog: Optional[str] = "speecheq decode") -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = decode_parser(prog).parse_args(argv)  # before torch's import: --help answers at once
    from speecheq.decode import decode
    from speecheq.io import write_text_atomic
    from speecheq.options import DecodeConfig

    # the row in RESULTS.md names the command as it was typed: `speecheq decode ...` or local/decode.py
    written = decode(DecodeConfig.from_args(args), command=shlex.join([*(prog or "local/decode.py").split(), *argv]))
    if args.metrics_list is not None:
        write_text_atomic(args.metrics_list, "".join(f"{path}\n" for path in written))


# Stage 6


def align_parser(prog: Optional[str] = "speecheq align") -> argparse.ArgumentParser:
    p = _parser(
        prog,
        "Stage 6: CTC forced alignment of every cut's phones -> data/fbank_ali/<corpus>_cuts_<split>.jsonl.gz, "
        "or import alignments from MFA TextGrids / HTK label files into the same field.",
    )
    p.add_argument("--cuts", type=Path, required=True, help="input cut manifest")
    p.add_argument("--output", type=Path, required=True, help="output cut manifest with alignment['phone']")
    p.add_argument("--exp-dir", type=Path, help="trained model (CTC alignment)")
    _add_weights_options(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per batch")
    p.add_argument(
        "--max-per",
        type=float,
        default=None,
        help="refuse a CTC head whose PER (%%, the dev PER stored with the weights) is above this "
        "(default: speecheq.align.MAX_ALIGN_PER, 50)",
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="above --max-per, write the alignments anyway, with a warning and each supervision marked "
        "custom['alignment_untrusted']",
    )
    p.add_argument("--plot", type=Path, default=None, help="PNG of one utterance's fbank with its phone segments")
    p.add_argument("--textgrid-dir", type=Path, help="import MFA TextGrids instead of aligning")
    p.add_argument("--tier", default="phones", help="with --textgrid-dir: the TextGrid tier that holds the phones")
    p.add_argument("--htk-dir", type=Path, help="import HTK label files (100-ns units) instead of aligning")
    add_num_threads(p)
    return p


def run_align(argv=None, prog: Optional[str] = "speecheq align") -> None:
    p = align_parser(prog)
    args = p.parse_args(argv)
    set_num_threads(args.num_threads)
    from speecheq import align

    if args.textgrid_dir or args.htk_dir:
        align.import_alignments(
            args.cuts, args.output, textgrid_dir=args.textgrid_dir, tier=args.tier, htk_dir=args.htk_dir
        )
        return
    if args.exp_dir is None:
        p.error("give --exp-dir (CTC alignment) or --textgrid-dir / --htk-dir (import)")
    align.align_corpus(
        args.exp_dir,
        args.cuts,
        args.output,
        epoch=args.epoch,
        avg=args.avg,
        use_averaged_model=args.use_averaged_model,
        checkpoint=args.checkpoint,
        device=args.device,
        max_duration=args.max_duration,
        plot_path=args.plot,
        allow_untrained=args.allow_untrained,
        **({} if args.max_per is None else {"max_per": args.max_per}),
    )


# Stage 7

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016", "GE2E")  # speecheq.baseline.FEATURE_SETS, without importing it for --help


def baseline_parser(prog: Optional[str] = "speecheq baseline") -> argparse.ArgumentParser:
    p = _parser(
        prog,
        "Stage 7: the classic baseline on a recipe's folds: openSMILE functionals (cached per corpus) + SVM, "
        "kernel and C chosen by leave-one-speaker-out on each fold's training speakers, fitted on the training "
        "speakers, evaluated on the fold's dev and test sets. Writes "
        "EXP_DIR/fold<k>/decode/<corpus>_fold<k>_{dev,test}-svm/{predictions.tsv,metrics.json} (the decode "
        "layout: summarise with speecheq decode --folds) and EXP_DIR/fold<k>/svm.json (the chosen kernel and C). "
        "--speaker-norm uses each test speaker's own unlabelled utterances.",
    )
    p.add_argument("--corpus", required=True, help="corpus name of the fold manifests (<corpus>_cuts_fold<k>_<split>)")
    p.add_argument(
        "--folds",
        nargs="+",
        default=["0", "1", "2", "3"],
        help="folds as the recipe names them: k, fold<k>, or official (the corpus's single split)",
    )
    p.add_argument(
        "--feature-set",
        choices=FEATURE_SETS,
        default="eGeMAPSv02",
        help="openSMILE functionals, or GE2E: a pretrained speaker encoder's utterance features (needs --speaker-encoder)",
    )
    p.add_argument(
        "--speaker-encoder",
        type=Path,
        default=None,
        help="GE2E weights file for --feature-set GE2E, e.g. resemblyzer/pretrained.pt of the resemblyzer wheel "
        "(read from disk, never downloaded)",
    )
    p.add_argument(
        "--speaker-norm",
        action="store_true",
        help="z-score each speaker's functionals by that speaker's own mean and std (uses the test "
        "speakers' unlabelled audio)",
    )
    p.add_argument("--label-preset", default="all", help="category preset of the task (as in training)")
    p.add_argument("--fbank-dir", type=Path, default=Path("data/fbank"), help="folder of the fold cut manifests")
    p.add_argument(
        "--functionals-dir",
        type=Path,
        default=Path("data/functionals"),
        help="cache of functionals per corpus and feature set, shared by all folds",
    )
    p.add_argument(
        "--exp-dir",
        type=Path,
        default=None,
        help="output folder; default exp/baseline_<feature-set>[_spknorm][_traindev]_<label-preset>",
    )
    p.add_argument("--kernels", nargs="+", default=["linear", "rbf"], help="SVM kernels to choose from")
    p.add_argument(
        "--c-grid",
        type=float,
        nargs="+",
        default=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0],
        help="SVM C values to choose from",
    )
    p.add_argument(
        "--inner-folds",
        type=int,
        default=0,
        help="speaker-grouped folds of the inner model selection (0: leave one training speaker out)",
    )
    p.add_argument(
        "--calibration-folds",
        type=int,
        default=5,
        help="speaker-grouped folds of the out-of-fold decision values the probabilities are calibrated on",
    )
    p.add_argument(
        "--fit-on",
        choices=["train", "train+dev"],
        default="train",
        help="speakers the SVM is fitted on; train+dev (the reference protocol of ../shared/docs/paper.md) "
        "evaluates the test set only, in EXP_DIR ..._traindev_<label-preset>",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar while computing functionals")
    return p


def run_baseline(argv=None, prog: Optional[str] = "speecheq baseline") -> None:
    args = baseline_parser(prog).parse_args(argv)
    from speecheq.baseline import run_baseline as baseline

    baseline(
        args.corpus,
        args.folds,
        featset=args.feature_set,
        label_preset=args.label_preset,
        fbank_dir=args.fbank_dir,
        functionals_dir=args.functionals_dir,
        exp_dir=args.exp_dir,
        speaker_norm=args.speaker_norm,
        kernels=args.kernels,
        cs=args.c_grid,
        inner_folds=args.inner_folds,
        calibration_folds=args.calibration_folds,
        fit_on=args.fit_on,
        progress=not args.no_progress,
        speaker_encoder=args.speaker_encoder,
    )


# Stage 8


def fuse_parser(prog: Optional[str] = "speecheq fuse") -> argparse.ArgumentParser:
    p = _parser(
        prog,
        """Stage 8: late fusion of two runs over the same folds: p = w * p_A + (1 - w) * p_B, w chosen per fold
on that fold's dev set (UA, grid 0, 0.1, ..., 1; ties: the larger w), then applied to its test
set. A and B are decode folders given as patterns with {k} (fold) and {split} (dev, test), e.g.
  --a 'exp/all4_all/fold{k}/decode/ravdess_fold{k}_{split}-epoch-25-avg-5'
  --b 'exp/baseline_ComParE_2016_spknorm_all/fold{k}/decode/ravdess_fold{k}_{split}-svm'
The neural run's dev sets must be decoded too (speecheq decode --cuts ..._fold<k>_dev.jsonl.gz).
Writes OUT_DIR/fold<k>/decode/<set>-fused/{predictions.tsv,metrics.json} and fold<k>/fusion.json
(the chosen w); summarise with speecheq decode --folds OUT_DIR/fold*/decode/*-fused/metrics.json.""",
        _RawHelp,
    )
    p.add_argument("--a", required=True, help="decode folder pattern of run A (weight w), with {k} and {split}")
    p.add_argument("--b", required=True, help="decode folder pattern of run B (weight 1 - w), with {k} and {split}")
    p.add_argument("--folds", nargs="+", default=["0", "1", "2", "3"], help="fold numbers substituted for {k}")
    p.add_argument("--out-dir", type=Path, required=True, help="output folder, e.g. exp/fusion_all4_compare")
    p.add_argument("--names", nargs=2, default=["net", "svm"], help="names of A and B in fusion.json")
    p.add_argument(
        "--weights-from",
        type=Path,
        help="an earlier fusion's OUT_DIR: each fold's w is read from its fold<k>/fusion.json instead of chosen "
        "on dev (for models refitted on train + dev, whose dev sets are training data); only test sets are read",
    )
    return p


def run_fuse(argv=None, prog: Optional[str] = "speecheq fuse") -> None:
    args = fuse_parser(prog).parse_args(argv)
    from speecheq.fusion import fuse_folds

    for path in fuse_folds(args.a, args.b, args.folds, args.out_dir, names=args.names, weights_from=args.weights_from):
        print(path)


def ensemble_parser(prog: Optional[str] = "speecheq ensemble") -> argparse.ArgumentParser:
    p = _parser(
        prog,
        """Stages 5 and 8 with ensemble_seeds: a seed ensemble, the equal-weight mean of the class
probabilities of N >= 2 runs over the same folds. Each run is a decode folder pattern with {k}
(fold) and {split} (a --splits name), e.g.
  --runs 'exp/all4_all/fold{k}/decode/ravdess_fold{k}_{split}-epoch-25-avg-5' \\
         'exp/all4_seed43_all/fold{k}/decode/ravdess_fold{k}_{split}-epoch-25-avg-5'
Writes OUT_DIR/fold<k>/decode/<set>-ens/{predictions.tsv,metrics.json} (emotion category metrics
only); summarise with speecheq decode --folds OUT_DIR/fold*/decode/*_test-ens/metrics.json.""",
        _RawHelp,
    )
    p.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="PATTERN",
        help="decode folders of at least 2 runs, with {k} and {split}",
    )
    p.add_argument("--folds", nargs="+", default=["0", "1", "2", "3"], help="folds substituted for {k}")
    p.add_argument("--splits", nargs="+", default=["test", "dev"], help="sets substituted for {split}")
    p.add_argument("--out-dir", type=Path, required=True, help="output folder, e.g. exp/all4_ens_all")
    return p


def run_ensemble(argv=None, prog: Optional[str] = "speecheq ensemble") -> None:
    args = ensemble_parser(prog).parse_args(argv)
    from speecheq.fusion import average_folds

    for path in average_folds(args.runs, args.folds, args.splits, args.out_dir):
        print(path)


# Stage 9 and inference


def export_parser(prog: Optional[str] = "speecheq export") -> argparse.ArgumentParser:
    p = _parser(
        prog,
        "Stage 9: write a self-contained model package from a recipe's exp dir (weights after averaging, "
        "configuration, labels, tokens, fbank settings), and optionally TorchScript (model.ts.pt) and "
        "ONNX (model.onnx) engines next to it, each checked against the eager model (docs/inference.md).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--exp-dir", type=Path, help="training folder with epoch-*.pt / best-valid.pt")
    src.add_argument("--package", type=Path, help="an existing package: only add the engines next to it")
    p.add_argument(
        "--output",
        type=Path,
        help="package to write: a .pt file, or any other name for a Hugging Face-layout folder (config.json, "
        "model.safetensors, tokens.txt, README.md); EXP_DIR/speecheq-package.pt when not given. "
        "With --package: that package written again in this layout",
    )
    _add_weights_options(p)
    p.add_argument(
        "--corpora",
        default=None,
        help="comma list of corpora for the corpus-aware decision; default: those the checkpoint recorded from its training cuts",
    )
    p.add_argument(
        "--extractor",
        default="fbank",
        choices=["fbank", "kaldifeat", "fbank-pitch"],
        help="the front end of checkpoints that recorded none (written before they recorded their training data); "
        "the checkpoint's recorded front end wins where it differs in fbank vs fbank-pitch",
    )
    p.add_argument(
        "--trim-silence-db",
        type=float,
        default=None,
        help="inference trims silence this many dB below each segment's peak (0: off); "
        "default: as the checkpoint recorded its training cuts were trimmed",
    )
    p.add_argument("--torchscript", action="store_true", help="also write model.ts.pt next to the package")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx next to the package")
    return p


def run_export(argv=None, prog: Optional[str] = "speecheq export") -> None:
    args = export_parser(prog).parse_args(argv)
    from speecheq.export import export

    convert = None
    if args.package is not None:
        output = args.package
        if args.output is not None and args.output != args.package:
            convert, output = args.package, args.output  # e.g. a .pt package into the Hugging Face folder layout
        elif not (args.torchscript or args.onnx):
            export_parser(prog).error("with --package, give --output (another layout) and/or --torchscript, --onnx")
    else:
        output = args.output or args.exp_dir / "speecheq-package.pt"
    corpora = [c for c in args.corpora.split(",") if c] if args.corpora is not None else None
    export(
        output,
        exp_dir=args.exp_dir,
        epoch=args.epoch,
        avg=args.avg,
        use_averaged_model=args.use_averaged_model,
        checkpoint=args.checkpoint,
        corpora=corpora,
        extractor=args.extractor,
        torchscript=args.torchscript,
        onnx=args.onnx,
        trim_silence_db=args.trim_silence_db,
        convert=convert,
    )


def infer_parser(prog: Optional[str] = "speecheq infer") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        formatter_class=_Help,
        description="Emotion category, intensity, gender and phones for audio files, folders (recursive) "
        "and lhotse cut/recording manifests (.jsonl.gz). One JSON line (or TSV row) per file; "
        "files longer than --max-segment get one per segment plus a summary. Unreadable files get "
        "an error record and the exit status is 3 at the end. See docs/inference.md.",
    )
    p.add_argument("inputs", nargs="+", help="audio files, folders, or lhotse manifests")
    p.add_argument("--model", required=True, type=Path, help="package written by local/export.py")
    p.add_argument("--output", type=Path, default=None, help="output file; stdout when not given")
    p.add_argument(
        "--format",
        choices=["jsonl", "tsv"],
        default=None,
        help="output format; from the --output suffix when not given, else jsonl",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument(
        "--engine",
        choices=["eager", "torchscript", "onnx"],
        default="eager",
        help="torchscript/onnx read model.ts.pt/model.onnx next to the package (local/export.py)",
    )
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per batch, padding included")
    p.add_argument(
        "--max-segment",
        type=float,
        default=30.0,
        help="longer recordings are split at pauses into segments of at most this many seconds (0: never)",
    )
    p.add_argument(
        "--align", action="store_true", help="add the CTC alignment of the predicted phones (packages with phone units)"
    )
    p.add_argument(
        "--corpus",
        default=None,
        help="decide the category among the categories this corpus has (corpus-aware decision)",
    )
    p.add_argument("--num-threads", type=int, default=0, help="CPU threads for torch/onnxruntime (0: their default)")
    p.add_argument(
        "--trim-silence-db",
        type=float,
        default=None,
        help="trim leading/trailing silence this many dB below each segment's peak (0: off); "
        "default: as the model's training cuts were trimmed",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def run_infer(argv=None, prog: Optional[str] = "speecheq infer") -> None:
    args = infer_parser(prog).parse_args(argv)
    from speecheq.infer import EXIT_PARTIAL, infer

    stats = infer(
        args.inputs,
        args.model,
        output=args.output,
        fmt=args.format,
        device=args.device,
        engine=args.engine,
        max_duration=args.max_duration,
        max_segment=args.max_segment,
        align=args.align,
        corpus=args.corpus,
        num_threads=args.num_threads,
        progress=not args.no_progress,
        trim_silence_db=args.trim_silence_db,
    )
    if stats.failed:
        where = f" (see the error records in {args.output})" if args.output else ""
        print(f"ERROR: {stats.failed} of {stats.files} inputs could not be processed{where}", file=sys.stderr)
        sys.exit(EXIT_PARTIAL)


@dataclass(frozen=True)
class Command:
    run: Callable[..., None]  # run(argv, prog): parse argv with the command's parser, then call the library
    summary: str
    local: str = ""  # the recipes' stage script that runs the same parser and code


COMMANDS = {
    "prepare": Command(
        run_prepare, "stage 0: corpus folder -> recordings and supervisions manifests", "local/prepare.py"
    ),
    "lang": Command(run_lang, "stage 1: CTC token inventory (phone, char, bpe) -> tokens.txt", "local/prepare_lang.py"),
    "fbank": Command(run_fbank, "stage 2: fbank (or fbank + pitch) features -> cut manifest", "local/compute_fbank.py"),
    "validate": Command(run_validate, "stage 3: validate the cuts, write the protocol's splits", "local/validate.py"),
    "train": Command(run_train, "stage 4: train the multitask model", "local/train.py"),
    "decode": Command(
        run_decode, "stage 5: decode test sets (predictions, metrics), or summarise folds", "local/decode.py"
    ),
    "align": Command(run_align, "stage 6: CTC phone alignment, or import MFA / HTK alignments", "local/align.py"),
    "baseline": Command(
        run_baseline, "stage 7: openSMILE functionals + SVM on the folds", "local/baseline_functionals.py"
    ),
    "fuse": Command(run_fuse, "stage 8: late fusion of two runs, weight chosen on each dev set", "local/fuse.py"),
    "ensemble": Command(
        run_ensemble, "stages 5, 8: seed ensemble, the mean posterior of several runs", "local/ensemble.py"
    ),
    "export": Command(run_export, "stage 9: model package, TorchScript and ONNX engines", "local/export.py"),
    "infer": Command(run_infer, "emotion, intensity, gender and phones for audio files, folders, manifests"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<9} {c.summary}" + (f" ({c.local})" if c.local else "") for name, c in COMMANDS.items())
    return (
        "usage: speecheq [-h] [-V] COMMAND [OPTIONS]\n\n"
        "SpeechEQ's recipe stages and inference. A stage command and the recipe script named next to it\n"
        "share one parser and one code path: same options, same outputs.\n\n"
        f"commands:\n{rows}\n\n"
        "options:\n  -h, --help     this list; `speecheq COMMAND --help` describes a command's options\n"
        "  -V, --version  print the version\n"
    )


def stage_main(name: str) -> None:
    """The body of the ``local/`` stage script that mirrors ``speecheq <name>``."""
    command = COMMANDS[name]
    script(lambda: command.run(sys.argv[1:], prog=command.local))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="", file=sys.stdout if argv else sys.stderr)
        sys.exit(0 if argv else 2)
    if argv[0] in ("-V", "--version"):
        from speecheq import __version__

        print(f"speecheq {__version__}")
        sys.exit(0)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"speecheq: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    script(lambda: COMMANDS[name].run(rest, prog=f"speecheq {name}"))
