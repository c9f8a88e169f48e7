"""`sbomgate eval` of what `cosign download attestation` prints: the real cosign, both of its
layouts (DSSE envelope lines from `.att` tags, Sigstore bundle lines from cosign v3), the SBOM
attestation among them read (its signature not verified: `verify` does that)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.oci_builder import CosignKey, PushedImage, _run_cosign, cosign_attest, push_image
from support.paths import BAD_SBOM, GOOD_SBOM, ROOT
from support.registry_servers import RegistryServer

FACTS = ROOT / "examples" / "trusted-facts.yaml"


def _download(image: PushedImage, work: Path, *extra: str) -> Path:
    done = _run_cosign(
        ["download", "attestation", "--allow-http-registry", *extra, image.digest_ref],
        {"HOME": str(work / "cosign-home")},
    )
    assert done.returncode == 0, done.stderr
    path = work / f"{image.tag}{'-'.join(extra)}.jsonl"
    path.write_text(done.stdout)
    return path


def _eval(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sbomgate.cli",
            "eval",
            "--sbom",
            str(path),
            "--facts",
            str(FACTS),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module", params=[True, False], ids=["bundle", "legacy-att"])
def attested(
    request: pytest.FixtureRequest, plain_registry: RegistryServer, key: CosignKey, work: Path
) -> PushedImage:
    """An image with two SBOM attestations, CycloneDX (good) and SPDX (bad)."""
    bundle = request.param
    image = push_image(plain_registry, "download/app", "bundle" if bundle else "att")
    for sbom, kind in ((GOOD_SBOM, "cyclonedx"), (BAD_SBOM, "spdxjson")):
        cosign_attest(
            plain_registry,
            image.digest_ref,
            sbom,
            kind,
            key,
            new_bundle_format=bundle,
            workdir=work / "cosign",
        )
    return image


def test_the_sbom_of_one_attestation_is_evaluated(attested: PushedImage, work: Path) -> None:
    good = _eval(_download(attested, work, "--predicate-type", "cyclonedx"))
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["summary"]["components"] > 0
    assert "signature not verified" in good.stderr
    bad = _eval(_download(attested, work, "--predicate-type", "spdxjson"))
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["violations"]


def test_several_sbom_attestations_are_an_input_error_that_says_how_to_choose(
    attested: PushedImage, work: Path
) -> None:
    both = _eval(_download(attested, work))
    assert both.returncode == 2 and both.stdout == ""
    [line] = both.stderr.strip().splitlines()
    assert "2 SBOM attestations" in line and "--predicate-type" in line


def test_a_broken_line_is_named(attested: PushedImage, work: Path) -> None:
    lines = _download(attested, work, "--predicate-type", "cyclonedx").read_text()
    broken = work / "broken.jsonl"
    broken.write_text(lines + '{"payloadType": "application/vnd.in-toto+json", "payload": "%%%"}\n')
    done = _eval(broken)
    assert done.returncode == 2
    assert "line 2" in done.stderr and "Traceback" not in done.stderr
