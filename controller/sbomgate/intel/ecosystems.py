"""Package URLs to OSV ecosystems and package names, and each ecosystem's version ordering.

OSV names an ecosystem (`PyPI`, `npm`, `Maven`, `Go`, `crates.io`, `Debian:12`, `Alpine:v3.18`,
...) and a package within it (`group:artifact` for Maven, `@scope/name` for npm, the module path
for Go, the source package for Linux distributions). Versions are compared with the ecosystem's
own rules: PEP 440 (`packaging`) for PyPI, and `univers` for the rest. A version that cannot be
ordered raises `UncomparableVersion`, never anything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion as _PepInvalid
from packaging.version import Version as _PepVersion
from univers import versions as _uv

from sbomgate.errors import SbomgateError
from sbomgate.identity import PackageIdentity, identity_of, pep503
from sbomgate.sbom.model import Component

__all__ = [
    "UncomparableVersion",
    "base_ecosystem",
    "compare_versions",
    "component_ecosystem",
    "identity_ecosystem",
    "normalize_name",
    "osv_ecosystem",
    "osv_name",
    "osv_package_name",
    "osv_version",
    "semver_key",
    "version_key",
]

# purl type -> OSV ecosystem, for types whose ecosystem needs nothing but the type.
_SIMPLE: dict[str, str] = {
    "pypi": "PyPI",
    "npm": "npm",
    "maven": "Maven",
    "golang": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
    "hackage": "Hackage",
    "cran": "CRAN",
    "swift": "SwiftURL",
    "conan": "ConanCenter",
}

# rpm purl namespace -> OSV ecosystem.
_RPM_VENDORS: dict[str, str] = {
    "redhat": "Red Hat",
    "rhel": "Red Hat",
    "rocky": "Rocky Linux",
    "rockylinux": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "alma": "AlmaLinux",
    "suse": "SUSE",
    "sles": "SUSE",
    "opensuse": "openSUSE",
    "mariner": "Mariner",
    "azurelinux": "Azure Linux",
    "openeuler": "openEuler",
}

_DEBIAN_CODENAMES: dict[str, str] = {
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
}


class UncomparableVersion(SbomgateError):
    """A version string that the ecosystem's ordering cannot place (or an unknown ecosystem).

    Not the user's mistake: matching turns it into an "uncertain" advisory match."""

    def __init__(self, ecosystem: str, version: str, why: str = "") -> None:
        self.ecosystem = ecosystem
        self.version = version
        msg = f"cannot compare {ecosystem} version {version!r}"
        super().__init__(f"{msg}: {why}" if why else msg)


def base_ecosystem(ecosystem: str) -> str:
    """`Debian:12` -> `Debian`; `Red Hat:enterprise_linux:9` -> `Red Hat`."""
    return ecosystem.split(":", 1)[0]


def _distro_release(qualifiers: Mapping[str, str]) -> tuple[str, str] | None:
    """The `distro` qualifier (`debian-12.4`, `alpine-3.18.4`, `ubuntu-22.04`) as (id, release)."""
    distro = qualifiers.get("distro")
    if not distro:
        return None
    m = re.fullmatch(r"([A-Za-z][A-Za-z_]*)[-/]?(.*)", distro.strip())
    if not m:
        return None
    return m.group(1).lower(), m.group(2)


def osv_ecosystem(
    purl_type: str | None,
    namespace: str | None = None,
    qualifiers: Mapping[str, str] | None = None,
) -> str | None:
    """The OSV ecosystem for a purl type (and, for OS packages, its namespace and distro)."""
    if not purl_type:
        return None
    ptype = purl_type.lower()
    if ptype in _SIMPLE:
        return _SIMPLE[ptype]
    quals = qualifiers or {}
    distro = _distro_release(quals)
    ns = (namespace or "").lower()
    if ptype == "deb":
        if ns == "ubuntu" or (distro and distro[0] == "ubuntu"):
            if distro and re.fullmatch(r"\d+\.\d+", distro[1]):
                year, month = distro[1].split(".")
                lts = ":LTS" if int(year) % 2 == 0 and month == "04" else ""
                return f"Ubuntu:{distro[1]}{lts}"
            return "Ubuntu"
        if distro:
            release = _DEBIAN_CODENAMES.get(distro[0]) or _DEBIAN_CODENAMES.get(
                distro[1].lower(), distro[1]
            )
            major = release.split(".", 1)[0]
            if major.isdigit():
                return f"Debian:{major}"
        return "Debian"
    if ptype == "apk":
        if ns == "wolfi" or (distro and distro[0] == "wolfi"):
            return "Wolfi"
        if ns == "chainguard" or (distro and distro[0] == "chainguard"):
            return "Chainguard"
        if distro:
            m = re.match(r"v?(\d+)\.(\d+)", distro[1])
            if m:
                return f"Alpine:v{m.group(1)}.{m.group(2)}"
        return "Alpine"
    if ptype == "rpm":
        vendor = _RPM_VENDORS.get(ns)
        if vendor is None and distro:
            vendor = _RPM_VENDORS.get(distro[0])
        return vendor
    return None


def identity_ecosystem(identity: PackageIdentity) -> str | None:
    """The OSV ecosystem of a package identity, None when OSV has none for it."""
    return osv_ecosystem(identity.type, identity.namespace, dict(identity.origin))


def component_ecosystem(component: Component) -> str | None:
    """The OSV ecosystem of a component's purl, None without one."""
    identity = identity_of(component)
    return identity_ecosystem(identity) if identity is not None else None


def normalize_name(ecosystem: str, name: str) -> str:
    """The form names are indexed and looked up in: the canonical identity's (PEP 503 for
    PyPI; case-insensitive NuGet, Hex and Pub folded; npm, Go, Maven and the rest as spelt:
    npm's `JSONStream` and `jsonstream` are two packages)."""
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return pep503(name)
    if base in ("NuGet", "Hex", "Pub"):
        return name.lower()
    return name


def osv_name(identity: PackageIdentity) -> str:
    """OSV's `affected[].package.name`: `group:artifact` (Maven), `@scope/name` (npm), the
    module path (Go); for Debian and Alpine the source package (syft's `upstream`)."""
    if identity.type in ("deb", "apk") and identity.source:
        return identity.source
    return identity.package


def osv_version(identity: PackageIdentity) -> str | None:
    """The version OSV knows it by (the source package's, when its name is used; rpm's epoch
    is already folded in by the identity)."""
    if identity.type in ("deb", "apk") and identity.source and identity.source_version:
        return identity.source_version
    return identity.version


def osv_package_name(component: Component) -> str | None:
    """The OSV `affected[].package.name` for a component, or None when it has no purl type."""
    identity = identity_of(component)
    return osv_name(identity) if identity is not None else None


def osv_component_version(component: Component) -> str | None:
    """The component's version as OSV spells it (the purl's; rpm `epoch` folded in)."""
    identity = identity_of(component)
    return osv_version(identity) if identity is not None else None


# --- version ordering ------------------------------------------------------------------------


def _pep440(version: str) -> Any:
    return _PepVersion(version)


def _semver_text(version: str) -> str:
    v = version.strip()
    if v[:1] in ("v", "V", "="):
        v = v[1:]
    # Build metadata does not take part in semver precedence.
    return v.split("+", 1)[0]


_SEMVER_RE = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


class _SemverKey:
    """Semver 2.0.0 precedence, strict x.y.z (OSV `SEMVER` ranges and npm)."""

    __slots__ = ("core", "pre")

    def __init__(self, version: str) -> None:
        m = _SEMVER_RE.fullmatch(_semver_text(version))
        if not m:
            raise ValueError("not x.y.z[-pre]")
        self.core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        pre = m.group(4)
        self.pre: tuple[tuple[int, int | str], ...] | None = (
            tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
            if pre is not None
            else None
        )

    def _cmp_key(self) -> tuple[Any, ...]:
        # A release sorts after all its pre-releases.
        if self.pre is None:
            return (self.core, 1, ())
        return (self.core, 0, self.pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return self._cmp_key() < other._cmp_key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return self._cmp_key() <= other._cmp_key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return self._cmp_key() > other._cmp_key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return self._cmp_key() >= other._cmp_key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return self._cmp_key() == other._cmp_key()

    def __hash__(self) -> int:
        return hash(self._cmp_key())

    def __repr__(self) -> str:
        return f"_SemverKey({self.core!r}, {self.pre!r})"


def _semver(version: str) -> Any:
    return _SemverKey(version)


def _go(version: str) -> Any:
    # Go module versions are semver with a `v` prefix (OSV omits it); pseudo-versions are
    # semver pre-releases, and `+incompatible` is build metadata.
    return _SemverKey(version)


def _univers(cls: type[Any]) -> Callable[[str], Any]:
    def parse(version: str) -> Any:
        return cls(version)

    return parse


def _maven(version: str) -> Any:
    if not version.strip():
        raise ValueError("empty")
    return _uv.MavenVersion(version)


_COMPARATORS: dict[str, Callable[[str], Any]] = {
    "PyPI": _pep440,
    "npm": _semver,
    "crates.io": _semver,
    "Go": _go,
    "Hex": _semver,
    "Pub": _semver,
    "Maven": _maven,
    "NuGet": _univers(_uv.NugetVersion),
    "RubyGems": _univers(_uv.RubygemsVersion),
    "Packagist": _univers(_uv.ComposerVersion),
    "Debian": _univers(_uv.DebianVersion),
    "Ubuntu": _univers(_uv.DebianVersion),
    "Alpine": _univers(_uv.AlpineLinuxVersion),
    "Wolfi": _univers(_uv.AlpineLinuxVersion),
    "Chainguard": _univers(_uv.AlpineLinuxVersion),
    "Red Hat": _univers(_uv.RpmVersion),
    "Rocky Linux": _univers(_uv.RpmVersion),
    "AlmaLinux": _univers(_uv.RpmVersion),
    "SUSE": _univers(_uv.RpmVersion),
    "openSUSE": _univers(_uv.RpmVersion),
    "Mariner": _univers(_uv.RpmVersion),
    "Azure Linux": _univers(_uv.RpmVersion),
    "openEuler": _univers(_uv.RpmVersion),
    "ConanCenter": _univers(_uv.ConanVersion),
    "SwiftURL": _semver,
}

_FAILED = object()


@lru_cache(maxsize=1 << 16)
def _cached_key(base: str, version: str) -> Any:
    parse = _COMPARATORS.get(base)
    if parse is None:
        return _FAILED
    try:
        return parse(version)
    except (ValueError, TypeError, _PepInvalid, _uv.InvalidVersion, AttributeError, IndexError):
        return _FAILED


def version_key(ecosystem: str, version: str) -> Any:
    """An object ordered like `version` in `ecosystem`; keys of one ecosystem compare with
    each other. Raises UncomparableVersion for unknown ecosystems and unparseable versions."""
    key = _cached_key(base_ecosystem(ecosystem), version)
    if key is _FAILED:
        if base_ecosystem(ecosystem) not in _COMPARATORS:
            raise UncomparableVersion(ecosystem, version, "no ordering known for this ecosystem")
        raise UncomparableVersion(ecosystem, version, "unparseable")
    return key


def semver_key(version: str) -> Any:
    """Semver 2.0.0 precedence, for OSV ranges of type SEMVER whatever the ecosystem."""
    key = _cached_key("npm", version)
    if key is _FAILED:
        raise UncomparableVersion("SEMVER", version, "not semver")
    return key


def compare_versions(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1; raises UncomparableVersion when either side cannot be ordered."""
    ka, kb = version_key(ecosystem, a), version_key(ecosystem, b)
    if ka < kb:
        return -1
    if kb < ka:
        return 1
    return 0
