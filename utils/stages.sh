#!/usr/bin/env bash
# Every recipe stage, one function each; egs/<corpus>/run.sh declares its variables, sources
# utils/parse_options.sh and then this file, and its stage table calls one function per stage:
#
#   0 stage_prepare  1 stage_lang   2 stage_fbank     3 stage_validate  4 stage_train
#   5 stage_decode   6 stage_align  7 stage_baseline  8 stage_fuse      9 stage_export
#
# What only its corpus takes (a transcript file, a protocol) a recipe passes as arguments, e.g.
# stage_validate --trim-silence-db "$trim_silence_db".
#
# Models. A recipe with folds trains one model per fold, exp/<exp_name>_<label_preset>/fold<k>. A
# fold is named by its number (k -> split files <corpus>_cuts_fold<k>_<split>), as fold<k>, or
# "official" (the corpus's own single split: <corpus>_cuts_<split>). A recipe of one model
# (egs/synth) sets exp_dir instead of folds and exp_name; its split is the single one.
#
# Seed ensembles (docs/training-levers.md). ensemble_seeds="43 44" trains each fold again per
# extra seed, exp/<exp_name>_seed<s>_<label_preset>/fold<k> (stage 4); stage 5 decodes every
# member's test and dev sets and writes the mean posterior of the seed-$seed model and these to
# exp/<exp_name>_ens_<label_preset> (local/ensemble.py), one more row in $results; stage 8 then
# fuses that ensemble with the SVM instead of the single model.
#
# Variables read. Stages 0-3: corpus corpus_dir nj executor dask_scheduler device label_preset
# force. Stages 4-9: folds and exp_name (or exp_dir), model_preset tasks num_epochs max_duration
# seed ensemble_seeds, and results (stages 5, 7, 8: the RESULTS.md their rows go to). Where the
# recipe has them: feature_type (default fbank) and feat_dir (default data/fbank; e.g.
# data/fbank_pitch), model_config, lr_schedule (default noam), mixup_alpha (default 0: off),
# warmup_batches, ctc_weight (default: the task table's), extra_train_args, decode_checkpoint (the weights stages 5, 8 and 9 use; default:
# the last min(5, num_epochs) epochs averaged; or "--checkpoint best-valid.pt", chosen on dev) and
# allow_untrained_alignment (stage 6), ctc_units (default phone) and bpe_vocab_size (default 500),
# front_end (default fbank), ssl_model and ssl_finetune_top (default 0) (stage 4; docs/ssl.md),
# fit_on (default train; stages 4-9, see fit_suffix).
# force=true (./run.sh --force) redoes stages 0 and 2 where they are marked done; stages 1 and 3
# keep no marker (seconds of work) and always redo theirs. egs/unified (several corpora, one model)
# trains with the same train_model and front_end_args, and decodes with decode_weights.

force_flag() {  # --force when the recipe runs with --force (none otherwise)
  if [ "${force:-false}" = true ]; then echo --force; fi
}

feats() {  # the features folder of stages 2-9
  echo "${feat_dir:-data/fbank}"
}

fold_prefix() {  # fold_prefix FOLD -> "fold0_" or "" (the split-file prefix)
  case $1 in official|"") echo "" ;; fold*) echo "${1}_" ;; *) echo "fold${1}_" ;; esac
}

fit_suffix() {  # "" for fit_on=train, "_traindev" for fit_on=train+dev; one line and a failure otherwise
  # fit_on=train+dev refits on a fold's train and dev speakers (the test speakers stay unseen), once the
  # configuration is chosen on dev: a final model that trained on every non-test speaker, as published
  # speaker-independent results are. Its models and SVM rows get their own folders (the suffix, as
  # speecheq/baseline.py's baseline_name), its dev sets are training data: stage 5 decodes test only,
  # stage 8 reuses the weights the train-only pair chose on dev, and the network's weights are the last
  # epochs' (no best-valid.pt).
  case ${fit_on:-train} in
    train) echo "" ;;
    train+dev) echo "_traindev" ;;
    *) echo "ERROR: fit_on=${fit_on}: choose train or train+dev" >&2; return 1 ;;
  esac
}

fold_exp_dir() {  # fold_exp_dir FOLD -> exp/<exp_name>[_traindev]_<label_preset>/fold<k>; a recipe of one model: $exp_dir
  # (speecheq/baseline.py names the SVM's fold folders the same way)
  local models
  if [ -n "${exp_dir:-}" ]; then echo "$exp_dir"; return; fi
  models="exp/${exp_name}$(fit_suffix)_${label_preset}" || return 1
  case $1 in fold*|official) echo "$models/$1" ;; *) echo "$models/fold$1" ;; esac
}

lang_dir() {  # lang_dir [FOLD] -> the lang folder the CTC task of FOLD reads (ctc_units; docs/model.md "CTC units")
  # phone: data/lang, char: data/lang_char, both over every transcript (an inventory learns nothing);
  # bpe: data/lang_bpe_<N>[_fold<k>], a sentencepiece model of that fold's training transcripts only.
  local s
  case ${ctc_units:-phone} in
    phone) echo data/lang ;;
    char) echo data/lang_char ;;
    bpe) s=$(fold_prefix "${1:-}"); echo "data/lang_bpe_${bpe_vocab_size:-500}${s:+_${s%_}}" ;;
    *) echo "ERROR: ctc_units=${ctc_units}: choose phone, char or bpe" >&2; return 1 ;;
  esac
}

first_fold() {  # the fold stages 6 and 9 use: the first of $folds (a recipe of one model: its single split)
  local all=${folds:-official}
  echo "${all%% *}"
}

decode_weights() {  # the network weights stages 5, 8 and 9 use
  # Averaged last epochs by default: fixed before any test set is seen, and steadier than a
  # checkpoint chosen on a dev split of one or two speakers (RESULTS.md).
  if [ -n "${decode_checkpoint:-}" ]; then echo "$decode_checkpoint"
  else echo "--epoch $num_epochs --avg $(( num_epochs < 5 ? num_epochs : 5 ))"
  fi
}

decoded() {  # decoded ARGS...: local/decode.py ARGS; prints the metrics.json paths it wrote, one a line
  # local/decode.py names each decode folder <set>-<weights tag>; its list is where the recipe
  # learns those names, so no copy of the naming lives in bash.
  local list rc=0
  list=$(mktemp)
  local/decode.py "$@" --metrics-list "$list" >&2 || rc=$?
  if [ $rc -eq 0 ]; then cat "$list"; fi
  rm -f "$list"
  return $rc
}

decoded_tag() {  # decoded_tag METRICS SET -> the weights tag of .../decode/<SET>-<tag>/metrics.json
  local folder=${1%/metrics.json}
  echo "${folder##*/"$2"-}"
}

ensemble_seeds_ok() {  # one line and a failure where ensemble_seeds cannot name extra models
  local sd seen=" "
  [ -n "${ensemble_seeds:-}" ] || return 0
  if [ -n "${exp_dir:-}" ]; then
    echo "ERROR: ensemble_seeds needs a recipe with folds (this one trains the single model $exp_dir)" >&2; return 1
  fi
  for sd in $ensemble_seeds; do
    case $sd in
      *[!0-9]*) echo "ERROR: ensemble_seeds='$ensemble_seeds': '$sd' is not a non-negative integer seed" >&2; return 1 ;;
    esac
    if [ "$sd" = "$seed" ] || [[ "$seen" == *" $sd "* ]]; then
      echo "ERROR: ensemble_seeds='$ensemble_seeds': seed $sd twice (seed=$seed trains the first member)" >&2; return 1
    fi
    seen="$seen$sd "
  done
}

member_exp_name() {  # member_exp_name SEED -> the exp_name of the ensemble member trained with SEED
  if [ "$1" = "$seed" ]; then echo "${exp_name:-}"; else echo "${exp_name}_seed$1"; fi
}

stage_prepare() {  # stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all
  local/prepare.py --corpus "$corpus" --corpus-dir "$corpus_dir" --output-dir data/manifests --nj "$nj" \
    --executor "$executor" ${dask_scheduler:+--dask-scheduler "$dask_scheduler"} $(force_flag) "$@"
}

stage_lang() {  # stage 1: CTC token inventory -> data/lang/tokens.txt (phone) or data/lang_char (char)
  local lang
  lang=$(lang_dir)
  if [ "${ctc_units:-phone}" = bpe ]; then  # no splits yet: a BPE model may only learn from training transcripts
    log "stage 1: bpe units are trained on each fold's training cuts in stage 4 (data/lang_bpe_${bpe_vocab_size:-500}_*)"
    return 0
  fi
  local/prepare_lang.py --supervisions "data/manifests/${corpus}_supervisions_all.jsonl.gz" \
    --units "${ctc_units:-phone}" --lang-dir "$lang"
}

stage_fbank() {  # stage 2: features -> <feat_dir>/<corpus>_cuts_all (recomputed when the manifests changed)
  local/compute_fbank.py --corpus "$corpus" --feature-type "${feature_type:-fbank}" --output-dir "$(feats)" \
    --nj "$nj" --device "$device" --executor "$executor" ${dask_scheduler:+--dask-scheduler "$dask_scheduler"} $(force_flag)
}

stage_validate() {  # stage 3: validate the cuts, write the protocol's splits next to them
  local/validate.py --corpus "$corpus" --fbank-dir "$(feats)" --label-preset "$label_preset" "$@"
}

train_fold() {  # train_fold FOLD DIR SEED [FRONT-END ARGS]: one model of a fold, resumed, skipped when finished
  local k=$1 dir=$2 sd=$3 s lang
  shift 3
  s=$(fold_prefix "$k"); lang=$(lang_dir "$k")
  log "train${folds:+ fold $k} (seed $sd) -> $dir"
  if utils/trained.sh "$dir" "$num_epochs"; then log "already trained ($dir/epoch-$num_epochs.pt)"; return 0; fi
  if [ "${ctc_units:-phone}" = bpe ]; then  # deterministic: a resumed fold gets the same pieces again
    local/prepare_lang.py --supervisions "$(feats)/${corpus}_cuts_${s}train.jsonl.gz" --units bpe \
      --bpe-vocab-size "${bpe_vocab_size:-500}" --lang-dir "$lang"
  fi
  local -a cuts=(--train-cuts "$(feats)/${corpus}_cuts_${s}train.jsonl.gz")
  if [ -n "$(fit_suffix)" ]; then cuts+=("$(feats)/${corpus}_cuts_${s}dev.jsonl.gz"); else cuts+=(--dev-cuts "$(feats)/${corpus}_cuts_${s}dev.jsonl.gz"); fi
  train_model "$dir" "$sd" "${cuts[@]}" --lang-dir "$lang" "$@"
}

train_model() {  # train_model DIR SEED ARGS...: local/train.py on ARGS (cuts, lang, front end) into DIR, resumed
  # The model and training settings every recipe shares (egs/unified too); extra_train_args come
  # last, so a flag given there overrides the recipe's variable.
  local dir=$1 sd=$2
  shift 2
  local/train.py "$@" --exp-dir "$dir" \
    --label-preset $label_preset --model-preset $model_preset ${model_config:+--model-config "$model_config"} \
    --tasks $tasks --num-epochs $num_epochs --max-duration $max_duration --device $device --seed $sd \
    --lr-schedule ${lr_schedule:-noam} --mixup-alpha ${mixup_alpha:-0} ${warmup_batches:+--warmup-batches $warmup_batches} \
    ${ctc_weight:+--ctc-weight $ctc_weight} --start-epoch $(utils/next_epoch.sh "$dir") ${extra_train_args:-}
}

front_end_args() {  # sets the caller's array front to local/train.py's front-end arguments; one line and a failure on a bad value
  # front_end (default fbank: the cuts' stored features), ssl_model, ssl_finetune_top (default 0); docs/ssl.md
  front=()
  case ${front_end:-fbank} in
    fbank) ;;
    ssl)
      if [ -z "${ssl_model:-}" ]; then
        echo "ERROR: front_end=ssl needs ssl_model=DIR (a local WavLM/HuBERT/wav2vec 2.0 folder; docs/ssl.md)" >&2
        return 1
      fi
      front=(--front-end ssl --ssl-model "$ssl_model" --ssl-finetune-top "${ssl_finetune_top:-0}") ;;
    *) echo "ERROR: front_end=${front_end}: choose fbank or ssl" >&2; return 1 ;;
  esac
}

stage_train() {  # stage 4: one model per fold (and per extra seed of ensemble_seeds), resumed, skipped when finished
  local k sd
  local -a front=()
  # Checked here, before a fold's BPE model or log: a wrong value stops the stage with one line.
  ensemble_seeds_ok || return 1
  front_end_args || return 1
  for k in ${folds:-official}; do
    for sd in $seed ${ensemble_seeds:-}; do
      train_fold "$k" "$(exp_name=$(member_exp_name "$sd") fold_exp_dir "$k")" "$sd" ${front[@]+"${front[@]}"}
    done
  done
}

decode_pattern() {  # decode_pattern DIR FOLD TAG -> the decode folder of FOLD's model DIR, with {k} and {split}
  # (local/ensemble.py's --runs; {k} stands for the fold's folder name, fold<k> or official)
  local s
  s=$(fold_prefix "$2")
  echo "${1%/*}/{k}/decode/${corpus}_${s:+"{k}_"}{split}-$3"
}

stage_decode() {  # stage 5: each fold's test set, then mean and std over folds -> $results
  # A recipe of one model: its test and dev sets, one row each in ${results:-$exp_dir/RESULTS.md}, printed.
  # With ensemble_seeds: also every member's test and dev sets and their mean posterior, one more row.
  local k dir s weights tag="" out table sd fit ens
  local -a metrics=() ens_metrics=() runs cuts
  fit=$(fit_suffix) || return 1
  ens="exp/${exp_name:-}_ens${fit}_${label_preset}"
  ensemble_seeds_ok || return 1
  weights=$(decode_weights)
  if [ -n "${exp_dir:-}" ]; then
    table=${results:-$exp_dir/RESULTS.md}
    log "decode $exp_dir ($weights) on test and dev -> $table"
    local/decode.py --exp-dir "$exp_dir" $weights --device $device \
      --cuts "$(feats)/${corpus}_cuts_test.jsonl.gz" "$(feats)/${corpus}_cuts_dev.jsonl.gz" --results "$table"
    cat "$table"
    return
  fi
  for k in $folds; do
    s=$(fold_prefix "$k"); runs=()
    cuts=("$(feats)/${corpus}_cuts_${s}test.jsonl.gz")
    # an ensemble's dev sets too: stage 8 chooses its fusion weight on them
    [ -z "${ensemble_seeds:-}" ] || cuts+=("$(feats)/${corpus}_cuts_${s}dev.jsonl.gz")
    for sd in $seed ${ensemble_seeds:-}; do
      dir=$(exp_name=$(member_exp_name "$sd") fold_exp_dir "$k")
      log "decode fold $k${ensemble_seeds:+, seed $sd} ($weights)"
      out=$(decoded --exp-dir "$dir" $weights --device $device --cuts "${cuts[@]}")
      out=${out%%$'\n'*}  # the test set's
      runs+=("$(decode_pattern "$dir" "$k" "$(decoded_tag "$out" "${corpus}_${s}test")")")
      [ "$sd" = "$seed" ] || continue
      metrics+=("$out")
      [ -n "$tag" ] || tag=$(decoded_tag "$out" "${corpus}_${s}test")
    done
    [ -n "${ensemble_seeds:-}" ] || continue
    dir=$(exp_name="${exp_name}_ens" fold_exp_dir "$k")
    local/ensemble.py --runs "${runs[@]}" --folds "${dir##*/}" --splits test dev --out-dir "$ens"
    ens_metrics+=("$dir/decode/${corpus}_${s}test-ens/metrics.json")
  done
  log "mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir "exp/${exp_name}${fit}_${label_preset}" --folds "${metrics[@]}" \
    --summary-out "exp/${exp_name}${fit}_${label_preset}/folds-summary-$tag.json" \
    --results "$results" --run-name "${corpus} ${label_preset} ${exp_name}${fit} (${tasks}) $tag folds: ${folds}"
  [ -n "${ensemble_seeds:-}" ] || return 0
  log "ensemble of seeds $seed $ensemble_seeds: mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir "$ens" --folds "${ens_metrics[@]}" --summary-out "$ens/folds-summary-ens-$tag.json" \
    --results "$results" \
    --run-name "${corpus} ${label_preset} ${exp_name}${fit} (${tasks}) $tag ensemble of seeds $seed $ensemble_seeds folds: ${folds}"
}

stage_align() {  # stage 6 [FOLD]: CTC phone alignment of a fold's test set (default: the first) -> <feat_dir>_ali
  local k=${1:-$(first_fold)} dir s
  dir=$(fold_exp_dir "$k"); s=$(fold_prefix "$k")
  log "CTC phone alignment of $dir's test set -> $(feats)_ali"
  # A CTC head whose dev PER is above local/align.py's --max-per is refused; a run that knows its
  # head is untrained (a smoke test of one epoch) says so from the environment, as the baseline's
  # knobs are given: allow_untrained_alignment=true ./run.sh --stage 6 (the cuts are then marked).
  case ",$tasks," in
    *,ctc,*) ;;
    *) log "stage 6 skipped: the model has no ctc task (tasks: $tasks)"; return 0 ;;
  esac
  if [ "${ctc_units:-phone}" != phone ]; then
    log "stage 6 skipped: alignment gives phone boundaries; this model's CTC units are ${ctc_units}"; return 0
  fi
  # Later stages do not read the alignments: in a run that goes on past stage 6 a refused
  # alignment is a logged skip (its one-line reason above), not the end of the run.
  local rc=0
  local/align.py --exp-dir "$dir" --checkpoint best-valid.pt --device $device \
    --cuts "$(feats)/${corpus}_cuts_${s}test.jsonl.gz" \
    --output "$(feats)_ali/${corpus}_cuts_${s}test.jsonl.gz" \
    --plot "$dir/alignment.png" $([ "${allow_untrained_alignment:-false}" = true ] && echo --allow-untrained) || rc=$?
  if [ $rc -ne 0 ]; then
    if [ "${stop_stage:-6}" -gt 6 ]; then log "stage 6 skipped: alignment refused or failed (exit $rc); going on"; return 0; fi
    return $rc
  fi
}

stage_baseline() {  # stage 7: openSMILE functionals + SVM on each fold (speecheq/baseline.py), mean and std over folds
  # Four rows: eGeMAPSv02 and ComParE_2016, each without and with per-speaker normalisation
  # (which uses the test speakers' own unlabelled audio). Narrow them from the environment,
  # e.g. baseline_featsets=eGeMAPSv02 baseline_speaker_norm=yes ./run.sh --stage 7 --stop-stage 7.
  # --speaker-encoder <GE2E weights> adds two rows of a pretrained speaker encoder's features (speecheq/ge2e.py).
  local featset norm name dir k s
  local -a metrics norm_arg encoder_arg=()
  [ -n "${speaker_encoder:-}" ] && encoder_arg=(--speaker-encoder "$speaker_encoder")
  for featset in ${baseline_featsets:-eGeMAPSv02 ComParE_2016${speaker_encoder:+ GE2E}}; do
    for norm in ${baseline_speaker_norm:-no yes}; do
      name="baseline_${featset}"; norm_arg=()
      if [ "$norm" = yes ]; then name="${name}_spknorm"; norm_arg=(--speaker-norm); fi
      name="${name}$(fit_suffix)"
      log "baseline $name: kernel and C by leave-one-speaker-out on each fold's training speakers (folds: $folds)"
      local/baseline_functionals.py --corpus "$corpus" --folds $folds --feature-set "$featset" "${norm_arg[@]}" "${encoder_arg[@]}" \
        --label-preset "$label_preset" --fbank-dir "$(feats)" --functionals-dir data/functionals \
        --fit-on "${fit_on:-train}" --exp-dir "exp/${name}_${label_preset}"
      metrics=()
      for k in $folds; do
        dir=$(exp_name="$name" fit_on=train fold_exp_dir "$k"); s=$(fold_prefix "$k")
        metrics+=("$dir/decode/${corpus}_${s}test-svm/metrics.json")
      done
      log "mean and std over folds ($folds) -> $results"
      local/decode.py --exp-dir "exp/${name}_${label_preset}" --folds "${metrics[@]}" \
        --summary-out "exp/${name}_${label_preset}/folds-summary-svm.json" \
        --results "$results" --run-name "${corpus} ${label_preset} ${name} (SVM) folds: ${folds}"
    done
  done
}

fusion_rows() {  # the SVM row(s) stage 8 fuses with the network, as stage 7 names them
  # fusion_baseline when given; else ComParE_2016, with GE2E beside it when stage 7 had a speaker
  # encoder (the RESULTS.md selection), and the _spknorm rows for a --speaker-cmvn network.
  if [ -n "${fusion_baseline:-}" ]; then echo "$fusion_baseline"; return; fi
  local norm=""
  case " ${extra_train_args:-} " in *" --speaker-cmvn "*) norm=_spknorm ;; esac
  echo "ComParE_2016${norm}${speaker_encoder:+ GE2E${norm}}"
}

stage_fuse() {  # stage 8: the network's class posteriors averaged with the SVM baseline's
  # p = w * p_net + (1 - w) * p_svm, w chosen per fold on that fold's dev set (speecheq/fusion.py).
  # The SVM rows are fusion_rows'. Several ("ComParE_2016 GE2E") are first averaged with equal weights
  # (no weight tuned: exp/baseline_ComParE_2016+GE2E_<preset>), so that dev still chooses one weight only.
  # With ensemble_seeds the network side is stage 5's seed ensemble (its dev sets decoded there).
  # fit_on=train+dev: the refitted network and SVMs have trained on dev, so each fold's w is the one
  # the train-only pair chose on dev (its fusion, run first with fit_on=train), applied to their test sets.
  local k dir s weights tag="" out rows svm svm_tag=svm fused net=$exp_name what row fit chosen="w on dev"
  local tag_set=dev
  local -a metrics svm_runs=() splits=(test dev) reuse=()
  fit=$(fit_suffix) || return 1
  [ -z "$fit" ] || { splits=(test); tag_set=test; }
  rows=$(fusion_rows)
  svm=$(echo $rows | tr ' ' '+')
  if [[ $svm == *+* ]]; then
    for row in $rows; do
      svm_runs+=("exp/baseline_${row}${fit}_${label_preset}/fold{k}/decode/${corpus}_fold{k}_{split}-svm")
    done
    log "classic ensemble ${svm}: the equal-weight mean of the SVMs' posteriors on ${splits[*]}"
    local/ensemble.py --runs "${svm_runs[@]}" --folds $folds --splits "${splits[@]}" \
      --out-dir "exp/baseline_${svm}${fit}_${label_preset}" || return 1
    svm_tag=ens
  fi
  ensemble_seeds_ok || return 1
  weights=$(decode_weights)
  for k in $folds; do
    case $k in *[!0-9]*) echo "ERROR: stage 8 fuses numbered folds only (got '$k')" >&2; return 1 ;; esac
  done
  if [ -n "${ensemble_seeds:-}" ]; then
    net=${exp_name}_ens tag=ens what="${exp_name}${fit} ensemble of seeds $seed $ensemble_seeds"
  else
    # The test sets were decoded in stage 5; the weight is chosen on dev. A refit has no dev set of its
    # own: its test sets are decoded again, only for local/decode.py to name their weights tag.
    for k in $folds; do
      dir=$(fold_exp_dir "$k"); s=$(fold_prefix "$k")
      out=$(decoded --exp-dir "$dir" $weights --device $device --cuts "$(feats)/${corpus}_cuts_${s}${tag_set}.jsonl.gz")
      [ -n "$tag" ] || tag=$(decoded_tag "$out" "${corpus}_${s}${tag_set}")
    done
    what="${exp_name}${fit} $tag"
  fi
  if [ -n "$fit" ]; then
    reuse=(--weights-from "exp/fusion_${net}_${svm}_${label_preset}")
    chosen="w on dev by the fit_on=train pair"
  fi
  fused="exp/fusion_${net}_${svm}${fit}_${label_preset}"
  local/fuse.py --a "exp/${net}${fit}_${label_preset}/fold{k}/decode/${corpus}_fold{k}_{split}-$tag" \
    --b "exp/baseline_${svm}${fit}_${label_preset}/fold{k}/decode/${corpus}_fold{k}_{split}-${svm_tag}" \
    --folds $folds --out-dir "$fused" --names "$net" "$svm" ${reuse[@]+"${reuse[@]}"}
  metrics=()
  for k in $folds; do metrics+=("$fused/fold$k/decode/${corpus}_fold${k}_test-fused/metrics.json"); done
  log "mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir "$fused" --folds "${metrics[@]}" --summary-out "$fused/folds-summary-fused.json" \
    --results "$results" --run-name "${corpus} ${label_preset} ${what} + ${svm}${fit} SVM, fused (${chosen}) folds: ${folds}"
}

stage_export() {  # stage 9 [INPUT]: the first fold's model, with the weights stage 5 decodes, as one package
  # (speecheq-package.pt) and its TorchScript and ONNX engines next to it, each checked against the
  # eager model (docs/inference.md). With INPUT (a file, folder or manifest), speecheq infer runs the
  # package on it and prints its first records: the package works outside the recipe.
  local dir weights
  dir=$(fold_exp_dir "$(first_fold)")
  weights=$(decode_weights)
  log "export $dir ($weights) -> $dir/speecheq-package.pt, model.ts.pt, model.onnx"
  # --extractor only serves checkpoints written before they recorded their front end
  local/export.py --exp-dir "$dir" $weights --extractor "${feature_type:-fbank}" \
    --output "$dir/speecheq-package.pt" --torchscript --onnx
  if [ $# -gt 0 ]; then
    local records="$dir/infer-$(basename "$1" .jsonl.gz).jsonl"
    speecheq infer --model "$dir/speecheq-package.pt" "$1" --output "$records" --no-progress
    head -2 "$records"
  fi
}

fit_suffix >/dev/null || exit 1  # a wrong fit_on stops the recipe before any stage, with one line
