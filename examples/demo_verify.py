"""`make demo`, part 2: signed SBOMs attached to images in a real local registry.

Starts Debian's distribution registry on loopback, pushes three images, attests two of them
with the real cosign (key-based, offline), and runs `sbomgate verify` on each: the good one is
allowed, the one whose signed SBOM lists a malicious/unverified/copyleft package is denied,
and the one with no attestation is refused before any policy runs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's registry and cosign helpers

from oci_builder import cosign_attest, cosign_keypair, push_image  # noqa: E402
from registry_servers import start_distribution  # noqa: E402

TRUST = """\
apiVersion: sbomgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: demo}}
spec:
  images: ["{host}/demo/**"]
  authorities:
    - name: ci-key
      key: {{file: {key}}}
  attestations:
    - {{name: sbom, predicateTypes: [cyclonedx, spdxjson]}}
"""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sbomgate-demo-") as tmp:
        work = Path(tmp)
        registry = start_distribution(work / "registry", ca=None)
        try:
            key = cosign_keypair(work / "keys", "ecdsa")
            good = push_image(registry, "demo/web", "1.0")
            bad = push_image(registry, "demo/api", "1.0")
            bare = push_image(registry, "demo/unsigned", "1.0")
            for image, sbom, kind in (
                (good, "good-app.cdx.json", "cyclonedx"),
                (bad, "bad-app.spdx.json", "spdxjson"),
            ):
                cosign_attest(
                    registry,
                    image.digest_ref,
                    ROOT / "examples" / sbom,
                    kind,
                    key,
                    new_bundle_format=True,
                    workdir=work / "cosign",
                )
            trust = work / "trust.yaml"
            trust.write_text(TRUST.format(host=registry.host, key=key.public_key_path))
            print(f"registry {registry.host}: pushed demo/web, demo/api (both attested with")
            print("cosign attest --key, v3 bundle format) and demo/unsigned (no attestation)")
            for image in (good, bad, bare):
                args = [
                    "verify",
                    image.ref,
                    "--trust",
                    str(trust),
                    "--insecure-registry",
                    registry.host,
                    "--facts",
                    str(ROOT / "examples" / "trusted-facts.yaml"),
                ]
                print(f"\n$ sbomgate {' '.join(args[:2])} --trust trust.yaml ...", flush=True)
                code = subprocess.run([str(ROOT / ".venv" / "bin" / "sbomgate"), *args]).returncode
                print(f"(exit code {code})", flush=True)
        finally:
            registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
