"""An unmodified Debian base image is admitted by the bundled policies with their default data,
its packages verified against a signed apt repository holding what the image was made of; a
package that repository does not hold is refused, naming it.

The image is tests/support/real_sboms.py's debootstrap root filesystem; its SBOMs are what
syft and trivy write of it; the repository is made by apt-ftparchive from the very .debs
debootstrap installed, signed with gpg and verified with the configured keyring
(tests/support/os_repos.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbomgate.intel.facts import prefetch
from sbomgate.runtime import policy_inputs
from sbomgate.sbom import load_sbom_file
from sbomgate.verdict import Verdict
from support.os_repos import ImageArchive
from support.real_sboms import DEBIAN, Output, real_sbom

IMAGE_SBOMS = [
    Output("syft", DEBIAN.name, "cyclonedx-json", "cyclonedx-json"),
    Output("syft", DEBIAN.name, "spdx-json", "spdx-json"),
    Output("trivy", DEBIAN.name, "cyclonedx-json", "cyclonedx-json"),
]


def judge(path: Path, archive: ImageArchive) -> Verdict:
    """The bundled policies, their default data, and the archive as the one trusted source."""
    engine, facts = policy_inputs(None, [], sources=[archive.source()])
    sbom = load_sbom_file(path)
    assert facts is not None
    prefetch(facts, sbom.components)
    return engine.evaluate_sbom(sbom, facts=facts)


@pytest.mark.parametrize("output", IMAGE_SBOMS, ids=lambda o: o.id)
def test_the_base_image_is_admitted(output: Output, debian_image_archive: ImageArchive) -> None:
    verdict = judge(real_sbom(output), debian_image_archive)
    problems = [f"{f.purl}: {f.policy}: {f.reasons}" for f in verdict.violations]
    assert verdict.allowed, "\n".join(problems or [str(e) for e in verdict.errors])
    assert verdict.components == 88  # the debs; syft's 4,964 files are not judged


def test_a_package_the_mirror_does_not_hold_is_refused(
    debian_image_archive: ImageArchive, tmp_path: Path
) -> None:
    document = json.loads(real_sbom(IMAGE_SBOMS[0]).read_bytes())
    [bash] = [c for c in document["components"] if c["name"] == "bash"]
    bash["version"] = "5.2.15-2+b99"
    bash["purl"] = bash["purl"].replace("%2Bb13", "%2Bb99").replace("+b13", "+b99")
    changed = tmp_path / "image.cdx.json"
    changed.write_text(json.dumps(document))
    verdict = judge(changed, debian_image_archive)
    assert not verdict.allowed
    [finding] = verdict.violations
    assert finding.purl == bash["purl"] and finding.policy == "unverified"
    assert "was not found in any trusted repository" in " ".join(finding.reasons)


def test_a_package_retyped_as_a_file_is_still_judged(
    debian_image_archive: ImageArchive, tmp_path: Path
) -> None:
    """Whoever writes the SBOM cannot take a package out of judgement by calling it a file:
    a purl of an ecosystem is a claim to be that package."""
    document = json.loads(real_sbom(IMAGE_SBOMS[0]).read_bytes())
    [bash] = [c for c in document["components"] if c["name"] == "bash"]
    bash["type"] = "file"
    bash["purl"] = bash["purl"].replace("%2Bb13", "%2Bb99")
    changed = tmp_path / "image.cdx.json"
    changed.write_text(json.dumps(document))
    verdict = judge(changed, debian_image_archive)
    assert [f.purl for f in verdict.violations] == [bash["purl"]]
