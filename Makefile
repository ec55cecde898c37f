# Two commands for a newcomer: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test install espeak clean-demo

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned only when the venv has none: pip then takes the local CPU
# wheel instead of resolving the newest release with GBs of CUDA packages.
$(STAMP): $(PY) pyproject.toml
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[test,export,dask,ssl]"
	@touch $(STAMP)

install: $(STAMP) espeak

espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) \
	      || { echo "ERROR: apt-get install espeak-ng failed"; exit 1; }; \
	  else echo "ERROR: espeak-ng is missing; run: sudo apt-get install espeak-ng"; exit 1; fi; }

demo: install
	cd egs/synth && ./run.sh

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q --durations=15 -n 2 --dist loadfile tests

# The suite's deselected tests: every kill window and lock of utils/kill_test.py (about 1 min more).
test-exhaustive: install
	$(PY) -m pytest -q -n 2 --dist loadfile -m exhaustive tests

clean-demo:
	rm -rf egs/synth/data egs/synth/exp
