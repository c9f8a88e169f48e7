"""What the hostile cases are made of: SBOMs, facts snapshots, OSV records, data files, and
registry content pushed to the real registries (tests/support/oci_builder.py) and signed with the real
cosign.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.oci_builder import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    CosignKey,
    OciClient,
    canonical_json,
    cosign_attest,
    cosign_tag,
    sha256_digest,
)
from support.paths import FACTS as EXAMPLE_FACTS
from support.registry_servers import RegistryServer
from support.trust import trust_file

# What the examples' trusted repository says of the packages of CLEAN_SBOM and BAD_SBOM
# (requests, idna, urllib3 are clean; ctx 0.2.2 is known malware, MAL-2022-7440).

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DSSE = "application/vnd.dsse.envelope.v1+json"
ATTESTATION_ANNOTATIONS = {"vnd.docker.reference.type": "attestation-manifest"}
UNKNOWN_PLATFORM = {"os": "unknown", "architecture": "unknown"}


# --------------------------------------------------------------------------- SBOMs


def _split(purl: str) -> tuple[str | None, str, str | None]:
    """(namespace, name, version) of a purl, decoded, read leniently: hostile purls too."""
    segments = purl.split("#", 1)[0].split("?", 1)[0].removeprefix("pkg:").split("/")
    name, _, version = segments[-1].partition("@")
    namespace = "/".join(segments[1:-1])
    decode = urllib.parse.unquote
    return (decode(namespace) or None, decode(name), decode(version) or None)


def component(
    purl: str | None,
    *,
    name: str | None = None,
    version: str | None = None,
    licence_name: str | None = None,
    expression: str | None = None,
    pedigree: Mapping[str, Any] | None = None,
    components: Sequence[Mapping[str, Any]] = (),
    no_version: bool = False,
) -> dict[str, Any]:
    """A CycloneDX library component; name and version come from the purl unless given."""
    namespace, purl_name, purl_version = _split(purl) if purl else (None, "", None)
    out: dict[str, Any] = {"type": "library", "bom-ref": uuid.uuid4().hex[:12]}
    if namespace:
        out["group"] = namespace
    out["name"] = name or purl_name
    if not no_version and (version or purl_version):
        out["version"] = version or purl_version
    if purl:
        out["purl"] = purl
    if licence_name is not None:
        out["licenses"] = [{"license": {"name": licence_name}}]
    if expression is not None:
        out["licenses"] = [{"expression": expression}]
    if pedigree is not None:
        out["pedigree"] = dict(pedigree)
    if components:
        out["components"] = [dict(c) for c in components]
    return out


def cyclonedx(
    *components: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {"timestamp": "2026-01-01T00:00:00Z"},
        "components": [dict(c) for c in components],
    }
    doc.update(extra or {})
    return doc


def spdx_package(
    name: str,
    version: str | None,
    purls: Sequence[str],
    *,
    licence: str = "MIT",
    category: str = "PACKAGE-MANAGER",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "SPDXID": f"SPDXRef-Package-{uuid.uuid4().hex[:10]}",
        "downloadLocation": "NOASSERTION",
        "licenseConcluded": licence,
        "licenseDeclared": licence,
        "externalRefs": [
            {"referenceCategory": category, "referenceType": "purl", "referenceLocator": p}
            for p in purls
        ],
    }
    if version is not None:
        out["versionInfo"] = version
    return out


def spdx(*packages: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "hostile",
        "documentNamespace": f"https://hostile.example/spdx/{uuid.uuid4()}",
        "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: hostile-corpus"]},
        "packages": [dict(p) for p in packages],
    }


CLEAN_COMPONENTS = (
    component("pkg:pypi/requests@2.32.3", expression="Apache-2.0"),
    component("pkg:pypi/idna@3.10", expression="BSD-3-Clause"),
    component("pkg:pypi/urllib3@2.2.3", expression="MIT"),
)
# The packages of an image that passes every bundled policy with EXAMPLE_FACTS.
CLEAN_SBOM = cyclonedx(*CLEAN_COMPONENTS)
# The same plus known malware: refused by the malware policy.
BAD_SBOM = cyclonedx(*CLEAN_COMPONENTS, component("pkg:pypi/ctx@0.2.2", expression="BSD-3-Clause"))
EMPTY_SBOM = cyclonedx()


def purls_in(document: Any) -> Iterator[str]:
    """Every purl an SBOM names, wherever it is (components, pedigree, SPDX externalRefs)."""
    if isinstance(document, dict):
        purl = document.get("purl")
        if isinstance(purl, str):
            yield purl
        if document.get("referenceType") == "purl" and isinstance(
            document.get("referenceLocator"), str
        ):
            yield document["referenceLocator"]
        for value in document.values():
            yield from purls_in(value)
    elif isinstance(document, list):
        for value in document:
            yield from purls_in(value)


def bare(purl: str) -> str:
    """A purl without qualifiers and subpath: what the trusted repository itself vouches for."""
    return purl.split("#", 1)[0].split("?", 1)[0]


# --------------------------------------------------------------------------- facts, data, OSV


def facts_snapshot(purls: Iterable[str]) -> dict[str, Any]:
    """A facts snapshot in which the organisation's trusted repository has these packages."""
    packages = {}
    for purl in purls:
        kind = purl.removeprefix("pkg:").split("/", 1)[0]
        packages[purl] = {
            "repository": {
                "name": f"{kind}-trusted",
                "url": f"https://{kind}.trusted.example/",
                "hosting": "hosted",  # the organisation's own: its projects' ages are not asked
            },
            "published_at": "2023-01-01T00:00:00Z",
            "osv": [],
        }
    return {"packages": packages}


def osv_record(
    advisory: str,
    ecosystem: str,
    name: str,
    *,
    versions: Sequence[str] = (),
    introduced: str | None = None,
    fixed: str | None = None,
    vector: str | None = None,
) -> dict[str, Any]:
    """An OSV record: MAL- ids are malware; a CVSS vector makes a scored vulnerability."""
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if versions:
        affected["versions"] = list(versions)
    if introduced is not None:
        events: list[dict[str, str]] = [{"introduced": introduced}]
        if fixed is not None:
            events.append({"fixed": fixed})
        kind = "SEMVER" if ecosystem == "npm" else "ECOSYSTEM"
        affected["ranges"] = [{"type": kind, "events": events}]
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": advisory,
        "modified": "2026-01-01T00:00:00Z",
        "published": "2026-01-01T00:00:00Z",
        "summary": f"hostile corpus advisory {advisory} for {name}",
        "affected": [affected],
    }
    if vector is not None:
        record["severity"] = [{"type": "CVSS_V3", "score": vector}]
    return record


CRITICAL_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False))
    return path


# --------------------------------------------------------------------------- registry content


def descriptor(
    digest: str,
    size: int,
    media_type: str = OCI_MANIFEST,
    *,
    platform: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if platform is not None:
        out["platform"] = dict(platform)
    if annotations is not None:
        out["annotations"] = dict(annotations)
    return out


def platform(value: str) -> dict[str, str]:
    os_, arch, *variant = value.split("/")
    out = {"os": os_, "architecture": arch}
    if variant:
        out["variant"] = variant[0]
    return out


def push_manifest(
    client: OciClient, repo: str, manifest: Mapping[str, Any], tag: str | None
) -> str:
    raw = canonical_json(manifest)
    digest = sha256_digest(raw)
    client.put_manifest(repo, tag or digest, raw, str(manifest["mediaType"]))
    return digest


def push_index(
    client: OciClient,
    repo: str,
    tag: str,
    entries: Sequence[Mapping[str, Any]],
    *,
    media_type: str = OCI_INDEX,
) -> tuple[str, int]:
    """An index (or Docker manifest list) of these entries, as an attacker composes one."""
    raw = canonical_json(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": [dict(e) for e in entries]}
    )
    client.put_manifest(repo, tag, raw, media_type)
    return sha256_digest(raw), len(raw)


def push_docker_image(client: OciClient, repo: str, seed: str) -> tuple[str, int]:
    """A runnable Docker v2 schema 2 image (one gzip'd layer)."""
    layer = client.push_blob(repo, f"hostile docker layer {seed}".encode(), DOCKER_LAYER)
    config = client.push_blob(
        repo,
        canonical_json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"hostile.seed": seed}},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            }
        ),
        DOCKER_CONFIG,
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config,
        "layers": [layer],
    }
    raw = canonical_json(manifest)
    return push_manifest(client, repo, manifest, None), len(raw)


def push_statement_manifest(
    client: OciClient, repo: str, statement: Mapping[str, Any]
) -> tuple[str, int]:
    """A manifest shaped like BuildKit's attestation manifests: in-toto layers, unknown config."""
    layer = client.push_blob(repo, canonical_json(statement), "application/vnd.in-toto+json")
    layer["annotations"] = {"in-toto.io/predicate-type": str(statement["predicateType"])}
    config = client.push_blob(
        repo,
        canonical_json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            }
        ),
        OCI_CONFIG,
    )
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    return push_manifest(client, repo, manifest, None), len(canonical_json(manifest))


def push_att_tag(
    client: OciClient, repo: str, subject_digest: str, layers: Sequence[Mapping[str, Any]]
) -> str:
    """cosign's legacy `sha256-<hex>.att` tag, listing these layers (as given: an attacker's)."""
    config = client.push_blob(
        repo,
        canonical_json(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        ),
        OCI_CONFIG,
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [dict(layer) for layer in layers],
    }
    return push_manifest(client, repo, manifest, cosign_tag(subject_digest, "att"))


def dsse_layer(digest: str, size: int) -> dict[str, Any]:
    """A `.att` layer descriptor as cosign writes it (DSSE, CycloneDX predicate)."""
    return {
        "mediaType": DSSE,
        "digest": digest,
        "size": size,
        "annotations": {
            "dev.cosignproject.cosign/signature": "",
            "predicateType": "https://cyclonedx.org/bom",
        },
    }


def fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


@dataclass
class Lab:
    """The real registries, the corpus's signing key, and how the front doors are told of them."""

    work: Path
    plain: RegistryServer  # distribution 2.8: `.att` tags and the fallback tag
    referrers: RegistryServer  # go-containerregistry: the OCI 1.1 referrers API
    ca_file: Path
    key: CosignKey  # the key the corpus's trust policies accept

    def __post_init__(self) -> None:
        self.docker_config = write_json(self.work / "docker-config.json", {"auths": {}})

    def client(self, server: RegistryServer) -> OciClient:
        return OciClient(server)

    def sign(
        self,
        server: RegistryServer,
        digest_ref: str,
        sbom: Mapping[str, Any],
        *,
        key: CosignKey | None = None,
        legacy: bool = True,
        predicate: str = "cyclonedx",
    ) -> None:
        """`cosign attest` the SBOM onto the image: `.att` tag (legacy) or a v3 bundle."""
        raw = json.dumps(sbom, sort_keys=True).encode()
        path = self.work / "predicates" / f"{hashlib.sha256(raw).hexdigest()[:16]}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        cosign_attest(
            server,
            digest_ref,
            path,
            predicate,
            key or self.key,
            new_bundle_format=not legacy,
            workdir=self.work / "cosign-home",
        )

    def trust(
        self,
        name: str,
        *,
        images: Sequence[str],
        keys: Sequence[CosignKey] = (),
        allow_unsigned: bool = False,
    ) -> Path:
        return trust_file(
            self.work / "trust",
            keys=list(keys) or [self.key],
            images=tuple(images),
            allow_unsigned=allow_unsigned,
            name=name,
        )

    def verify_args(
        self,
        refs: Sequence[str],
        trust: Sequence[Path],
        *,
        data: Path | None = None,
        facts: Path = EXAMPLE_FACTS,
        insecure: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> list[str]:
        args = ["verify", *refs, "--format", "json", "--facts", str(facts)]
        for path in trust:
            args += ["--trust", str(path)]
        for host in [self.plain.host, *insecure]:
            args += ["--insecure-registry", host]
        args += ["--registry-ca", str(self.ca_file), "--docker-config", str(self.docker_config)]
        args += ["--timeout", str(timeout)]
        if data is not None:
            args += ["--data", str(data)]
        return args

    def serve_settings(
        self,
        trust: Sequence[Path],
        *,
        insecure: Sequence[str] = (),
        data: Sequence[Path] = (),
        **more: Any,
    ) -> dict[str, Any]:
        """`sbomgate serve` settings for these trust policies and registries (plus `more`)."""
        return {
            "trustPolicies": [str(p) for p in trust],
            "facts": str(EXAMPLE_FACTS),
            "data": [str(p) for p in data],
            "allowedRegistries": [self.plain.host, self.referrers.host, *insecure],
            "insecureRegistries": [self.plain.host, *insecure],
            "registryCA": [str(self.ca_file)],
            "dockerConfig": str(self.docker_config),
            **more,
        }


def registry_gets(server: RegistryServer, path: str) -> int:
    """GETs of paths starting with `path` in distribution's access log (the real count)."""
    assert server.kind == "distribution" and server.log_file is not None
    needle = f'"GET {path}'
    return sum(
        1 for line in server.log_file.read_text(errors="replace").splitlines() if needle in line
    )


def data_file(path: Path, settings: Mapping[str, Any]) -> Path:
    """A data file for the bundled policies: `settings` go under `sbomgate:`."""
    return write_json(path, {"sbomgate": dict(settings)})


def layer_of(client: OciClient, repo: str, tag: str) -> dict[str, Any]:
    """The first layer descriptor of a manifest (e.g. cosign's attestation)."""
    raw, _, _ = client.get_manifest(repo, tag)
    return dict(json.loads(raw)["layers"][0])


__all__ = [
    "ATTESTATION_ANNOTATIONS",
    "BAD_SBOM",
    "CLEAN_SBOM",
    "CRITICAL_VECTOR",
    "DOCKER_MANIFEST",
    "DSSE",
    "EMPTY_SBOM",
    "EXAMPLE_FACTS",
    "OCI_INDEX",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "UNKNOWN_PLATFORM",
    "Lab",
    "bare",
    "component",
    "cyclonedx",
    "data_file",
    "descriptor",
    "dsse_layer",
    "facts_snapshot",
    "fake_digest",
    "layer_of",
    "osv_record",
    "platform",
    "purls_in",
    "push_att_tag",
    "push_docker_image",
    "push_index",
    "push_manifest",
    "push_statement_manifest",
    "registry_gets",
    "spdx",
    "spdx_package",
    "write_json",
]
