# Attune: `make run` starts the whole service locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export ATTUNE_INSTANCE_PATH ?= $(CURDIR)/instance
# pytest-xdist workers for `make test` (CI has 2 cores), one torch thread each, a test file
# per worker at a time (a module shares its tiny models and runs); TEST_WORKERS=0 runs every
# test in one process.
TEST_WORKERS ?= 2

.PHONY: run test lint install clean-instance

$(STAMP): requirements.txt requirements-dev.txt client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and alone, so nothing else can pull a CUDA build from the index
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements-dev.txt
	# the Python client and its `attune` command, editable (its dependencies are pinned above)
	$(BIN)/pip install --quiet --no-deps -e client
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p $(ATTUNE_INSTANCE_PATH)/redis
	$(BIN)/flask --app wsgi db upgrade
	@echo
	@echo "  Attune is starting at http://127.0.0.1:5000  (Ctrl-C stops everything)"
	@echo
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho -f Procfile.dev start

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: $(STAMP) lint
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

clean-instance:
	rm -rf $(ATTUNE_INSTANCE_PATH)
