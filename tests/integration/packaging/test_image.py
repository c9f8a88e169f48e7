"""`make image`: sbomgate's own image, built twice from the same commit with the same digest,
run as 65532 with its bundled policies, and admitted by sbomgate under those policies (the
dogfood of the product itself): its SBOM written by syft from the registry, attested with the
real cosign, every Debian package verified against a signed apt mirror of the base's .debs and
every Python package against the organisation's hosted PyPI (pypiserver) holding the locked
wheels, the regorus binding built from source and sbomgate's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import build_image
import pytest
import yaml

from support.index_servers import start_pypiserver
from support.oci_builder import CosignKey, cosign_attest
from support.os_repos import serve_image_archive
from support.paths import ROOT
from support.real_image import DEBS, ROOTFS, need_demo_image, push_layout, syft_sbom
from support.registry_servers import RegistryServer
from support.trust import trust_file

BUILD = ROOT / "tools" / "build_image.py"


@dataclass
class Built:
    out: Path
    digest: str


def build(out: Path) -> Built:
    need_demo_image()
    done = subprocess.run(
        [sys.executable, str(BUILD), "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Built(out, done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built(work: Path) -> Built:
    return build(work / "image")


def test_the_same_commit_builds_the_same_digest(built: Built, work: Path) -> None:
    again = build(work / "image-again")
    assert again.digest == built.digest
    assert (built.out / "oci" / "blobs" / "sha256" / built.digest.removeprefix("sha256:")).exists()
    manifest = json.loads((built.out / "oci" / "blobs" / "sha256" / built.digest[7:]).read_bytes())
    config = json.loads(
        (built.out / "oci" / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_bytes()
    )
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["python3", "-m", "sbomgate.cli"]


@pytest.fixture(scope="module")
def root(built: Built, work: Path) -> Iterator[Path]:
    """The image's file tree: the base (hard-linked, read only from here on) and the app
    layer's files."""
    tree = work / "root"
    subprocess.run(["cp", "-al", str(ROOTFS), str(tree)], check=True)
    subprocess.run(["cp", "-a", f"{built.out / 'tree'}/.", str(tree)], check=True)
    yield tree
    shutil.rmtree(tree, ignore_errors=True)


def in_image(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/nonexistent",
    }
    return subprocess.run(
        [shutil.which("chroot") or "/usr/sbin/chroot", "--userspec=65532:65532", str(root),
         "python3", "-m", "sbomgate.cli", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def test_it_runs_as_65532_with_its_bundled_policies(root: Path) -> None:
    # The uid has a name: kopf (getpass.getuser()) and ~ expansion ask the user database.
    assert "nonroot:x:65532:65532:" in (root / "etc" / "passwd").read_text()
    assert "nonroot:x:65532:" in (root / "etc" / "group").read_text()
    version = in_image(root, "--version")
    assert version.returncode == 0 and version.stdout.startswith("sbomgate "), version.stderr
    tested = in_image(root, "test", "--quiet")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.strip().splitlines()[-1].endswith("passed, 0 failed")


def test_sbomgate_admits_its_own_image(
    built: Built, plain_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    pushed = push_layout(plain_registry, "sbomgate/sbomgate", "dogfood", built.out / "oci")
    assert pushed.digest == built.digest
    sbom = syft_sbom(pushed, work / "sbomgate.cdx.json", work)
    cosign_attest(
        plain_registry,
        pushed.digest_ref,
        sbom,
        "cyclonedx",
        key,
        new_bundle_format=True,
        workdir=work / "cosign",
    )
    wheels = work / "pypi"
    wheels.mkdir()
    for wheel in [
        *(built.out / "wheels").glob("*.whl"),
        *(built.out / "own").glob("*.whl"),
        *build_image.REGORUS_WHEELS.glob("*.whl"),  # built from source: the organisation's own
    ]:
        shutil.copy(wheel, wheels / wheel.name)
    pypi = start_pypiserver(wheels, work / "pypiserver.log")
    try:
        with serve_image_archive(work / "apt", DEBS) as apt:
            sources = work / "sources.yaml"
            sources.write_text(yaml.safe_dump([
                apt.source(),
                {"name": "pypi-internal", "kind": "pypi", "url": pypi.url, "hosting": "hosted"},
            ]))  # fmt: skip
            trust = trust_file(work, keys=[key], images=(f"{plain_registry.host}/sbomgate/**",))
            env = {k: v for k, v in os.environ.items() if k != "SBOMGATE_POLICIES"}
            done = subprocess.run(
                [sys.executable, "-m", "sbomgate.cli", "verify", pushed.ref, "--trust", str(trust),
                 "--source-file", str(sources), "--insecure-registry", plain_registry.host,
                 "-o", "json", "--timeout", "120"],
                capture_output=True, text=True, timeout=600, env=env,
            )  # fmt: skip
    finally:
        pypi.stop()
    report = json.loads(done.stdout) if done.stdout.startswith("{") else {}
    problems = [f"{v['purl']}: {v['policy']}: {v['reasons']}" for v in report.get("violations", [])]
    assert done.returncode == 0, "\n".join(problems + report.get("errors", []) or [done.stderr])
    document = json.loads(sbom.read_bytes())
    purls = [c["purl"] for c in document["components"] if "purl" in c]
    assert f"pkg:pypi/sbomgate@{_version()}" in purls
    assert report["summary"]["components"] == len(
        [p for p in purls if p.startswith(("pkg:deb/", "pkg:pypi/"))]
    )


def _version() -> str:
    import sbomgate

    return sbomgate.__version__
