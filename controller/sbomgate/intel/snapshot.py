"""The offline facts snapshot: trusted-repository answers and advisories, keyed by purl.

Written by `sbomgate snapshot` (`export_snapshot`, from the answers of `TrustedSources`) and
read by `--facts` / `facts:` (`load_facts_snapshot`); this module is the format's one reader
and one writer. The format (JSON or YAML):

    packages:
      "pkg:pypi/requests@2.31.0":
        repository: {name: pypi-internal, url: "https://pypi.internal/simple", kind: pypi,
                     hosting: hosted}     # hosted | proxied; not said: proxied
        published_at: "2023-05-22T15:12:42Z"
        first_published_at: "2011-02-14T15:13:45Z"   # the project's first release; null: unknown
        osv: [ {OSV record}, ... ]
        # as exported, what the repository said besides (defaults: as `repository` says)
        found_package: true
        found_version: true
        yanked: false
        deprecated: null
        hash_mismatch: null

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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import yaml

from sbomgate._internal.documents import load_json_or_yaml
from sbomgate.errors import InputError
from sbomgate.identity import PackageIdentity, identity_from_purl, identity_of
from sbomgate.intel.model import DEFAULT_HOSTING, HOSTINGS, NO_FACTS, PackageFacts
from sbomgate.sbom.model import Component

if TYPE_CHECKING:  # the sources import this module (to re-export `export_snapshot`)
    from sbomgate.intel.sources.interface import SourceAnswer

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
        """A component's value: by canonical identity, else (no identity) by its purl text."""
        if not component.purl:
            return None
        identity = identity_of(component)
        if identity is None:
            return self._by_purl.get(component.purl)
        return self.lookup(identity)

    def lookup(self, identity: PackageIdentity) -> _T | None:
        """The value for an identity; an entry without an origin applies only where its repository
        matches."""
        found = self._values.get(identity.key)
        if found is not None or not identity.origin:
            return found
        bare = (identity.type, identity.vendor, identity.package, identity.version_key, ())
        found = self._values.get(bare)
        if found is None:
            return None
        url = self._vouched_by(found)
        return found if url and identity.comes_from(url) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotEntry:
    """One package as the snapshot lists it."""

    repository: Mapping[str, Any] | None = None
    published_at: str | None = None
    first_published_at: str | None = None
    osv: tuple[Mapping[str, Any], ...] | None = None
    found_package: bool = False
    found_version: bool = False
    yanked: bool = False
    deprecated: str | None = None
    hash_mismatch: str | None = None

    def facts(self) -> PackageFacts:
        """What a policy sees of it: the repository, when it and its project were first
        published, its advisories."""
        # The answer fields (yanked, hash_mismatch, ...) have never reached a policy offline;
        # passing them on would change verdicts, so it is left to its own change.
        return PackageFacts(
            repository=self.repository,
            published_at=self.published_at,
            first_published_at=self.first_published_at,
            osv=self.osv,
        )


@dataclass(frozen=True, slots=True)
class FactsSnapshot:
    """A loaded snapshot; called with a component, the facts it gives (a `FactSource`)."""

    entries: IdentityTable[SnapshotEntry]

    def __call__(self, component: Component) -> PackageFacts:
        entry = self.entries.get(component)
        return entry.facts() if entry is not None else NO_FACTS

    def entry(self, component: Component) -> SnapshotEntry | None:
        """Everything the snapshot lists for the component, or None (not listed)."""
        return self.entries.get(component)


def load_facts_snapshot(path: str | Path) -> FactsSnapshot:
    """Read a snapshot (JSON or YAML); `InputError` says what is wrong and where."""
    file = Path(path)
    document = load_json_or_yaml(file, what="facts snapshot", max_bytes=MAX_SNAPSHOT_BYTES)
    packages = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(packages, dict):
        raise InputError(f"{file}: expected a mapping with a `packages` mapping of purl -> facts")
    return FactsSnapshot(
        IdentityTable(
            ((str(p), _entry(str(file), str(p), e)) for p, e in packages.items()),
            _repository_url,
        )
    )


def _repository_url(entry: SnapshotEntry) -> str | None:
    url = entry.repository.get("url") if entry.repository is not None else None
    return url if isinstance(url, str) else None


def _entry(source: str, purl: str, entry: Any) -> SnapshotEntry:
    where = f"{source}: packages[{purl!r}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping")
    repository = entry.get("repository")
    if repository is not None and not isinstance(repository, dict):
        raise InputError(f"{where}.repository: expected a mapping or null")
    if repository is not None and repository.get("hosting", DEFAULT_HOSTING) not in HOSTINGS:
        # A typo would read as `proxied` (the safe side); said here rather than puzzled over.
        raise InputError(f"{where}.repository.hosting: expected one of {', '.join(HOSTINGS)}")
    published = entry.get("published_at")
    if published is not None and not isinstance(published, str):
        raise InputError(f"{where}.published_at: expected an RFC 3339 string or null")
    first = entry.get("first_published_at")
    if first is not None and not isinstance(first, str):
        raise InputError(f"{where}.first_published_at: expected an RFC 3339 string or null")
    osv = entry.get("osv")
    if osv is not None and not (isinstance(osv, list) and all(isinstance(r, dict) for r in osv)):
        raise InputError(f"{where}.osv: expected a list of OSV records or null")

    def flag(key: str, default: bool) -> bool:
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise InputError(f"{where}.{key}: expected true or false")
        return value

    def text(key: str) -> str | None:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}.{key}: expected a string or null")
        return value

    # A hand-written entry that names a repository says the package is there at that version.
    listed = repository is not None
    return SnapshotEntry(
        repository=repository,
        published_at=published,
        first_published_at=first,
        osv=tuple(osv) if osv is not None else None,
        found_package=flag("found_package", listed),
        found_version=flag("found_version", listed),
        yanked=flag("yanked", False),
        deprecated=text("deprecated"),
        hash_mismatch=text("hash_mismatch"),
    )


def export_snapshot(answers: Iterable[SourceAnswer], path: str | Path) -> int:
    """Write trusted-source answers as a snapshot; returns how many packages it lists.

    Faults (answers with `error`) and components without a purl are left out: unknown, so the
    snapshot gives them no facts (unverified). JSON for `.json`, YAML otherwise; the file is
    replaced whole.
    """
    packages = {a.purl: _answer_document(a) for a in answers if a.purl and a.error is None}
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


def _answer_document(answer: SourceAnswer) -> dict[str, Any]:
    return {
        "repository": dict(answer.repository) if answer.repository is not None else None,
        "published_at": answer.published_at,
        "first_published_at": answer.first_published_at,
        "found_package": answer.found_package,
        "found_version": answer.found_version,
        "yanked": answer.yanked,
        "deprecated": answer.deprecated,
        "hash_mismatch": answer.hash_mismatch,
    }
