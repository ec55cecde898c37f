#!/usr/bin/env bash
# trained.sh EXP_DIR NUM_EPOCHS: succeeds when training in EXP_DIR finished NUM_EPOCHS epochs:
# the last epoch checkpoint AND train-summary.json, which train.py writes only after best-valid.pt
# is consistent. A run killed between the two is not finished: train.py resumes and repairs it.
[ -f "$1/epoch-$2.pt" ] && [ -f "$1/train-summary.json" ]
