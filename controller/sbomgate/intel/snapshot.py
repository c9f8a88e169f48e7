"""An offline facts snapshot: exported trusted-repository answers and advisories, keyed by purl.

The format (JSON or YAML):

    packages:
      "pkg:pypi/requests@2.31.0":
        repository: {name: pypi-internal, url: "https://pypi.internal/simple"}
        published_at: "2023-05-22T15:12:42Z"
        osv: [ {OSV record}, ... ]

Keys are matched by canonical package identity (`sbomgate.identity`): `pkg:pypi/Foo_Bar@1.0`
is the key of `pkg:pypi/foo-bar@1.0.0`, `+` and `%2B` are one character, other qualifiers
(`arch`, `type`, ...) and the subpath are ignored. Where the package came from is part of its
identity: a component whose purl names an origin (`repository_url`, `download_url`, or
`distro` for OS packages) gets the facts of an entry with the same origin, or of an entry
without one only when every origin URL is on the host of that entry's `repository.url`. So
`pkg:pypi/foo@1.0?repository_url=https://evil.example/simple` is not vouched for by an entry
for `pkg:pypi/foo@1.0` from the trusted index.

A component that is not listed gets no facts: `repository: null`, which the bundled policies
treat as unverified (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from sbomgate._internal.documents import load_json_or_yaml
from sbomgate.errors import InputError
from sbomgate.identity import PackageIdentity, identity_from_purl, identity_of
from sbomgate.policy.input import NO_FACTS, PackageFacts
from sbomgate.sbom.model import Component

MAX_SNAPSHOT_BYTES = 256 << 20

_T = TypeVar("_T")
_Key = tuple[str, str | None, str, str | None, tuple[tuple[str, str], ...]]


class IdentityTable(Generic[_T]):
    """Values keyed by purl, looked up by canonical identity (see the module docstring).

    `vouched_by(value)` is the URL of the repository a value says the package is in (None:
    it says none), which decides whether an entry written without an origin applies to a
    component whose purl names one."""

    def __init__(
        self,
        items: Iterable[tuple[str, _T]],
        vouched_by: Callable[[_T], str | None],
    ) -> None:
        self._vouched_by = vouched_by
        self._values: dict[_Key, _T] = {}
        self._by_purl: dict[str, _T] = {}
        for purl, value in items:
            self._by_purl[purl] = value
            try:
                key = identity_from_purl(purl).key
            except ValueError:
                continue  # an unparsable key is kept as written (found by an equal purl)
            self._values[key] = value

    def __len__(self) -> int:
        return len(self._by_purl)

    def get(self, component: Component) -> _T | None:
        if not component.purl:
            return None
        identity = identity_of(component)
        if identity is None:
            return self._by_purl.get(component.purl)
        return self.lookup(identity)

    def lookup(self, identity: PackageIdentity) -> _T | None:
        found = self._values.get(identity.key)
        if found is not None or not identity.origin:
            return found
        bare = (identity.type, identity.vendor, identity.package, identity.version_key, ())
        found = self._values.get(bare)
        if found is None:
            return None
        url = self._vouched_by(found)
        return found if url and identity.comes_from(url) else None


def _repository_url(facts: PackageFacts) -> str | None:
    url = facts.repository.get("url") if facts.repository is not None else None
    return url if isinstance(url, str) else None


@dataclass(frozen=True, slots=True)
class FactsSnapshot:
    packages: IdentityTable[PackageFacts]

    def __call__(self, component: Component) -> PackageFacts:
        return self.packages.get(component) or NO_FACTS


def _facts(source: str, purl: str, entry: Any) -> PackageFacts:
    where = f"{source}: packages[{purl!r}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping")
    repository = entry.get("repository")
    if repository is not None and not isinstance(repository, dict):
        raise InputError(f"{where}.repository: expected a mapping or null")
    published = entry.get("published_at")
    if published is not None and not isinstance(published, str):
        raise InputError(f"{where}.published_at: expected an RFC 3339 string or null")
    osv = entry.get("osv")
    if osv is not None and not (isinstance(osv, list) and all(isinstance(r, dict) for r in osv)):
        raise InputError(f"{where}.osv: expected a list of OSV records or null")
    return PackageFacts(
        repository=repository,
        published_at=published,
        osv=tuple(osv) if osv is not None else None,
    )


def load_facts_snapshot(path: str | Path) -> FactsSnapshot:
    file = Path(path)
    document = load_json_or_yaml(file, what="facts snapshot", max_bytes=MAX_SNAPSHOT_BYTES)
    packages = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(packages, dict):
        raise InputError(f"{file}: expected a mapping with a `packages` mapping of purl -> facts")
    return FactsSnapshot(
        IdentityTable(
            ((str(p), _facts(str(file), str(p), e)) for p, e in packages.items()),
            _repository_url,
        )
    )
