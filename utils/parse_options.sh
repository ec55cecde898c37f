#!/usr/bin/env bash
# Parse --long-option value pairs into shell variables that the caller declared
# with defaults, Kaldi style. Dashes and underscores are the same: --stop-stage
# and --stop_stage both set $stop_stage. An option the script did not declare is
# an error (a typo must not silently run the default), and so is a missing value.
# Source it after declaring the variables: . utils/parse_options.sh

__usage_help() {
  echo "Usage: $0 [options]"
  echo "Options (default in brackets):"
  local v
  for v in $__declared_options; do
    printf "  --%-20s [%s]\n" "${v//_/-}" "${!v}"
  done
}

# Options are the script's own lower-case, non-exported variables.
__declared_options=""
__exported=" $(compgen -e | tr '\n' ' ') "
for __v in $(compgen -v); do
  [[ "$__v" =~ ^[a-z][a-z0-9_]*$ ]] || continue
  [[ "$__exported" == *" $__v "* ]] && continue
  __declared_options="$__declared_options $__v"
done

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) __usage_help; exit 0 ;;
    --*=*) __name="${1%%=*}"; __value="${1#*=}"; shift ;;
    --*)
      __name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $__name needs a value" >&2; exit 1; fi
      __value="$2"; shift 2 ;;
    *) break ;;
  esac
  __name="${__name#--}"
  __name="${__name//-/_}"
  if [ -z "${!__name+set}" ] || ! [[ " $__declared_options " == *" $__name "* ]]; then
    echo "$0: unknown option --${__name//_/-} (see --help)" >&2
    exit 1
  fi
  printf -v "$__name" '%s' "$__value"
done
unset __name __value __v __exported
