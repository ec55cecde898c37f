#!/usr/bin/env bash
# SpeechEQ on EmoDB (Berlin Database of Emotional Speech: 10 German speakers, 7 emotions).
# Stages: 0 manifests, 1 lang, 2 fbank, 3 validate + 5 folds of (male, female) speaker pairs,
#         4 train each fold, 5 decode each fold + mean/std over folds, 6 align.
#         7 classic baseline: openSMILE functionals + SVM on each fold (--stage 7 --stop-stage 7).
#         8 the network fused with the SVM (posteriors averaged, weight chosen on each dev set),
#         9 export: the first fold's model as speecheq-package.pt + TorchScript and ONNX engines.
# The corpus is licensed per user: it is read where it lies (--corpus-dir), never copied here.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

stage=0                    # first stage to run
stop_stage=9               # last stage to run (7 SVM baseline, 8 fusion, 9 export)
force=false                # redo stages 0 and 2 even where marked done (a change of their inputs is caught either way)
corpus_dir=${SPEECHEQ_EMODB_DIR:-$SPEECHEQ_ROOT/../shared/data/emodb}  # the corpus, read where it lies (never copied)
nj=2                       # processes for the per-file audio checks and the fbank stage
executor=local        # local processes, or dask (docs/scaling.md)
dask_scheduler=""      # dask scheduler address (else $DASK_SCHEDULER_ADDRESS, else a local cluster)
device=cpu                 # cpu, or cuda: batched fbank and training on the GPU
feature_type=fbank        # fbank-pitch: + log F0, voicing and their deltas (84 dims)
feat_dir=data/fbank       # features folder of stages 2-9; one per feature type (e.g. data/fbank_pitch)
folds="0 1 2 3 4"          # fold k tests one speaker pair; dev = the next pair
label_preset=all           # EmoDB's 7 emotions (boredom, disgust included); 4class for the cross-corpus table
model_preset=small         # encoder size: tiny or small (docs/model.md)
model_config='{"ctc_upsample": 2}'  # JSON overrides of the preset (a --model-config given replaces this one: keep ctc_upsample in it); a 20 ms CTC head: 1.8 encoder frames per phone at 40 ms are too few for CTC (docs/training-levers.md)
num_epochs=50              # training epochs (per fold): 6 training speakers give about 30 updates an epoch
ctc_weight=1.0             # the phone task's loss weight (task table: 0.1); with the 20 ms head and 50 epochs EmoDB's phones are learnt (RESULTS.md)
max_duration=50             # s per batch: twice the updates of 100 s, learnt faster (RESULTS.md)
lr_schedule=cosine         # anneals within the budget; noam: open-ended inverse square root
mixup_alpha=0.4            # fbank mixup with soft emotion targets (0: off); RESULTS.md "levers"
tasks=emotion,ctc,gender   # no intensity labels; phones of the 10 German texts by espeak-ng
ctc_units=phone            # CTC targets: phone (G2P, data/lang), char (transcript characters) or bpe (sentencepiece per fold, training transcripts only); phones vs units here: docs/model.md "CTC units" (10 shared sentences); other units want their own exp_name
bpe_vocab_size=100         # ctc_units=bpe: sentencepiece pieces per fold (data/lang_bpe_<N>_fold<k>); 10 sentences allow at most 484
front_end=fbank            # fbank: the stored features of stage 2; ssl: a WavLM/HuBERT/wav2vec 2.0 encoder on the cuts' audio (stage 2 still runs: stage 3 validates its cuts; docs/ssl.md)
ssl_model=""               # front_end=ssl: local Hugging Face folder of the encoder (never downloaded)
ssl_finetune_top=0         # front_end=ssl: also train its top N layers (0: frozen)
extra_train_args=""        # more local/train.py options, e.g. "--speaker-cmvn" (docs/training-levers.md; with it these defaults measured 68.97 test UA against the 25-epoch, 40 ms, CTC 0.1 setting's 73.65, and higher dev UA: RESULTS.md)
decode_checkpoint=""       # weights of stages 5, 8 and 9; default: the last 5 epochs averaged; or "--checkpoint best-valid.pt"
speaker_encoder=""         # stage 7: a GE2E weights file (resemblyzer's pretrained.pt) adds the GE2E SVM rows
fusion_baseline=""         # stage 8: SVM row(s) fused with the network; default ComParE_2016 (+ GE2E with a speaker encoder: their mean), _spknorm rows with --speaker-cmvn
exp_name=multitask         # models go to exp/<exp_name>_<label_preset>/fold<k>
fit_on=train               # train+dev: refit on train and dev speakers once dev has chosen the configuration (utils/stages.sh fit_suffix)
seed=42                    # random seed of training
ensemble_seeds=""          # more seeds: each trains exp/<exp_name>_seed<s>_<label_preset>; stages 5 and 8 then use the mean posterior of the seed-$seed model and these
results=RESULTS.md         # the file stages 5, 7 and 8 append their rows to
. utils/parse_options.sh
corpus=emodb
. utils/stages.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests from $corpus_dir"
  stage_prepare
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: CTC token inventory ($ctc_units units)"
  stage_lang
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: $feature_type features -> $feat_dir ($device)"
  stage_fbank
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: validate cuts and write 5 folds of (male, female) speaker pairs"
  stage_validate
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: train each fold ($folds)"
  stage_train
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: decode each fold, then mean and std over folds"
  stage_decode
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: CTC phone alignment of the first fold's test set"
  stage_align
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: classic baseline (openSMILE functionals + SVM) on each fold, then mean and std over folds"
  stage_baseline
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: fuse the network's posteriors with the SVM rows $(fusion_rows) (weight chosen on each fold's dev set)"
  stage_fuse
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: export the first fold's model (package + TorchScript + ONNX) for speecheq infer"
  stage_export
fi
