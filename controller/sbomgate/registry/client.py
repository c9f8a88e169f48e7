"""The OCI distribution client: manifests, blobs and referrers, each checked against its digest.

Nothing fetched is trusted: a manifest fetched by digest must hash to that digest, one fetched
by tag is identified by the hash of the bytes we got (and must agree with the registry's
Docker-Content-Digest header), and blobs must match their descriptor's digest and size.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from sbomgate._internal.deadline import Deadline
from sbomgate.errors import ManifestNotFoundError, RegistryError, RegistryUnavailableError
from sbomgate.registry.auth import CredentialStore, parse_challenge
from sbomgate.registry.budget import ProcessBodyBudget
from sbomgate.registry.oci import (
    ACCEPT_MANIFESTS,
    OCI_INDEX,
    Descriptor,
    ImageIndex,
    Manifest,
    ManifestFormatError,
    parse_manifest,
    too_many_values,
)
from sbomgate.registry.reference import ImageReference
from sbomgate.registry.transport import (
    Attempt,
    RegistryAccess,
    RegistryLimits,
    Response,
    Transport,
    retry_refusal,
)

__all__ = ["FetchedManifest", "RegistryClient", "digest_of"]

_TOKEN_MIN_LIFETIME = 60.0
_MAX_TRACKED_HOSTS = 1024


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The OCI digest (`algorithm:hex`) of `data`."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedManifest:
    """A manifest or index as fetched: its verified digest, media type, parsed form and size."""

    digest: str
    media_type: str
    manifest: Manifest
    size: int


# How long a repository whose registry answered no referrers API is read from the fallback tag
# alone, and how many such repositories are remembered (then forgotten all at once).
NO_REFERRERS_API_TTL = 600.0
_NO_REFERRERS_API_KEPT = 4096


@dataclass(slots=True)
class _Token:
    value: str
    expires: float


class RegistryClient:
    """Talks to any number of registries; thread-safe; one instance per process is the aim."""

    def __init__(
        self,
        access: RegistryAccess,
        credentials: CredentialStore | None = None,
        limits: RegistryLimits | None = None,
        *,
        timeout: float = 30.0,
        on_response: Callable[[str, str], None] | None = None,
    ) -> None:
        self.access = access
        # Called with (registry, status code or "error") for every request: metrics.
        self.on_response = on_response
        self.limits = limits or RegistryLimits()
        self.credentials = credentials or CredentialStore()
        self.timeout = timeout
        self._transport = Transport(access, self.limits)
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._basic_hosts: set[str] = set()
        self._lock = threading.Lock()
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        # Attestation bodies held by every check in progress (registry/budget.py).
        self.bodies = ProcessBodyBudget(self.limits.max_bytes_in_flight)
        self.requests = 0
        # Per (registry, repository): until when it is taken to have no referrers API (it
        # answered the API with something other than an index), so its referrers are read from
        # the fallback tag without asking the API first (a round trip per subject), as ORAS
        # remembers a repository's referrers capability. Asked again once that has passed: a
        # registry may be upgraded.
        self._no_referrers_api: dict[tuple[str, str], float] = {}

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()

    # -- public operations -------------------------------------------------------------

    def get_manifest(
        self,
        image: ImageReference,
        reference: str,
        *,
        deadline: Deadline | None = None,
        missing_ok: bool = False,
    ) -> FetchedManifest | None:
        """A manifest or index by tag or digest; None when absent and `missing_ok`."""
        deadline = deadline or Deadline.after(self.timeout)
        path = f"/v2/{image.repository}/manifests/{reference}"
        response = self._get(
            image,
            path,
            accept=ACCEPT_MANIFESTS,
            max_body=self.limits.max_manifest_bytes,
            deadline=deadline,
            missing_ok=missing_ok,
            what=f"manifest {reference}",
        )
        if response is None:
            return None
        data = response.body
        if reference.startswith("sha256:") or reference.startswith("sha512:"):
            algorithm = reference.split(":", 1)[0]
            actual = digest_of(data, algorithm)
            if actual != reference:
                raise RegistryError(
                    image.registry,
                    f"manifest for {image.name}@{reference} hashes to {actual}: "
                    "the registry served different content than was asked for",
                )
            digest = reference
        else:
            digest = digest_of(data)
            header = response.header("docker-content-digest")
            if header and header.startswith("sha256:") and header != digest:
                raise RegistryError(
                    image.registry,
                    f"tag {image.name}:{reference} served content hashing to {digest}, but the "
                    f"registry says {header}",
                )
        try:
            manifest = parse_manifest(
                data, response.header("content-type"), max_entries=self.limits.max_referrers
            )
        except ManifestFormatError as exc:
            raise RegistryError(
                image.registry, f"manifest {image.name}@{digest} is not valid: {exc}"
            ) from None
        return FetchedManifest(
            digest=digest, media_type=manifest.media_type, manifest=manifest, size=len(data)
        )

    def resolve(
        self, image: ImageReference, *, deadline: Deadline | None = None
    ) -> FetchedManifest:
        """The manifest (or index) the reference points at, by digest when it has one."""
        reference = image.digest or image.tag or "latest"
        fetched = self.get_manifest(image, reference, deadline=deadline)
        assert fetched is not None
        return fetched

    def get_blob(
        self,
        image: ImageReference,
        descriptor: Descriptor,
        *,
        max_bytes: int | None = None,
        deadline: Deadline | None = None,
    ) -> bytes:
        """A blob, refused before download if its descriptor says it is too big."""
        deadline = deadline or Deadline.after(self.timeout)
        cap = min(max_bytes or self.limits.max_blob_bytes, self.limits.max_blob_bytes)
        if descriptor.size > cap:
            raise RegistryError(
                image.registry,
                f"blob {descriptor.digest} is {descriptor.size} bytes, over the {cap} byte limit",
            )
        response = self._get(
            image,
            f"/v2/{image.repository}/blobs/{descriptor.digest}",
            accept="*/*",
            max_body=descriptor.size,
            deadline=deadline,
            missing_ok=False,
            what=f"blob {descriptor.digest}",
        )
        assert response is not None
        data = response.body
        algorithm = descriptor.digest.split(":", 1)[0]
        if len(data) != descriptor.size or digest_of(data, algorithm) != descriptor.digest:
            raise RegistryError(
                image.registry,
                f"blob {descriptor.digest} of {image.name} does not match its digest and size",
            )
        return data

    def referrers(
        self, image: ImageReference, digest: str, *, deadline: Deadline | None = None
    ) -> tuple[tuple[Descriptor, ...], str]:
        """Manifests whose `subject` is `digest`: the OCI 1.1 referrers API, else the fallback
        tag `sha256-<hex>`. Returns the descriptors and which of the two answered."""
        deadline = deadline or Deadline.after(self.timeout)
        where = (image.registry, image.repository)
        if self._no_referrers_api.get(where, 0.0) > time.monotonic():
            return self._fallback_referrers(image, digest, deadline), "tag"
        found: list[Descriptor] = []
        path: str | None = f"/v2/{image.repository}/referrers/{digest}"
        pages = 0
        seen: set[str] = set()
        while path is not None:
            if pages >= self.limits.max_referrer_pages or path in seen:
                # The image's own registry content (what it links), so a refusal, not a fault.
                why = (
                    f"more than {self.limits.max_referrer_pages} pages"
                    if path not in seen
                    else "pages that link back to an earlier page"
                )
                raise RegistryError(
                    image.registry, f"the referrers of {image.name}@{digest} span {why}"
                )
            seen.add(path)
            response = self._get(
                image,
                path,
                accept=OCI_INDEX,
                max_body=self.limits.max_manifest_bytes,
                deadline=deadline,
                missing_ok=True,
                what=f"referrers of {digest}",
            )
            if response is None or not _is_index_response(response):
                if pages == 0:
                    with self._lock:
                        if len(self._no_referrers_api) >= _NO_REFERRERS_API_KEPT:
                            self._no_referrers_api.clear()
                        self._no_referrers_api[where] = time.monotonic() + NO_REFERRERS_API_TTL
                    return self._fallback_referrers(image, digest, deadline), "tag"
                break
            found.extend(self._index_entries(image, response.body, f"referrers of {digest}"))
            if len(found) > self.limits.max_referrers:
                raise RegistryError(
                    image.registry,
                    f"{image.name}@{digest} has more than {self.limits.max_referrers} referrers",
                )
            pages += 1
            path = _next_link(response.header("link"))
        return tuple(found), "api"

    # -- internals ---------------------------------------------------------------------

    def _fallback_referrers(
        self, image: ImageReference, digest: str, deadline: Deadline
    ) -> tuple[Descriptor, ...]:
        tag = digest.replace(":", "-", 1)
        fetched = self.get_manifest(image, tag, deadline=deadline, missing_ok=True)
        if fetched is None:
            return ()
        if not isinstance(fetched.manifest, ImageIndex):
            return ()  # not a referrers index (some tools put other things on that tag)
        return fetched.manifest.manifests

    def _index_entries(self, image: ImageReference, body: bytes, what: str) -> list[Descriptor]:
        try:
            index = parse_manifest(body, OCI_INDEX, max_entries=self.limits.max_referrers)
        except ManifestFormatError as exc:
            if "over the limit" in str(exc):
                raise RegistryError(
                    image.registry,
                    f"{image.name}: {what}: has more than {self.limits.max_referrers} referrers",
                ) from None
            raise RegistryError(image.registry, f"{what}: {exc}") from None
        if not isinstance(index, ImageIndex):
            raise RegistryError(image.registry, f"{what}: not an image index")
        return list(index.manifests)

    def _url(self, image: ImageReference, path: str) -> str:
        return f"{self.access.scheme_for(image.api_host)}://{image.api_host}{path}"

    def _get(
        self,
        image: ImageReference,
        path: str,
        *,
        accept: str,
        max_body: int,
        deadline: Deadline,
        missing_ok: bool,
        what: str,
    ) -> Response | None:
        registry = image.registry
        self.access.check_host(registry)
        scope = f"repository:{image.repository}:pull"
        url = self._url(image, path)
        challenged = False
        waited: float | None = None
        while True:
            headers = {"Accept": accept, "User-Agent": "sbomgate"}
            authorization = self._authorization(image.api_host, scope)
            if authorization:
                headers["Authorization"] = authorization
            response = self._transport.send(
                "GET",
                url,
                registry=registry,
                headers=headers,
                max_body=max_body,
                deadline=deadline,
                send_credentials_to=image.api_host,
                # Retry-After is honoured once per fetch, a 401 challenge answered or not.
                retry=waited is None,
                attempt=self._attempt(registry, deadline),
            )
            waited = response.waited if response.waited is not None else waited
            if response.status == 401 and not challenged:
                challenged = True
                self._answer_challenge(image, response, scope, deadline)
                continue
            return self._check_status(image, response, missing_ok, what, deadline, waited)

    def _attempt(self, registry: str, deadline: Deadline) -> Attempt:
        """Each request to `registry`: counted, in one of its slots, its answer observed."""

        def attempt(request: Callable[[], Response]) -> Response:
            self.requests += 1
            try:
                with self._slot(registry, deadline):
                    response = request()
            except RegistryError:
                self._observe(registry, "error")
                raise
            self._observe(registry, str(response.status))
            return response

        return attempt

    @contextmanager
    def _slot(self, registry: str, deadline: Deadline) -> Iterator[None]:
        """One of the `max_requests_per_host` requests that may be in flight to `registry`,
        waited for until the deadline (a slow registry makes reviews queue, not pile up)."""
        limit = self.limits.max_requests_per_host
        with self._lock:
            slots = self._host_slots.get(registry)
            if slots is None:
                if len(self._host_slots) >= _MAX_TRACKED_HOSTS:
                    # Hosts matched by a glob are attacker-chosen: forget idle ones rather than
                    # grow; a request in flight keeps its own semaphore until it releases it.
                    self._host_slots.clear()
                slots = self._host_slots[registry] = threading.BoundedSemaphore(limit)
        if not slots.acquire(timeout=max(deadline.remaining(), 0.0)):
            raise RegistryUnavailableError(
                registry,
                f"timed out: {limit} requests to {registry} were already in flight and none "
                f"finished within the {deadline.limit():.1f} s time limit",
            )
        try:
            yield
        finally:
            slots.release()

    def _observe(self, registry: str, code: str) -> None:
        if self.on_response is not None:
            self.on_response(registry, code)

    def _check_status(
        self,
        image: ImageReference,
        response: Response,
        missing_ok: bool,
        what: str,
        deadline: Deadline,
        waited: float | None = None,
    ) -> Response | None:
        status = response.status
        if 200 <= status < 300:
            return response
        name = image.name
        if status == 404:
            if missing_ok:
                return None
            raise ManifestNotFoundError(image.registry, f"{what} of {name} not found")
        if status == 401:
            has = self.credentials.for_registry(image.registry) is not None
            raise RegistryError(
                image.registry,
                f"authentication failed for {name}"
                + ("" if has else " (no credentials for it: add a pull secret or docker config)"),
            )
        if status == 403:
            raise RegistryError(image.registry, f"access to {name} denied (403)")
        if status == 429 or status >= 500:
            head, tail = retry_refusal(response, deadline, waited)
            raise RegistryUnavailableError(image.registry, f"{head} for {what} of {name}{tail}")
        if missing_ok and status in (400, 405):
            return None  # e.g. a referrers endpoint some registries answer with 400/405
        raise RegistryError(image.registry, f"answered {status} for {what} of {name}")

    def _authorization(self, host: str, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get((host, scope))
            if token is not None and token.expires > time.monotonic():
                return f"Bearer {token.value}"
            basic = host in self._basic_hosts
        creds = self.credentials.for_registry(_credential_key(host))
        if basic and creds is not None:
            return creds.basic_header()
        return None

    def _answer_challenge(
        self, image: ImageReference, response: Response, scope: str, deadline: Deadline
    ) -> None:
        header = response.header("www-authenticate") or ""
        challenge = parse_challenge(header)
        host = image.api_host
        creds = self.credentials.for_registry(image.registry)
        if challenge is None:
            raise RegistryError(image.registry, "answered 401 without an auth challenge")
        if challenge.scheme == "basic":
            if creds is None:
                raise RegistryError(
                    image.registry,
                    f"{image.name} needs credentials (add a pull secret or docker config)",
                )
            with self._lock:
                self._basic_hosts.add(host)
            return
        if challenge.scheme != "bearer" or not challenge.params.get("realm"):
            raise RegistryError(image.registry, f"unsupported auth challenge {header[:100]!r}")
        query = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        realm = challenge.params["realm"]
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
        headers = {"User-Agent": "sbomgate", "Accept": "application/json"}
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        self.requests += 1
        with self._slot(image.registry, deadline):
            token_response = self._transport.send(
                "GET",
                url,
                registry=image.registry,
                headers=headers,
                max_body=1 << 20,
                deadline=deadline,
            )
        if token_response.status != 200:
            raise RegistryError(
                image.registry,
                f"token service answered {token_response.status} for {image.name}"
                + ("" if creds else " (no credentials for it: add a pull secret or docker config)"),
            )
        token, lifetime = _read_token(token_response.body, image.registry)
        with self._lock:
            self._tokens[(host, scope)] = _Token(
                token, time.monotonic() + max(lifetime - 30, _TOKEN_MIN_LIFETIME)
            )


def _credential_key(host: str) -> str:
    return "docker.io" if host == "registry-1.docker.io" else host


def _read_token(body: bytes, registry: str) -> tuple[str, float]:
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RegistryError(registry, "token service answered with something not JSON") from None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(registry, "token service answered without a token")
    expires_in = doc.get("expires_in", 60)
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 60.0
    return token, lifetime


def _is_index_response(response: Response) -> bool:
    content_type = (response.header("content-type") or "").split(";")[0].strip()
    if content_type == OCI_INDEX:
        return True
    # Some registries answer the referrers call with JSON of another content type.
    if too_many_values(response.body, 1000):
        return True  # not parsed here: parse_manifest refuses it, saying why
    try:
        doc = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("manifests"), list)


def _next_link(header: str | None) -> str | None:
    """The `rel="next"` target of a Link header, if it is a path on the same registry."""
    if not header:
        return None
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            path = target.strip().strip("<>")
            return path if path.startswith("/v2/") else None
    return None
