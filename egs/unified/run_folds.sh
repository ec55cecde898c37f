#!/usr/bin/env bash
# Unified models over every fold of several prepared corpora, then per corpus the mean and std
# over its folds, the cross-corpus matrix and the intensity scale: the "unified multitask" rows
# of RESULTS.md, to set against each corpus's own fold rows trained with the same settings.
#
# Fold pairing (speecheq/unified.py, docs/unified.md): corpora have different fold counts
# (RAVDESS 4, EmoDB 5, CASIA 4; synth or an official split: 1). With M the largest count, model
# k (exp/<name>_fold<k>, k = 0..M-1) trains on fold k mod n_c of every corpus c and is tested on
# those folds. It is corpus c's primary model for fold k when k < n_c; the others repeat a fold
# already tested, and are reported on their own row, never in the corpus's mean, so each test
# speaker counts once. The library pairs the folds and checks on the split files that no model
# trains on a test or dev speaker of a corpus it is tested on; this script only runs the stages.
# Every model is one single-thread job; --jobs of them run at a time.
#
#   ./run_folds.sh --corpora "ravdess emodb" --single "ravdess=../ravdess/exp/multitask_all/fold{k} \
#                  emodb=../emodb/exp/multitask_all/fold{k}" --intensity-on emodb
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

corpora="synth ravdess"      # any prepared corpora (egs/<corpus>/run.sh --stop-stage 3 first)
folds=""                     # unified model indices to train and report (default: all, 0..M-1)
name=unified                 # exp/<name>_fold<k>; e.g. unified_balanced with --corpus-weights
label_preset=all
tasks=emotion,intensity,ctc,gender
model_preset=small
model_config=""
num_epochs=25
max_duration=50
corpus_weights=""            # e.g. "ravdess=1,emodb=1": equal sampling shares
jobs=2
extra_train_args="--lr-schedule cosine --mixup-alpha 0.4"  # the small corpora's recipe defaults (RESULTS.md "levers")
decode_checkpoint=""         # default: the last min(5, num_epochs) epochs averaged
single=""                    # CORPUS=EXP_PATTERN ({k}: the fold) of each corpus's own fold models, for the matrix
intensity_on=""              # corpora to report the mean predicted intensity per category on (e.g. emodb)
device=cpu
stop_stage=6                 # 4: train only; 5: and decode; 6: and the report
. utils/parse_options.sh
. utils/stages.sh            # decode_weights

./run.sh --stage 0 --stop-stage 1 --corpora "$corpora"
mkdir -p exp/log
all_models=$(local/unified_folds.py --corpora $corpora --plan-out exp/$name-folds.json)
log "the corpora pair into unified models $all_models (exp/$name-folds.json)"
folds=${folds:-$all_models}
weights=$(decode_weights)
common=(--corpora "$corpora" --name $name --label-preset $label_preset --tasks $tasks --model-preset $model_preset
        --num-epochs $num_epochs --max-duration $max_duration --device $device --single false)
[ -z "$model_config" ] || common+=(--model-config "$model_config")
[ -z "$corpus_weights" ] || common+=(--corpus-weights "$corpus_weights")

pids=()
for k in $folds; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
  log "training unified model $k, log in exp/log/$name-fold$k.log"
  OMP_NUM_THREADS=1 ./run.sh --stage 4 --stop-stage 4 --fold $k "${common[@]}" \
    --extra-train-args "--num-workers 0 $extra_train_args" > exp/log/$name-fold$k.log 2>&1 &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait $p || failed=1; done
[ $failed = 0 ] || { echo "ERROR: a unified model's training failed: see exp/log/$name-fold*.log" >&2; exit 1; }
[ $stop_stage -ge 5 ] || exit 0
for k in $folds; do
  ./run.sh --stage 5 --stop-stage 5 --fold $k "${common[@]}" --decode-checkpoint "$weights"
done
[ $stop_stage -ge 6 ] || exit 0
local/unified_report.py --corpora $corpora --exp-root exp --name $name --models $folds --label-preset $label_preset \
  $weights --device $device --results exp/$name-RESULTS.md ${single:+--single $single} ${intensity_on:+--intensity-on $intensity_on}
cat exp/$name-RESULTS.md
