"""`make demo`'s real image, end to end through `sbomgate verify`.

A Debian 12 image with Debian's python3 and a Flask application, built as two layers and pushed
to distribution; its SBOM written by syft from the registry and attested with the real cosign;
every package verified against real repositories on loopback: the signed apt mirror of the
image's .debs, the organisation's hosted PyPI (pypiserver), and its pass-through of the public
one. The same image with one slopsquatted dependency (registered two days ago, found through
the pass-through) is refused, naming it (tests/support/real_image.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.oci_builder import CosignKey, PushedImage, cosign_attest, cosign_keypair
from support.real_image import (
    DEBS,
    SITE_PACKAGES,
    SLOPSQUAT,
    demo_repositories,
    push_app_image,
    syft_sbom,
)
from support.registry_servers import RegistryServer
from support.trust import trust_file


@dataclass
class Shop:
    registry: RegistryServer
    good: PushedImage
    slop: PushedImage
    sboms: dict[str, Path]
    trust: Path
    sources: Path
    work: Path
    slopsquat_wheel: Path


@pytest.fixture(scope="module")
def shop(plain_registry: RegistryServer, work: Path) -> Iterator[Shop]:
    key: CosignKey = cosign_keypair(work / "keys", "ecdsa")
    with demo_repositories(work / "repos") as repos:
        good = push_app_image(plain_registry, "shop/web", "1.0", work / "good")
        slop = push_app_image(
            plain_registry, "shop/web", "1.1", work / "slop", [repos.slopsquat_wheel]
        )
        sboms = {}
        for name, image in (("good", good), ("slop", slop)):
            sboms[name] = syft_sbom(image, work / f"{name}.cdx.json", work)
            cosign_attest(
                plain_registry,
                image.digest_ref,
                sboms[name],
                "cyclonedx",
                key,
                new_bundle_format=True,
                workdir=work / "cosign",
            )
        trust = trust_file(
            work,
            keys=[key],
            images=(f"{plain_registry.host}/shop/**",),
            attestations=[{"name": "sbom", "predicateTypes": ["cyclonedx"]}],
        )
        sources = work / "sources.yaml"
        sources.write_text(yaml.safe_dump(repos.sources()))
        yield Shop(plain_registry, good, slop, sboms, trust, sources, work, repos.slopsquat_wheel)


def verify(shop: Shop, image: PushedImage) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbomgate.cli",
            "verify",
            image.ref,
            "--trust",
            str(shop.trust),
            "--source-file",
            str(shop.sources),
            "--insecure-registry",
            shop.registry.host,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_syft_lists_every_deb_and_every_locked_wheel(shop: Shop) -> None:
    document = json.loads(shop.sboms["good"].read_bytes())
    purls = sorted(c["purl"] for c in document["components"] if "purl" in c)
    debs = [p for p in purls if p.startswith("pkg:deb/debian/")]
    assert len(debs) == len(list(DEBS.glob("*.deb")))  # what debootstrap installed
    assert [p for p in purls if not p.startswith("pkg:deb/")] == [
        "pkg:pypi/blinker@1.9.0",
        "pkg:pypi/click@8.5.1",
        "pkg:pypi/flask@3.1.2",
        "pkg:pypi/itsdangerous@2.2.0",
        "pkg:pypi/jinja2@3.1.6",
        "pkg:pypi/markupsafe@3.0.4",
        "pkg:pypi/werkzeug@3.1.9",
    ]


def test_the_real_image_is_admitted_with_every_package_verified(shop: Shop) -> None:
    code, report = verify(shop, shop.good)
    assert code == 0, report
    assert report["allowed"] is True
    packages = len(list(DEBS.glob("*.deb"))) + 7
    assert report["summary"] == {
        "components": packages,
        "violations": 0,
        "warnings": 0,
        "errors": 0,
        "images": 1,
    }
    [image] = report["images"]
    [attestation] = image["attestations"]
    assert attestation["verified"] is True


def test_one_slopsquatted_dependency_through_the_proxy_is_refused(shop: Shop) -> None:
    code, report = verify(shop, shop.slop)
    assert code == 1
    assert report["allowed"] is False
    name, version = SLOPSQUAT
    [finding] = report["violations"]
    assert finding["purl"] == f"pkg:pypi/{name}@{version}"
    assert finding["policy"] == "package-age-proxied"
    [reason] = finding["reasons"]
    assert "first released 2 days ago" in reason and "pypi-proxy" in reason
    assert "may be a slopsquat" in reason


def test_the_image_build_is_reproducible(shop: Shop) -> None:
    again = push_app_image(shop.registry, "shop/web", "1.0-again", shop.work / "again")
    assert again.digest == shop.good.digest
    slop = push_app_image(
        shop.registry, "shop/web", "1.1-again", shop.work / "slop-again", [shop.slopsquat_wheel]
    )
    assert slop.digest == shop.slop.digest


def test_the_application_runs_from_its_layer(shop: Shop) -> None:
    """What the image holds is a working program: its layer's packages import and serve."""
    tree = shop.work / "good" / "tree"
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import app; "
        "c = app.app.test_client(); print(c.get('/stock').json['apple'], "
        "c.post('/orders', json={'item': 'apple', 'count': 2}).status_code)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tree / "app"), str(tree / SITE_PACKAGES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["12", "201"], done.stderr
