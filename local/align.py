#!/usr/bin/env python3
"""Stage 6: CTC forced alignment of every cut's phones -> data/fbank_ali/<corpus>_cuts_<split>.jsonl.gz,
or import alignments from MFA TextGrids / HTK label files into the same field."""

import argparse
from pathlib import Path

from speecheq.cli import script
from speecheq.options import add_num_threads, set_num_threads


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cuts", type=Path, required=True, help="input cut manifest")
    p.add_argument("--output", type=Path, required=True, help="output cut manifest with alignment['phone']")
    p.add_argument("--exp-dir", type=Path, help="trained model (CTC alignment)")
    p.add_argument("--epoch", type=int, default=0, help="last epoch to use (0: the latest)")
    p.add_argument("--avg", type=int, default=1, help="average this many epochs ending at --epoch")
    p.add_argument(
        "--use-averaged-model", action="store_true", help="use the running average between epoch-avg and epoch"
    )
    p.add_argument("--checkpoint", default="", help="a checkpoint file instead (e.g. best-valid.pt)")
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
    args = p.parse_args()
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


if __name__ == "__main__":
    script(main)
