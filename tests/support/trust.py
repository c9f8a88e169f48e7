"""Trust policy files for the tests, and image checks against a test registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.imagecheck import ImageChecker, ImageResult
from sbomgate.registry import CredentialStore, RegistryAccess, RegistryClient, RegistryLimits
from support.oci_builder import CosignKey
from support.registry_servers import RegistryServer

IDENTITY = "https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main"


ISSUER = "https://token.actions.githubusercontent.com"


def trust_file(
    directory: Path,
    *,
    keys: list[CosignKey] = (),  # type: ignore[assignment]
    keyless_root: Path | None = None,
    subject_regexp: str = "^https://github.com/acme/",
    allow_unsigned: bool = False,
    attestations: list[dict[str, Any]] | None = None,
    images: tuple[str, ...] = ("**",),
    name: str = "default",
) -> Path:
    authorities: list[dict[str, Any]] = [
        {"name": f"key-{i}", "key": {"file": str(k.public_key_path)}} for i, k in enumerate(keys)
    ]
    if keyless_root is not None:
        authorities.append(
            {
                "name": "ci-keyless",
                "keyless": {
                    "identities": [{"issuer": ISSUER, "subjectRegExp": subject_regexp}],
                    "trustedRoot": {"file": str(keyless_root)},
                },
            }
        )
    spec: dict[str, Any] = {
        "images": list(images),
        "authorities": authorities,
        "allowUnsigned": allow_unsigned,
    }
    if attestations is not None:
        spec["attestations"] = attestations
    doc = {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"trust-{name}-{abs(hash(json.dumps(doc, sort_keys=True)))}.yaml"
    path.write_text(json.dumps(doc))
    return path


def checker_for(
    server: RegistryServer,
    trust: Path,
    *,
    credentials: CredentialStore | None = None,
    limits: RegistryLimits | None = None,
    timeout: float = 20.0,
) -> ImageChecker:
    access = RegistryAccess(
        allowed=(server.host,),
        insecure=frozenset({server.host}) if server.scheme == "http" else frozenset(),
        ca_files=(str(server.ca_file),) if server.ca_file else (),
    )
    client = RegistryClient(access, credentials, limits, timeout=timeout)
    return ImageChecker(client, AttestationVerifier(load_trust_policies([trust])), timeout=timeout)


def check(server: RegistryServer, trust: Path, ref: str, **kwargs: Any) -> ImageResult:
    checker = checker_for(server, trust, **kwargs)
    try:
        return checker.check(ref)
    finally:
        checker.client.close()


def errors(result: ImageResult) -> str:
    return "\n".join(result.report.errors)
