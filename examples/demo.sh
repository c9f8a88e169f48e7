#!/usr/bin/env bash
# `make demo`: evaluate the example SBOMs with the bundled policies and show the verdicts.
# Then verify signed SBOMs attached to images in a real local registry (examples/demo_verify.py).
# (Later: bring up the local cluster and show a workload admitted and one refused.)
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
echo "== sbomgate verify: find and verify the signed SBOM attached to an image =="
.venv/bin/python examples/demo_verify.py
