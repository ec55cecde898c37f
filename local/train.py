#!/usr/bin/env python3
"""Stage 4: train the SpeechEQ multitask model (one process on CPU, or torchrun for several GPUs)."""
from speecheq.cli import script


def main():
    from speecheq.train import get_parser, train

    train(get_parser().parse_args())


if __name__ == "__main__":
    script(main)
