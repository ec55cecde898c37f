#!/usr/bin/env bash
# Stages 4-8 shared by every recipe whose protocol has folds; a recipe sources this after
# parse_options.sh and calls one function per stage. A fold is named by its number (k ->
# split files <corpus>_cuts_fold<k>_<split>), as fold<k>, or "official" (the corpus's own
# single split: <corpus>_cuts_<split>).
# Reads the recipe's variables: corpus folds exp_name label_preset model_preset model_config
# tasks num_epochs max_duration device seed extra_train_args results, and if the recipe has
# them lr_schedule (default noam), mixup_alpha (default 0: off) and decode_checkpoint (default:
# the last min(5, num_epochs) epochs averaged; or "--checkpoint best-valid.pt", chosen on dev), and
# feat_dir (the features folder of stages 2-3, default data/fbank; e.g. data/fbank_pitch).

fold_prefix() {  # fold_prefix FOLD -> "fold0_" or "" (the split-file prefix)
  case $1 in official|"") echo "" ;; fold*) echo "${1}_" ;; *) echo "fold${1}_" ;; esac
}

fold_exp_dir() {  # fold_exp_dir FOLD -> exp/<exp_name>_<label_preset>/fold<k>
  case $1 in fold*|official) echo "exp/${exp_name}_${label_preset}/$1" ;; *) echo "exp/${exp_name}_${label_preset}/fold$1" ;; esac
}

train_folds() {  # stage 4: one model per fold, resumed from its last epoch, skipped when finished
  local k exp_dir s
  for k in $folds; do
    exp_dir=$(fold_exp_dir $k); s=$(fold_prefix $k)
    log "train fold $k -> $exp_dir"
    if utils/trained.sh "$exp_dir" $num_epochs; then log "already trained"; continue; fi
    local/train.py --train-cuts ${feat_dir:-data/fbank}/${corpus}_cuts_${s}train.jsonl.gz \
      --dev-cuts ${feat_dir:-data/fbank}/${corpus}_cuts_${s}dev.jsonl.gz --lang-dir data/lang --exp-dir "$exp_dir" \
      --label-preset $label_preset --model-preset $model_preset ${model_config:+--model-config "$model_config"} \
      --tasks $tasks --num-epochs $num_epochs --max-duration $max_duration --device $device --seed $seed \
      --lr-schedule ${lr_schedule:-noam} --mixup-alpha ${mixup_alpha:-0} --start-epoch $(utils/next_epoch.sh "$exp_dir") $extra_train_args
  done
}

decode_tag() {  # decode_tag CHECKPOINT-ARGS -> the name local/decode.py gives those weights
  # (speecheq.checkpoint.weights_tag; tests/test_schedule.py holds the two together)
  local epoch="" avg=1 file="" averaged=""
  set -- $1
  while [ $# -gt 0 ]; do
    case $1 in
      --checkpoint) file=$2; shift ;;
      --epoch) epoch=$2; shift ;;
      --avg) avg=$2; shift ;;
      --use-averaged-model) averaged=-use-averaged ;;
    esac
    shift
  done
  if [ -n "$file" ]; then basename $file .pt
  elif [ -n "$epoch" ]; then echo epoch-$epoch-avg-$avg$averaged
  else echo "decode_tag: give --checkpoint FILE or --epoch E [--avg A]" >&2; return 1
  fi
}

decode_weights() {  # the network weights stages 5 and 8 decode
  # Averaged last epochs by default: fixed before any test set is seen, and steadier than a
  # checkpoint chosen on a dev split of one or two speakers (RESULTS.md).
  if [ -n "${decode_checkpoint:-}" ]; then echo "$decode_checkpoint"
  else echo "--epoch $num_epochs --avg $(( num_epochs < 5 ? num_epochs : 5 ))"
  fi
}

decode_folds() {  # stage 5: decode each fold's test set, then mean and std over folds
  local k exp_dir s metrics="" weights tag
  weights=$(decode_weights)
  tag=$(decode_tag "$weights")
  for k in $folds; do
    exp_dir=$(fold_exp_dir $k); s=$(fold_prefix $k)
    log "decode fold $k ($weights)"
    local/decode.py --exp-dir "$exp_dir" $weights --device $device \
      --cuts ${feat_dir:-data/fbank}/${corpus}_cuts_${s}test.jsonl.gz
    metrics="$metrics $exp_dir/decode/${corpus}_${s}test-$tag/metrics.json"
  done
  log "mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir "exp/${exp_name}_${label_preset}" --folds $metrics \
    --summary-out "exp/${exp_name}_${label_preset}/folds-summary-$tag.json" \
    --results "$results" --run-name "${corpus} ${label_preset} ${exp_name} (${tasks}) $tag folds: ${folds}"
}

align_fold() {  # stage 6: CTC phone alignment of one fold's test set -> <feat_dir>_ali (data/fbank_ali)
  local exp_dir s
  exp_dir=$(fold_exp_dir $1); s=$(fold_prefix $1)
  log "CTC phone alignment of fold $1's test set -> ${feat_dir:-data/fbank}_ali"
  # A CTC head whose dev PER is above local/align.py's --max-per is refused; a run that knows its
  # head is untrained (a smoke test of one epoch) says so from the environment, as the baseline's
  # knobs are given: allow_untrained_alignment=true ./run.sh --stage 6 (the cuts are then marked).
  case ",$tasks," in
    *,ctc,*) ;;
    *) log "stage 6 skipped: the model has no ctc task (tasks: $tasks)"; return 0 ;;
  esac
  # Later stages do not read the alignments: in a run that goes on past stage 6 a refused
  # alignment is a logged skip (its one-line reason above), not the end of the run.
  local rc=0
  local/align.py --exp-dir "$exp_dir" --checkpoint best-valid.pt --device $device \
    --cuts "${feat_dir:-data/fbank}/${corpus}_cuts_${s}test.jsonl.gz" \
    --output "${feat_dir:-data/fbank}_ali/${corpus}_cuts_${s}test.jsonl.gz" \
    --plot "$exp_dir/alignment.png" $([ "${allow_untrained_alignment:-false}" = true ] && echo --allow-untrained) || rc=$?
  if [ $rc -ne 0 ]; then
    if [ "${stop_stage:-6}" -gt 6 ]; then log "stage 6 skipped: alignment refused or failed (exit $rc); going on"; return 0; fi
    return $rc
  fi
}

baseline_folds() {  # stage 7: openSMILE functionals + SVM on each fold (speecheq/baseline.py), mean and std over folds
  # Four rows: eGeMAPSv02 and ComParE_2016, each without and with per-speaker normalisation
  # (which uses the test speakers' own unlabelled audio). Narrow them from the environment,
  # e.g. baseline_featsets=eGeMAPSv02 baseline_speaker_norm=yes ./run.sh --stage 7 --stop-stage 7.
  local featset norm name dir k s
  local -a metrics norm_arg
  for featset in ${baseline_featsets:-eGeMAPSv02 ComParE_2016}; do
    for norm in ${baseline_speaker_norm:-no yes}; do
      name="baseline_${featset}"; norm_arg=()
      if [ "$norm" = yes ]; then name="${name}_spknorm"; norm_arg=(--speaker-norm); fi
      log "baseline $name: kernel and C by leave-one-speaker-out on each fold's training speakers (folds: $folds)"
      local/baseline_functionals.py --corpus "$corpus" --folds $folds --feature-set "$featset" "${norm_arg[@]}" \
        --label-preset "$label_preset" --fbank-dir "${feat_dir:-data/fbank}" --functionals-dir data/functionals \
        --exp-dir "exp/${name}_${label_preset}"
      metrics=()
      for k in $folds; do
        dir=$(exp_name="$name" fold_exp_dir "$k"); s=$(fold_prefix "$k")
        metrics+=("$dir/decode/${corpus}_${s}test-svm/metrics.json")
      done
      log "mean and std over folds ($folds) -> $results"
      local/decode.py --exp-dir "exp/${name}_${label_preset}" --folds "${metrics[@]}" \
        --summary-out "exp/${name}_${label_preset}/folds-summary-svm.json" \
        --results "$results" --run-name "${corpus} ${label_preset} ${name} (SVM) folds: ${folds}"
    done
  done
}

fuse_folds() {  # stage 8: the network's class posteriors averaged with the SVM baseline's
  # p = w * p_net + (1 - w) * p_svm, w chosen per fold on that fold's dev set (speecheq/fusion.py).
  # Reads fusion_baseline (default ComParE_2016; ComParE_2016_spknorm for speaker-normalised runs).
  local k exp_dir s weights tag svm=${fusion_baseline:-ComParE_2016} out
  local -a metrics
  weights=$(decode_weights); tag=$(decode_tag "$weights")
  out="exp/fusion_${exp_name}_${svm}_${label_preset}"
  for k in $folds; do
    case $k in *[!0-9]*) echo "ERROR: stage 8 fuses numbered folds only (got '$k')" >&2; return 1 ;; esac
  done
  for k in $folds; do  # the test sets were decoded in stage 5; the weight is chosen on dev
    exp_dir=$(fold_exp_dir "$k"); s=$(fold_prefix "$k")
    local/decode.py --exp-dir "$exp_dir" $weights --device $device \
      --cuts "${feat_dir:-data/fbank}/${corpus}_cuts_${s}dev.jsonl.gz"
  done
  local/fuse.py --a "exp/${exp_name}_${label_preset}/fold{k}/decode/${corpus}_fold{k}_{split}-$tag" \
    --b "exp/baseline_${svm}_${label_preset}/fold{k}/decode/${corpus}_fold{k}_{split}-svm" \
    --folds $folds --out-dir "$out" --names "$exp_name" "$svm"
  metrics=()
  for k in $folds; do metrics+=("$out/fold$k/decode/${corpus}_fold${k}_test-fused/metrics.json"); done
  log "mean and std over folds ($folds) -> $results"
  local/decode.py --exp-dir "$out" --folds "${metrics[@]}" --summary-out "$out/folds-summary-fused.json" \
    --results "$results" --run-name "${corpus} ${label_preset} ${exp_name} $tag + ${svm} SVM, fused (w on dev) folds: ${folds}"
}
