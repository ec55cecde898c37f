#!/usr/bin/env bash
# next_epoch.sh EXP_DIR: the --start-epoch that resumes after the last epoch-N.pt (1 if none).
last=$(ls "$1"/epoch-*.pt 2>/dev/null | sed 's/.*epoch-\([0-9]*\)\.pt/\1/' | sort -n | tail -1)
echo $(( ${last:-0} + 1 ))
