#!/usr/bin/env bash
# SpeechEQ on an in-house corpus: a metadata TSV plus a label-mapping YAML (docs/adding-a-corpus.md).
# Stages: 0 manifests, 1 lang, 2 fbank, 3 validate + splits (the TSV's split column, else speaker-independent folds),
#         4 train each fold, 5 decode each fold + mean/std over folds, 6 align.
# The corpus is licensed per user: it is read where it lies (--corpus-dir), never copied here.
# With a split column the protocol is one split: --folds official (the default); without one,
# --folds "fold0 fold1 ..." (min(5, speakers) folds).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

stage=0
stop_stage=6
corpus_dir=${SPEECHEQ_CUSTOM_DIR:-$SPEECHEQ_ROOT/../shared/data/custom}
tsv=""                     # default: $corpus_dir/metadata.tsv
mapping=""                 # default: $corpus_dir/labels.yaml
nj=2
device=cpu
folds="official"          # the TSV's split column; "fold0 fold1 ..." without one
label_preset=all           # whatever the mapping produces; the preset only filters the category task
model_preset=small
model_config=""
num_epochs=20
max_duration=200
tasks=emotion,intensity,ctc,gender   # missing labels are masked per task
extra_train_args=""
exp_name=multitask
seed=42
results=RESULTS.md
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests from $corpus_dir"
  local/prepare.py --corpus custom --corpus-dir $corpus_dir --output-dir data/manifests --nj $nj \
    ${tsv:+--tsv "$tsv"} ${mapping:+--mapping "$mapping"}
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: phone inventory -> data/lang/tokens.txt"
  local/prepare_lang.py --supervisions data/manifests/custom_supervisions_all.jsonl.gz --lang-dir data/lang
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: 80-dim fbank ($device)"
  local/compute_fbank.py --corpus custom --nj $nj --device $device
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: validate cuts and write splits (the TSV's split column, else speaker-independent folds)"
  local/validate.py --corpus custom --label-preset $label_preset --corpus-dir $corpus_dir ${tsv:+--tsv "$tsv"}
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for k in $folds; do
    exp_dir=exp/${exp_name}_${label_preset}/$k
    s=${k/#official/}; s=${s:+${s}_}   # fold "official": the single split <corpus>_cuts_{train,dev,test}
    log "Stage 4: train fold $k -> $exp_dir"
    [ -f $exp_dir/epoch-$num_epochs.pt ] && { log "already trained"; continue; }
    local/train.py --train-cuts data/fbank/custom_cuts_${s}train.jsonl.gz \
      --dev-cuts data/fbank/custom_cuts_${s}dev.jsonl.gz --lang-dir data/lang --exp-dir $exp_dir \
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
      --cuts data/fbank/custom_cuts_${s}test.jsonl.gz
    metrics="$metrics $exp_dir/decode/custom_${s}test-best-valid/metrics.json"
  done
  log "Stage 5: mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir exp/${exp_name}_${label_preset} --folds $metrics \
    --summary-out exp/${exp_name}_${label_preset}/folds-summary.json \
    --results $results --run-name "custom ${label_preset} ${exp_name} (${tasks}) folds: ${folds}"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  k=${folds%% *}
  exp_dir=exp/${exp_name}_${label_preset}/$k
  s=${k/#official/}; s=${s:+${s}_}
  log "Stage 6: CTC phone alignment of fold $k's test set -> data/fbank_ali"
  local/align.py --exp-dir $exp_dir --checkpoint best-valid.pt --device $device \
    --cuts data/fbank/custom_cuts_${s}test.jsonl.gz --output data/fbank_ali/custom_cuts_${s}test.jsonl.gz \
    --plot $exp_dir/alignment.png
fi
