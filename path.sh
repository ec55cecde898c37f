# Sourced by every recipe: the repository's venv and library come first.
SPEECHEQ_ROOT="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
export SPEECHEQ_ROOT
if [ -x "$SPEECHEQ_ROOT/.venv/bin/python" ]; then
  export PATH="$SPEECHEQ_ROOT/.venv/bin:$PATH"
fi
export PYTHONPATH="$SPEECHEQ_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# lhotse warns about missing optional backends on every import; keep logs readable.
export LHOTSE_AUDIO_DURATION_MISMATCH_TOLERANCE=${LHOTSE_AUDIO_DURATION_MISMATCH_TOLERANCE:-0.1}
