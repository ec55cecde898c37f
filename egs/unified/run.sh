#!/usr/bin/env bash
# SpeechEQ's claim: one model on several corpora mapped onto the unified metric.
# Trains a single-corpus model per corpus and one unified model on all of them (same
# preset, same model, same unified phone inventory), decodes every model on every
# corpus's test set with the corpus-aware category decision, and writes the
# cross-corpus table and heat map.
# Prerequisite: each corpus prepared by its own recipe (egs/<corpus>/run.sh --stop-stage 3), all
# with the same --feature-type into the same --feat-dir (e.g. fbank-pitch into data/fbank_pitch),
# given here too. The training settings default to the single-corpus recipes' (docs/unified.md).
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
label_preset=all             # every corpus's categories, each decided among its own (corpus-aware); 4class: the 4 most share
corpus_weights=""            # e.g. "synth=1,ravdess=1": equal sampling shares (default: as many cuts as each has)
tasks=emotion,intensity,ctc,gender  # tasks trained; a corpus without a task's labels is masked
ctc_weight=""              # the phone (CTC) task's loss weight; empty: the task table's 0.1 (EmoDB trains at 1.0: docs/training-levers.md)
model_preset=small           # encoder size: tiny or small (docs/model.md)
model_config=""              # JSON overrides of the preset
feature_type=fbank           # fbank or fbank-pitch: the features every corpus was prepared with (its run.sh --feature-type)
feat_dir=data/fbank          # the corpora's features folder, the same in each corpus recipe (e.g. data/fbank_pitch); linked here
front_end=fbank              # fbank: the stored features; ssl: a WavLM/HuBERT/wav2vec 2.0 encoder on the cuts' audio (docs/ssl.md)
ssl_model=""                 # front_end=ssl: local Hugging Face folder of the encoder (never downloaded)
ssl_finetune_top=0           # front_end=ssl: also train its top N layers (0: frozen)
num_epochs=25                # training epochs (the single-corpus recipes' measured defaults, docs/unified.md)
max_duration=50              # s of audio per batch
lr_schedule=cosine           # anneals within the budget; noam: open-ended inverse square root
mixup_alpha=0.4              # fbank mixup with soft emotion targets (0: off)
device=cpu                   # cpu or cuda
seed=42                      # random seed of training
single=true                  # also train one model per corpus for the matrix
extra_train_args=""          # more local/train.py flags, last (they override the variables above), e.g. "--num-workers 0"
decode_checkpoint=""         # weights of stages 5 and 9; default: the last min(5, num_epochs) epochs averaged; or "--checkpoint best-valid.pt"
. utils/parse_options.sh
. utils/stages.sh        # front_end_args, train_model, decode_weights, decoded, decoded_tag, stage_export
exp_dir=exp/${name}_fold$fold  # the unified model: stage 9 exports it

split() {  # split NAME CORPUS... -> their cut manifests of that split in unified model $fold (the library owns the pairing)
  local/unified_folds.py --corpora $corpora --fbank-dir "$feat_dir" --model $fold --split $1 --corpus "${@:2}"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: link the prepared corpora ($corpora; $feature_type features in $feat_dir)"
  local/link_corpora.py --corpora $corpora --egs-dir .. --data-dir data --feat-dir "$feat_dir" --feature-type "$feature_type"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: one phone inventory over all corpora -> data/lang/tokens.txt"
  local/prepare_lang.py --lang-dir data/lang --supervisions $(for c in $corpora; do echo data/manifests/${c}_supervisions_all.jsonl.gz; done)
fi

train() {  # train DIR CORPORA...: one model on the train splits of the given corpora (the settings: utils/stages.sh train_model)
  local dir=$1; shift
  utils/trained.sh "$dir" $num_epochs && { log "$dir already trained"; return; }
  train_model "$dir" $seed --train-cuts $(split train "$@") --dev-cuts $(split dev "$@") --lang-dir data/lang \
    ${front[@]+"${front[@]}"} ${corpus_weights:+--corpus-weights $corpus_weights}
}

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: train the unified model on: $corpora ($front_end front end, $feat_dir)"
  front_end_args  # sets front; a bad front_end or a missing ssl_model stops here, in one line
  local/unified_folds.py --corpora $corpora --fbank-dir "$feat_dir" > /dev/null  # a missing split or a leaking pairing stops here, in one line
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
    metrics=$(decoded --exp-dir exp/$m $(decode_weights) --device $device --cuts $tests)  # one per test set, in order
  done
  tag=$(decoded_tag "$(head -1 <<< "$metrics")" "$(head -1 <<< "$test_sets")")
  local/cross_corpus.py --exp-root exp --models $models --out-dir exp/cross_corpus_fold$fold --tag "$tag" --test-sets $test_sets
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: export $exp_dir (package + TorchScript + ONNX) for speecheq infer"
  stage_export
fi
