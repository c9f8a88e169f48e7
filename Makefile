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

.PHONY: all venv tools opa-cases kube-tools test lint typecheck unit demo image bench soak fuzz clean

all: test

# The regorus binding: gordon-to-regorus' source (pinned by hash) with sbomgate's patch, built by
# maturin and cargo (tools/regorus/build.sh; about 3.5 minutes on 2 cores). Built once per
# content of its three files (a stamp named by their digest, not their times: a fresh clone
# beside a kept .cache must not rebuild it).
REGORUS_INPUTS := tools/regorus/build.sh tools/regorus/sbomgate.patch tools/regorus/requirements-build.lock
REGORUS_WHEEL := .cache/regorus/wheel/.built-$(shell cat $(REGORUS_INPUTS) | sha256sum | cut -c1-16)
$(REGORUS_WHEEL):
	PYTHON=$(PYTHON) tools/regorus/build.sh .cache/regorus
	touch $@

# The venv is rebuilt only when the lock file, pyproject or the regorus build changes.
$(BIN)/.installed: requirements.lock requirements-pip.lock pyproject.toml $(REGORUS_WHEEL)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements-pip.lock
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --force-reinstall --no-index \
		--find-links .cache/regorus/wheel gordon-to-regorus==0.13.0+sbomgate.18
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

# A real Kubernetes control plane for end-to-end admission tests (tests/support/kube_cluster.py):
# kube-apiserver and kubectl from a wrapper module that pins k8s.io/kubernetes and its staging
# modules (tools/kube/go.mod), etcd from tools/kube/etcd/go.mod, and helm. The versions are read
# from those go.mod files; each binary is keyed by its version through a stamp in
# .cache/bin/.versions, so bumping a version rebuilds it and nothing else.
GO_MOD_VERSION = $(shell awk '{for (i = 1; i < NF; i++) if ($$i == "$(2)") {print $$(i + 1); exit}}' $(1))
KUBE_VERSION := $(call GO_MOD_VERSION,tools/kube/go.mod,k8s.io/kubernetes)
ETCD_VERSION := $(call GO_MOD_VERSION,tools/kube/etcd/go.mod,go.etcd.io/etcd/server/v3)
HELM_VERSION := v3.22.0
# Helm's own release build stamps the Kubernetes version of its client-go (major + 1 for v0.x).
HELM_K8S_MAJOR := 1
HELM_K8S_MINOR := 37
KUBE_SEMVER := $(subst ., ,$(patsubst v%,%,$(KUBE_VERSION)))
KUBE_VERSION_VARS := gitVersion=$(KUBE_VERSION) gitMajor=$(word 1,$(KUBE_SEMVER)) \
	gitMinor=$(word 2,$(KUBE_SEMVER)) gitTreeState=clean
KUBE_LDFLAGS := -s -w $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	$(foreach var,$(KUBE_VERSION_VARS),-X $(pkg).$(var)))
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach pkg,helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil,\
	-X $(pkg).k8sVersionMajor=$(HELM_K8S_MAJOR) -X $(pkg).k8sVersionMinor=$(HELM_K8S_MINOR))
VERSIONS := $(CACHE_BIN)/.versions
KUBE_TOOLS := $(CACHE_BIN)/kube-apiserver $(CACHE_BIN)/kubectl $(CACHE_BIN)/etcd $(CACHE_BIN)/helm
# The node's components (tests/support/kube_node.py), from the same wrapper module.
NODE_BINS := $(addprefix $(CACHE_BIN)/,kubelet kube-controller-manager kube-scheduler kube-proxy)

# A stamp per tool and version: created when first needed, so it is newer than a binary built
# from another version; the stamps of other versions of that tool are removed.
$(VERSIONS)/%:
	mkdir -p $(VERSIONS)
	rm -f $(VERSIONS)/$(firstword $(subst @, ,$*))@*
	touch $@

$(CACHE_BIN)/kube-apiserver: $(VERSIONS)/kube-apiserver@$(KUBE_VERSION)
$(CACHE_BIN)/kubectl: $(VERSIONS)/kubectl@$(KUBE_VERSION)
$(CACHE_BIN)/kubelet: $(VERSIONS)/kubelet@$(KUBE_VERSION)
$(CACHE_BIN)/kube-controller-manager: $(VERSIONS)/kube-controller-manager@$(KUBE_VERSION)
$(CACHE_BIN)/kube-scheduler: $(VERSIONS)/kube-scheduler@$(KUBE_VERSION)
$(CACHE_BIN)/kube-proxy: $(VERSIONS)/kube-proxy@$(KUBE_VERSION)
$(CACHE_BIN)/kube-apiserver $(CACHE_BIN)/kubectl $(NODE_BINS):
	cd tools/kube && CGO_ENABLED=0 go build -trimpath -ldflags '$(KUBE_LDFLAGS)' \
		-o $(abspath $@) k8s.io/kubernetes/cmd/$(notdir $@)

$(CACHE_BIN)/etcd: $(VERSIONS)/etcd@$(ETCD_VERSION)
	cd tools/kube/etcd && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' \
		-o $(abspath $@) go.etcd.io/etcd/server/v3

$(CACHE_BIN)/helm: $(VERSIONS)/helm@$(HELM_VERSION)
	CGO_ENABLED=0 go install -trimpath -ldflags '$(HELM_LDFLAGS)' \
		helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

kube-tools: $(KUBE_TOOLS)

# kubeconform validates rendered manifests offline against schemas from tools/kube_schemas.py
# (tests/e2e/test_kubeconform.py); the version is stamped as its release builds do (`kubeconform -v`).
KUBECONFORM_VERSION := v0.8.0

.PHONY: kubeconform
kubeconform: $(CACHE_BIN)/kubeconform

$(CACHE_BIN)/kubeconform:
	mkdir -p $(CACHE_BIN)
	CGO_ENABLED=0 go install -trimpath -ldflags '-s -w -X main.version=$(KUBECONFORM_VERSION)' \
		github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

# Toxiproxy, the fault-injecting TCP proxy for tests/integration/serving/test_faults.py (latency, bandwidth, resets,
# half-open connections). `go install` names the binary after its package (`server`).
TOXIPROXY_VERSION := v2.5.0

$(CACHE_BIN)/toxiproxy-server:
	mkdir -p $(CACHE_BIN) .cache/toxiproxy
	GOBIN=$(abspath .cache/toxiproxy) CGO_ENABLED=0 go install -trimpath -ldflags '-s -w' \
		github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)
	mv .cache/toxiproxy/server $@

# HAProxy from Debian, unpacked with the libraries it links that this machine lacks, as the
# load balancer in front of two webhook replicas (tests/e2e/test_replicas.py); .cache/bin/haproxy
# runs it with those libraries.
HAPROXY_DEBS := haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1
HAPROXY := .cache/haproxy/usr/sbin/haproxy

$(HAPROXY):
	mkdir -p .cache/debs/haproxy
	cd .cache/debs/haproxy && { apt-get download $(HAPROXY_DEBS) || \
		{ apt-get update && apt-get download $(HAPROXY_DEBS); }; }
	rm -rf .cache/haproxy
	for deb in .cache/debs/haproxy/*.deb; do dpkg -x "$$deb" .cache/haproxy; done
	test -x $@ && touch $@

$(CACHE_BIN)/haproxy: $(HAPROXY)
	mkdir -p $(CACHE_BIN)
	printf '%s\n' '#!/bin/sh' 'here=$$(dirname "$$(readlink -f "$$0")")/../haproxy' \
		'LD_LIBRARY_PATH="$$here/usr/lib/x86_64-linux-gnu$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" exec "$$here/usr/sbin/haproxy" "$$@"' > $@
	chmod +x $@

# The real SBOM producers for tests/integration/sbom/test_real_sboms.py (tests/support/real_sboms.py).
# syft and trivy are built as their release builds are (goreleaser: CGO off, the version stamped
# so that `syft version` and `trivy --version` print it; trivy's release sets GOEXPERIMENT=jsonv2).
# Building trivy takes minutes on two cores: `make trivy` alone starts it early.
SYFT_VERSION := v1.57.1
TRIVY_VERSION := v0.74.0
SYFT_LDFLAGS := -s -w -X main.version=$(patsubst v%,%,$(SYFT_VERSION)) -X main.gitDescription=$(SYFT_VERSION)
TRIVY_LDFLAGS := -s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=$(patsubst v%,%,$(TRIVY_VERSION))

.PHONY: syft trivy sbom-tools
syft: $(CACHE_BIN)/syft
trivy: $(CACHE_BIN)/trivy

$(CACHE_BIN)/syft: $(VERSIONS)/syft@$(SYFT_VERSION)
	CGO_ENABLED=0 go install -trimpath -ldflags '$(SYFT_LDFLAGS)' \
		github.com/anchore/syft/cmd/syft@$(SYFT_VERSION)

$(CACHE_BIN)/trivy: $(VERSIONS)/trivy@$(TRIVY_VERSION)
	CGO_ENABLED=0 GOEXPERIMENT=jsonv2 go install -trimpath -ldflags '$(TRIVY_LDFLAGS)' \
		github.com/aquasecurity/trivy/cmd/trivy@$(TRIVY_VERSION)

# OPA's own conformance cases (tests/integration/policy/test_opa_conformance.py) are in the
# OPA module, in Go's module cache: `go install` leaves it there, and this puts it back when
# .cache/bin/opa outlived the cache.
OPA_MODULE = $(shell go env GOMODCACHE)/github.com/open-policy-agent/opa@$(OPA_VERSION)
opa-cases: $(CACHE_BIN)/opa
	test -d $(OPA_MODULE)/v1/test/cases/testdata/v1 || \
		(cd /tmp && go mod download github.com/open-policy-agent/opa@$(OPA_VERSION))

tools: $(CACHE_BIN)/opa opa-cases $(CACHE_BIN)/cosign $(CACHE_BIN)/oci-referrers-registry $(DOCKER_REGISTRY) \
	$(KUBE_TOOLS) kubeconform $(CACHE_BIN)/toxiproxy-server $(CACHE_BIN)/haproxy

# A real node for the chart tests (tests/support/kube_node.py; see ../shared/NODE.md in the
# project's notes): containerd, runc, the CNI plugins, iptables and conntrack from Debian,
# unpacked (not installed: the host's packages and alternatives stay as they are), with
# wrappers in .cache/node/bin that run them with the unpacked libraries; iptables is the
# nf_tables backend, Debian's default. The sandbox (pause) image is built from pause.c in the
# pinned k8s.io/kubernetes module, statically, as its release is.
NODE_DEBS := containerd runc containernetworking-plugins iptables conntrack libip4tc2 libip6tc2 \
	libxtables12 libnftnl11 libnetfilter-conntrack3 libnfnetlink0 libmnl0
NODE_ROOT := .cache/node/root
NODE_STAMP := .cache/node/.unpacked-$(shell printf '%s' '$(NODE_DEBS)' | sha256sum | cut -c1-12)
XTABLES_CMDS := iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore

$(NODE_STAMP):
	mkdir -p .cache/debs/node
	cd .cache/debs/node && { apt-get download $(NODE_DEBS) || \
		{ apt-get update && apt-get download $(NODE_DEBS); }; }
	rm -rf $(NODE_ROOT) .cache/node/bin .cache/node/.unpacked-* && mkdir -p .cache/node/bin
	for deb in .cache/debs/node/*.deb; do dpkg -x "$$deb" $(NODE_ROOT); done
	for tool in containerd containerd-shim-runc-v2 ctr runc; do \
		ln -s ../root/usr/bin/$$tool .cache/node/bin/$$tool; done
	for cmd in $(XTABLES_CMDS) conntrack; do \
		case $$cmd in conntrack) run='"$$here/usr/sbin/conntrack"';; \
			*) run="\"\$$here/usr/sbin/xtables-nft-multi\" $$cmd";; esac; \
		printf '%s\n' '#!/bin/sh' 'here=$$(dirname "$$(readlink -f "$$0")")/../root' \
			'export XTABLES_LIBDIR="$$here/usr/lib/x86_64-linux-gnu/xtables"' \
			'LD_LIBRARY_PATH="$$here/usr/lib/x86_64-linux-gnu$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" exec '"$$run"' "$$@"' \
			> .cache/node/bin/$$cmd; \
		chmod +x .cache/node/bin/$$cmd; done
	.cache/node/bin/iptables --version && .cache/node/bin/runc --version >/dev/null
	touch $@

.cache/node/pause: $(VERSIONS)/pause@$(KUBE_VERSION)
	mkdir -p .cache/node
	cd tools/kube && go mod download k8s.io/kubernetes
	gcc -Os -static -Wall -Werror -DVERSION=$(KUBE_VERSION) -o $@ \
		"$$(cd tools/kube && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
	strip $@

.PHONY: node-tools
node-tools: $(NODE_STAMP) .cache/node/pause $(NODE_BINS)

tools: node-tools

# cyclonedx-py in a venv of its own (PyPI's cyclonedx-bom, hash-locked), and cdxgen and
# cyclonedx-npm from tools/sbom-tools/package-lock.json (npm ci, without the optional packages:
# cdxgen's prebuilt plugin binaries and native XML validator are not needed, and trivy is ours).
# The registry has only the linux-amd64 build of cdxgen's optional @cdxgen/safer-exec-*, and
# `npm ci` refuses a lock that lacks the other three, so package.json's overrides alias them to it.
SBOM_TOOLS := .cache/sbom-tools
CYCLONEDX_PY := $(SBOM_TOOLS)/cyclonedx-py/bin/cyclonedx-py
SBOM_NPM_STAMP := $(SBOM_TOOLS)/node_modules/.installed

$(CYCLONEDX_PY): tools/sbom-tools/requirements-cyclonedx-py.lock
	rm -rf $(SBOM_TOOLS)/cyclonedx-py
	$(PYTHON) -m venv $(SBOM_TOOLS)/cyclonedx-py
	$(SBOM_TOOLS)/cyclonedx-py/bin/python -m pip install -q --require-hashes --only-binary :all: -r $<
	test -x $@ && touch $@

$(SBOM_NPM_STAMP): tools/sbom-tools/package.json tools/sbom-tools/package-lock.json
	mkdir -p $(SBOM_TOOLS)
	cp tools/sbom-tools/package.json tools/sbom-tools/package-lock.json $(SBOM_TOOLS)/
	cd $(SBOM_TOOLS) && npm ci --no-audit --no-fund --omit=optional
	touch $@

sbom-tools: $(CACHE_BIN)/syft $(CACHE_BIN)/trivy $(CYCLONEDX_PY) $(SBOM_NPM_STAMP)

# What those tools scan (tests/support/real_sboms.py), built by the real tools:
# - a Debian 12 minbase root filesystem made by debootstrap (unpacked from its Debian package,
#   like the other Debian tools here) from the mirror this machine's apt sources name; both
#   stages run here as root (the second one chroots into the new tree);
# - a venv with the pinned packages of tests/fixtures/python-env/requirements.lock;
# - tests/fixtures/node-app with its node_modules from `npm ci`.
SBOM_TARGETS := .cache/sbom-targets
DEBIAN_ROOTFS := $(SBOM_TARGETS)/debian-bookworm
DEBIAN_DEBS := $(SBOM_TARGETS)/debian-bookworm-debs
DEBIAN_MIRROR ?= $(or $(shell awk '$$1 == "URIs:" {print $$2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null),http://deb.debian.org/debian)
DEBOOTSTRAP := .cache/debootstrap/usr/sbin/debootstrap
PYTHON_ENV := $(SBOM_TARGETS)/python-env
NODE_APP := $(SBOM_TARGETS)/node-app

$(DEBOOTSTRAP):
	mkdir -p .cache/debs/debootstrap
	cd .cache/debs/debootstrap && { apt-get download debootstrap || \
		{ apt-get update && apt-get download debootstrap; }; }
	rm -rf .cache/debootstrap
	dpkg -x "$$(ls -t .cache/debs/debootstrap/debootstrap_*.deb | head -n1)" .cache/debootstrap
	test -x $@ && touch $@

$(DEBIAN_ROOTFS).done: $(DEBOOTSTRAP)
	@! grep -qs ' $(abspath $(SBOM_TARGETS))/' /proc/self/mounts || \
		{ echo 'something is mounted under $(SBOM_TARGETS): unmount it first' >&2; exit 1; }
	rm -rf $(DEBIAN_ROOTFS) $(DEBIAN_ROOTFS).tmp $(DEBIAN_DEBS)
	mkdir -p $(SBOM_TARGETS) $(DEBIAN_DEBS)
	DEBOOTSTRAP_DIR=$(abspath .cache/debootstrap/usr/share/debootstrap) $(DEBOOTSTRAP) \
		--variant=minbase --arch=amd64 --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		bookworm $(DEBIAN_ROOTFS).tmp $(DEBIAN_MIRROR)
	test -s $(DEBIAN_ROOTFS).tmp/var/lib/dpkg/status && test -s $(DEBIAN_ROOTFS).tmp/etc/os-release
	# As Debian's images ship (apt-get clean): the downloaded .debs leave the root filesystem,
	# and become the packages of the local apt repository the tests and the demo verify against.
	mv $(DEBIAN_ROOTFS).tmp/var/cache/apt/archives/*.deb $(DEBIAN_DEBS)/
	mv $(DEBIAN_ROOTFS).tmp $(DEBIAN_ROOTFS)
	touch $@

# The demo's real image (tests/support/real_image.py): the same Debian 12 minbase with Debian's
# python3 in it, its .debs kept as the apt repository the demo verifies them against; and the
# wheels of its application (examples/real-image/requirements.lock, hash-locked, for CPython
# 3.11 on manylinux x86_64 as Debian 12's python3 is) downloaded from PyPI.
DEMO_IMAGE := .cache/demo-image
DEMO_ROOTFS := $(DEMO_IMAGE)/debian-bookworm-python
DEMO_DEBS := $(DEMO_IMAGE)/debian-bookworm-python-debs
DEMO_WHEELS := $(DEMO_IMAGE)/wheels

$(DEMO_ROOTFS).done: $(DEBOOTSTRAP)
	@! grep -qs ' $(abspath $(DEMO_IMAGE))/' /proc/self/mounts || \
		{ echo 'something is mounted under $(DEMO_IMAGE): unmount it first' >&2; exit 1; }
	rm -rf $(DEMO_ROOTFS) $(DEMO_ROOTFS).tmp $(DEMO_DEBS)
	mkdir -p $(DEMO_IMAGE) $(DEMO_DEBS)
	DEBOOTSTRAP_DIR=$(abspath .cache/debootstrap/usr/share/debootstrap) $(DEBOOTSTRAP) \
		--variant=minbase --include=python3 --arch=amd64 \
		--keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		bookworm $(DEMO_ROOTFS).tmp $(DEBIAN_MIRROR)
	test -x $(DEMO_ROOTFS).tmp/usr/bin/python3 && test -s $(DEMO_ROOTFS).tmp/var/lib/dpkg/status
	mv $(DEMO_ROOTFS).tmp/var/cache/apt/archives/*.deb $(DEMO_DEBS)/
	mv $(DEMO_ROOTFS).tmp $(DEMO_ROOTFS)
	touch $@

$(DEMO_WHEELS)/.done: examples/real-image/requirements.lock
	rm -rf $(DEMO_WHEELS)
	$(BIN)/pip download -q --require-hashes --only-binary :all: --no-deps \
		--platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
		-d $(DEMO_WHEELS) -r $<
	touch $@

.PHONY: demo-image
demo-image: $(DEMO_ROOTFS).done $(DEMO_WHEELS)/.done

tools: demo-image

$(PYTHON_ENV).done: tests/fixtures/python-env/requirements.lock
	rm -rf $(PYTHON_ENV)
	$(PYTHON) -m venv $(PYTHON_ENV)
	$(PYTHON_ENV)/bin/python -m pip install -q --require-hashes --only-binary :all: -r $<
	touch $@

$(NODE_APP).done: tests/fixtures/node-app/package.json tests/fixtures/node-app/package-lock.json
	mkdir -p $(NODE_APP)
	cp tests/fixtures/node-app/package.json tests/fixtures/node-app/package-lock.json $(NODE_APP)/
	cd $(NODE_APP) && npm ci --no-audit --no-fund
	touch $@

.PHONY: sbom-targets
sbom-targets: $(DEBIAN_ROOTFS).done $(PYTHON_ENV).done $(NODE_APP).done

tools: sbom-tools sbom-targets

lint: venv
	$(BIN)/ruff check controller tests bench examples tools fuzz
	$(BIN)/ruff format --check controller tests bench examples tools fuzz
	$(BIN)/lint-imports
	$(BIN)/interrogate -c pyproject.toml controller/sbomgate

typecheck: venv
	$(BIN)/mypy

# The fast inner loop: tests/unit only, which needs no Go-built tool and no server.
unit: venv
	$(BIN)/pytest -m unit tests/unit

# What CI runs: lint, types, and every test (unit, integration, e2e, the hostile corpus). A
# missing tool fails its tests; nothing is skipped (tests/conftest.py).
# Two pytest-xdist workers, each module on one (`--dist loadfile`: its fixtures are made once),
# then the tests marked `alone` (CPU-time budgets, deadlines, in-flight bounds) with nothing
# beside them: on two workers, the other's load spent their budgets. Both runs always run;
# either failing fails the target.
test: lint typecheck tools
	$(BIN)/pytest -n 2 --dist loadfile -m "not alone"; parallel=$$?; \
	$(BIN)/pytest -m alone; alone=$$?; \
	test $$parallel -eq 0 && test $$alone -eq 0

demo: venv tools
	bash examples/demo.sh

# sbomgate's own OCI image (tools/build_image.py): an OCI image layout in .cache/image/oci, the
# same digest from the same commit. Built offline from the demo's Debian root and the locked
# wheels (downloaded once, with their hashes).
.PHONY: image
image: venv demo-image
	$(BIN)/python tools/build_image.py --out .cache/image

bench: venv tools
	$(BIN)/python bench/bench_eval.py
	$(BIN)/python bench/bench_cold_path.py
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_webhook.py
	$(BIN)/python bench/bench_burst.py
	$(BIN)/python bench/bench_osv.py
	$(BIN)/python bench/bench_sources.py
	$(BIN)/python bench/bench_large_attestation.py

# The 10-minute soak at half the measured maximum rate (bench/bench_soak.py).
soak: venv tools
	$(BIN)/python bench/bench_soak.py

# Long fuzzing runs of the parsers with atheris (fuzz/); `make test` runs each target briefly.
FUZZ_SECONDS ?= 600
fuzz: venv
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis

# Verdaccio (an npm registry) for the trusted-source tests (tests/support/index_servers.py),
# installed into .cache/verdaccio. verdaccio-audit asks for node-fetch@cjs, a dist-tag the registry no
# longer has, so it gets node-fetch 2.7.0 (the CommonJS line). Its 6.x CLI wants Node 22; the
# tests start it through its library entry point, which runs on Node 20.
VERDACCIO_VERSION := 6.10.4
VERDACCIO_STAMP := .cache/verdaccio/.installed-$(VERDACCIO_VERSION)

.PHONY: verdaccio
verdaccio: $(VERDACCIO_STAMP)

$(VERDACCIO_STAMP):
	mkdir -p .cache/verdaccio
	printf '%s\n' '{"name": "sbomgate-verdaccio", "private": true,' \
		'"overrides": {"verdaccio-audit": {"node-fetch": "2.7.0"}}}' > .cache/verdaccio/package.json
	npm install --prefix .cache/verdaccio --no-audit --no-fund --save-exact verdaccio@$(VERDACCIO_VERSION)
	rm -f .cache/verdaccio/.installed-*
	touch $@

tools: verdaccio

# Real OS package repositories for the trusted-source tests (tests/support/os_repos.py), made by
# the distributions' own tools, unpacked from Debian's packages as HAProxy is: apt-ftparchive
# (apt-utils, with the libapt-pkg it is built against), createrepo_c and rpmbuild (rpm), zstd
# (Fedora's metadata compression, which Debian's createrepo_c cannot write), with the
# libraries they link that this machine lacks; and a few small real Debian packages (arch amd64
# and all, one whose source package has another name) for the apt repository the tests build.
# The tests sign with the machine's gpg (gnupg).
OS_REPO_DEBS := apt-utils libapt-pkg6.0 createrepo-c libcreaterepo-c0 libmodulemd2 libzck1 \
	libdrpm0 rpm rpm-common rpm2cpio librpm9 librpmbuild9 librpmio9 librpmsign9 libpopt0 \
	liblua5.3-0 libfsverity0 debugedit zstd
OS_REPO_SAMPLES := hostname netbase libpopt0
# Named by the lists, so that a changed list is fetched again.
OS_REPO_TOOLS := .cache/os-repo-tools/.installed-$(shell echo $(OS_REPO_DEBS) $(OS_REPO_SAMPLES) | md5sum | cut -c1-8)

.PHONY: os-repo-tools
os-repo-tools: $(OS_REPO_TOOLS)

$(OS_REPO_TOOLS):
	rm -rf .cache/debs/os-repo-tools .cache/os-repo-samples .cache/os-repo-tools
	mkdir -p .cache/debs/os-repo-tools .cache/os-repo-samples
	cd .cache/debs/os-repo-tools && { apt-get download $(OS_REPO_DEBS) || \
		{ apt-get update && apt-get download $(OS_REPO_DEBS); }; }
	cd .cache/os-repo-samples && apt-get download $(OS_REPO_SAMPLES)
	for deb in .cache/debs/os-repo-tools/*.deb; do dpkg -x "$$deb" .cache/os-repo-tools; done
	test -x .cache/os-repo-tools/usr/bin/apt-ftparchive && test -x .cache/os-repo-tools/usr/bin/zstd
	touch .cache/os-repo-tools/.installed $@

tools: os-repo-tools
