# The two commands of the README. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[tensorflow,spark,ui,dev]'
	touch $(STAMP)

# Debian's headless Chromium: the weekly report's rendering test drives it with Playwright
# (nothing is downloaded by Playwright itself)
chromium:
	test -x /usr/bin/chromium || ( $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium )

run: $(STAMP)  ## replay the bundled demo on SQLite and narrate
	$(BIN)/driftd demo

test: $(STAMP) chromium  ## lint, types, then the whole suite (PostgreSQL on 127.0.0.1:5432)
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
