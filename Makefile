# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SCALE ?= small
DEMO_OUT ?= demo_out

.PHONY: install test test-slow test-all demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	WANDB_MODE=disabled $(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	WANDB_MODE=disabled $(BIN)/python -m pytest -m slow -q

test-all: $(STAMP)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/ssl-music demo --out $(DEMO_OUT) --scale $(DEMO_SCALE)

bench: $(STAMP)
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
