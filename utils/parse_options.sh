#!/usr/bin/env bash
# Parse --long-option value pairs into shell variables that the caller declared
# with defaults, Kaldi style. Dashes and underscores are the same: --stop-stage
# and --stop_stage both set $stop_stage. An option the script did not declare is
# an error (a typo must not silently run the default), and so is a missing value.
# A recipe takes no positional arguments: a stray word (a path with an unquoted space,
# a value after a flag that takes none) is an error, not silently dropped. --stage and
# --stop-stage must be integers; the default of stop_stage is the recipe's last stage, and
# a --stage after it (or after --stop-stage) is an error: it would exit 0 doing nothing.
# An option whose default is true or false takes only those, and given alone means true.
# Source it after declaring the variables: . utils/parse_options.sh

__usage_help() {
  echo "Usage: $0 [options]"
  echo "Options (default in brackets):"
  local v what src=$0
  [ -f "$src" ] || src=${0##*/}  # a recipe has changed into its own folder
  for v in $__declared_options; do
    # the description is the comment next to the option's default in the script
    what=$(sed -n "/^${v}=[^#]*#/{s/^[^#]*#[[:space:]]*//p;q;}" "$src" 2>/dev/null || true)
    printf "  --%-20s [%s]%s\n" "${v//_/-}" "${!v}" "${what:+  $what}"
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

__last_stage=${stop_stage-}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) __usage_help; exit 0 ;;
    --*=*) __name="${1%%=*}"; __value="${1#*=}"; shift ;;
    --*)
      __name="$1"; __v="${__name#--}"; __v="${__v//-/_}"
      # A true/false option given alone is switched on: ./run.sh --stage 2 --force
      if [[ " $__declared_options " == *" $__v "* ]] && [[ "${!__v}" =~ ^(true|false)$ ]] && { [ $# -lt 2 ] || [[ "$2" == --* ]]; }; then
        __value=true; shift
      else
        if [ $# -lt 2 ]; then echo "$0: option $__name needs a value" >&2; exit 1; fi
        __value="$2"; shift 2
      fi ;;
    *) break ;;
  esac
  __name="${__name#--}"
  __name="${__name//-/_}"
  if ! [[ " $__declared_options " == *" $__name "* ]] || [ -z "${!__name+set}" ]; then
    echo "$0: unknown option --${__name//_/-} (see --help)" >&2
    exit 1
  fi
  if [[ "${!__name}" =~ ^(true|false)$ ]] && ! [[ "$__value" =~ ^(true|false)$ ]]; then
    echo "$0: --${__name//_/-} is true or false, got '$__value'" >&2
    exit 1
  fi
  printf -v "$__name" '%s' "$__value"
done

if [ $# -gt 0 ]; then
  echo "$0: unexpected argument '$1': options are --name value pairs (a path with spaces must be quoted; see --help)" >&2
  exit 1
fi
for __v in stage stop_stage; do
  [[ " $__declared_options " == *" $__v "* ]] || continue
  if ! [[ "${!__v}" =~ ^-?[0-9]+$ ]]; then
    echo "$0: --${__v//_/-} must be an integer, got '${!__v}'" >&2
    exit 1
  fi
done
if [[ " $__declared_options " == *" stage "* ]]; then
  if [[ "$__last_stage" =~ ^-?[0-9]+$ ]] && [ "$stage" -gt "$__last_stage" ]; then
    echo "$0: --stage $stage: there is no such stage (the last stage is $__last_stage)" >&2
    exit 1
  fi
  if [[ " $__declared_options " == *" stop_stage "* ]] && [ "$stage" -gt "$stop_stage" ]; then
    echo "$0: --stage $stage is after --stop-stage $stop_stage: nothing to run" >&2
    exit 1
  fi
fi
unset __name __value __v __exported __last_stage
