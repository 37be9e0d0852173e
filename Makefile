# The two commands of the README, plus the ones developers use.
#   make demo   installs into .venv and runs the gateway with simulated GPUs and a simulated cloud
#   make test   installs the test dependencies into .venv and runs lint, types and every test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python -m loadtests.demo --config gateway.yaml

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The admin page's browser test needs Debian's chromium; install it when it is missing (CI runs as root).
system-deps:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "the admin page test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

test: lint system-deps
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
