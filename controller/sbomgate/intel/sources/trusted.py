"""`TrustedSources`: the configured repositories asked in order, through one guarded transport,
with a cache, a request limit per host, and the SBOM's digests compared with theirs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sbomgate._internal.deadline import Deadline
from sbomgate.errors import InputError, RemoteError
from sbomgate.identity import PackageIdentity, identity_of
from sbomgate.intel.sources.backends import BACKENDS, PURL_KINDS
from sbomgate.intel.sources.interface import (
    HASH_ALGORITHMS,
    Listing,
    SourceAnswer,
    SourceConfig,
    SourceFault,
    VersionInfo,
)
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

_T = TypeVar("_T")
_NOT_FOUND = frozenset({404, 410})
# Answers remembered whole (`TrustedSources.lookup`): about two 5,000-package images' worth
# per cluster-wide set of builds, then forgotten all at once.
_ANSWERS_KEPT = 65_536
_FOREVER = float("inf")

# What the lookup running on this thread read from the cache (`_Reads`).
_reading = threading.local()


class _Reads:
    """The cache entries one lookup read: the earliest expiry among them, and whether it read
    anything that was not kept (a fault, or a zero TTL), so that its answer must not be."""

    __slots__ = ("expires", "unkept")

    def __init__(self) -> None:
        self.expires = _FOREVER
        self.unkept = False


class TrustedSources:
    """Asks the configured repositories about SBOM components; thread-safe.

    The sources of a component's kind are asked in their configured order; the first that
    lists the package at that version, with no digest that contradicts the SBOM's, vouches (and
    says, with its `hosting`, whether it may have passed the name through from a public one).
    A source that cannot be asked is a fault (`SourceAnswer.error`), never "not found"; faults
    are not cached, answers are (found for `positive_ttl`, not found for `negative_ttl`
    seconds). A source vouches only for a component whose purl does not say it came from
    another host (`repository_url`, `download_url`) or, for an OS package, from another vendor
    or distribution release (`SourceConfig.may_vouch_for`).

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
        self._clock = clock
        self._cache = _TtlCache(clock)
        # Whole answers by what they are made of (`_answer_key`), with when the first cache
        # entry they read expires: a new build asks again about the packages of the one before,
        # and reading the cache again for each (identity, sources, listings, digests) cost a
        # 5,000-package image over 100 ms.
        self._answers: dict[tuple[Any, ...], tuple[float, SourceAnswer]] = {}
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._clients = {c.name: _Client(self, c) for c in self.configs}
        self.requests_sent = 0

    def close(self) -> None:
        """Close the transport, when it was made here."""
        if self._owns_transport:
            self.transport.close()

    def __enter__(self) -> TrustedSources:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def clear_cache(self) -> None:
        """Forget every answer cached so far."""
        self._cache.clear()
        self._answers.clear()

    def sources_for(self, component: Component) -> tuple[SourceConfig, ...]:
        """The sources that could vouch for the component: of its kind, and on the host its
        purl says it came from (if it says)."""
        identity = identity_of(component)
        if identity is None:
            return ()
        kind = PURL_KINDS.get(identity.type)
        if kind is None:
            return ()
        return tuple(c for c in self.configs if c.kind == kind and c.may_vouch_for(identity))

    # ----------------------------------------------------------------- lookups

    def lookup(self, component: Component) -> SourceAnswer:
        """What the sources say of one component (see the class docstring): the same answer
        object while every cache entry it was made of holds."""
        key = _answer_key(component)
        remembered = self._remembered(key)
        if remembered is not None:
            return remembered
        reads = _Reads()
        _reading.reads = reads
        try:
            answer = self._lookup(component)
        finally:
            _reading.reads = None
        if answer.error is None and not reads.unkept and self._clock() < reads.expires:
            if len(self._answers) >= _ANSWERS_KEPT:
                self._answers.clear()
            self._answers[key] = (reads.expires, answer)
        return answer

    def _remembered(self, key: tuple[Any, ...]) -> SourceAnswer | None:
        """The answer remembered for a component (by `_answer_key`) while it holds."""
        found = self._answers.get(key)
        return found[1] if found is not None and self._clock() < found[0] else None

    def _lookup(self, component: Component) -> SourceAnswer:
        identity = identity_of(component)
        sources = self.sources_for(component)
        if identity is None or not sources or not identity.version:
            return SourceAnswer(purl=component.purl)
        found_package = False
        mismatch: str | None = None
        errors: list[str] = []
        for source in sources:
            try:
                listing = self._ask(source, identity, component)
            except RemoteError as exc:  # SourceFault, or the transport's RegistryError
                errors.append(f"{source.name} ({source.host}): {exc.message}")
                continue
            found_package = found_package or listing.found_package
            if listing.version is None:
                continue
            why = _hash_mismatch(component, listing.version, source.name)
            if why is not None:
                mismatch = mismatch or why
                continue
            info = listing.version
            return SourceAnswer(
                purl=component.purl,
                repository=source.repository(),
                found_package=True,
                found_version=True,
                published_at=info.published_at,
                first_published_at=listing.first_published_at,
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
        # What is remembered is answered here: a new build asks about thousands of packages
        # of the one before, and a thread pool's round trip cost each of them 20-30 µs.
        answers: list[SourceAnswer | None] = [self._remembered(_answer_key(c)) for c in items]
        asked = [i for i, a in enumerate(answers) if a is None]
        if asked:
            hosts = {c.host for c in self.configs} or {""}
            workers = workers or min(64, self.per_host * len(hosts))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trusted-src") as pool:
                found = pool.map(self.lookup, [items[i] for i in asked])
                for i, answer in zip(asked, found, strict=True):
                    answers[i] = answer
        return [a for a in answers if a is not None]

    # ----------------------------------------------------------------- what backends use

    def _ask(
        self, source: SourceConfig, identity: PackageIdentity, component: Component
    ) -> Listing:
        return BACKENDS[source.kind].ask(self._clients[source.name], identity, component)

    def _cached(
        self, source: SourceConfig, key: tuple[str, ...], load: Callable[[], _T | None]
    ) -> _T | None:
        full = (source.name, *key)
        reads: _Reads | None = getattr(_reading, "reads", None)
        hit, value, expires = self._cache.get(full)
        if hit:
            if reads is not None:
                reads.expires = min(reads.expires, expires)
            return value  # type: ignore[no-any-return]
        # Unkept until it is kept: `load` may fail (faults are not cached), and a fault caught
        # by a backend, or by `_lookup` for one source of several, leaves it so.
        unkept_before = reads.unkept if reads is not None else False
        if reads is not None:
            reads.unkept = True
        value = load()
        ttl = self.positive_ttl if value is not None else self.negative_ttl
        kept_until = self._cache.put(full, value, ttl)
        if reads is not None and kept_until is not None:
            reads.unkept = unkept_before
            reads.expires = min(reads.expires, kept_until)
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
        # A redirect to another host is the answer of a repository nobody configured.
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


class _Client:
    """One source as its backend sees it (`interface.SourceClient`)."""

    __slots__ = ("_config", "_sources")

    def __init__(self, sources: TrustedSources, config: SourceConfig) -> None:
        self._sources = sources
        self._config = config

    @property
    def config(self) -> SourceConfig:
        return self._config

    def get(self, url: str, accept: str) -> Response | None:
        return self._sources._get(self._config, url, accept)

    def cached(self, key: tuple[str, ...], load: Callable[[], _T | None]) -> _T | None:
        return self._sources._cached(self._config, key, load)

    def forget(self, key: tuple[str, ...]) -> None:
        self._sources._cache.forget((self._config.name, *key))

    def holds_for(self, seconds: float) -> None:
        reads: _Reads | None = getattr(_reading, "reads", None)
        if reads is not None:
            reads.expires = min(reads.expires, self._sources._clock() + seconds)


def _answer_key(component: Component) -> tuple[Any, ...]:
    """Everything of a component that a lookup reads (its identity comes from the purl and
    version; the backends read its qualifiers and digests; a mismatch names it)."""
    return (
        component.purl,
        component.version,
        component.name,
        tuple(sorted(component.hashes.items())) if component.hashes else (),
        tuple(sorted(component.qualifiers.items())) if component.qualifiers else (),
    )


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


class _TtlCache:
    """Values kept for a time each, by key; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> tuple[bool, Any, float]:
        """(found, value, when it expires)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None, 0.0
            if entry[0] <= self._clock():
                del self._entries[key]
                return False, None, 0.0
            return True, entry[1], entry[0]

    def put(self, key: tuple[str, ...], value: Any, ttl: float) -> float | None:
        """Keep `value` for `ttl` seconds; when it expires (None: not kept)."""
        if ttl <= 0:
            return None
        with self._lock:
            expires = self._clock() + ttl
            self._entries[key] = (expires, value)
            return expires

    def forget(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
