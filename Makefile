# The project's commands. Every target that runs code calls `setup` first, which is quick when nothing changed.
#   make demo   the main job (for now: start the local stack, show it answers, stop it)
#   make test   ruff, mypy, buf lint, then every pytest tier CI runs (real Kafka and PostgreSQL)
#   make up / make down   keep the local stack running between commands (UP_ARGS="--kafka-nodes 3 --postgres")
#   make proto  regenerate Python code from proto/ and lint the schemas
#   make bench  run every benchmark, write bench/results/*.json

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=
UP_ARGS ?=

.PHONY: setup prereqs test lint typecheck proto-lint proto-generate pytest demo up down check proto bench lock clean

setup: $(STAMP)

prereqs:
	@bash deploy/local/prereqs.sh

$(STAMP): pyproject.toml constraints.txt deploy/local/prereqs.sh
	@bash deploy/local/prereqs.sh
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

lint: setup proto-lint
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

proto-lint:
	@bash deploy/local/prereqs.sh --with-npm
	@bash proto/lint.sh

pytest: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: setup
	$(PY) -m deploy.local demo

up: setup
	$(PY) -m deploy.local up $(UP_ARGS)

down: setup
	$(PY) -m deploy.local down

check: setup
	$(PY) -m deploy.local check

proto: setup proto-generate proto-lint

proto-generate: setup
	bash proto/generate.sh

bench: setup
	$(PY) -m bench

# Re-pin constraints.txt to what is installed (after a deliberate upgrade in pyproject.toml).
lock: setup
	$(PY) -m pip freeze --exclude-editable --all | grep -v '^pip==' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
