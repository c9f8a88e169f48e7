"""The seam between `TrustedSources` and the repositories it asks.

A backend (one module per ecosystem) implements `SourceBackend`: given one configured source,
reached through a `SourceClient`, it says what that source lists for a package (`Listing`).
`TrustedSources` turns the listings of the sources in order into one `SourceAnswer`.
`sbomgate.intel.sources.backends` lists the backends by kind. An OS package repository (kinds
in `OS_KINDS`) also has a `Distribution`: the vendor and releases it vouches for, what it holds
and the keys its metadata is signed with.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal, Protocol, TypeVar, get_args, runtime_checkable
from urllib.parse import urlsplit

from sbomgate.errors import InputError, RemoteError
from sbomgate.identity import PackageIdentity
from sbomgate.intel.model import DEFAULT_HOSTING, HOSTINGS, Hosting, PackageFacts
from sbomgate.registry.transport import Response, url_host
from sbomgate.sbom.model import Component

# A kind names a repository protocol; a new backend adds its kind here and its module to
# `backends.BACKENDS`.
SourceKind = Literal["pypi", "npm", "maven", "go", "apt", "rpm"]
SOURCE_KINDS: tuple[SourceKind, ...] = get_args(SourceKind)
# The kinds whose sources are OS package repositories, each with a `Distribution`.
OS_KINDS: frozenset[SourceKind] = frozenset({"apt", "rpm"})
# The digests compared with an SBOM's, strongest first (the first that disagrees is reported).
HASH_ALGORITHMS = ("sha512", "sha256", "sha1")

_T = TypeVar("_T")


class SourceFault(RemoteError):
    """A source (`host`) could not be asked, or its answer could not be read."""

    prefix = "trusted source "


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """What an OS package repository vouches for, holds, and signs its metadata with.

    `vendor` is the purl namespace of its packages (`debian`, `ubuntu`, `fedora`) and `releases`
    the values of a purl's `distro` qualifier it vouches for (`debian-12`, `bookworm`; a value
    also matches the point releases below it, `debian-12.5`, and a bare version is read with the
    vendor before it, `3.18.4` as `alpine-3.18.4`): a purl naming another vendor or release is
    not asked about here. `keyring` is a file (or a directory of files) of OpenPGP public keys
    that its `InRelease` / `repomd.xml` must be signed with. apt: `suites` (`dists/<suite>`),
    `components`, `architectures` (the `binary-<arch>` indexes read). rpm: the source's URL is
    the repository (`repodata/` under it); `architectures` may narrow what it vouches for.
    """

    vendor: str
    releases: tuple[str, ...]
    keyring: str
    suites: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One trusted repository. Credentials: `username`/`password` (basic) or `token` (bearer).
    `hosting`: `hosted` or `proxied` (`sbomgate.intel.model.Hosting`; default `proxied`)."""

    name: str
    kind: SourceKind
    url: str
    _: KW_ONLY
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    hosting: Hosting = DEFAULT_HOSTING
    # OS package repositories (kinds in OS_KINDS) only.
    distribution: Distribution | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise InputError(f"source {self.name!r}: kind must be one of {', '.join(SOURCE_KINDS)}")
        _check_distribution(self.name, self.kind, self.distribution)
        if self.hosting not in HOSTINGS:
            raise InputError(
                f"source {self.name!r}: hosting must be one of {', '.join(HOSTINGS)}, "
                f"not {self.hosting!r}"
            )
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"source {self.name!r}: url must be an http(s) URL, not {self.url!r}")
        if parts.username or parts.password:
            raise InputError(f"source {self.name!r}: put credentials in username/password")
        if self.token and (self.username or self.password):
            raise InputError(f"source {self.name!r}: give a token or a username, not both")

    @property
    def base(self) -> str:
        """The URL without its trailing `/`, which request paths are appended to."""
        return self.url.rstrip("/")

    @property
    def host(self) -> str:
        """The host of the source's URL."""
        return url_host(self.url)

    def authorization(self) -> str | None:
        """The `Authorization` header value, if the source has credentials."""
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return None

    def repository(self) -> dict[str, str]:
        """What a policy sees as `input.v0.repository`."""
        return {"name": self.name, "url": self.url, "kind": self.kind, "hosting": self.hosting}

    def may_vouch_for(self, identity: PackageIdentity) -> bool:
        """False when the purl says the package came from elsewhere: another host, or (OS
        packages) another vendor or distribution release than this source's."""
        dist = self.distribution
        if dist is None:
            return identity.comes_from(self.url)
        return identity.comes_from(self.url, vendor=dist.vendor, releases=dist.releases)


def _check_distribution(name: str, kind: SourceKind, dist: Distribution | None) -> None:
    """An OS repository's distribution is complete; other sources have none."""
    if kind not in OS_KINDS:
        if dist is not None:
            raise InputError(f"source {name!r}: only apt and rpm sources have a distribution")
        return
    if dist is None:
        raise InputError(f"source {name!r}: a {kind} source needs vendor, distro and keyring")
    if not dist.vendor.strip() or "/" in dist.vendor:
        raise InputError(f"source {name!r}: vendor must be a purl namespace such as debian")
    if not dist.releases or not all(r.strip() for r in dist.releases):
        raise InputError(
            f"source {name!r}: distro must name the releases it vouches for (the values of a "
            "purl's distro qualifier: debian-12, bookworm)"
        )
    if not dist.keyring.strip():
        raise InputError(f"source {name!r}: keyring must be a file of OpenPGP public keys")
    if kind == "apt":
        lists = (
            ("suites", dist.suites),
            ("components", dist.components),
            ("architectures", dist.architectures),
        )
        for what, values in lists:
            if not values or not all(_path_word(v) for v in values):
                raise InputError(f"source {name!r}: {what} must be a list of names")
    elif dist.suites or dist.components:
        raise InputError(
            f"source {name!r}: an rpm source's url is the repository; it has no suites or "
            "components"
        )


def _path_word(value: str) -> bool:
    """A suite, component or architecture: a path part apt appends (`bookworm-updates`,
    `main`, `amd64`; a suite may hold `/`, as `stable/updates` did), never `..`."""
    return bool(value) and ".." not in value and not value.startswith("/") and " " not in value


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceAnswer:
    """What the trusted sources say of one component.

    `repository` is the source that has the package at that version (None: unverified).
    `error` is set when no source vouched for it and at least one could not be asked: a fault,
    not "not found". `hash_mismatch` says which source listed other digests for that version.
    `first_published_at` is when that source says the project's first release was published.
    """

    purl: str | None
    repository: Mapping[str, str] | None = None
    found_package: bool = False
    found_version: bool = False
    published_at: str | None = None
    first_published_at: str | None = None
    yanked: bool = False
    deprecated: str | None = None
    hash_mismatch: str | None = None
    error: str | None = None

    def facts(self) -> PackageFacts:
        """The answer as package facts (yanked and deprecated become tags)."""
        tags = tuple(
            t for t, on in (("yanked", self.yanked), ("deprecated", self.deprecated)) if on
        )
        return PackageFacts(
            repository=self.repository,
            published_at=self.published_at,
            first_published_at=self.first_published_at,
            tags=tags,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    """What a source lists for one version: digests by algorithm (of any of its files)."""

    published_at: str | None = None
    yanked: bool = False
    deprecated: str | None = None
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """What one source lists for one component: the package at all? that version (None: not
    listed)? When was the project's first release published (None: the source does not say)?"""

    found_package: bool
    version: VersionInfo | None = None
    first_published_at: str | None = None


NOT_LISTED = Listing(found_package=False)


class SourceClient(Protocol):
    """How a backend asks the one source it is given: through the guarded transport, within
    that host's request limit, with a cache per source."""

    @property
    def config(self) -> SourceConfig:
        """The source being asked."""
        ...

    def get(self, url: str, accept: str) -> Response | None:
        """The response when 200, None when 404/410; `SourceFault` for anything else (a
        redirect to another host, refused credentials, 429, 5xx, ...)."""
        ...

    def cached(self, key: tuple[str, ...], load: Callable[[], _T | None]) -> _T | None:
        """`load()`, or what it returned last time for `key` (a value for the positive TTL,
        None for the negative one); a fault it raises is not kept."""
        ...

    def forget(self, key: tuple[str, ...]) -> None:
        """Drop what `cached` keeps for `key` (signed metadata that has expired since)."""
        ...

    def holds_for(self, seconds: float) -> None:
        """The answer being made holds for at most `seconds` more, whatever its cache entries'
        time left (signed metadata that expires sooner): it is not given again after that."""
        ...


@runtime_checkable  # lets a test check that every registered backend implements it
class SourceBackend(Protocol):
    """One repository protocol (PyPI simple API, npm registry, ...)."""

    @property
    def kind(self) -> SourceKind:
        """The `kind` of the sources it speaks to."""
        ...

    @property
    def purl_types(self) -> tuple[str, ...]:
        """The purl types whose packages such a source can vouch for."""
        ...

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the source lists for the package at `identity.version` (which is set).

        `component` gives what the purl's identity does not: its hashes and qualifiers."""
        ...
