#!/usr/bin/env bash
# log MESSAGE: prints time, calling file and line, like icefall's prepare.sh.
_log_at() {  # depth message...
  local depth=$1; shift
  local fname=${BASH_SOURCE[$((depth + 1))]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[$depth]}) $*"
}
log() { _log_at 1 "$@"; }

