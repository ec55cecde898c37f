"""Command-line front-ends: the ``speecheq`` console script and the helper every
``local/*.py`` stage script uses to set up logging and end in one clear line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from speecheq.errors import exit_on_error


def script(main: Callable[[], None]) -> None:
    """Run a stage script's ``main`` with console logging and one-line errors."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s")
    logging.getLogger("lhotse").setLevel(logging.WARNING)
    exit_on_error(main)()


COMMANDS = ("infer", "export")


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


def infer_parser(prog: str = "speecheq infer") -> argparse.ArgumentParser:
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
    p.add_argument("--align", action="store_true", help="add the CTC alignment of the predicted phones")
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


def export_parser(prog: str = "speecheq export") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        formatter_class=_Help,
        description="Write a self-contained model package from a recipe's exp dir (weights after averaging, "
        "configuration, labels, tokens, fbank settings), and optionally TorchScript (model.ts.pt) and "
        "ONNX (model.onnx) engines next to it, each checked against the eager model.",
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
    p.add_argument("--epoch", type=int, default=0, help="last epoch to use (0: the latest)")
    p.add_argument("--avg", type=int, default=1, help="average this many epochs ending at --epoch")
    p.add_argument(
        "--use-averaged-model", action="store_true", help="use the running average between epoch-avg and epoch"
    )
    p.add_argument("--checkpoint", default="", help="a checkpoint file instead (e.g. best-valid.pt)")
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


def run_export(argv=None, prog: str = "speecheq export") -> None:
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


def run_infer(argv=None) -> None:
    args = infer_parser().parse_args(argv)
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


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: speecheq [--version] {infer,export} ... (see speecheq infer --help, speecheq export --help)")
        sys.exit(0 if argv else 2)
    if argv[0] in ("-V", "--version"):
        from speecheq import __version__

        print(f"speecheq {__version__}")
        sys.exit(0)
    command, rest = argv[0], argv[1:]
    if command == "infer":
        script(lambda: run_infer(rest))
    elif command == "export":
        script(lambda: run_export(rest))
    else:
        print(f"speecheq: unknown command {command!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
