"""One identity for a package: the same name and version whichever list, index or advisory
feed it is looked up in.

A purl can spell one package many ways (`Evil__Pkg`, `evil.pkg`, `evil-pkg`; `1.00`, `v1.0`;
`+` or `%2B`; an npm scope with or without `@`; a Go module path with `!` case escapes).
Everything that matches a package against something (the allow list, blocklist and quarantine
list, the facts snapshot, OSV advisories, trusted repositories, the typosquat check) uses the
`PackageIdentity` computed here, once per distinct purl:

| type      | name                                                    | version                   |
|-----------|---------------------------------------------------------|---------------------------|
| pypi      | PEP 503: lower case, runs of `-_.` folded into one `-`  | PEP 440 normal form       |
| npm       | `@scope/name`, case kept (purl-spec#872: npm is case-   | `v`/`=` prefix dropped    |
|           | sensitive, `JSONStream` is not `jsonstream`)            | (node-semver's `clean`)   |
| maven     | `group:artifact`, as spelt                              | as spelt                  |
| golang    | the module path, `!x` proxy escapes decoded to `X`      | `v`-prefixed (`go1.22` of |
|           |                                                         | the toolchain too)        |
| deb, apk, | the binary package (lower case for deb, apk, alpm); the | rpm, deb: `epoch`         |
| rpm, alpm | vendor is `namespace`; `upstream` names the source pkg  | qualifier folded in       |
|           |                                                         | (`1:2.3-4`)               |
| other     | `namespace/name` as packageurl-python normalises it     | as spelt                  |

`origin` holds the qualifiers that say where the artifact came from (`repository_url`,
`download_url`, and `distro` for OS packages): a repository vouches for a package only when
its purl does not say it came from somewhere else. `vcs_url` is not an origin: CycloneDX's npm
tooling writes the package's source repository there for packages installed from the registry.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from sbomgate.sbom.cyclonedx import add_declared, declared_pair
from sbomgate.sbom.model import OS_PURL_TYPES, Component
from sbomgate.sbom.purl import parse_purl

__all__ = [
    "DISTRO_TYPES",
    "ORIGIN_URL_QUALIFIERS",
    "SEMVER_TYPES",
    "PackageIdentity",
    "canonical_package",
    "canonical_version",
    "component_disagreements",
    "declared_fields",
    "disagreements",
    "distro_matches",
    "go_escape",
    "go_unescape",
    "identity_from_purl",
    "identity_of",
    "pep503",
    "purl_type_for_format",
    "url_host",
    "version_key",
]

ORIGIN_URL_QUALIFIERS = ("download_url", "repository_url")
DISTRO_TYPES = OS_PURL_TYPES
# Types whose versions are SemVer (node-semver's `clean` applies).
SEMVER_TYPES = frozenset({"cargo", "hex", "npm", "pub"})
# Cloudsmith format slugs and other common spellings -> purl types.
_FORMAT_TYPES = {
    "python": "pypi",
    "pip": "pypi",
    "go": "golang",
    "ruby": "gem",
    "rubygems": "gem",
    "alpine": "apk",
    "crates": "cargo",
    "dart": "pub",
    "raw": "generic",
}
_LOWER_NAME_TYPES = frozenset({"alpm", "apk", "deb", "nuget"})
# Types whose `epoch` qualifier is part of the version (`1:2.3-4`): rpm's, and Trivy's for deb.
_EPOCH_TYPES = frozenset({"deb", "rpm"})
_PEP503 = re.compile(r"[-_.]+")
# A PEP 440 version that is a bare release without leading zeros (`1.20.3`): its own canonical
# spelling, so not parsed (packaging's parse and str cost a never-seen PyPI package 4 µs).
_PLAIN_RELEASE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_GO_ESCAPE = re.compile(r"!([a-z])")
_GO_TOOLCHAIN = re.compile(r"go(\d.*)")


def pep503(name: str) -> str:
    """PEP 503: runs of `-`, `_`, `.` become one `-`, lower case."""
    return _PEP503.sub("-", name).lower()


def go_escape(path: str) -> str:
    """The Go module proxy's case encoding: `Azure` -> `!azure`."""
    return "".join(f"!{c.lower()}" if "A" <= c <= "Z" else c for c in path)


def go_unescape(path: str) -> str:
    """`!azure` -> `Azure` (a purl copied from a proxy URL)."""
    return _GO_ESCAPE.sub(lambda m: m.group(1).upper(), path)


def purl_type_for_format(fmt: str) -> str:
    """`python` -> `pypi`, `go` -> `golang`, ...: list entries may name either."""
    lowered = fmt.strip().lower()
    return _FORMAT_TYPES.get(lowered, lowered)


def url_host(url: str) -> str:
    """The host (and non-default port) of a URL, lower case; scheme-less `host/path` too."""
    text = url.strip()
    if "//" not in text:
        text = "//" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return ""
    return host if port in (None, 80, 443) else f"{host}:{port}"


def canonical_package(ptype: str, namespace: str | None, name: str) -> tuple[str | None, str, str]:
    """(namespace, name, package): the canonical parts and the ecosystem's full package name."""
    if ptype == "npm":
        if not namespace and name.startswith("@") and "/" in name:
            namespace, name = name.split("/", 1)
        if namespace:
            scope = namespace if namespace.startswith("@") else f"@{namespace}"
            name = name.removeprefix(f"{scope}/").removeprefix(f"{namespace}/")
            return scope, name, f"{scope}/{name}"
        return None, name, name
    if ptype == "pypi":
        name = pep503(name)
        if namespace:  # PyPI has none: kept, so that `evil/requests` is not `requests`
            namespace = pep503(namespace)
            return namespace, name, f"{namespace}/{name}"
        return None, name, name
    if ptype == "golang":
        path = name if not namespace or name.startswith(f"{namespace}/") else f"{namespace}/{name}"
        path = go_unescape(path.strip("/"))
        head, _, tail = path.rpartition("/")
        return head or None, tail, path
    if ptype == "maven":
        return namespace, name, f"{namespace}:{name}" if namespace else name
    if ptype in _LOWER_NAME_TYPES:
        name = name.lower()
    if ptype in DISTRO_TYPES:
        # The vendor (debian, ubuntu, alpine, ...) is not part of the package's name.
        return (namespace.lower() if namespace else None), name, name
    return namespace, name, f"{namespace}/{name}" if namespace else name


def canonical_version(ptype: str, version: str | None) -> str | None:
    """The version as the ecosystem spells it canonically (see the table above)."""
    if version is None:
        return None
    v = version.strip()
    if not v:
        return None
    if ptype == "pypi":
        if _PLAIN_RELEASE.fullmatch(v):
            return v
        parsed = _pep440(v)
        return str(parsed) if parsed is not None else v
    if ptype in SEMVER_TYPES:
        return v.lstrip("=vV").strip() or v
    if ptype == "golang":
        toolchain = _GO_TOOLCHAIN.fullmatch(v)
        if toolchain:
            v = toolchain.group(1)
        return f"v{v}" if v[:1].isdigit() else v
    return v


@lru_cache(maxsize=65536)
def _pep440(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


@lru_cache(maxsize=65536)
def version_key(ptype: str, version: str | None) -> str | None:
    """A string equal for two spellings of one version: PyPI's `1.0`, `1.00`, `v1.0`, `1.0.0`
    are one version (PEP 440 pads releases with zeros), so the key drops trailing zeros."""
    v = canonical_version(ptype, version)
    if v is not None and ptype == "pypi" and _pep440(v) is not None:
        return canonicalize_version(v)
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageIdentity:
    """One package at one version, canonical for its ecosystem (see the module docstring)."""

    type: str
    namespace: str | None
    name: str
    package: str
    version: str | None
    origin: tuple[tuple[str, str], ...] = ()
    # OS packages: the source package (`upstream` qualifier) and its version, when given.
    source: str | None = None
    source_version: str | None = None

    @property
    def version_key(self) -> str | None:
        """Equal for every spelling of this version (None without a version)."""
        return version_key(self.type, self.version)

    @property
    def vendor(self) -> str | None:
        """The distribution vendor of an OS package (its purl namespace), else None."""
        return self.namespace if self.type in DISTRO_TYPES else None

    @property
    def key(self) -> tuple[str, str | None, str, str | None, tuple[tuple[str, str], ...]]:
        """What two spellings of one package at one version from one origin share."""
        return (self.type, self.vendor, self.package, self.version_key, self.origin)

    @property
    def origin_urls(self) -> tuple[str, ...]:
        """The values of its URL qualifiers (download_url, repository_url)."""
        return tuple(v for k, v in self.origin if k in ORIGIN_URL_QUALIFIERS)

    def comes_from(
        self, url: str, *, vendor: str | None = None, releases: Collection[str] = ()
    ) -> bool:
        """True unless the purl says the artifact came from another host than `url`'s or, for
        an OS package, from another vendor than `vendor` (its namespace) or another release
        than `releases` name (its `distro` qualifier; see `distro_matches`)."""
        if vendor is not None and self.vendor not in (None, vendor.strip().lower()):
            return False
        distro = next((v for k, v in self.origin if k == "distro"), None)
        if distro is not None and not distro_matches(distro, vendor, releases):
            return False
        host = url_host(url)
        return all(url_host(u) == host for u in self.origin_urls)

    @property
    def purl(self) -> str:
        """The canonical purl text of this identity."""
        return _purl_text(self)

    def to_input(self) -> dict[str, Any]:
        """`input.v0.identity.canonical` (see policies/README.md). Kept to what a policy cannot
        derive from `input.v0.package`: every key is parsed once per policy and package (with
        its parts and purl too, a 5,000-package evaluation took 0.45 s more CPU; as it is, about
        0.1 s)."""
        return {
            "type": self.type,
            "package": self.package,
            "version": self.version,
            "origin": dict(self.origin),
            "source": self.source,
        }


def distro_matches(distro: str, vendor: str | None, releases: Collection[str]) -> bool:
    """Whether a purl's `distro` qualifier names one of `releases`: equal (case aside), or a
    point release below one (`debian-12.5` under `debian-12`, `alpine-3.18.4` under
    `alpine-3.18`); a bare version is read with the vendor before it (Trivy writes
    `distro=3.18.4` for Alpine). Without `releases`, nothing matches."""
    value = distro.strip().lower()
    candidates = [value]
    if vendor and not value.startswith(f"{vendor.strip().lower()}-"):
        candidates.append(f"{vendor.strip().lower()}-{value}")
    for release in releases:
        wanted = release.strip().lower()
        if wanted and any(c == wanted or c.startswith(f"{wanted}.") for c in candidates):
            return True
    return False


def _purl_text(identity: PackageIdentity) -> str:
    parts = ["pkg:", identity.type, "/"]
    if identity.type == "golang":
        parts.append(quote(identity.package, safe="/"))
    else:
        if identity.namespace:
            parts += (quote(identity.namespace, safe="/"), "/")
        parts.append(quote(identity.name, safe=""))
    if identity.version is not None:
        parts += ("@", quote(identity.version, safe=""))
    if identity.origin:
        parts += ("?", "&".join(f"{k}={quote(v, safe=':/')}" for k, v in identity.origin))
    return "".join(parts)


def _origin(ptype: str, qualifiers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if not qualifiers:
        return ()
    keys = (*ORIGIN_URL_QUALIFIERS, "distro") if ptype in DISTRO_TYPES else ORIGIN_URL_QUALIFIERS
    return tuple(sorted((k, qualifiers[k].strip()) for k in keys if qualifiers.get(k, "").strip()))


def _source(ptype: str, qualifiers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`upstream=openssl` or `upstream=openssl@3.0.11-1` (syft) -> (source, version)."""
    if not qualifiers:
        return None, None
    upstream = qualifiers.get("upstream", "").strip()
    if ptype not in DISTRO_TYPES or not upstream or ptype == "rpm":
        return None, None  # rpm's upstream is the source rpm's file name
    name, _, version = re.split(r"[\s]", upstream, maxsplit=1)[0].partition("@")
    return (name.lower() or None), (version or None)


def _build(
    ptype: str,
    namespace: str | None,
    name: str,
    version: str | None,
    qualifiers: Mapping[str, str],
) -> PackageIdentity:
    ptype = ptype.lower()
    ns, canonical_name, package = canonical_package(ptype, namespace, name)
    if version and ptype in _EPOCH_TYPES:
        epoch = qualifiers.get("epoch", "").strip()
        if epoch and ":" not in version:
            version = f"{epoch}:{version}"
    source, source_version = _source(ptype, qualifiers)
    return PackageIdentity(
        type=ptype,
        namespace=ns,
        name=canonical_name,
        package=package,
        version=canonical_version(ptype, version),
        origin=_origin(ptype, qualifiers),
        source=source,
        source_version=source_version,
    )


@lru_cache(maxsize=65536)
def identity_from_purl(purl: str, fallback_version: str | None = None) -> PackageIdentity:
    """The identity a purl names; its own version first, `fallback_version` when it has none.
    Raises ValueError for a purl that does not parse."""
    parsed = parse_purl(purl.strip())
    version = parsed.version if parsed.version else fallback_version
    return _build(parsed.type, parsed.namespace, parsed.name, version, parsed.qualifiers)


def identity_of(component: Component) -> PackageIdentity | None:
    """The component's identity (the purl's version, else the SBOM's), or None without a purl."""
    if component.purl:
        try:
            return identity_from_purl(component.purl, component.version)
        except ValueError:
            return None
    if component.purl_type and component.name:
        # Built in code (tests, converted documents) rather than parsed: the same rules.
        return _build(
            component.purl_type,
            component.namespace,
            component.name,
            component.version,
            component.qualifiers,
        )
    return None


# Types whose declared names (SBOM `name`/`group`) are compared with the purl's.
_CHECKED_TYPES = frozenset(
    {"pypi", "npm", "maven", "golang", "cargo", "gem", "nuget", "deb", "rpm", "apk", "composer"}
)


def disagreements(
    identity: PackageIdentity,
    *,
    name: str | None,
    group: str | None,
    version: str | None,
) -> tuple[str, ...]:
    """Where a component's own `name`, `group` and `version` fields name another package or
    version than its purl (which is what every lookup uses). Spellings of the same package
    (`PyYAML` / `pyyaml`, npm group `@scope` + name `x`, Maven group + artifact, rpm epochs,
    Go's `go1.22.1`) agree."""
    out: list[str] = []
    if identity.type in _CHECKED_TYPES and name and not _its_own_parts(identity, name, group):
        declared = _declared_package(identity, name, group)
        if declared is not None and declared != identity.package:
            shown = f"{group}/{name}" if group and identity.type != "maven" else name
            if identity.type == "maven" and group:
                shown = f"{group}:{name}"
            out.append(f"its name {shown!r} is not the purl's {identity.package!r}")
    if (
        version
        and identity.version is not None
        and version != identity.version  # the same text is the same version (most packages)
        and version_key(identity.type, _with_epoch(identity, version)) != identity.version_key
    ):
        out.append(f"its version {version!r} is not the purl's {identity.version!r}")
    return tuple(out)


# Types whose canonical package is the namespace and the name together, as given (no name is
# folded there apart from the namespace): a declared group and name that are the identity's own
# namespace and name make its package again.
_NAMESPACED_TYPES = frozenset({"npm", "maven", "golang", "cargo", "gem", "composer"})


def _its_own_parts(identity: PackageIdentity, name: str, group: str | None) -> bool:
    """Whether a declared name and group are the identity's own canonical parts, which
    `_declared_package` makes its package again (most components: their name fields are what
    their purl says): then there is no need to work that out. A test checks the claim over
    every checked type."""
    if name != identity.name or name != name.strip():
        return False
    if identity.type in DISTRO_TYPES:
        return True  # the vendor (the namespace) is not part of an OS package's name
    if ((group or "").strip() or None) != identity.namespace:
        return False
    return identity.namespace is None or identity.type in _NAMESPACED_TYPES


def _with_epoch(identity: PackageIdentity, version: str) -> str:
    if identity.type in _EPOCH_TYPES and identity.version and ":" in identity.version:
        epoch = identity.version.split(":", 1)[0]
        if ":" not in version:
            return f"{epoch}:{version}"
    return version


def _declared_package(identity: PackageIdentity, name: str, group: str | None) -> str | None:
    ptype = identity.type
    name = name.strip()
    group = (group or "").strip() or None
    if ptype == "maven":
        if group is None:
            # A bare artifact (or a `group:artifact` name) is the same when it ends the same.
            return identity.package if identity.package.endswith(f":{name}") else name
        return f"{group}:{name}"
    if ptype == "npm":
        return canonical_package(ptype, group, name)[2]
    if ptype == "golang":
        return canonical_package(ptype, group, name)[2]
    if ptype in ("gem", "cargo", "composer"):
        # packageurl-python lower-cases some of these; the registries fold case too.
        wanted = identity.package.lower()
        full = f"{group}/{name}" if group else name
        return identity.package if full.lower() == wanted else full
    return canonical_package(ptype, None, name)[2]


Declared = Mapping[str, tuple[tuple[str | None, str | None], ...]]


def declared_fields(document: Mapping[str, Any]) -> Declared:
    """The `name` and `group` each CycloneDX-shaped component states beside its purl, by
    canonical purl, in document order: the subject, then `components`, each component before
    the ones nested in it (pedigrees are not read). SPDX documents are converted with the
    purl's own names, so only their versions can disagree. The CycloneDX reader gathers the
    same as it reads (`Sbom.declared`)."""
    out: dict[str, tuple[tuple[str | None, str | None], ...]] = {}
    # Depth-first, document order: a stack of iterators.
    stack: list[Iterator[Any]] = []
    metadata = document.get("metadata")
    roots = [metadata.get("component") if isinstance(metadata, Mapping) else None]
    stack.append(iter([*roots, document.get("components")]))
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        if isinstance(item, list):
            stack.append(iter(item))
            continue
        # A parsed document holds dicts: the ABC check (slow) only for anything else.
        if type(item) is not dict and not isinstance(item, Mapping):
            continue
        add_declared(out, declared_pair(item))
        nested = item.get("components")
        if nested is not None:
            stack.append(iter([nested]))
    return out


_END = object()


def component_disagreements(
    component: Component, declared: Declared | None = None
) -> tuple[str, ...]:
    """`disagreements` for a component: its version field, and the names the document states
    for its purl (`declared_fields`)."""
    if not component.purl:
        return ()
    pairs = (declared or {}).get(component.purl) or ((None, None),)
    return _purl_disagreements(component.purl, component.version, pairs)


@lru_cache(maxsize=65536)
def _purl_disagreements(
    purl: str, version: str | None, pairs: tuple[tuple[str | None, str | None], ...]
) -> tuple[str, ...]:
    # Remembered: a new build lists the packages of the build before, with the same fields.
    try:
        identity = identity_from_purl(purl, version)
    except ValueError:
        return ()
    out: list[str] = []
    for name, group in pairs:
        for problem in disagreements(identity, name=name, group=group, version=version):
            if problem not in out:
                out.append(problem)
    return tuple(out)
