#!/usr/bin/env python3
"""Stage 4: train the SpeechEQ multitask model (one process on CPU, or torchrun for several GPUs)."""

from speecheq.cli import script


def main():
    from speecheq.options import train_parser

    args = train_parser().parse_args()  # before torch's import: --help answers at once
    from speecheq.train import train

    train(args)


if __name__ == "__main__":
    script(main)
