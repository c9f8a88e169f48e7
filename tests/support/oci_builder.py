"""Push real OCI content to the test registries, and sign it with the real cosign.

This module has its own small registry client (``OciClient``: http.client, TLS verified against
the test CA, basic and bearer-token auth). It deliberately shares nothing with
``sbomgate.registry`` so that tests of the library are not checked against the library itself.

What cosign v3.1.3 writes with ``cosign attest --key K --predicate F --type T
--tlog-upload=false --use-signing-config=false --yes IMAGE@DIGEST`` (observed on both registry
kinds here; test_test_infra.py checks it):

The signed thing (both modes) is a DSSE envelope ``{"payload": b64, "payloadType":
"application/vnd.in-toto+json", "signatures": [{"sig": b64}]}`` (no ``keyid``) over an in-toto
Statement v0.1 (``_type`` https://in-toto.io/Statement/v0.1) with one subject ``{"name":
"<registry>/<repo>", "digest": {"sha256": <hex of the digest given>}}``. The predicate:
``cyclonedx`` (https://cyclonedx.org/bom), ``spdxjson`` (https://spdx.dev/Document),
``openvex`` or a URI type: the file's JSON itself (re-serialised, keys sorted); ``spdx``: the
file as a JSON *string*; ``slsaprovenance``/``slsaprovenance02``/``slsaprovenance1``: parsed
into SLSA structs (unknown fields dropped); ``custom`` (the default): predicateType
https://cosign.sigstore.dev/attestation/v1 wrapping ``{"Data": "<file text>", "Timestamp":
...}``. Signature over the DSSE PAE: ECDSA P-256 -> DER ECDSA-SHA256; RSA -> PKCS#1 v1.5
SHA-256; Ed25519 -> Ed25519ph (RFC 8032 prehash), not pure Ed25519. Attesting an index digest
attests the index only.

``--new-bundle-format=false`` (legacy), same on both registries: tag ``sha256-<hex>.att`` -> an
OCI image manifest (config application/vnd.oci.image.config.v1+json whose rootfs.diff_ids are
the layer digests; no ``subject``, no ``artifactType``), one layer per attestation of media
type application/vnd.dsse.envelope.v1+json with annotations
``{"dev.cosignproject.cosign/signature": "", "predicateType": <URI>}``. No
``dev.sigstore.cosign/bundle`` annotation (that is the Rekor entry, absent without tlog
upload). A second attest appends a layer to the same tag. Nothing goes to the referrers API.

``--new-bundle-format=true`` (the v3 default): an untagged referrer, an OCI image manifest with
``artifactType`` application/vnd.dev.sigstore.bundle.v0.3+json, the empty config
(application/vnd.oci.empty.v1+json, ``{}``), ``subject`` = the image, annotations
``dev.sigstore.bundle.content: dsse-envelope``, ``dev.sigstore.bundle.predicateType: <URI>``,
``org.opencontainers.image.created``, and one layer of that bundle media type holding a Sigstore
bundle v0.3 ``{"mediaType", "verificationMaterial": {"publicKey": {"hint":
b64(sha256(SPKI DER))}}, "dsseEnvelope": {...}}`` (no tlog entries, no timestamps). On the
referrers registry it is listed by ``/v2/<repo>/referrers/<digest>`` with those annotations and
no tag is written. On distribution 2.8 that endpoint is 404, so cosign writes the fallback tag
``sha256-<hex>``: an OCI index of ``{mediaType, digest, size, artifactType}`` descriptors,
without annotations, appended to (sorted by digest) on each new referrer.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import subprocess
import tarfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from support.registry_servers import ROOT, RegistryServer

COSIGN_BIN = ROOT / ".cache" / "bin" / "cosign"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_BLOB = b"{}"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_ALL = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

IN_TOTO_STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
SPDX_PREDICATE = "https://spdx.dev/Document"
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def fallback_tag(digest: str) -> str:
    """The OCI 1.1 referrers tag schema: ``<alg>-<hex>`` (truncated to the 128-char tag limit)."""
    alg, _, hex_ = digest.partition(":")
    return f"{alg}-{hex_}"[:128]


def cosign_tag(digest: str, suffix: str) -> str:
    """cosign's legacy tags: ``sha256-<hex>.att`` / ``.sig`` / ``.sbom``."""
    return fallback_tag(digest) + "." + suffix


# --------------------------------------------------------------------------- client


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class RegistryError(Exception):
    def __init__(self, method: str, url: str, response: Response) -> None:
        super().__init__(f"{method} {url}: {response.status} {response.body[:500]!r}")
        self.response = response


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {...})."""
    scheme, _, rest = value.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class OciClient:
    """A minimal OCI distribution client for setting up tests (not the code under test)."""

    def __init__(
        self,
        server: RegistryServer,
        *,
        username: str | None = None,
        password: str | None = None,
        anonymous: bool = False,
    ) -> None:
        self.server = server
        self.username = None if anonymous else (username or server.username)
        self.password = None if anonymous else (password or server.password)
        self._auth: dict[str, str] = {}  # repository (or "") -> Authorization header
        self._context = server.ssl_context()

    # -- transport

    def send(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """One request as given: no auth handling, no status check."""
        parts = urllib.parse.urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname or "", parts.port or 443, timeout=30, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, body=body or None, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.getheaders(), data)
        finally:
            conn.close()

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def fetch_token(self, challenge: Mapping[str, str], scope: str | None = None) -> str:
        query = {"service": challenge.get("service", "")}
        if scope or challenge.get("scope"):
            query["scope"] = scope or challenge["scope"]
        url = challenge["realm"] + "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": self._basic()} if self.username else {}
        resp = self.send("GET", url, b"", headers)
        if resp.status != 200:
            raise RegistryError("GET", url, resp)
        payload = resp.json()
        return str(payload.get("token") or payload["access_token"])

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> Response:
        """Send a request, answering one auth challenge; raise unless the status is in ``ok``."""
        url = path_or_url if "://" in path_or_url else self.server.url(path_or_url)
        path = urllib.parse.urlsplit(url).path
        match = re.match(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/", path)
        key = match.group(1) if match else ""
        hdrs = dict(headers or {})
        if key in self._auth:
            hdrs["Authorization"] = self._auth[key]
        resp = self.send(method, url, body, hdrs)
        if resp.status == 401:
            challenge = resp.header("WWW-Authenticate") or ""
            scheme, params = parse_challenge(challenge)
            if scheme == "basic" and self.username:
                self._auth[key] = self._basic()
            elif scheme == "bearer":
                self._auth[key] = "Bearer " + self.fetch_token(params)
            else:
                if resp.status not in ok:
                    raise RegistryError(method, url, resp)
                return resp
            hdrs["Authorization"] = self._auth[key]
            resp = self.send(method, url, body, hdrs)
        if resp.status not in ok:
            raise RegistryError(method, url, resp)
        return resp

    # -- distribution API

    def ping(self) -> Response:
        return self.request("GET", "/v2/", ok=(200, 401))

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404)).status == 200

    def push_blob(self, repo: str, data: bytes, media_type: str) -> dict[str, Any]:
        """Upload (POST + monolithic PUT) unless present; return its descriptor."""
        digest = sha256_digest(data)
        if not self.blob_exists(repo, digest):
            started = self.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,))
            location = started.header("Location")
            assert location, "upload without Location"
            url = urllib.parse.urljoin(self.server.url("/"), location)
            sep = "&" if urllib.parse.urlsplit(url).query else "?"
            self.request(
                "PUT",
                url + sep + urllib.parse.urlencode({"digest": digest}),
                body=data,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(data)),
                },
                ok=(201,),
            )
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}").body

    def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str) -> Response:
        return self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            body=manifest,
            headers={"Content-Type": media_type, "Content-Length": str(len(manifest))},
            ok=(201,),
        )

    def get_manifest(
        self, repo: str, reference: str, *, accept: str = ACCEPT_ALL
    ) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest) of a manifest or index; raises on 404."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        return resp.body, media_type, sha256_digest(resp.body)

    def manifest_or_none(self, repo: str, reference: str) -> dict[str, Any] | None:
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            headers={"Accept": ACCEPT_ALL},
            ok=(200, 404),
        )
        return resp.json() if resp.status == 200 else None

    def delete_manifest(self, repo: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(202,))

    def tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list", ok=(200, 404))
        return list(resp.json().get("tags") or []) if resp.status == 200 else []

    def referrers(self, repo: str, digest: str, *, artifact_type: str | None = None) -> Response:
        """GET the referrers API (status is 404 on registries without it)."""
        query = (
            f"?{urllib.parse.urlencode({'artifactType': artifact_type})}" if artifact_type else ""
        )
        return self.request(
            "GET",
            f"/v2/{repo}/referrers/{digest}{query}",
            headers={"Accept": OCI_INDEX},
            ok=(200, 404),
        )


# --------------------------------------------------------------------------- images


@dataclass
class PushedImage:
    server: RegistryServer
    repo: str
    tag: str
    digest: str  # of the manifest, or of the index for multi-platform images
    media_type: str
    manifest: bytes
    platform_digests: dict[str, str] = field(default_factory=dict)  # "linux/amd64" -> digest
    attestation_digests: dict[str, str] = field(default_factory=dict)  # BuildKit: platform -> att

    @property
    def ref(self) -> str:
        return f"{self.server.host}/{self.repo}:{self.tag}"

    @property
    def digest_ref(self) -> str:
        return f"{self.server.host}/{self.repo}@{self.digest}"

    def platform_ref(self, platform: str) -> str:
        return f"{self.server.host}/{self.repo}@{self.platform_digests[platform]}"


def _platform(value: str) -> dict[str, str]:
    parts = value.split("/")
    out = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else "amd64"}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def _layer_tar(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """A reproducible gzip'd tar; returns (compressed, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, mtime=0)
    return compressed, sha256_digest(uncompressed)


def push_platform_manifest(
    client: OciClient,
    repo: str,
    *,
    platform: str = "linux/amd64",
    seed: str = "sbomgate",
    reference: str | None = None,
) -> tuple[str, bytes, dict[str, Any]]:
    """Push one single-platform OCI image (1 layer); returns (digest, manifest, descriptor)."""
    plat = _platform(platform)
    layer, diff_id = _layer_tar(
        {f"sbomgate-test/{seed}.txt": f"seed={seed} platform={platform}\n".encode()}
    )
    config = {
        "created": "1970-01-01T00:00:00Z",
        **plat,
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"sbomgate.test/seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"sbomgate test {seed}"}],
    }
    config_desc = client.push_blob(repo, canonical_json(config), OCI_CONFIG)
    layer_desc = client.push_blob(repo, layer, OCI_LAYER_GZIP)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc,
            "layers": [layer_desc],
        }
    )
    digest = sha256_digest(manifest)
    client.put_manifest(repo, reference or digest, manifest, OCI_MANIFEST)
    return digest, manifest, {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}


def push_image(
    server: RegistryServer,
    repo: str,
    tag: str,
    *,
    platforms: list[str] | None = None,
    seed: str | None = None,
    client: OciClient | None = None,
) -> PushedImage:
    """Push a real image. ``platforms`` given: one manifest per platform plus an OCI index.

    ``seed`` (default ``repo:tag``) goes into the layer and config, so different seeds give
    different digests and the same seed gives the same digest.
    """
    client = client or OciClient(server)
    seed = seed if seed is not None else f"{repo}:{tag}"
    if not platforms:
        digest, manifest, _ = push_platform_manifest(client, repo, seed=seed, reference=tag)
        return PushedImage(server, repo, tag, digest, OCI_MANIFEST, manifest)
    descriptors = []
    platform_digests = {}
    for platform in platforms:
        digest, _, desc = push_platform_manifest(client, repo, platform=platform, seed=seed)
        descriptors.append({**desc, "platform": _platform(platform)})
        platform_digests[platform] = digest
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    client.put_manifest(repo, tag, index, OCI_INDEX)
    return PushedImage(server, repo, tag, sha256_digest(index), OCI_INDEX, index, platform_digests)


# --------------------------------------------------------------------------- referrers


def attach_referrer(
    server: RegistryServer,
    repo: str,
    subject_digest: str,
    *,
    artifact_type: str,
    blob: bytes,
    blob_media_type: str,
    annotations: Mapping[str, str] | None = None,
    fallback_tag: bool,
    client: OciClient | None = None,
) -> str:
    """Attach an artifact to ``subject_digest`` the way ``oras attach`` does; returns its digest.

    An OCI image manifest with ``artifactType``, the empty config, one layer and ``subject``.
    With ``fallback_tag`` (registries without the referrers API) the ``sha256-<hex>`` tag
    index is also created or extended, as OCI distribution-spec 1.1 requires of clients.
    """
    client = client or OciClient(server)
    subject_raw, subject_type, _ = client.get_manifest(repo, subject_digest)
    empty = client.push_blob(repo, OCI_EMPTY_BLOB, OCI_EMPTY)
    layer = client.push_blob(repo, blob, blob_media_type)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty,
        "layers": [layer],
        "subject": {"mediaType": subject_type, "digest": subject_digest, "size": len(subject_raw)},
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    raw = canonical_json(manifest)
    digest = sha256_digest(raw)
    client.put_manifest(repo, digest, raw, OCI_MANIFEST)
    if fallback_tag:
        descriptor: dict[str, Any] = {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(raw),
            "artifactType": artifact_type,
        }
        if annotations:
            descriptor["annotations"] = dict(annotations)
        add_to_fallback_index(client, repo, subject_digest, descriptor)
    return digest


def add_to_fallback_index(
    client: OciClient, repo: str, subject_digest: str, descriptor: Mapping[str, Any]
) -> str:
    """Append ``descriptor`` to the ``sha256-<hex>`` referrers tag index; returns its digest."""
    tag = fallback_tag(subject_digest)
    index = client.manifest_or_none(repo, tag) or {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
    }
    if not any(m.get("digest") == descriptor["digest"] for m in index["manifests"]):
        index["manifests"].append(dict(descriptor))
    raw = canonical_json(index)
    client.put_manifest(repo, tag, raw, OCI_INDEX)
    return sha256_digest(raw)


# --------------------------------------------------------------------------- BuildKit


def in_toto_statement(
    predicate_type: str,
    predicate: Any,
    subject_digest: str | None = None,
    *,
    subject_name: str = "_",
    statement_type: str = IN_TOTO_STATEMENT_V01,
) -> dict[str, Any]:
    """An unsigned in-toto statement; ``subject_digest`` None leaves ``subject`` out."""
    statement: dict[str, Any] = {"_type": statement_type, "predicateType": predicate_type}
    if subject_digest is not None:
        alg, _, hex_ = subject_digest.partition(":")
        statement["subject"] = [{"name": subject_name, "digest": {alg: hex_}}]
    statement["predicate"] = predicate
    return statement


def push_buildkit_image(
    server: RegistryServer,
    repo: str,
    tag: str,
    *,
    platforms: list[str],
    sbom_statement: dict[str, Any],
    provenance_statement: dict[str, Any] | None = None,
    seed: str | None = None,
    client: OciClient | None = None,
) -> PushedImage:
    """An index shaped like ``docker buildx build --attest type=sbom --attest type=provenance``.

    Per platform: the image manifest, then an attestation manifest (platform unknown/unknown,
    annotations ``vnd.docker.reference.type: attestation-manifest`` and
    ``vnd.docker.reference.digest: <platform manifest digest>``) whose layers are unsigned
    in-toto statements (``application/vnd.in-toto+json``, layer annotation
    ``in-toto.io/predicate-type``). A statement without ``subject`` gets one naming that
    platform's manifest digest (as BuildKit writes); a statement that has one is pushed as
    given, so tests can make a wrong subject.
    """
    client = client or OciClient(server)
    seed = seed if seed is not None else f"{repo}:{tag}"
    descriptors: list[dict[str, Any]] = []
    attestations: list[dict[str, Any]] = []
    platform_digests: dict[str, str] = {}
    attestation_digests: dict[str, str] = {}
    for platform in platforms:
        digest, _, desc = push_platform_manifest(client, repo, platform=platform, seed=seed)
        descriptors.append({**desc, "platform": _platform(platform)})
        platform_digests[platform] = digest
        alg, _, hex_ = digest.partition(":")
        layers = []
        for statement in (sbom_statement, provenance_statement):
            if statement is None:
                continue
            if "subject" not in statement:
                name = f"pkg:docker/{repo}@{tag}?platform={urllib.parse.quote(platform, safe='')}"
                statement = {
                    "_type": statement.get("_type", IN_TOTO_STATEMENT_V01),
                    "predicateType": statement["predicateType"],
                    "subject": [{"name": name, "digest": {alg: hex_}}],
                    **{k: v for k, v in statement.items() if k not in ("_type", "predicateType")},
                }
            layer = client.push_blob(repo, canonical_json(statement), IN_TOTO_MEDIA_TYPE)
            layer["annotations"] = {"in-toto.io/predicate-type": statement["predicateType"]}
            layers.append(layer)
        config = canonical_json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        )
        att_manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": client.push_blob(repo, config, OCI_CONFIG),
                "layers": layers,
            }
        )
        att_digest = sha256_digest(att_manifest)
        client.put_manifest(repo, att_digest, att_manifest, OCI_MANIFEST)
        attestation_digests[platform] = att_digest
        attestations.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": att_digest,
                "size": len(att_manifest),
                "annotations": {
                    "vnd.docker.reference.digest": digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            }
        )
    index = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors + attestations}
    )
    client.put_manifest(repo, tag, index, OCI_INDEX)
    return PushedImage(
        server,
        repo,
        tag,
        sha256_digest(index),
        OCI_INDEX,
        index,
        platform_digests,
        attestation_digests,
    )


# --------------------------------------------------------------------------- cosign


@dataclass(frozen=True)
class CosignKey:
    private_key_path: Path  # cosign-encrypted private key ("ENCRYPTED SIGSTORE PRIVATE KEY")
    public_key_path: Path  # PEM SubjectPublicKeyInfo
    password: str
    kind: str = "ecdsa"


def _cosign_bin() -> Path:
    if not COSIGN_BIN.exists():
        import pytest

        pytest.fail(f"{COSIGN_BIN.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)
    return COSIGN_BIN


def _run_cosign(
    args: list[str], env: Mapping[str, str], *, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("COSIGN_", "SIGSTORE_"))}
    full_env.update(env)
    for _ in range(3):
        proc = subprocess.run(
            [str(_cosign_bin()), *args],
            env=full_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        # Seen once in `make test` under load, gone on the next try: cosign reading a registry
        # answer cut short ("unexpected end of JSON input" while signing). Only that is retried.
        if proc.returncode == 0 or "unexpected end of JSON input" not in proc.stderr:
            break
    if proc.returncode != 0:
        raise RuntimeError(
            f"cosign {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
        )
    return proc


def cosign_keypair(tmpdir: Path, kind: str = "ecdsa", *, password: str = "test") -> CosignKey:
    """A cosign key pair: ECDSA P-256 from ``generate-key-pair``; Ed25519 and RSA-3072 made
    here and converted with ``import-key-pair``."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    prefix = tmpdir / f"cosign-{kind}"
    env = {"COSIGN_PASSWORD": password}
    if kind == "ecdsa":
        _run_cosign(["generate-key-pair", "--output-key-prefix", str(prefix)], env, cwd=tmpdir)
    elif kind in ("ed25519", "rsa"):
        key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
        if kind == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem = tmpdir / f"{kind}-plain.pem"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        _run_cosign(
            ["import-key-pair", "--key", str(pem), "--output-key-prefix", str(prefix), "--yes"],
            env,
            cwd=tmpdir,
        )
        pem.unlink()
    else:
        raise ValueError(f"unknown key kind {kind!r}")
    return CosignKey(Path(f"{prefix}.key"), Path(f"{prefix}.pub"), password, kind)


def cosign_env(server: RegistryServer, key: CosignKey | None, home: Path) -> dict[str, str]:
    """Environment for running cosign against ``server`` offline (no TUF, no Rekor)."""
    home.mkdir(parents=True, exist_ok=True)
    docker_config = home / "docker"
    docker_config.mkdir(exist_ok=True)
    auths = {}
    if server.username and server.password:
        raw = f"{server.username}:{server.password}".encode()
        auths[server.host] = {"auth": base64.b64encode(raw).decode()}
    (docker_config / "config.json").write_text(json.dumps({"auths": auths}))
    env = {
        "HOME": str(home),
        "DOCKER_CONFIG": str(docker_config),
        "TUF_ROOT": str(home / "sigstore"),
        "COSIGN_EXPERIMENTAL": "0",
    }
    if key is not None:
        env["COSIGN_PASSWORD"] = key.password
    if server.ca_file is not None:
        env["SSL_CERT_FILE"] = str(server.ca_file)
    return env


def cosign_registry_flags(server: RegistryServer) -> list[str]:
    flags = []
    if server.scheme == "http":
        flags += ["--allow-http-registry", "--allow-insecure-registry"]
    if server.ca_file is not None:
        flags += ["--registry-cacert", str(server.ca_file)]
    return flags


def cosign_attest(
    server: RegistryServer,
    image_ref_with_digest: str,
    predicate_file: Path,
    predicate_type: str,
    key: CosignKey,
    *,
    new_bundle_format: bool,
    workdir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``cosign attest`` offline with a key (no Rekor, no TUF, no TSA).

    ``predicate_type``: a cosign shorthand (``cyclonedx``, ``spdxjson``, ``slsaprovenance1``...)
    or a URI. The image reference must carry its digest.
    """
    if "@sha256:" not in image_ref_with_digest:
        raise ValueError("cosign_attest wants a digest reference (repo@sha256:...)")
    home = workdir or predicate_file.parent / ".cosign-home"
    args = [
        "attest",
        "--key",
        str(key.private_key_path),
        "--predicate",
        str(predicate_file),
        "--type",
        predicate_type,
        "--tlog-upload=false",
        "--use-signing-config=false",
        f"--new-bundle-format={'true' if new_bundle_format else 'false'}",
        "--yes",
        *cosign_registry_flags(server),
        image_ref_with_digest,
    ]
    return _run_cosign(args, cosign_env(server, key, home))


def offline_trust_file(work: Path, name: str = "offline") -> Path:
    """A trust policy covering every image with a fresh key no image is ever signed with:
    for tests that must refuse without reaching a registry."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    key = work / f"{name}.pub"
    key.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    trust = work / f"{name}-trust.json"
    trust.write_text(
        json.dumps(
            {
                "apiVersion": "sbomgate.dev/v1alpha1",
                "kind": "TrustPolicy",
                "metadata": {"name": name},
                "spec": {
                    "images": ["**"],
                    "authorities": [{"name": "k", "key": {"file": str(key)}}],
                },
            }
        )
    )
    return trust
