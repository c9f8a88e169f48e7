"""`make demo`, part 2: the local stack, a good workload admitted and a bad one refused.

Brings up, on loopback: Debian's distribution registry, etcd + kube-apiserver (built by
`make tools`), and `sbomgate serve` registered as the cluster's mutating webhook (it pins each
tag to the digest it judges) and validating webhook. Pushes two
images whose SBOMs are signed with the real cosign: `demo/web` (clean) and `demo/api`, whose
SBOM pulls in `reqeusts` (a slopsquat of requests), the `ctx` malware and a copyleft package.
Then shows what a CI pipeline sees (`sbomgate verify`) and what a person sees (`kubectl
apply`), and tears everything down.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's stack helpers

import yaml  # noqa: E402

from support.kube_cluster import start_kube_cluster  # noqa: E402
from support.oci_builder import cosign_attest, cosign_keypair, push_image  # noqa: E402
from support.registry_servers import start_distribution  # noqa: E402
from support.sbomgate_server import register_mutating_webhook, start_sbomgate  # noqa: E402
from support.workloads import app_deployment  # noqa: E402

SBOMGATE = str(ROOT / ".venv" / "bin" / "sbomgate")
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


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(args: list[str], shown: str) -> int:
    print(f"$ {shown}", flush=True)
    return subprocess.run(args).returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sbomgate-demo-") as tmp:
        work = Path(tmp)
        step("starting a registry, etcd and kube-apiserver on loopback")
        registry = start_distribution(work / "registry", ca=None)
        cluster = start_kube_cluster(work / "cluster")
        gate = None
        try:
            print(f"registry {registry.host}; API server {cluster.server} ({cluster.version})")
            step("pushing demo/web (clean) and demo/api (slopsquatted, malware, copyleft)")
            key = cosign_keypair(work / "keys", "ecdsa")
            web = push_image(registry, "demo/web", "1.0")
            api = push_image(registry, "demo/api", "1.0")
            for image, sbom, kind in (
                (web, "good-app.cdx.json", "cyclonedx"),
                (api, "bad-app.spdx.json", "spdxjson"),
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
                print(f"cosign attest --key cosign.key --type {kind} {image.ref}")
            trust = work / "trust.yaml"
            trust.write_text(TRUST.format(host=registry.host, key=key.public_key_path))

            step("CI: sbomgate verify (finds the signed SBOM, verifies it, evaluates it)")
            for image in (web, api):
                code = show(
                    [
                        SBOMGATE,
                        "verify",
                        image.ref,
                        "--trust",
                        str(trust),
                        "--insecure-registry",
                        registry.host,
                        "--facts",
                        str(ROOT / "examples" / "trusted-facts.yaml"),
                    ],
                    f"sbomgate verify {image.ref} --trust trust.yaml "
                    "--facts examples/trusted-facts.yaml",
                )
                print(f"(exit code {code})")

            step("cluster: sbomgate serve as the mutating and validating admission webhook")
            gate = start_sbomgate(work / "gate", cluster, [registry], trust, imageReferences="Pin")
            cluster.create_namespace("shop")
            register_mutating_webhook(cluster, "sbomgate", gate.mutate_url, cluster.ca.cert_pem)
            cluster.register_validating_webhook("sbomgate", gate.url, cluster.ca.cert_pem)
            print(f"webhooks {gate.mutate_url} (tags pinned to digests) and {gate.url}")
            print("registered (failurePolicy: Fail)")
            for name, image in (("web", web), ("api", api)):
                manifest = work / f"{name}.yaml"
                manifest.write_text(yaml.safe_dump(app_deployment(name, image.ref, "shop")))
                print()
                code = show(
                    [
                        str(ROOT / ".cache" / "bin" / "kubectl"),
                        f"--kubeconfig={cluster.kubeconfig}",
                        "apply",
                        "-f",
                        str(manifest),
                    ],
                    f"kubectl apply -f {name}.yaml    # a Deployment running {image.ref}",
                )
                print(f"(exit code {code})")
            print()
            show(
                [
                    str(ROOT / ".cache" / "bin" / "kubectl"),
                    f"--kubeconfig={cluster.kubeconfig}",
                    "get",
                    "deployments",
                    "-n",
                    "shop",
                ],
                "kubectl get deployments -n shop",
            )
            print()
            show(
                [
                    str(ROOT / ".cache" / "bin" / "kubectl"),
                    f"--kubeconfig={cluster.kubeconfig}",
                    "get",
                    "deployment",
                    "web",
                    "-n",
                    "shop",
                    "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}{'\\n'}",
                ],
                "kubectl get deployment web -n shop -o jsonpath=...image    # the digest judged",
            )
        finally:
            step("tearing down")
            if gate is not None:
                gate.stop()
            cluster.stop()
            registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
