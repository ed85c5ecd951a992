# `make run` and `make test` work on a fresh machine: each creates .venv and installs into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := specs/lecture/linear.json

.PHONY: run test test-slow lint bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python -m graphspec run $(DEMO)
	$(BIN)/python -m graphspec check $(DEMO)

test: install-test
	$(BIN)/python -m ruff check graphspec tests tools
	$(BIN)/python -m pytest

# the slow property runs (thousands of random graphs against PyTorch and autograd); `make test` skips them
test-slow: install-test
	$(BIN)/python -m pytest -m slow

bench: install $(VENV)/.installed-bench
	$(BIN)/python tools/bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
