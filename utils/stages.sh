#!/usr/bin/env bash
# Stages 0-3 shared by every single-corpus recipe (stages 4-8: utils/fold_stages.sh). A recipe
# sources this after parse_options.sh and calls one function per stage; what only its corpus
# takes (a transcript file, a protocol) it passes as arguments, e.g.
# stage_validate --trim-silence-db "$trim_silence_db".
# Reads the recipe's variables: corpus corpus_dir nj executor dask_scheduler device label_preset
# force, and if the recipe has them feature_type (default fbank) and feat_dir (default data/fbank).
# force=true (./run.sh --force) redoes stages 0 and 2 where they are marked done; stages 1 and 3
# keep no marker (seconds of work) and always redo theirs.

force_flag() {  # --force when the recipe runs with --force (none otherwise)
  if [ "${force:-false}" = true ]; then echo --force; fi
}

stage_prepare() {  # stage 0: corpus folder -> data/manifests/<corpus>_{recordings,supervisions}_all
  local/prepare.py --corpus "$corpus" --corpus-dir "$corpus_dir" --output-dir data/manifests --nj "$nj" \
    --executor "$executor" ${dask_scheduler:+--dask-scheduler "$dask_scheduler"} $(force_flag) "$@"
}

stage_lang() {  # stage 1: phone inventory -> data/lang/tokens.txt
  local/prepare_lang.py --supervisions "data/manifests/${corpus}_supervisions_all.jsonl.gz" --lang-dir data/lang
}

stage_fbank() {  # stage 2: features -> <feat_dir>/<corpus>_cuts_all (recomputed when the manifests changed)
  local/compute_fbank.py --corpus "$corpus" --feature-type "${feature_type:-fbank}" --output-dir "${feat_dir:-data/fbank}" \
    --nj "$nj" --device "$device" --executor "$executor" ${dask_scheduler:+--dask-scheduler "$dask_scheduler"} $(force_flag)
}

stage_validate() {  # stage 3: validate the cuts, write the protocol's splits next to them
  local/validate.py --corpus "$corpus" --fbank-dir "${feat_dir:-data/fbank}" --label-preset "$label_preset" "$@"
}
