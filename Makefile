# The two commands of the README. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[tensorflow,spark,dev]'
	touch $(STAMP)

run: $(STAMP)  ## replay the bundled demo on SQLite and narrate
	$(BIN)/driftd demo

test: $(STAMP)  ## lint, types, then the whole suite (PostgreSQL on 127.0.0.1:5432)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py --rows 1000000 --backend both

clean:
	rm -rf $(VENV) demo-workspace *.egg-info
