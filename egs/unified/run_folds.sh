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
# The model, features and training settings are run.sh's, passed to it (defaults: the
# single-corpus recipes' measured configuration, docs/unified.md).
label_preset=all             # every corpus's categories, each decided among its own (corpus-aware)
tasks=emotion,intensity,ctc,gender  # tasks trained; a corpus without a task's labels is masked
ctc_weight=""                # the phone task's loss weight; empty: the task table's 0.1 (EmoDB's own recipe: 1.0)
model_preset=small           # encoder size: tiny or small (docs/model.md)
model_config=""              # JSON overrides of the preset
feature_type=fbank           # fbank or fbank-pitch: the features every corpus was prepared with
feat_dir=data/fbank          # the corpora's features folder, the same in each corpus recipe (e.g. data/fbank_pitch)
front_end=fbank              # fbank, or ssl with ssl_model (docs/ssl.md)
ssl_model=""                 # front_end=ssl: local folder of the encoder
ssl_finetune_top=0           # front_end=ssl: also train its top N layers
num_epochs=25                # training epochs
max_duration=50              # s of audio per batch
lr_schedule=cosine           # learning-rate schedule (noam: open-ended)
mixup_alpha=0.4              # fbank mixup (0: off)
seed=42                      # random seed of training
corpus_weights=""            # e.g. "ravdess=1,emodb=1": equal sampling shares
jobs=2                       # models trained at a time, one single-thread job each
extra_train_args=""          # more local/train.py flags, last (they override the variables above)
decode_checkpoint=""         # default: the last min(5, num_epochs) epochs averaged
single=""                    # CORPUS=EXP_PATTERN ({k}: the fold) of each corpus's own fold models, for the matrix
intensity_on=""              # corpora to report the mean predicted intensity per category on (e.g. emodb)
device=cpu
stop_stage=6                 # 4: train only; 5: and decode; 6: and the report
. utils/parse_options.sh
. utils/stages.sh            # decode_weights, front_end_args
front_end_args               # a bad front_end or a missing ssl_model stops here, in one line, before any job

./run.sh --stage 0 --stop-stage 1 --corpora "$corpora" --feature-type $feature_type --feat-dir "$feat_dir"
mkdir -p exp/log
all_models=$(local/unified_folds.py --corpora $corpora --fbank-dir "$feat_dir" --plan-out exp/$name-folds.json)
log "the corpora pair into unified models $all_models (exp/$name-folds.json)"
folds=${folds:-$all_models}
weights=$(decode_weights)
common=(--corpora "$corpora" --name $name --label-preset $label_preset --tasks $tasks --model-preset $model_preset
        --feature-type $feature_type --feat-dir "$feat_dir" --front-end $front_end --ssl-model "$ssl_model"
        --ssl-finetune-top $ssl_finetune_top --num-epochs $num_epochs --max-duration $max_duration
        --lr-schedule $lr_schedule --mixup-alpha $mixup_alpha --seed $seed --device $device --single false)
[ -z "$model_config" ] || common+=(--model-config "$model_config")
[ -z "$corpus_weights" ] || common+=(--corpus-weights "$corpus_weights")
[ -z "$ctc_weight" ] || common+=(--ctc-weight "$ctc_weight")

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
local/unified_report.py --corpora $corpora --fbank-dir "$feat_dir" --exp-root exp --name $name --models $folds --label-preset $label_preset \
  $weights --device $device --results exp/$name-RESULTS.md ${single:+--single $single} ${intensity_on:+--intensity-on $intensity_on}
cat exp/$name-RESULTS.md
