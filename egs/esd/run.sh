#!/usr/bin/env bash
# SpeechEQ on ESD (10 Mandarin + 10 English speakers, 5 emotions, parallel texts).
# Stages: 0 manifests, 1 lang, 2 fbank, 3 validate + splits (si: 5 speaker-independent folds; official: split folders),
#         4 train each fold, 5 decode each fold + mean/std over folds, 6 align.
#         7 classic baseline: openSMILE functionals + SVM on each fold (--stage 7 --stop-stage 7).
#         8 the network fused with the SVM (posteriors averaged, weight chosen on each dev set).
# The corpus is licensed per user: it is read where it lies (--corpus-dir), never copied here.
# Gender is not in the corpus: --speaker-table FILE (speaker<TAB>M|F) gives it, else it is masked.
# --protocol official (the corpus's split folders) is one split: use it with --folds official.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

stage=0
stop_stage=8
corpus_dir=${SPEECHEQ_ESD_DIR:-$SPEECHEQ_ROOT/../shared/data/esd}
language=all               # zh (0001-0010), en (0011-0020) or all
speaker_table=""           # optional speaker<TAB>M|F file
protocol=si                # si: speaker-independent folds fold0..fold4; official: train/evaluation/test folders
nj=2
executor=local        # local processes, or dask (docs/scaling.md)
dask_scheduler=""      # dask scheduler address (else $DASK_SCHEDULER_ADDRESS, else a local cluster)
device=cpu
feature_type=fbank        # fbank-pitch: + log F0, voicing and their deltas (84 dims)
feat_dir=data/fbank       # features folder of stages 2-6; one per feature type (e.g. data/fbank_pitch)
folds="fold0 fold1 fold2 fold3 fold4"  # fold k tests 2 Mandarin + 2 English speakers; "official" with --protocol official
label_preset=6class        # ESD's 5 emotions (no fear); 4class for the cross-corpus table
model_preset=small
model_config=""
num_epochs=20
max_duration=200
lr_schedule=cosine         # anneals within the budget; noam: open-ended inverse square root
tasks=emotion,ctc,gender   # no intensity labels; gender only with --speaker-table
extra_train_args=""
decode_checkpoint=""       # default: the last 5 epochs averaged; or "--checkpoint best-valid.pt"
fusion_baseline=ComParE_2016  # stage 8: the SVM row fused with the network (ComParE_2016_spknorm with --speaker-cmvn)
exp_name=multitask
seed=42
results=RESULTS.md
. utils/parse_options.sh
corpus=esd
. utils/fold_stages.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests from $corpus_dir"
  local/prepare.py --corpus esd --corpus-dir "$corpus_dir" --output-dir data/manifests --nj $nj \
    --executor $executor ${dask_scheduler:+--dask-scheduler $dask_scheduler} --language $language \
    ${speaker_table:+--speaker-table "$speaker_table"}
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: phone inventory -> data/lang/tokens.txt"
  local/prepare_lang.py --supervisions data/manifests/esd_supervisions_all.jsonl.gz --lang-dir data/lang
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: $feature_type features -> $feat_dir ($device)"
  local/compute_fbank.py --corpus esd --feature-type $feature_type --output-dir $feat_dir --nj $nj --device $device \
    --executor $executor ${dask_scheduler:+--dask-scheduler $dask_scheduler}
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: validate cuts and write splits (si: 5 speaker-independent folds; official: split folders)"
  local/validate.py --corpus esd --fbank-dir $feat_dir --label-preset $label_preset --protocol $protocol --language $language
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: train each fold ($folds)"
  train_folds
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: decode each fold, then mean and std over folds"
  decode_folds
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: CTC phone alignment of the first fold's test set"
  align_fold ${folds%% *}
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: classic baseline (openSMILE functionals + SVM) on each fold, then mean and std over folds"
  baseline_folds
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: fuse the network's posteriors with the $fusion_baseline SVM's (weight chosen on each fold's dev set)"
  fuse_folds
fi
