# sbomgate: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE_BIN := .cache/bin
OPA_VERSION := v1.22.2
export GOBIN := $(abspath $(CACHE_BIN))
export PATH := $(abspath $(CACHE_BIN)):$(PATH)

.PHONY: all venv tools test lint typecheck unit demo bench clean

all: test

# The venv is rebuilt only when the lock file or pyproject changes.
$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

# Go-built tools, cached in .cache/bin and reused when present.
$(CACHE_BIN)/opa:
	mkdir -p $(CACHE_BIN)
	go install github.com/open-policy-agent/opa@$(OPA_VERSION)

tools: $(CACHE_BIN)/opa

lint: venv
	$(BIN)/ruff check controller tests bench
	$(BIN)/ruff format --check controller tests bench

typecheck: venv
	$(BIN)/mypy

unit: venv tools
	$(BIN)/pytest

test: lint typecheck unit

demo: venv
	bash examples/demo.sh

bench: venv tools
	$(BIN)/python bench/bench_eval.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
