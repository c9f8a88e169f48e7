"""Images pushed to a test registry with an SBOM attestation signed by the real cosign."""

from __future__ import annotations

from pathlib import Path

from support.oci_builder import CosignKey, PushedImage, cosign_attest, push_image
from support.registry_servers import RegistryServer


def sbom_type(sbom: Path) -> str:
    """cosign's `--type` for an SBOM file: CycloneDX when its name says so, else SPDX JSON."""
    return "cyclonedx" if "cdx" in sbom.name else "spdxjson"


def attest(
    server: RegistryServer,
    image: PushedImage,
    sbom: Path,
    key: CosignKey,
    work: Path,
    *,
    new_bundle_format: bool = True,
) -> None:
    """Sign `sbom` as an attestation of `image` with `key` (a v3 bundle, or the legacy .att tag)."""
    cosign_attest(
        server,
        image.digest_ref,
        sbom,
        sbom_type(sbom),
        key,
        new_bundle_format=new_bundle_format,
        workdir=work / "cosign-home",
    )


def attested_image(
    server: RegistryServer,
    repo: str,
    sbom: Path,
    key: CosignKey,
    work: Path,
    *,
    tag: str = "v1",
    seed: str | None = None,
    new_bundle_format: bool = True,
) -> PushedImage:
    """A new image `repo:tag` (its content made from `seed`) with `sbom` attested by `key`."""
    image = push_image(server, repo, tag, seed=seed or f"{repo}-{tag}-{sbom.name}")
    attest(server, image, sbom, key, work, new_bundle_format=new_bundle_format)
    return image
