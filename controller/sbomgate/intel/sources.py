"""Trusted package sources: is this package, at this version, in a repository we trust?

A package is trusted only when one of the organisation's repositories lists it at that exact
version. The sources of an ecosystem are asked in their configured order; the first that knows
the package at that version answers. Four protocols are spoken:

- PyPI "simple" API: PEP 691 JSON (asked for first) or PEP 503 HTML; names normalised as PEP 503
  says; versions read from file names (sdists and wheels); `yanked`, `#sha256=` fragments,
  `requires-python` and PEP 700 `upload-time`.
- npm registry API: `GET /<name>` (scoped names as `@scope%2fname`), `versions`, `time`,
  `dist.integrity` / `dist.shasum`, `deprecated`.
- Maven repository layout: `<group path>/<artifact>/<version>/<artifact>-<version>.pom`,
  `maven-metadata.xml`, `.sha256` / `.sha1` checksum files, `Last-Modified` as publication time.
- Go module proxy protocol: `/<module>/@v/<version>.info`, `/<module>/@v/list`, with module
  paths case-encoded (`!` before a lower-cased capital).

Every request goes through the registry `Transport` (allow-list, address guard, size caps,
deadlines). An answer that came back from another host through a redirect is not trusted.
A source that cannot be asked is a fault (`SourceAnswer.error`), never "not found"; faults are
not cached, answers are (found for `positive_ttl`, not found for `negative_ttl` seconds).

Components are asked about by their canonical identity (`sbomgate.identity`): the purl's name
(PEP 503 for PyPI, case kept for npm, the decoded Go module path) and the purl's version. A
source vouches for a component only when the purl does not say the artifact came from
elsewhere: every `repository_url` / `download_url` qualifier must be on the source's host.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlsplit

import orjson
import yaml
from defusedxml import ElementTree

from sbomgate._internal.deadline import Deadline
from sbomgate._internal.documents import load_json_or_yaml
from sbomgate.errors import InputError, RemoteError
from sbomgate.identity import PackageIdentity, go_escape, identity_of, pep503, version_key
from sbomgate.intel.snapshot import IdentityTable
from sbomgate.policy.input import PackageFacts
from sbomgate.registry.transport import (
    Attempt,
    MiB,
    RegistryAccess,
    RegistryLimits,
    Response,
    Transport,
    retry_refusal,
    url_host,
)
from sbomgate.sbom.model import Component

SourceKind = Literal["pypi", "npm", "maven", "go"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("pypi", "npm", "maven", "go")
# purl type -> the kind of source that can vouch for it.
PURL_KINDS: Mapping[str, SourceKind] = {
    "pypi": "pypi",
    "npm": "npm",
    "maven": "maven",
    "golang": "go",
}
HASH_ALGORITHMS = ("sha512", "sha256", "sha1")
MAX_SNAPSHOT_BYTES = 256 << 20

_PYPI_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
_NOT_FOUND = frozenset({404, 410})
_HEX = re.compile(r"^[0-9a-f]+$")


class SourceFault(RemoteError):
    """A source (`host`) could not be asked, or its answer could not be read."""

    prefix = "trusted source "


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One trusted repository. Credentials: `username`/`password` (basic) or `token` (bearer)."""

    name: str
    kind: SourceKind
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise InputError(f"source {self.name!r}: kind must be one of {', '.join(SOURCE_KINDS)}")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"source {self.name!r}: url must be an http(s) URL, not {self.url!r}")
        if parts.username or parts.password:
            raise InputError(f"source {self.name!r}: put credentials in username/password")
        if self.token and (self.username or self.password):
            raise InputError(f"source {self.name!r}: give a token or a username, not both")

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    @property
    def host(self) -> str:
        return url_host(self.url)

    def authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return None

    def repository(self) -> dict[str, str]:
        """What a policy sees as `input.v0.repository`."""
        return {"name": self.name, "url": self.url, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class SourceAnswer:
    """What the trusted sources say of one component.

    `repository` is the source that has the package at that version (None: unverified).
    `error` is set when no source vouched for it and at least one could not be asked: a fault,
    not "not found". `hash_mismatch` says which source listed other digests for that version.
    """

    purl: str | None
    repository: Mapping[str, str] | None = None
    found_package: bool = False
    found_version: bool = False
    published_at: str | None = None
    yanked: bool = False
    deprecated: str | None = None
    hash_mismatch: str | None = None
    error: str | None = None

    def facts(self) -> PackageFacts:
        tags = tuple(
            t for t, on in (("yanked", self.yanked), ("deprecated", self.deprecated)) if on
        )
        return PackageFacts(repository=self.repository, published_at=self.published_at, tags=tags)

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "repository": dict(self.repository) if self.repository is not None else None,
            "published_at": self.published_at,
            "found_package": self.found_package,
            "found_version": self.found_version,
            "yanked": self.yanked,
            "deprecated": self.deprecated,
            "hash_mismatch": self.hash_mismatch,
        }


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What a source lists for one version: digests by algorithm (of any of its files)."""

    published_at: str | None = None
    yanked: bool = False
    deprecated: str | None = None
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """One source's answer for one component: package known? version info?"""

    found_package: bool
    version: VersionInfo | None


# --------------------------------------------------------------------------- helpers


def rfc3339(value: str | None) -> str | None:
    """An ISO 8601 / RFC 3339 or HTTP date as `YYYY-MM-DDTHH:MM:SSZ` (UTC), else None."""
    if not value:
        return None
    when: dt.datetime | None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_pypi_name(name: str) -> str:
    """PEP 503: runs of `-`, `_`, `.` become one `-`, lower case."""
    return pep503(name)


def _normalize_pypi_version(version: str) -> str:
    """The key file-name versions and SBOM versions meet on: PEP 440 equality (`1.0`, `v1.0`,
    `1.00`, `1.0.0` are one version), as for every other lookup (`sbomgate.identity`)."""
    return version_key("pypi", version.strip()) or version.strip()


_SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tar", ".zip")


def pypi_file_version(filename: str, project: str) -> str | None:
    """The version in a distribution file name of `project` (normalised name), or None."""
    base = unquote(filename.rsplit("/", 1)[-1])
    if base.endswith(".whl"):
        parts = base[:-4].split("-")
        if len(parts) in (5, 6) and normalize_pypi_name(parts[0]) == project:
            return parts[1]
        return None
    if base.endswith(".egg"):
        parts = base[:-4].split("-")
        if len(parts) >= 2 and normalize_pypi_name(parts[0]) == project:
            return parts[1]
        return None
    stem = next((base[: -len(s)] for s in _SDIST_SUFFIXES if base.lower().endswith(s)), None)
    if stem is None:
        return None
    for match in re.finditer("-", stem):
        version = stem[match.end() :]
        if version[:1].isdigit() and normalize_pypi_name(stem[: match.start()]) == project:
            return version
    return None


def _sri_to_hex(integrity: str) -> dict[str, str]:
    """`sha512-<base64> sha1-<base64>` (Subresource Integrity) as {algorithm: hex}."""
    out: dict[str, str] = {}
    for token in integrity.split():
        algorithm, _, b64 = token.partition("-")
        algorithm = algorithm.lower()
        if algorithm not in HASH_ALGORITHMS or not b64:
            continue
        try:
            out[algorithm] = base64.b64decode(b64.split("?", 1)[0], validate=True).hex()
        except (binascii.Error, ValueError):
            continue
    return out


def _add_hash(hashes: dict[str, set[str]], algorithm: str, digest: object) -> None:
    if not isinstance(digest, str):
        return
    algorithm = algorithm.lower().replace("-", "")
    digest = digest.strip().lower()
    if algorithm in HASH_ALGORITHMS and digest and _HEX.match(digest):
        hashes.setdefault(algorithm, set()).add(digest)


def _frozen(hashes: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    return {a: frozenset(d) for a, d in hashes.items()}


def _hash_mismatch(component: Component, info: VersionInfo, where: str) -> str | None:
    """Why the SBOM's digests contradict the source's, or None (agree, or nothing to compare)."""
    for algorithm in HASH_ALGORITHMS:
        ours = component.hashes.get(algorithm)
        listed = info.hashes.get(algorithm)
        if ours and listed and ours.lower() not in listed:
            return (
                f"{algorithm} {ours.lower()[:16]}... is not among the {len(listed)} {algorithm} "
                f"digest(s) {where} lists for {component.name} {component.version}"
            )
    return None


# --------------------------------------------------------------------------- PEP 503 HTML


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def _pypi_files_from_html(body: bytes) -> list[dict[str, Any]]:
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    files: list[dict[str, Any]] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, _, fragment = href.partition("#")
        hashes: dict[str, str] = {}
        algorithm, _, digest = fragment.partition("=")
        if algorithm and digest:
            hashes[algorithm] = digest
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        files.append(
            {
                "filename": text or urlsplit(url).path.rsplit("/", 1)[-1],
                "hashes": hashes,
                "yanked": yanked,
                "requires-python": attrs.get("data-requires-python"),
            }
        )
    return files


def _pypi_versions(files: Iterable[Mapping[str, Any]], project: str) -> dict[str, VersionInfo]:
    """{normalised version: info} from PEP 691-shaped file entries."""
    collected: dict[str, tuple[list[str], list[bool], dict[str, set[str]]]] = {}
    for entry in files:
        filename = entry.get("filename")
        if not isinstance(filename, str):
            continue
        version = pypi_file_version(filename, project)
        if version is None:
            continue
        times, yanks, hashes = collected.setdefault(_normalize_pypi_version(version), ([], [], {}))
        uploaded = rfc3339(entry.get("upload-time")) if entry.get("upload-time") else None
        if uploaded:
            times.append(uploaded)
        yanked = entry.get("yanked")
        yanks.append(bool(yanked) if isinstance(yanked, bool | str) else False)
        raw_hashes = entry.get("hashes")
        if isinstance(raw_hashes, dict):
            for algorithm, digest in raw_hashes.items():
                _add_hash(hashes, str(algorithm), digest)
    # A version is yanked when all of its files are (PEP 592); published when its first file was.
    return {
        version: VersionInfo(
            published_at=min(times) if times else None,
            yanked=bool(yanks) and all(yanks),
            hashes=_frozen(hashes),
        )
        for version, (times, yanks, hashes) in collected.items()
    }


# --------------------------------------------------------------------------- cache


_T = TypeVar("_T")


class _TtlCache:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> tuple[bool, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if entry[0] <= self._clock():
                del self._entries[key]
                return False, None
            return True, entry[1]

    def put(self, key: tuple[str, ...], value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --------------------------------------------------------------------------- the sources


class TrustedSources:
    """Asks the configured repositories about SBOM components; thread-safe.

    Without `transport`, one is made whose allow-list names exactly the configured hosts (so an
    in-cluster repository on a private address may be reached) and which speaks plain HTTP only
    to sources configured with an `http://` URL.
    """

    def __init__(
        self,
        configs: Iterable[SourceConfig],
        *,
        transport: Transport | None = None,
        access: RegistryAccess | None = None,
        limits: RegistryLimits | None = None,
        positive_ttl: float = 3600.0,
        negative_ttl: float = 60.0,
        per_host: int = 8,
        timeout: float = 15.0,
        max_document_bytes: int = 64 * MiB,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configs = tuple(configs)
        names = [c.name for c in self.configs]
        if len(set(names)) != len(names):
            raise InputError("trusted sources: names must be unique")
        if transport is None:
            if access is None:
                access = RegistryAccess(
                    allowed=tuple(sorted({c.host for c in self.configs})),
                    insecure=frozenset(c.host for c in self.configs if c.url.startswith("http:")),
                )
            transport = Transport(access, limits or RegistryLimits())
            self._owns_transport = True
        else:
            self._owns_transport = False
        self.transport = transport
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self.per_host = max(1, per_host)
        self.timeout = timeout
        self.max_document_bytes = max_document_bytes
        self._cache = _TtlCache(clock)
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        if self._owns_transport:
            self.transport.close()

    def __enter__(self) -> TrustedSources:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def clear_cache(self) -> None:
        self._cache.clear()

    def sources_for(self, component: Component) -> tuple[SourceConfig, ...]:
        """The sources that could vouch for the component: of its kind, and on the host its
        purl says it came from (if it says)."""
        identity = identity_of(component)
        if identity is None:
            return ()
        kind = PURL_KINDS.get(identity.type)
        if kind is None:
            return ()
        return tuple(c for c in self.configs if c.kind == kind and identity.comes_from(c.url))

    # ----------------------------------------------------------------- lookups

    def lookup(self, component: Component) -> SourceAnswer:
        identity = identity_of(component)
        sources = self.sources_for(component)
        if identity is None or not sources or not identity.version:
            return SourceAnswer(purl=component.purl)
        found_package = False
        mismatch: str | None = None
        errors: list[str] = []
        for source in sources:
            try:
                verdict = self._ask(source, identity, component)
            except RemoteError as exc:  # SourceFault, or the transport's RegistryError
                errors.append(f"{source.name} ({source.host}): {exc.message}")
                continue
            found_package = found_package or verdict.found_package
            if verdict.version is None:
                continue
            why = _hash_mismatch(component, verdict.version, source.name)
            if why is not None:
                mismatch = mismatch or why
                continue
            info = verdict.version
            return SourceAnswer(
                purl=component.purl,
                repository=source.repository(),
                found_package=True,
                found_version=True,
                published_at=info.published_at,
                yanked=info.yanked,
                deprecated=info.deprecated,
            )
        return SourceAnswer(
            purl=component.purl,
            found_package=found_package,
            found_version=mismatch is not None,
            hash_mismatch=mismatch,
            error="; ".join(errors) if errors else None,
        )

    def lookup_many(
        self, components: Iterable[Component], *, workers: int | None = None
    ) -> list[SourceAnswer]:
        """Answers in the order given; at most `per_host` requests at a time to any one host."""
        items = list(components)
        if not items:
            return []
        hosts = {c.host for c in self.configs} or {""}
        workers = workers or min(64, self.per_host * len(hosts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trusted-src") as pool:
            return list(pool.map(self.lookup, items))

    # ----------------------------------------------------------------- protocol

    def _ask(
        self, source: SourceConfig, identity: PackageIdentity, component: Component
    ) -> _Verdict:
        version = identity.version
        assert version is not None
        if source.kind == "pypi":
            return self._ask_pypi(source, identity.package, version)
        if source.kind == "npm":
            return self._ask_npm(source, identity.package, version)
        if source.kind == "maven":
            return self._ask_maven(source, identity, component)
        return self._ask_go(source, identity.package, version)

    def _cached(
        self, source: SourceConfig, key: tuple[str, ...], load: Callable[[], _T | None]
    ) -> _T | None:
        full = (source.name, *key)
        hit, value = self._cache.get(full)
        if hit:
            return value  # type: ignore[no-any-return]
        value = load()  # faults raise and are not cached
        self._cache.put(full, value, self.positive_ttl if value is not None else self.negative_ttl)
        return value

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._host_slots.get(host)
            if slot is None:
                slot = self._host_slots[host] = threading.BoundedSemaphore(self.per_host)
            return slot

    def _get(self, source: SourceConfig, url: str, accept: str) -> Response | None:
        """GET; the response when 200, None when 404/410, SourceFault otherwise."""
        headers = {"Accept": accept, "User-Agent": "sbomgate-trusted-sources"}
        authorization = source.authorization()
        if authorization:
            headers["Authorization"] = authorization
        deadline = Deadline.after(self.timeout)
        response = self.transport.send(
            "GET",
            url,
            registry=source.host,
            headers=headers,
            max_body=self.max_document_bytes,
            deadline=deadline,
            send_credentials_to=source.host,
            retry=True,
            attempt=self._attempt(source.host),
        )
        host = source.host
        if url_host(response.url) != host:
            raise SourceFault(
                host,
                f"redirected to {url_host(response.url)}; answers from another host are not "
                "trusted (a pypiserver needs --disable-fallback)",
            )
        if response.status == 200:
            return response
        if response.status in _NOT_FOUND:
            return None
        if response.status in (401, 403):
            raise SourceFault(
                host, f"HTTP {response.status} for {url}: credentials refused or missing"
            )
        if response.status == 429 or response.status >= 500:
            head, tail = retry_refusal(response, deadline, response.waited)
            raise SourceFault(host, f"{head} for {url}{tail}")
        raise SourceFault(host, f"HTTP {response.status} for {url}")

    def _attempt(self, host: str) -> Attempt:
        """Each request to `host`: in one of its `per_host` slots, counted."""

        def attempt(request: Callable[[], Response]) -> Response:
            with self._slot(host):
                with self._lock:
                    self.requests_sent += 1
                return request()

        return attempt

    # PyPI ------------------------------------------------------------------

    def _ask_pypi(self, source: SourceConfig, name: str, version: str) -> _Verdict:
        project = normalize_pypi_name(name)

        def load() -> dict[str, VersionInfo] | None:
            response = self._get(source, f"{source.base}/{quote(project)}/", _PYPI_ACCEPT)
            if response is None:
                return None
            content_type = (response.header("content-type") or "").split(";", 1)[0].strip()
            if content_type.endswith("+json") or content_type == "application/json":
                try:
                    document = orjson.loads(response.body)
                except orjson.JSONDecodeError as exc:
                    raise SourceFault(
                        source.host, f"invalid PEP 691 JSON for {project}: {exc}"
                    ) from None
                files = document.get("files") if isinstance(document, dict) else None
                if not isinstance(files, list):
                    raise SourceFault(
                        source.host, f"PEP 691 answer for {project} has no `files` list"
                    )
                entries = [f for f in files if isinstance(f, dict)]
            else:
                entries = _pypi_files_from_html(response.body)
            return _pypi_versions(entries, project)

        versions = self._cached(source, ("pypi", project), load)
        if versions is None:
            return _Verdict(False, None)
        return _Verdict(True, versions.get(_normalize_pypi_version(version)))

    # npm -------------------------------------------------------------------

    def _ask_npm(self, source: SourceConfig, name: str, version: str) -> _Verdict:
        def load() -> dict[str, VersionInfo] | None:
            response = self._get(
                source, f"{source.base}/{quote(name, safe='@')}", "application/json"
            )
            if response is None:
                return None
            try:
                document = orjson.loads(response.body)
            except orjson.JSONDecodeError as exc:
                raise SourceFault(source.host, f"invalid JSON for {name}: {exc}") from None
            if not isinstance(document, dict):
                raise SourceFault(source.host, f"the document for {name} is not an object")
            versions = document.get("versions")
            times = document.get("time")
            times = times if isinstance(times, dict) else {}
            out: dict[str, VersionInfo] = {}
            for number, manifest in (versions if isinstance(versions, dict) else {}).items():
                if not isinstance(manifest, dict):
                    continue
                hashes: dict[str, set[str]] = {}
                dist = manifest.get("dist")
                if isinstance(dist, dict):
                    if isinstance(dist.get("integrity"), str):
                        for algorithm, digest in _sri_to_hex(dist["integrity"]).items():
                            _add_hash(hashes, algorithm, digest)
                    _add_hash(hashes, "sha1", dist.get("shasum"))
                deprecated = manifest.get("deprecated")
                published = times.get(number)
                out[str(number)] = VersionInfo(
                    published_at=rfc3339(published) if isinstance(published, str) else None,
                    deprecated=deprecated if isinstance(deprecated, str) and deprecated else None,
                    hashes=_frozen(hashes),
                )
            return out

        versions = self._cached(source, ("npm", name), load)
        if versions is None:
            return _Verdict(False, None)
        return _Verdict(True, versions.get(version.removeprefix("v")))

    # Maven -----------------------------------------------------------------

    def _ask_maven(
        self, source: SourceConfig, identity: PackageIdentity, component: Component
    ) -> _Verdict:
        group, artifact, version = identity.namespace, identity.name, identity.version
        if not group or not version:
            return _Verdict(False, None)
        base = f"{source.base}/{quote(group.replace('.', '/'))}/{quote(artifact)}"

        def load_pom() -> VersionInfo | None:
            url = f"{base}/{quote(version)}/{quote(artifact)}-{quote(version)}.pom"
            response = self._get(source, url, "*/*")
            if response is None:
                return None
            return VersionInfo(published_at=rfc3339(response.header("last-modified")))

        info = self._cached(source, ("maven-pom", group, artifact, version), load_pom)
        if info is None:
            listed = self._cached(
                source, ("maven-metadata", group, artifact), self._maven_meta(source, base)
            )
            return _Verdict(listed is not None, None)
        wanted = [a for a in ("sha256", "sha1") if component.hashes.get(a)]
        if not wanted:
            return _Verdict(True, info)
        classifier = component.qualifiers.get("classifier")
        extension = component.qualifiers.get("type") or "jar"
        filename = f"{artifact}-{version}{'-' + classifier if classifier else ''}.{extension}"
        hashes: dict[str, set[str]] = {}
        for algorithm in wanted:
            url = f"{base}/{quote(version)}/{quote(filename)}.{algorithm}"

            def load_sum(url: str = url) -> str | None:
                response = self._get(source, url, "text/plain, */*")
                if response is None:
                    return None
                words = response.body.decode("ascii", "replace").split()
                return words[0].lower() if words else ""

            digest = self._cached(source, ("maven-sum", url), load_sum)
            _add_hash(hashes, algorithm, digest)
        return _Verdict(True, VersionInfo(published_at=info.published_at, hashes=_frozen(hashes)))

    def _maven_meta(self, source: SourceConfig, base: str) -> Callable[[], frozenset[str] | None]:
        def load() -> frozenset[str] | None:
            response = self._get(source, f"{base}/maven-metadata.xml", "application/xml, */*")
            if response is None:
                return None
            try:
                root = ElementTree.fromstring(response.body)
            except ElementTree.ParseError as exc:
                raise SourceFault(
                    source.host, f"invalid maven-metadata.xml under {base}: {exc}"
                ) from None
            return frozenset(
                (v.text or "").strip() for v in root.iter("version") if (v.text or "").strip()
            )

        return load

    # Go --------------------------------------------------------------------

    def _ask_go(self, source: SourceConfig, module: str, version: str) -> _Verdict:
        version = version if version.startswith("v") else f"v{version}"
        base = f"{source.base}/{quote(go_escape(module))}/@v"

        def load_info() -> VersionInfo | None:
            response = self._get(
                source, f"{base}/{quote(go_escape(version))}.info", "application/json"
            )
            if response is None:
                return None
            try:
                document = orjson.loads(response.body)
            except orjson.JSONDecodeError as exc:
                raise SourceFault(
                    source.host, f"invalid .info for {module}@{version}: {exc}"
                ) from None
            when = document.get("Time") if isinstance(document, dict) else None
            return VersionInfo(published_at=rfc3339(when) if isinstance(when, str) else None)

        info = self._cached(source, ("go-info", module, version), load_info)
        if info is not None:
            return _Verdict(True, info)

        def load_list() -> tuple[str, ...] | None:
            response = self._get(source, f"{base}/list", "text/plain")
            if response is None:
                return None
            return tuple(response.body.decode("utf-8", "replace").split())

        listed = self._cached(source, ("go-list", module), load_list)
        return _Verdict(listed is not None, None)


# --------------------------------------------------------------------------- offline snapshot


def export_snapshot(answers: Iterable[SourceAnswer], path: str | Path) -> int:
    """Write the answers in the facts-snapshot format (`intel/snapshot.py`); returns the count.

    Faults (answers with `error`) and components without a purl are left out: unknown, so the
    snapshot gives them no facts (unverified). JSON for `.json`, YAML otherwise.
    """
    packages = {a.purl: a.to_snapshot() for a in answers if a.purl and a.error is None}
    file = Path(path)
    document = {"packages": packages}
    if file.suffix.lower() == ".json":
        data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    else:
        data = yaml.safe_dump(document, sort_keys=True).encode()
    temporary = file.with_name(file.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(file)
    return len(packages)


def _answer_url(answer: SourceAnswer) -> str | None:
    url = answer.repository.get("url") if answer.repository is not None else None
    return url if isinstance(url, str) else None


class SnapshotSource:
    """Answers from an exported snapshot, offline; an unlisted package is not found (keys are
    matched by canonical identity, origin included: see `intel/snapshot.py`)."""

    def __init__(self, path: str | Path) -> None:
        file = Path(path)
        document = load_json_or_yaml(file, what="facts snapshot", max_bytes=MAX_SNAPSHOT_BYTES)
        packages = document.get("packages") if isinstance(document, dict) else None
        if not isinstance(packages, dict):
            raise InputError(f"{file}: expected a mapping with a `packages` mapping")
        self._answers = IdentityTable(
            ((str(p), _answer_from(str(file), str(p), e)) for p, e in packages.items()),
            _answer_url,
        )

    def lookup(self, component: Component) -> SourceAnswer:
        if not component.purl:
            return SourceAnswer(purl=None)
        found = self._answers.get(component)
        return found or SourceAnswer(purl=component.purl)

    def lookup_many(self, components: Iterable[Component]) -> list[SourceAnswer]:
        return [self.lookup(c) for c in components]

    def __call__(self, component: Component) -> PackageFacts:
        return self.lookup(component).facts()


def _answer_from(file: str, purl: str, entry: Any) -> SourceAnswer:
    where = f"{file}: packages[{purl!r}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping")
    repository = entry.get("repository")
    if repository is not None and not (
        isinstance(repository, dict) and all(isinstance(v, str) for v in repository.values())
    ):
        raise InputError(f"{where}.repository: expected a mapping of strings or null")

    def text(key: str) -> str | None:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}.{key}: expected a string or null")
        return value

    return SourceAnswer(
        purl=purl,
        repository=repository,
        found_package=bool(entry.get("found_package", repository is not None)),
        found_version=bool(entry.get("found_version", repository is not None)),
        published_at=text("published_at"),
        yanked=bool(entry.get("yanked", False)),
        deprecated=text("deprecated"),
        hash_mismatch=text("hash_mismatch"),
    )
