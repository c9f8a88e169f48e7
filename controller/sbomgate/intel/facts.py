"""Every source of package intelligence as one FactSource: what a policy sees of a package.

    snapshot (exported answers)  -> repository, published_at, osv (first: an air-gapped
                                    cluster runs on these alone)
    trusted sources (live)       -> repository (with its hosting), published_at,
                                    first_published_at, yanked, checksum mismatch
    OSV index                    -> osv records (added to the snapshot's, one per id)
    typosquat detector           -> typosquat_of

Each of them looks the component up by its canonical identity (`sbomgate.identity`): the purl's
name and version, the same for every source.

`prefetch(components)` asks the trusted sources for a whole SBOM at once (concurrently, per
host limits) before the engine asks package by package, which then hits the cache. With a
typosquat helper (`typosquat_helper=True`, a server's), `read_ahead(document)` has the helper
work out the typosquat answers of a verified SBOM's purls on another core while the SBOM is
parsed (`intel._typohelper`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

from sbomgate.errors import InputError
from sbomgate.identity import identity_of
from sbomgate.intel._typohelper import TyposquatPrefetcher
from sbomgate.intel.model import NO_FACTS, FactSource, PackageFacts
from sbomgate.intel.snapshot import FactsSnapshot
from sbomgate.intel.sources import (
    DEFAULT_HOSTING,
    Distribution,
    SourceAnswer,
    SourceConfig,
    SourceKind,
    TrustedSources,
)
from sbomgate.intel.typosquat import TyposquatDetector
from sbomgate.sbom.model import Component


class OsvMatcher(Protocol):
    """An OSV index, reloading or not."""

    def match_component(self, component: Component) -> tuple[dict[str, Any], ...]:
        """The OSV records that affect the component's package at its version."""

    def in_force(self) -> OsvMatcher:
        """The index whose answers hold until the exports change (a reloading index's current
        one): what is remembered of its answers holds while it is in force."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Fixed:
    """What the sources that do not change say of a purl at a version: the snapshot's facts,
    the typosquat detector's answer, and the whole facts when no other source is asked (the
    snapshot places the package and there is no OSV index)."""

    base: PackageFacts
    typosquat_of: str | None
    whole: PackageFacts | None
    # The OSV index `whole` has the matches of (None: none is configured): `whole` holds while
    # that index is in force.
    osv_index: OsvMatcher | None = None


class IntelFacts:
    """The configured intelligence sources as one FactSource (see the module docstring)."""

    def __init__(
        self,
        *,
        snapshot: FactSource | None = None,
        sources: TrustedSources | None = None,
        osv: OsvMatcher | None = None,
        typosquat: TyposquatDetector | None = None,
        typosquat_helper: bool = False,
    ) -> None:
        self.snapshot = snapshot
        self.sources = sources
        self.osv = osv
        self.typosquat = typosquat
        self._prefetcher: TyposquatPrefetcher | None = None
        if typosquat is not None and typosquat_helper:
            self._prefetcher = TyposquatPrefetcher(typosquat)
            self._prefetcher.start()
        # What the fixed sources (a loaded snapshot, the typosquat detector) say of a purl at a
        # version, remembered: a new build lists the packages of the build before. A snapshot
        # given as any other callable may change its answers, so is asked every time.
        self._fixed: dict[tuple[str, str | None], _Fixed] | None = (
            {} if snapshot is None or isinstance(snapshot, FactsSnapshot) else None
        )
        # The whole facts last given for a purl at a version when other sources were asked
        # (`__call__`), with what they were made of: given again as the same object.
        self._given: dict[
            tuple[str | None, ...],
            tuple[_Fixed, SourceAnswer | None, OsvMatcher | None, PackageFacts],
        ] = {}

    def prefetch(self, components: Iterable[Component]) -> None:
        """Ask the trusted sources about every component the snapshot does not place, at once."""
        if self.sources is None:
            return
        wanted = [c for c in components if c.purl and self._snapshot(c).repository is None]
        if wanted:
            self.sources.lookup_many(wanted)

    def read_ahead(self, document: bytes) -> None:
        """An SBOM's JSON text (or the statement's that holds it), verified and not parsed
        yet: the typosquat helper, if it has one, works out the answers for its purls while it
        is parsed."""
        if self._prefetcher is not None:
            self._prefetcher.read_ahead(document)

    def close(self) -> None:
        """Stop the typosquat helper, if it has one (a process of its own)."""
        if self._prefetcher is not None:
            self._prefetcher.close()

    def _osv_in_force(self) -> OsvMatcher | None:
        """The OSV index in force (None: no index is configured)."""
        return self.osv.in_force() if self.osv is not None else None

    def _holds(self, fixed: _Fixed) -> bool:
        """Whether remembered fixed facts still hold: they have no OSV matches, or those of
        the index in force."""
        return fixed.osv_index is None or fixed.osv_index is self._osv_in_force()

    def _snapshot(self, component: Component) -> PackageFacts:
        return self.snapshot(component) if self.snapshot is not None else NO_FACTS

    def _fixed_facts(self, component: Component) -> _Fixed:
        """What the snapshot and the typosquat detector say of the component, and the OSV
        index in force when no trusted source is asked."""
        memo, purl = self._fixed, component.purl
        key = (purl, component.version) if purl else None
        if memo is not None and key is not None:
            found = memo.get(key)
            if found is not None and self._holds(found):
                return found
        base = self._snapshot(component)
        typosquat_of = None
        identity = identity_of(component) if self.typosquat is not None else None
        if self.typosquat is not None and identity is not None:
            typosquat_of = self.typosquat.closest(identity.type, identity.name, identity.namespace)
        whole = None
        osv_index = None
        if base.repository is not None and not base.tags and base.unavailable is None:
            # No trusted source would be asked: these are the facts (see __call__), with the
            # matches of the OSV index in force, if any (until it is reloaded). The snapshot's
            # own object when it already says so: `replace` cost a never-seen image 20 ms.
            if self.osv is None:
                whole = (
                    base
                    if base.tags == () and base.typosquat_of == typosquat_of
                    else replace(base, tags=(), typosquat_of=typosquat_of)
                )
            elif purl:
                osv_index = self.osv.in_force()
                matched = osv_index.match_component(component)
                if (
                    not matched
                    and base.osv is None
                    and base.tags == ()
                    and base.typosquat_of == typosquat_of
                ):
                    whole = base  # what it would equal (most packages): 2 µs less each
                else:
                    whole = PackageFacts(  # not `replace`: about 4 µs a never-seen package more
                        repository=base.repository,
                        published_at=base.published_at,
                        first_published_at=base.first_published_at,
                        osv=_merge(base.osv, matched),
                        vulnerabilities=base.vulnerabilities,
                        typosquat_of=typosquat_of,
                        checksum_mismatch=base.checksum_mismatch,
                        yanked=base.yanked,
                    )
        fixed = _Fixed(base=base, typosquat_of=typosquat_of, whole=whole, osv_index=osv_index)
        if memo is not None and key is not None:
            if len(memo) >= _FIXED_FACTS_KEPT:
                memo.clear()
            memo[key] = fixed
        return fixed

    def __call__(self, component: Component) -> PackageFacts:
        # A package of the build before, all of whose facts are fixed: one lookup.
        memo, purl = self._fixed, component.purl
        if memo is not None and purl:
            found = memo.get((purl, component.version))
            if found is not None and found.whole is not None and self._holds(found):
                return found.whole
        fixed = self._fixed_facts(component)
        if fixed.whole is not None:
            return fixed.whole
        answer: SourceAnswer | None = None
        if fixed.base.repository is None and self.sources is not None and purl:
            answer = self.sources.lookup(component)
        osv_index = self._osv_in_force() if purl else None
        # The facts given last time for this purl at this version (for a component without a
        # purl, a file say, for the names its identity is made of): the same object while
        # they are made of the same parts (the trusted sources give the same answer object
        # while it holds), or are equal, so that what is remembered of a package by its facts'
        # identity (its outcome-cache key, PolicyEngine._problems_and_key) holds. With an OSV
        # index or the trusted sources, each call made new facts, and a new build of a
        # 5,000-package image computed every key again: 60 ms more of its evaluation.
        key: tuple[str | None, ...] = (
            (purl, component.version)
            if purl
            else (None, component.purl_type, component.namespace, component.name, component.version)
        )
        given = self._given
        previous = given.get(key)
        if (
            previous is not None
            and previous[0] is fixed
            and previous[1] is answer
            and previous[2] is osv_index
        ):
            return previous[3]
        made = self._made(fixed, answer, osv_index, component)
        if previous is not None and previous[3] == made:
            made = previous[3]
        if len(given) >= _FIXED_FACTS_KEPT:
            given.clear()
        given[key] = (fixed, answer, osv_index, made)
        return made

    def _made(
        self,
        fixed: _Fixed,
        answer: SourceAnswer | None,
        osv_index: OsvMatcher | None,
        component: Component,
    ) -> PackageFacts:
        """The facts of the fixed sources, the trusted sources' `answer` (if they were asked)
        and the OSV index `osv_index` (the one in force, if any)."""
        base, typosquat_of = fixed.base, fixed.typosquat_of
        repository, published_at = base.repository, base.published_at
        first_published_at = base.first_published_at
        tags = list(base.tags)
        mismatch = base.checksum_mismatch
        yanked = base.yanked
        unavailable = None
        if answer is not None:
            repository = answer.repository
            published_at = answer.published_at or published_at
            first_published_at = answer.first_published_at or first_published_at
            mismatch = answer.hash_mismatch
            yanked = answer.yanked
            tags.extend(t for t in answer.facts().tags if t not in tags)
            if answer.error and repository is None:
                # Not "not found": the trusted repository could not be asked.
                tags.append("trusted-source-unavailable")
                unavailable = answer.error
        osv = base.osv
        if osv_index is not None:
            osv = _merge(osv, osv_index.match_component(component))
        return PackageFacts(
            repository=repository,
            published_at=published_at,
            first_published_at=first_published_at,
            osv=osv,
            vulnerabilities=base.vulnerabilities,
            tags=tuple(tags),
            typosquat_of=typosquat_of,
            checksum_mismatch=mismatch,
            yanked=yanked,
            unavailable=unavailable,
        )


# Purls at versions whose fixed facts are remembered (then forgotten all at once): about ten
# 5,000-component images' worth.
_FIXED_FACTS_KEPT = 65_536


def _merge(
    known: Sequence[Mapping[str, Any]] | None, matched: Sequence[Mapping[str, Any]]
) -> tuple[Mapping[str, Any], ...] | None:
    if known is None and not matched:
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for record in [*(known or ()), *matched]:
        out.setdefault(str(record.get("id")), record)
    return tuple(out.values())


def prefetch(facts: object, components: Iterable[Component]) -> None:
    """Ask the sources for a whole SBOM at once, when the fact source can."""
    method = getattr(facts, "prefetch", None)
    if callable(method):
        method(components)


def build_facts(
    *,
    snapshot: str | Path | None = None,
    osv: Sequence[str | Path] = (),
    sources: Sequence[Mapping[str, Any]] = (),
    typosquat: bool = True,
    reload_osv: bool = False,
    typosquat_helper: bool = False,
) -> FactSource | None:
    """The fact source the configuration asks for (None when it asks for nothing)."""
    from sbomgate.intel.snapshot import load_facts_snapshot

    if snapshot is None and not osv and not sources and not typosquat:
        return None
    osv_index: OsvMatcher | None = None
    if osv:
        from sbomgate.intel.osv import ReloadingOsvIndex, load_osv

        if reload_osv:
            reloading = ReloadingOsvIndex([Path(p) for p in osv])
            reloading.start()
            osv_index = reloading
        else:
            osv_index = load_osv(osv)
    trusted = None
    if sources:
        trusted = TrustedSources(source_configs(sources))
    return IntelFacts(
        snapshot=load_facts_snapshot(snapshot) if snapshot is not None else None,
        sources=trusted,
        osv=osv_index,
        typosquat=TyposquatDetector.default() if typosquat else None,
        typosquat_helper=typosquat_helper,
    )


def source_configs(items: Sequence[Mapping[str, Any]]) -> list[SourceConfig]:
    """`{name, kind, url, hosting?, username?, password? | passwordFile?, token? | tokenFile?}`
    mappings, checked. A `...File` is read here: a mounted Secret's key, so that credentials
    need not be written into the configuration."""
    out = []
    fields = {"name", "kind", "url", "hosting", "username", "password", "token"}
    for position, item in enumerate(items):
        unknown = set(item) - fields - set(_SECRET_FILES.values()) - _OS_FIELDS
        if unknown:
            raise InputError(f"trustedSources[{position}]: unknown field {sorted(unknown)[0]!r}")
        try:
            secrets = {key: _secret(item, key) for key in _SECRET_FILES}
            distribution = _distribution(item)  # apt and rpm sources
            out.append(
                SourceConfig(
                    name=str(item.get("name") or item.get("url")),
                    kind=cast(SourceKind, item.get("kind")),  # SourceConfig checks it
                    url=str(item.get("url")),
                    username=item.get("username"),
                    password=secrets["password"],
                    token=secrets["token"],
                    hosting=item.get("hosting", DEFAULT_HOSTING),  # SourceConfig checks it
                    distribution=distribution,
                )
            )
        except InputError as exc:
            raise InputError(f"trustedSources[{position}]: {exc}") from None
    return out


# A credential given inline, or as the path of a file holding it (a mounted Secret's key).
_SECRET_FILES = {"password": "passwordFile", "token": "tokenFile"}
MAX_SECRET_BYTES = 64 * 1024


def _secret(item: Mapping[str, Any], key: str) -> str | None:
    """The credential `key` of an entry: inline, or read from its `...File`; not both."""
    inline, path = item.get(key), item.get(_SECRET_FILES[key])
    if path is None:
        return inline if inline is None else str(inline)
    if inline is not None:
        raise InputError(f"give {key} or {_SECRET_FILES[key]}, not both")
    if not isinstance(path, str) or not path:
        raise InputError(f"{_SECRET_FILES[key]} must be a path")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{_SECRET_FILES[key]} {path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise InputError(f"{_SECRET_FILES[key]} {path}: over {MAX_SECRET_BYTES >> 10} KiB")
    text = data.decode("utf-8", "replace").rstrip("\r\n")
    if not text:
        raise InputError(f"{_SECRET_FILES[key]} {path}: empty")
    return text


# The fields of an OS package repository's entry (`Distribution`), beside name, kind and url:
#   {kind: apt, vendor: debian, distro: [debian-12, bookworm], suites: [bookworm],
#    components: [main], architectures: [amd64], keyring: /usr/share/keyrings/...gpg}
_OS_FIELDS = frozenset({"vendor", "distro", "suites", "components", "architectures", "keyring"})


def _distribution(item: Mapping[str, Any]) -> Distribution | None:
    """The `Distribution` an entry describes, or None when it has none of its fields (which
    `SourceConfig` then checks against the kind)."""
    if not _OS_FIELDS & set(item):
        return None

    def names(key: str) -> tuple[str, ...]:
        value = item.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value.strip(),)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(v.strip() for v in value)
        raise InputError(f"{key} must be a name or a list of names")

    vendor, keyring = item.get("vendor"), item.get("keyring")
    if not isinstance(vendor, str) or not isinstance(keyring, str):
        raise InputError("an OS package repository needs vendor and keyring (a path)")
    return Distribution(
        vendor=vendor.strip().lower(),
        releases=names("distro"),
        keyring=keyring,
        suites=names("suites"),
        components=names("components"),
        architectures=tuple(a.lower() for a in names("architectures")),
    )
