#!/usr/bin/env bash
# `make demo`: evaluate the example SBOMs with the bundled policies and show the verdicts.
# Then bring up the local stack (examples/demo_cluster.py): a registry, etcd + kube-apiserver and
# `sbomgate serve` as the webhook; `kubectl apply` shows one workload admitted, one refused.
set -uo pipefail
cd "$(dirname "$0")/.."
SBOMGATE=.venv/bin/sbomgate
FACTS=examples/trusted-facts.yaml

run() {
  echo
  echo "\$ sbomgate eval $*"
  "$SBOMGATE" eval "$@"
  echo "(exit code $?)"
}

echo "== sbomgate demo: SBOM in, verdict out =="
echo "Bundled policies: policies/*.rego; trusted-repository answers: $FACTS"
run --sbom examples/good-app.cdx.json --facts "$FACTS"
run --sbom examples/bad-app.spdx.json --facts "$FACTS"
echo
echo "Without the facts snapshot no package is known to come from a trusted repository,"
echo "so sbomgate fails closed:"
run --sbom examples/good-app.cdx.json --format json | head -n 12
echo "..."
echo
echo "Rego unit tests of the bundled policies:"
"$SBOMGATE" test policies --quiet
echo
echo "== the local stack: a registry, a real API server and sbomgate as its admission webhook =="
.venv/bin/python examples/demo_cluster.py
