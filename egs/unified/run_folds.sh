#!/usr/bin/env bash
# The unified model on every fold of the corpora's protocol (RAVDESS: 4 speaker-independent
# folds; a corpus without folds, such as synth, contributes the same splits to each), then its
# mean and std per corpus over the folds: the "unified multitask" rows of RESULTS.md, to set
# against egs/ravdess/run_ablation.sh's single-corpus rows trained with the same settings.
# Every fold is one single-thread job; --jobs of them run at a time.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

corpora="synth ravdess"
folds="0 1 2 3"
label_preset=all
tasks=emotion,intensity,ctc,gender
num_epochs=25
max_duration=50
jobs=2
extra_train_args="--lr-schedule cosine"
decode_checkpoint="--epoch $num_epochs --avg 5"
stop_stage=5                 # 4: train only
. utils/parse_options.sh
. utils/fold_stages.sh       # decode_tag

common=(--corpora "$corpora" --label-preset $label_preset --tasks $tasks --num-epochs $num_epochs
        --max-duration $max_duration --single false)
./run.sh --stage 0 --stop-stage 1 --corpora "$corpora"
mkdir -p exp/log
for k in $folds; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
  log "training the unified model, fold $k, log in exp/log/unified-fold$k.log"
  OMP_NUM_THREADS=1 ./run.sh --stage 4 --stop-stage 4 --fold $k "${common[@]}" \
    --extra-train-args "--num-workers 0 $extra_train_args" > exp/log/unified-fold$k.log 2>&1 &
done
wait
[ $stop_stage -ge 5 ] || exit 0
tag=$(decode_tag "$decode_checkpoint")
for k in $folds; do
  ./run.sh --stage 5 --stop-stage 5 --fold $k "${common[@]}" --decode-checkpoint "$decode_checkpoint"
done
for c in $corpora; do
  metrics=""
  for k in $folds; do
    m=exp/unified_fold$k/decode/${c}_fold${k}_test-$tag/metrics.json
    [ -f $m ] || m=exp/unified_fold$k/decode/${c}_test-$tag/metrics.json
    metrics="$metrics $m"
  done
  local/decode.py --exp-dir exp --folds $metrics --summary-out exp/unified-$c-folds-summary-$tag.json \
    --results exp/unified-RESULTS.md --run-name "unified ($corpora) on $c, $label_preset, ($tasks) $tag folds: $folds"
done
cat exp/unified-RESULTS.md
