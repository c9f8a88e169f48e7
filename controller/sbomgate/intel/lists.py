"""The data lists (`data.sbomgate.allow`, `.blocklist`, `.quarantine`) matched against a
package's canonical identity, once per distinct package, in Python.

The bundled Rego policies used to parse and match these entries themselves, each with its own
idea of a name and a version; they now read what is matched here from `input.v0.lists`
(see policies/README.md). Entries are canonicalised by the same code as packages
(`sbomgate.identity`), so `python:Evil__Pkg`, `pkg:pypi/evil.pkg` and `evil-_-pkg` are one
name, `1.0`, `1.00`, `v1.0` one version, `%2B` and `+` one character, and an npm scope is a
scope with or without its `@`.

Entry syntax (unchanged):
- allow, blocklist: `format:name` or `format:name:*` (every version), `format:name:version`.
  The format is a Cloudsmith slug or a purl type (`python`/`pypi`, `go`/`golang`, `docker`/
  `oci`, ...). Names: `@scope/name` for npm, `group:artifact` (or `group/artifact`) for Maven,
  the module path for Go, `vendor/name` or `name` for OS packages. A name containing `:` must
  carry a version (`*`).
- quarantine: `{purl, vers?, reason?, source?}`: `pkg:type/ns/name@version` is that version,
  `pkg:type/ns/name` with `vers` the versions in the range, without `vers` every version.
  Qualifiers and subpath of the entry's purl are ignored.

Deny lists (blocklist, quarantine) never miss a package whose version cannot be compared:
such a match is reported with `uncertain` saying why, and the policies deny it. A Maven entry
without a group, or an OS package entry without a vendor, names every group or vendor, and an
OS package is also matched by its source package (`upstream`). The allow list exempts only
the exact package: a Maven entry must name the group, and versions must be equal.

An entry that cannot be read is an error (InputError naming it), never silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote, unquote

from univers.version_range import VersionRange

from sbomgate.errors import InputError
from sbomgate.identity import (
    PackageIdentity,
    identity_from_purl,
    purl_type_for_format,
    version_key,
)
from sbomgate.intel.versions import (
    ALL_VERSIONS,
    VersRangeError,
    in_range,
    parse_vers,
    same_version,
    version_problem,
)

__all__ = ["EMPTY_MATCHES", "ListName", "PackageLists", "check_quarantine_entry", "compile_lists"]

ListName = Literal["allow", "blocklist", "quarantine"]
LIST_NAMES: tuple[ListName, ...] = ("allow", "blocklist", "quarantine")
_DENY_LISTS = frozenset({"blocklist", "quarantine"})
# Formats that name the same packages under two purl types.
_TYPE_GROUPS = {"oci": ("oci", "docker"), "docker": ("docker", "oci")}

Matches = Mapping[str, tuple[Mapping[str, Any], ...]]
EMPTY_MATCHES: Matches = {n: () for n in LIST_NAMES}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    list: ListName
    label: str  # what the user wrote (quarantine: purl, range or "(all versions)")
    types: tuple[str, ...]
    vendor: str | None  # OS packages: the vendor the entry names; None = any
    package: str  # canonical full name
    any_group: bool  # a Maven entry without a group (deny lists)
    version: str | None  # one version; None with `vers` None = every version
    vers: VersionRange | None
    vers_text: str | None
    reason: str | None


def _decoded(text: str) -> str:
    return unquote(text) if "%" in text else text


def _entry_purl(ptype: str, name: str) -> str:
    """A purl naming what a `format:name` entry names, so it is canonicalised by the same
    code as the packages' own purls."""
    if ptype == "maven":
        group, sep, artifact = name.replace("/", ":").rpartition(":")
        return f"pkg:maven/{quote(group)}/{quote(artifact)}" if sep else f"pkg:maven/{quote(name)}"
    if ptype == "golang":
        return f"pkg:golang/{quote(name, safe='/')}"
    if ptype == "npm" and "/" in name:
        scope, _, rest = name.partition("/")
        return f"pkg:npm/{quote(scope if scope.startswith('@') else '@' + scope)}/{quote(rest)}"
    head, sep, tail = name.rpartition("/")
    if sep:
        return f"pkg:{ptype}/{quote(head, safe='/')}/{quote(tail)}"
    return f"pkg:{ptype}/{quote(name)}"


def _identity(purl: str, where: str) -> PackageIdentity:
    try:
        return identity_from_purl(purl)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def _name_entry(list_name: ListName, text: Any, where: str) -> _Entry:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: expected a string format:name[:version], got {text!r}")
    parts = text.strip().split(":")
    if len(parts) < 2 or not parts[0] or not all(parts[1:]):
        raise InputError(f"{where}: {text!r} is not format:name[:version]")
    ptype = purl_type_for_format(parts[0])
    name = _decoded(":".join(parts[1:-1]) if len(parts) > 2 else parts[1]).strip()
    version = _decoded(parts[-1]).strip() if len(parts) > 2 else ALL_VERSIONS
    identity = _identity(_entry_purl(ptype, name), where)
    any_group = ptype == "maven" and identity.namespace is None
    if any_group and list_name == "allow":
        raise InputError(
            f"{where}: {text!r} names no Maven group; an exemption must name one package "
            "(maven:GROUP:ARTIFACT:VERSION)"
        )
    exact = None
    if version != ALL_VERSIONS:
        exact = _identity(f"{identity.purl}@{quote(version, safe='')}", where).version
    return _Entry(
        list=list_name,
        label=text.strip(),
        types=_TYPE_GROUPS.get(identity.type, (identity.type,)),
        vendor=identity.vendor,
        package=identity.name if any_group else identity.package,
        any_group=any_group,
        version=exact,
        vers=None,
        vers_text=None,
        reason=None,
    )


def _quarantine_entry(item: Any, where: str) -> _Entry:
    if not isinstance(item, Mapping):
        raise InputError(f"{where}: expected a mapping {{purl, vers?, reason?}}, got {item!r}")
    purl, vers, reason = item.get("purl"), item.get("vers"), item.get("reason")
    if not isinstance(purl, str) or not purl.strip().lower().startswith("pkg:"):
        raise InputError(f"{where}.purl: expected a package URL, got {purl!r}")
    if vers is not None and not isinstance(vers, str):
        raise InputError(f"{where}.vers: expected a vers range string, got {vers!r}")
    if reason is not None and not isinstance(reason, str):
        raise InputError(f"{where}.reason: expected a string, got {reason!r}")
    identity = _identity(purl, f"{where}.purl")
    vers_text = vers.strip() if vers and vers.strip() else None
    if identity.version is not None and vers_text is not None:
        raise InputError(
            f"{where}: the purl names version {identity.version!r} and vers names a range: "
            "give one of them"
        )
    version_range = None
    if vers_text is not None:
        try:
            version_range = parse_vers(identity.type, vers_text)
        except VersRangeError as exc:
            raise InputError(f"{where}.vers: {exc}") from None
    any_group = identity.type == "maven" and identity.namespace is None
    shown = purl.strip()
    if vers_text is not None:
        label = f"{shown} {vers_text}"
    elif identity.version is None:
        label = f"{shown} (all versions)"
    else:
        label = shown
    return _Entry(
        list="quarantine",
        label=label,
        types=_TYPE_GROUPS.get(identity.type, (identity.type,)),
        vendor=identity.vendor,
        package=identity.name if any_group else identity.package,
        any_group=any_group,
        version=identity.version,
        vers=version_range,
        vers_text=vers_text,
        reason=reason.strip() if reason and reason.strip() else None,
    )


def check_quarantine_entry(item: Any, where: str) -> None:
    """InputError (naming `where`) when a quarantine entry cannot be used."""
    _quarantine_entry(item, where)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Hit:
    entry: str
    version: str
    reason: str | None
    uncertain: str | None

    def to_input(self) -> Mapping[str, Any]:
        return {
            "entry": self.entry,
            "version": self.version,
            "reason": self.reason,
            "uncertain": self.uncertain,
        }


def _judge(entry: _Entry, ptype: str, version: str | None, have_key: str | None) -> _Hit | None:
    """Does the entry name this version? Deny lists match what cannot be compared."""
    deny = entry.list in _DENY_LISTS
    answer: bool | None
    if entry.vers is not None:
        wanted = entry.vers_text or ""
        answer = in_range(ptype, version, entry.vers)
    elif entry.version is not None:
        wanted = entry.version
        if version is not None and have_key == version_key(ptype, entry.version):
            answer = True
        elif not deny:
            answer = False  # an exemption needs the very version
        else:
            answer = same_version(ptype, version, entry.version)
    else:
        return _Hit(entry=entry.label, version=ALL_VERSIONS, reason=entry.reason, uncertain=None)
    if answer is True:
        return _Hit(entry=entry.label, version=wanted, reason=entry.reason, uncertain=None)
    if answer is None and deny:
        why = version_problem(ptype, version) or "it cannot be placed in the range"
        note = f"the version could not be compared with the entry's {wanted} ({why})"
        return _Hit(entry=entry.label, version=wanted, reason=entry.reason, uncertain=note)
    return None


class PackageLists:
    """The compiled lists: entries indexed by (purl type, package name)."""

    def __init__(self, entries: Iterable[_Entry]) -> None:
        self._index: dict[tuple[str, str], list[_Entry]] = {}
        for entry in entries:
            for ptype in entry.types:
                self._index.setdefault((ptype, entry.package), []).append(entry)
        self._cached = lru_cache(maxsize=65536)(self._match)

    def __bool__(self) -> bool:
        return bool(self._index)

    def match(self, identity: PackageIdentity | None) -> Matches:
        """`input.v0.lists`: the entries of each list that name this package (cached)."""
        return self._cached(identity)

    def _candidates(self, identity: PackageIdentity) -> list[tuple[_Entry, str | None]]:
        """(entry, version to judge) pairs naming this package (or its source package)."""
        names = [("package", identity.package, identity.version)]
        if identity.type == "maven" and identity.namespace:
            names.append(("artifact", identity.name, identity.version))
        if identity.source and identity.source != identity.package:
            names.append(("source", identity.source, identity.source_version or identity.version))
        out: list[tuple[_Entry, str | None]] = []
        for kind, name, version in names:
            for entry in self._index.get((identity.type, name), ()):
                if kind == "artifact" and not entry.any_group:
                    continue  # `log4j-core` alone is not a package of this group
                if kind == "source" and entry.list not in _DENY_LISTS:
                    continue  # exemptions name the package itself
                if entry.vendor is not None and identity.vendor not in (None, entry.vendor):
                    continue
                out.append((entry, version))
        return out

    def _match(self, identity: PackageIdentity | None) -> Matches:
        if identity is None or not self._index:
            return EMPTY_MATCHES
        hits: dict[str, list[Mapping[str, Any]]] = {n: [] for n in LIST_NAMES}
        for entry, version in self._candidates(identity):
            key = version_key(identity.type, version)
            hit = _judge(entry, identity.type, version, key)
            if hit is not None:
                hits[entry.list].append(hit.to_input())
        if not any(hits.values()):
            return EMPTY_MATCHES
        return {n: tuple(h) for n, h in hits.items()}


def compile_lists(data: Mapping[str, Any]) -> PackageLists:
    """The lists of a policy data document (`{"sbomgate": {"allow": [...], ...}}`)."""
    root = data.get("sbomgate") if isinstance(data, Mapping) else None
    if not isinstance(root, Mapping):
        return PackageLists(())
    entries: list[_Entry] = []
    for name in LIST_NAMES:
        items = root.get(name)
        if items is None:
            continue
        where = f"data.sbomgate.{name}"
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise InputError(f"{where}: expected a list, got {type(items).__name__}")
        for position, item in enumerate(items):
            at = f"{where}[{position}]"
            if name == "quarantine":
                entries.append(_quarantine_entry(item, at))
            else:
                entries.append(_name_entry(name, item, at))
    return PackageLists(entries)
