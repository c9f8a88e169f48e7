# sbomgate: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE_BIN := .cache/bin
OPA_VERSION := v1.22.2
COSIGN_VERSION := v3.1.3
DOCKER_REGISTRY := .cache/docker-registry/usr/bin/docker-registry
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

$(CACHE_BIN)/cosign:
	mkdir -p $(CACHE_BIN)
	go install github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)

# The OCI 1.1 registry with the native referrers API (go-containerregistry's pkg/registry).
$(CACHE_BIN)/oci-referrers-registry: tools/ociregistry/main.go tools/ociregistry/go.mod tools/ociregistry/go.sum
	mkdir -p $(CACHE_BIN)
	cd tools/ociregistry && go build -trimpath -o $(abspath $@) .

# Debian's distribution 2.8 registry (no referrers API: the fallback-tag path), unpacked, not
# installed; `apt-get update` runs only when the download fails.
$(DOCKER_REGISTRY):
	mkdir -p .cache/debs
	cd .cache/debs && { apt-get download docker-registry || { apt-get update && apt-get download docker-registry; }; }
	rm -rf .cache/docker-registry
	dpkg -x "$$(ls -t .cache/debs/docker-registry_*.deb | head -n1)" .cache/docker-registry
	test -x $@ && touch $@

tools: $(CACHE_BIN)/opa $(CACHE_BIN)/cosign $(CACHE_BIN)/oci-referrers-registry $(DOCKER_REGISTRY)

lint: venv
	$(BIN)/ruff check controller tests bench examples
	$(BIN)/ruff format --check controller tests bench examples

typecheck: venv
	$(BIN)/mypy

unit: venv tools
	$(BIN)/pytest

test: lint typecheck unit

demo: venv tools
	bash examples/demo.sh

bench: venv tools
	$(BIN)/python bench/bench_eval.py
	$(BIN)/python bench/bench_verify.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
