#!/usr/bin/env bash
# SpeechEQ on ESD (10 Mandarin + 10 English speakers, 5 emotions, parallel texts).
# Stages: 0 manifests, 1 lang, 2 fbank, 3 validate + splits (si: 5 speaker-independent folds; official: split folders),
#         4 train each fold, 5 decode each fold + mean/std over folds, 6 align.
# The corpus is licensed per user: it is read where it lies (--corpus-dir), never copied here.
# Gender is not in the corpus: --speaker-table FILE (speaker<TAB>M|F) gives it, else it is masked.
# --protocol official (the corpus's split folders) is one split: use it with --folds official.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

stage=0
stop_stage=6
corpus_dir=${SPEECHEQ_ESD_DIR:-$SPEECHEQ_ROOT/../shared/data/esd}
language=all               # zh (0001-0010), en (0011-0020) or all
speaker_table=""           # optional speaker<TAB>M|F file
protocol=si                # si: speaker-independent folds fold0..fold4; official: train/evaluation/test folders
nj=2
device=cpu
folds="fold0 fold1 fold2 fold3 fold4"  # fold k tests 2 Mandarin + 2 English speakers; "official" with --protocol official
label_preset=6class        # ESD's 5 emotions (no fear); 4class for the cross-corpus table
model_preset=small
model_config=""
num_epochs=20
max_duration=200
tasks=emotion,ctc,gender   # no intensity labels; gender only with --speaker-table
extra_train_args=""
exp_name=multitask
seed=42
results=RESULTS.md
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests from $corpus_dir"
  local/prepare.py --corpus esd --corpus-dir $corpus_dir --output-dir data/manifests --nj $nj --language $language \
    ${speaker_table:+--speaker-table "$speaker_table"}
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: phone inventory -> data/lang/tokens.txt"
  local/prepare_lang.py --supervisions data/manifests/esd_supervisions_all.jsonl.gz --lang-dir data/lang
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: 80-dim fbank ($device)"
  local/compute_fbank.py --corpus esd --nj $nj --device $device
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: validate cuts and write splits (si: 5 speaker-independent folds; official: split folders)"
  local/validate.py --corpus esd --label-preset $label_preset --protocol $protocol --language $language
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for k in $folds; do
    exp_dir=exp/${exp_name}_${label_preset}/$k
    s=${k/#official/}; s=${s:+${s}_}   # fold "official": the single split <corpus>_cuts_{train,dev,test}
    log "Stage 4: train fold $k -> $exp_dir"
    [ -f $exp_dir/epoch-$num_epochs.pt ] && { log "already trained"; continue; }
    local/train.py --train-cuts data/fbank/esd_cuts_${s}train.jsonl.gz \
      --dev-cuts data/fbank/esd_cuts_${s}dev.jsonl.gz --lang-dir data/lang --exp-dir $exp_dir \
      --label-preset $label_preset --model-preset $model_preset ${model_config:+--model-config "$model_config"} \
      --tasks $tasks --num-epochs $num_epochs --max-duration $max_duration --device $device --seed $seed \
      --start-epoch $(utils/next_epoch.sh $exp_dir) $extra_train_args
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  metrics=""
  for k in $folds; do
    exp_dir=exp/${exp_name}_${label_preset}/$k
    s=${k/#official/}; s=${s:+${s}_}   # fold "official": the single split <corpus>_cuts_{train,dev,test}
    log "Stage 5: decode fold $k (best-valid.pt, chosen on the fold's dev set)"
    local/decode.py --exp-dir $exp_dir --checkpoint best-valid.pt --device $device \
      --cuts data/fbank/esd_cuts_${s}test.jsonl.gz
    metrics="$metrics $exp_dir/decode/esd_${s}test-best-valid/metrics.json"
  done
  log "Stage 5: mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir exp/${exp_name}_${label_preset} --folds $metrics \
    --summary-out exp/${exp_name}_${label_preset}/folds-summary.json \
    --results $results --run-name "esd ${label_preset} ${exp_name} (${tasks}) folds: ${folds}"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  k=${folds%% *}
  exp_dir=exp/${exp_name}_${label_preset}/$k
  s=${k/#official/}; s=${s:+${s}_}
  log "Stage 6: CTC phone alignment of fold $k's test set -> data/fbank_ali"
  local/align.py --exp-dir $exp_dir --checkpoint best-valid.pt --device $device \
    --cuts data/fbank/esd_cuts_${s}test.jsonl.gz --output data/fbank_ali/esd_cuts_${s}test.jsonl.gz \
    --plot $exp_dir/alignment.png
fi
