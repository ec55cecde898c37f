#!/usr/bin/env bash
# The RAVDESS task ablation behind RESULTS.md: 4 task sets x 4 speaker-independent folds.
#   category only; + intensity; + gender; + CTC phones (all four SpeechEQ tasks).
# Two task sets run at a time, one thread each (a small model on 2 cores trains
# faster as two single-thread jobs than as one two-thread job).
# Budget on 2 CPU cores: about 2 hours for the whole table.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

num_epochs=15
max_duration=100
label_preset=all
jobs=2
extra_train_args=""
name_suffix=""
names="cat all4 cat_int cat_int_gen"   # which task sets to run
. utils/parse_options.sh

./run.sh --stop-stage 3 --label-preset $label_preset

declare -A task_sets=(
  [cat]=emotion
  [cat_int]=emotion,intensity
  [cat_int_gen]=emotion,intensity,gender
  [all4]=emotion,intensity,gender,ctc
)
mkdir -p exp/log
for name in $names; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
  log "training $name (${task_sets[$name]}), log in exp/log/ablation-$name$name_suffix.log"
  OMP_NUM_THREADS=1 ./run.sh --stage 4 --stop-stage 5 --tasks ${task_sets[$name]} --exp-name $name$name_suffix \
    --label-preset $label_preset --num-epochs $num_epochs --max-duration $max_duration \
    --extra-train-args "--num-workers 0 $extra_train_args" --results exp/ablation-RESULTS.md \
    > exp/log/ablation-$name$name_suffix.log 2>&1 &
done
wait
cat exp/ablation-RESULTS.md
