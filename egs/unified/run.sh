#!/usr/bin/env bash
# SpeechEQ's claim: one model on several corpora mapped onto the unified metric.
# Trains a single-corpus model per corpus and one unified model on all of them (same
# preset, same model, same unified phone inventory), decodes every model on every
# corpus's test set with the corpus-aware category decision, and writes the
# cross-corpus table and heat map.
# Prerequisite: each corpus prepared by its own recipe (egs/<corpus>/run.sh --stop-stage 3).
# Stages: 0 link prepared corpora, 1 unified lang, 4 train, 5 decode + cross-corpus matrix,
#         9 export the unified model (package + TorchScript + ONNX; the stage numbers of every recipe).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

stage=0                      # first stage to run
stop_stage=9                 # last stage to run (9: export the unified model)
force=false                  # taken by every recipe; here nothing skips on a marker (stages 0-1 always redo, training resumes)
corpora="synth ravdess"      # prepared corpora (their egs/<corpus>/data) trained together
fold=0                       # unified model k: fold k mod n_c of each corpus c (docs/unified.md; local/unified_folds.py)
name=unified                 # the model is exp/<name>_fold<k> (e.g. unified_balanced for a --corpus-weights run)
label_preset=4class          # the categories every corpus shares; corpus-aware decision inside it
corpus_weights=""            # e.g. "synth=1,ravdess=1": equal sampling shares (default: as many cuts as each has)
tasks=emotion,intensity,ctc,gender  # tasks trained; a corpus without a task's labels is masked
model_preset=small           # encoder size: tiny or small (docs/model.md)
model_config=""              # JSON overrides of the preset
num_epochs=15                # training epochs
max_duration=100             # s of audio per batch
device=cpu                   # cpu or cuda
seed=42                      # random seed of training
single=true                  # also train one model per corpus for the matrix
extra_train_args=""          # e.g. "--lr-schedule cosine --num-workers 0"
decode_checkpoint="--checkpoint best-valid.pt"   # weights of stages 5 and 9; or "--epoch 25 --avg 5"
. utils/parse_options.sh
. utils/stages.sh        # decoded, decoded_tag, stage_export
exp_dir=exp/${name}_fold$fold  # the unified model: stage 9 exports it

split() {  # split NAME CORPUS... -> their cut manifests of that split in unified model $fold (the library owns the pairing)
  local/unified_folds.py --corpora $corpora --fbank-dir data/fbank --model $fold --split $1 --corpus "${@:2}"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: link the prepared corpora ($corpora)"
  local/link_corpora.py --corpora $corpora --egs-dir .. --data-dir data
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: one phone inventory over all corpora -> data/lang/tokens.txt"
  local/prepare_lang.py --lang-dir data/lang --supervisions $(for c in $corpora; do echo data/manifests/${c}_supervisions_all.jsonl.gz; done)
fi

train() {  # train DIR CORPORA...: one model on the train splits of the given corpora
  local dir=$1; shift
  utils/trained.sh "$dir" $num_epochs && { log "$dir already trained"; return; }
  local train_args=(--train-cuts $(split train "$@") --dev-cuts $(split dev "$@"))
  local/train.py "${train_args[@]}" --lang-dir data/lang --exp-dir "$dir" --label-preset $label_preset \
    --model-preset $model_preset ${model_config:+--model-config "$model_config"} --tasks $tasks --num-epochs $num_epochs --max-duration $max_duration \
    --device $device --seed $seed --start-epoch $(utils/next_epoch.sh "$dir") \
    ${corpus_weights:+--corpus-weights $corpus_weights} $extra_train_args
}

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: train the unified model on: $corpora"
  local/unified_folds.py --corpora $corpora --fbank-dir data/fbank > /dev/null  # a missing split or a leaking pairing stops here, in one line
  train "$exp_dir" $corpora
  if $single; then
    for c in $corpora; do
      log "Stage 4: train the single-corpus model on $c"
      train exp/single_${c}_fold$fold $c
    done
  fi
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  models=${name}_fold$fold
  $single && models="$models $(for c in $corpora; do echo single_${c}_fold$fold; done)"
  tests=$(split test $corpora)
  test_sets=$(for t in $tests; do basename $t .jsonl.gz | sed 's/_cuts_/_/'; done)
  for m in $models; do
    log "Stage 5: decode $m on every corpus's test set"
    metrics=$(decoded --exp-dir exp/$m $decode_checkpoint --device $device --cuts $tests)  # one per test set, in order
  done
  tag=$(decoded_tag "$(head -1 <<< "$metrics")" "$(head -1 <<< "$test_sets")")
  local/cross_corpus.py --exp-root exp --models $models --out-dir exp/cross_corpus_fold$fold --tag "$tag" --test-sets $test_sets
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: export $exp_dir (package + TorchScript + ONNX) for speecheq infer"
  stage_export
fi
