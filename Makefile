# The two commands of the README, plus the ones developers use.
#   make demo   installs into .venv and runs the gateway with simulated GPUs and a simulated cloud
#   make test   installs the test dependencies into .venv and runs lint, types and every test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: demo test lint bench chaos system-deps clean

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

# Debian packages the tests need: chromium (the admin page's browser test) and wrk (the benchmarks'
# load generator). Installed when missing; CI runs as root.
SYSTEM_PACKAGES := chromium wrk
system-deps:
	@missing=""; for tool in $(SYSTEM_PACKAGES); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install$$missing)" >&2; exit 1; fi; fi

test: lint system-deps
	$(BIN)/pytest

# The full benchmark suite (under ten minutes on 2 cores): writes docs/benchmarks.md and docs/bench/*.png.
bench: $(VENV)/.installed-test system-deps
	$(BIN)/python -m loadtests.bench --report docs/benchmarks.md

# The soak run (about four minutes): many clients, faults cycling across the GPUs, admin edits and
# hand edits of gateway.yaml; checks that nothing is lost and writes its figures into docs/reliability.md.
chaos: $(VENV)/.installed-test
	$(BIN)/python -m loadtests.chaos --report docs/reliability.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
