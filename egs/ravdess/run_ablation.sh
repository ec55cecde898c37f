#!/usr/bin/env bash
# The RAVDESS task ablation and lever screens behind RESULTS.md, over speaker-independent folds:
#   category only; + intensity; + gender; + CTC phones (all four SpeechEQ tasks);
#   all four + speed perturbation / mixup / the tiny preset; the speaker adversary instead of gender.
# Every (task set, fold) is one single-thread job; --jobs of them run at a time (a small
# model on 2 cores trains faster as two single-thread jobs than as one two-thread job).
# Training is stage 4 of run.sh, so a killed ablation resumes where each fold stopped.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

num_epochs=25
max_duration=50
label_preset=all
jobs=2
extra_train_args="--lr-schedule cosine"
name_suffix=""
names="cat all4 cat_int cat_int_gen"   # which task sets to run
folds="0 1 2 3"
stop_stage=5                           # 4: train only; 5: also decode and add the rows
decode_checkpoint="--epoch $num_epochs --avg 5"   # or "--checkpoint best-valid.pt"
. utils/parse_options.sh

# name -> tasks; the levers of the accuracy work add training options to a task set.
declare -A task_sets=(
  [cat]=emotion
  [cat_int]=emotion,intensity
  [cat_int_gen]=emotion,intensity,gender
  [all4]=emotion,intensity,gender,ctc
  [all4_sp]=emotion,intensity,gender,ctc
  [all4_mixup]=emotion,intensity,gender,ctc
  [all4_tiny]=emotion,intensity,gender,ctc
  [adv]=emotion,intensity,ctc,speaker
)
declare -A lever_args=(
  [all4_sp]="--speed-perturb 0.9,1.1"
  [all4_mixup]="--mixup-alpha 0.4"
)
declare -A lever_preset=(
  [all4_tiny]=tiny
)
for name in $names; do
  [ -n "${task_sets[$name]:-}" ] || { echo "$0: unknown task set '$name' (known: ${!task_sets[*]})" >&2; exit 1; }
done

./run.sh --stop-stage 3 --label-preset $label_preset
mkdir -p exp/log
# The ablation's rows are plain task sets: the recipe's default mixup is off here unless a lever asks for it.
common=(--label-preset $label_preset --num-epochs $num_epochs --max-duration $max_duration --mixup-alpha 0)
for name in $names; do
  for k in $folds; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
    log "training $name (${task_sets[$name]}) fold $k, log in exp/log/ablation-$name$name_suffix-fold$k.log"
    OMP_NUM_THREADS=1 ./run.sh --stage 4 --stop-stage 4 --fold $k --tasks ${task_sets[$name]} \
      --model-preset ${lever_preset[$name]:-small} --exp-name $name$name_suffix "${common[@]}" \
      --extra-train-args "--num-workers 0 $extra_train_args ${lever_args[$name]:-}" \
      > exp/log/ablation-$name$name_suffix-fold$k.log 2>&1 &
  done
done
wait
[ $stop_stage -ge 5 ] || exit 0
for name in $names; do
  ./run.sh --stage 5 --stop-stage 5 --folds "$folds" --tasks ${task_sets[$name]} --exp-name $name$name_suffix \
    --model-preset ${lever_preset[$name]:-small} \
    "${common[@]}" --decode-checkpoint "$decode_checkpoint" --results exp/ablation-RESULTS.md
done
cat exp/ablation-RESULTS.md
