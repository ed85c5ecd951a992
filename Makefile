# `make run` and `make test` work on a fresh machine: each creates .venv and installs into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := specs/lecture/linear.json

.PHONY: run test test-slow lint bench install install-test system pictures clean

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

# Graphviz's dot lays out `draw -o FILE.svg|.png|.pdf` and the HTML report's picture: Debian's graphviz
# package (docs/drawing.md says why), installed where apt-get is there and we are root (as on CI), waiting
# for another apt's lock; elsewhere a note says what to install. `.dot` needs nothing.
# Chromium and its driver (Debian's chromium, chromium-driver) run the HTML report's tests, likewise.
APT := apt-get -o DPkg::Lock::Timeout=600 -y -q
system:
	@command -v dot >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { $(APT) install graphviz >/dev/null 2>&1 || \
	    { $(APT) update >/dev/null 2>&1 && $(APT) install graphviz >/dev/null 2>&1; }; }; } || \
	  echo "note: Graphviz's dot is not installed: draw -o FILE.svg needs it (Debian/Ubuntu: apt-get install graphviz)"
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { $(APT) install chromium chromium-driver >/dev/null 2>&1 || \
	    { $(APT) update >/dev/null 2>&1 && $(APT) install chromium chromium-driver >/dev/null 2>&1; }; }; } || \
	  echo "note: chromium and chromedriver are not installed: tests/test_html.py's browser tests skip (Debian: apt-get install chromium chromium-driver)"

# the README's pictures (docs/img/*.svg), drawn by graphspec; tests/test_draw.py checks they are current
pictures: install system
	$(BIN)/python tools/pictures.py

run: install system
	$(BIN)/python -m graphspec run $(DEMO)
	$(BIN)/python -m graphspec check $(DEMO)

test: install-test system
	$(BIN)/python -m ruff check graphspec tests tools
	$(BIN)/python -m pytest

# the slow property runs (thousands of random graphs against PyTorch and autograd); `make test` skips them
test-slow: install-test
	$(BIN)/python -m pytest -m slow

bench: install $(VENV)/.installed-bench
	$(BIN)/python tools/bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
