"""`make demo`, part 2: a real image on the local stack, admitted; the same image with one
slopsquatted dependency, refused.

Brings up, on loopback: Debian's distribution registry, etcd + kube-apiserver (built by
`make tools`), the organisation's repositories (a signed apt mirror of the Debian packages the
image is made of, its hosted PyPI (pypiserver) and its pass-through of the public PyPI), and
`sbomgate serve` registered as the cluster's mutating webhook (it pins each tag to the digest it
judges) and validating webhook.

The image (tests/support/real_image.py): Debian 12 minbase with Debian's python3, made by
debootstrap, and a Flask application (examples/real-image) installed by pip from its locked
wheels; its SBOM written by syft from the registry and attested with the real cosign. Version
1.1 adds one dependency an assistant suggested, `huggingface-cli`: the name was free, an
attacker registered it two days ago, and the pass-through finds it like any other. Shows what a
CI pipeline sees (`sbomgate verify`) and what a person sees (`kubectl apply`), then tears
everything down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tools")]  # the tests' stack helpers, and theirs

import yaml  # noqa: E402

from support.kube_cluster import KubeCluster, start_kube_cluster  # noqa: E402
from support.oci_builder import cosign_attest, cosign_keypair  # noqa: E402
from support.real_image import (  # noqa: E402
    SLOPSQUAT,
    SLOPSQUAT_AGE_DAYS,
    DemoRepositories,
    demo_repositories,
    push_app_image,
    syft_sbom,
)
from support.registry_servers import RegistryServer, start_distribution  # noqa: E402
from support.sbomgate_server import register_mutating_webhook, start_sbomgate  # noqa: E402
from support.trust import trust_file  # noqa: E402
from support.workloads import app_deployment  # noqa: E402

SBOMGATE = str(ROOT / ".venv" / "bin" / "sbomgate")
KUBECTL = str(ROOT / ".cache" / "bin" / "kubectl")


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(args: list[str], shown: str) -> int:
    print(f"$ {shown}", flush=True)
    return subprocess.run(args).returncode


def describe(sbom: Path) -> str:
    """What syft listed: entries by type, packages by purl type, the operating system."""
    components = json.loads(sbom.read_bytes())["components"]
    kinds = Counter(c.get("type") for c in components)
    purls = Counter(c["purl"].split("/")[0].removeprefix("pkg:") for c in components if "purl" in c)
    [system] = [c for c in components if c.get("type") == "operating-system"]
    listed = ", ".join(f"{n} {t}" for t, n in sorted(purls.items()))
    return (
        f"{len(components)} entries: {listed}; {kinds['file']} files (not judged); "
        f"operating system {system['name']} {system['version']}"
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sbomgate-demo-") as tmp:
        work = Path(tmp)
        step("starting a registry, etcd and kube-apiserver on loopback")
        registry = start_distribution(work / "registry", ca=None)
        cluster = start_kube_cluster(work / "cluster")
        try:
            print(f"registry {registry.host}; API server {cluster.server} ({cluster.version})")
            with demo_repositories(work / "repos") as repos:
                run_demo(work, registry, cluster, repos)
        finally:
            step("tearing down")
            cluster.stop()
            registry.stop()
    return 0


def run_demo(
    work: Path, registry: RegistryServer, cluster: KubeCluster, repos: DemoRepositories
) -> None:
    step("the organisation's repositories, on loopback")
    sources = work / "sources.yaml"
    sources.write_text(yaml.safe_dump(repos.sources(), sort_keys=False))
    print(f"apt    {repos.apt.url}  signed mirror of the {len(repos.apt.debs)} Debian packages "
          "the base image is made of (keyring checked)")  # fmt: skip
    print(f"pypi   {repos.pypi_hosted}  hosted: the wheels the application's lock pins")
    print(f"pypi   {repos.pypi_proxy.url}  proxied: passes the public PyPI's names through")
    name, version = SLOPSQUAT
    print(f"       (an attacker registered {name} {version} there {SLOPSQUAT_AGE_DAYS} days ago)")

    step("building demo/shop: Debian 12 + python3 (debootstrap) + a Flask app (pip)")
    good = push_app_image(registry, "demo/shop", "1.0", work / "good")
    print(f"demo/shop:1.0  {good.digest}")
    slop = push_app_image(registry, "demo/shop", "1.1", work / "slop", [repos.slopsquat_wheel])
    print(f"demo/shop:1.1  {slop.digest}  (+ {name} {version}, on an assistant's advice)")

    step("CI: syft writes each image's SBOM, cosign attests it")
    key = cosign_keypair(work / "keys", "ecdsa")
    for image in (good, slop):
        sbom = syft_sbom(image, work / f"{image.tag}.cdx.json", work)
        print(f"$ syft scan registry:{image.ref} -o cyclonedx-json")
        print(f"  {describe(sbom)}")
        cosign_attest(
            registry,
            image.digest_ref,
            sbom,
            "cyclonedx",
            key,
            new_bundle_format=True,
            workdir=work / "cosign",
        )
        print(f"$ cosign attest --key cosign.key --type cyclonedx {image.ref}")
    trust = trust_file(
        work,
        keys=[key],
        images=(f"{registry.host}/demo/**",),
        attestations=[{"name": "sbom", "predicateTypes": ["cyclonedx", "spdxjson"]}],
    )

    step("CI: sbomgate verify (finds the signed SBOM, verifies it, checks every package)")
    for image in (good, slop):
        code = show(
            [
                SBOMGATE,
                "verify",
                image.ref,
                "--trust",
                str(trust),
                "--source-file",
                str(sources),
                "--insecure-registry",
                registry.host,
            ],
            f"sbomgate verify {image.ref} --trust trust.yaml --source-file sources.yaml",
        )
        print(f"(exit code {code})")

    step("cluster: sbomgate serve as the mutating and validating admission webhook")
    gate = start_sbomgate(
        work / "gate",
        cluster,
        [registry],
        trust,
        imageReferences="Pin",
        facts=None,
        trustedSources=repos.sources(),
    )
    try:
        cluster.create_namespace("shop")
        register_mutating_webhook(cluster, "sbomgate", gate.mutate_url, cluster.ca.cert_pem)
        cluster.register_validating_webhook("sbomgate", gate.url, cluster.ca.cert_pem)
        print(f"webhooks {gate.mutate_url} (tags pinned to digests) and {gate.url}")
        print("registered (failurePolicy: Fail); trusted sources as above")
        for app, image in (("shop", good), ("shop-next", slop)):
            manifest = work / f"{app}.yaml"
            manifest.write_text(yaml.safe_dump(app_deployment(app, image.ref, "shop")))
            print()
            code = show(
                [KUBECTL, f"--kubeconfig={cluster.kubeconfig}", "apply", "-f", str(manifest)],
                f"kubectl apply -f {app}.yaml    # a Deployment running {image.ref}",
            )
            print(f"(exit code {code})")
        print()
        show(
            [KUBECTL, f"--kubeconfig={cluster.kubeconfig}", "get", "deployments", "-n", "shop"],
            "kubectl get deployments -n shop",
        )
        print()
        show(
            [
                KUBECTL,
                f"--kubeconfig={cluster.kubeconfig}",
                "get",
                "deployment",
                "shop",
                "-n",
                "shop",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}{'\\n'}",
            ],
            "kubectl get deployment shop -n shop -o jsonpath=...image    # the digest judged",
        )
    finally:
        gate.stop()


if __name__ == "__main__":
    sys.exit(main())
