"""License text in an SBOM -> one SPDX expression a policy can judge.

Each license in the expression this module writes is one of:

- an SPDX license id in its canonical spelling, whatever named it: an id in any case, an
  alias (`GPL-2.0+`), a full name, a common spelling or a trove classifier (license_names.py);
- `LicenseRef-...`: not a license on the SPDX list. A document's own LicenseRef is kept as
  given (unless what follows `LicenseRef-` is itself a known spelling, as syft writes
  `LicenseRef-GPLv3`); any other text is sanitised into one. Unknown to sbomgate;
- `NOASSERTION` / `NONE` inside a compound expression: unknown. Alone they mean "no
  information", and the result is None.

`L WITH E` is kept when L is a license (or a LicenseRef) and E a license exception. Anything
else in a WITH (a license where the exception goes, an exception where the license goes, an
exception nobody knows) becomes `(L AND E AND LicenseRef-sbomgate-invalid-WITH)`: every license
it names applies, and the marker makes the term unknown, for a policy to decide.

Results are cached per distinct text: real SBOMs repeat a few licenses thousands of times.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from license_expression import AND, OR, LicenseSymbol, LicenseWithExceptionSymbol

from sbomgate.errors import InputError, SbomgateError
from sbomgate.sbom import _licensing
from sbomgate.sbom.license_names import (
    EXPANDED,
    Family,
    KnownId,
    clean_text,
    known_id,
    resolve_spelling,
    spelling_key,
)

__all__ = [
    "INVALID_WITH",
    "MAX_NESTING",
    "UNKNOWN_LICENSES",
    "Entry",
    "LicenseLibraryError",
    "LicenseSyntaxError",
    "clear_caches",
    "combine_and",
    "license_from_id",
    "license_from_name",
    "normalise_expression",
]

# Values that mean "we do not know" in SPDX and in CycloneDX tools that copy SPDX.
UNKNOWN_LICENSES = frozenset({"", "NOASSERTION", "NONE"})
INVALID_WITH = "LicenseRef-sbomgate-invalid-WITH"
"""Marks a WITH that is not `license WITH exception`: the term is unknown."""

MAX_NESTING = 32
"""Deepest parentheses accepted in one license expression (real ones use two or three)."""

_NO_INFORMATION = frozenset({"NOASSERTION", "NONE"})
_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
# crates.io's old `MIT/Apache-2.0` means MIT OR Apache-2.0 (Cargo documents "/" as OR).
_SLASHED = re.compile(r"[A-Za-z0-9.+-]+(?:/[A-Za-z0-9.+-]+)+")


class LicenseSyntaxError(InputError):
    """An SPDX license expression that cannot be parsed (the document's fault)."""


class LicenseLibraryError(SbomgateError):
    """license-expression failed on a license text other than by refusing its syntax: the
    package's license cannot be judged (an error, never a silently unknown license)."""


# --- the normalised tree ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Leaf:
    text: str  # as rendered: an id, `L WITH E`, a LicenseRef, NOASSERTION or NONE
    spdx_id: str | None = None  # the license id when it is one (for families to compare)
    family: Family | None = None  # a version-less name, dropped next to one of its members
    no_information: bool = False  # NOASSERTION / NONE


@dataclass(frozen=True, slots=True)
class _Op:
    op: Literal["AND", "OR"]
    args: tuple[_Leaf | _Op, ...]


_Node = _Leaf | _Op
_MARKER = _Leaf(text=INVALID_WITH)


def _license_ref(text: str) -> str:
    """`Acme License 2.0` -> `LicenseRef-Acme-License-2.0`; an unknown text that sanitises
    into a known spelling (`MIT (`) gets `LicenseRef-sbomgate-unknown-MIT`, so that reading
    the result again (a LicenseRef's name is looked up, as syft writes them) keeps it unknown."""
    sanitised = _UNSAFE.sub("-", clean_text(text)).strip("-")
    if not sanitised or _names_license(sanitised):
        return f"{_UNKNOWN_REF}{sanitised}".rstrip("-")
    return f"LicenseRef-{sanitised}"


_UNKNOWN_REF = "LicenseRef-sbomgate-unknown-"


def _names_license(ref_name: str) -> bool:
    found = resolve_spelling(ref_name.replace("-", " "))
    return isinstance(found, KnownId) and not found.is_exception


@lru_cache(maxsize=8192)
def _leaf(text: str) -> tuple[_Leaf, Literal["license", "exception", "unknown"]]:
    """One license or exception as written, resolved: the leaf and what it turned out to be."""
    text = clean_text(text)
    if text.upper() in _NO_INFORMATION:
        return _Leaf(text=text.upper(), no_information=True), "unknown"
    if _REF.fullmatch(text):
        # A document's own license; syft writes unknown names this way (`LicenseRef-GPLv3`).
        _, _, name = text.rpartition(":")
        found = resolve_spelling(name[len("LicenseRef-") :].replace("-", " "))
        if isinstance(found, KnownId) and not found.is_exception:
            leaf, kind = _leaf(found.id)  # deprecated ids read as their replacement
            return leaf, kind
        # Not a family to drop: syft writes Debian's `Artistic` (1.0, beside `Artistic-2.0` in
        # perl's copyright) this way, and dropping it would lose a license that applies.
        return _Leaf(text=text), "unknown"
    found = known_id(text) or resolve_spelling(text)
    if isinstance(found, KnownId):
        if found.id in EXPANDED:  # `GPL-2.0-with-classpath-exception`
            lic, exc = EXPANDED[found.id]
            return _Leaf(text=f"{lic} WITH {exc}", spdx_id=lic), "license"
        if found.is_exception:
            return _Leaf(text=found.id), "exception"
        return _Leaf(text=found.id, spdx_id=found.id), "license"
    # Only a trove classifier's family is dropped next to one of its members: cyclonedx-py
    # writes the classifier beside the id it stands for. Free text (`BSD`, `Artistic`) next to
    # an id may name another license of the package, and stays (unknown).
    family = found if text.startswith(_CLASSIFIER) else None
    return _Leaf(text=_license_ref(text), family=family), "unknown"


_CLASSIFIER = "License ::"


def _as_license(leaf: _Leaf, kind: str) -> _Leaf:
    """A leaf where a license goes: an exception there is not a license (unknown)."""
    return _Leaf(text=_license_ref(leaf.text)) if kind == "exception" else leaf


def _with(license_text: str, exception_text: str) -> _Node:
    lic, lic_kind = _leaf(license_text)
    exc, exc_kind = _leaf(exception_text)
    if lic_kind != "exception" and not lic.no_information and exc_kind == "exception":
        return _Leaf(text=f"{lic.text} WITH {exc.text}")
    return _op("AND", (_as_license(lic, lic_kind), _as_license(exc, exc_kind), _MARKER))


def _from_parsed(node: Any) -> _Node:
    if isinstance(node, LicenseWithExceptionSymbol):
        return _with(node.license_symbol.key, node.exception_symbol.key)
    if isinstance(node, LicenseSymbol):
        leaf, kind = _leaf(node.key)
        return _as_license(leaf, kind)
    if isinstance(node, AND | OR):
        op: Literal["AND", "OR"] = "AND" if isinstance(node, AND) else "OR"
        return _op(op, [_from_parsed(arg) for arg in node.args])
    raise LicenseLibraryError(f"unexpected {type(node).__name__} in a parsed expression")


def _op(op: Literal["AND", "OR"], args: Iterable[_Node]) -> _Node:
    """Nested same operators flattened, duplicates dropped; under AND, a trove classifier's
    version-less family next to one of its members says nothing more and is dropped
    (cyclonedx-py lists the SPDX id and the trove classifier: `Apache-2.0` and
    `License :: OSI Approved :: Apache Software License`)."""
    # A leaf is the same license as another that renders the same (one may have lost its
    # family to a stray parenthesis: `( License :: OSI Approved :: Apache Software License`),
    # so that what is written reads back as itself; the first is kept.
    unique: dict[object, _Node] = {}
    for arg in args:
        for node in arg.args if isinstance(arg, _Op) and arg.op == op else (arg,):
            unique.setdefault(node.text if isinstance(node, _Leaf) else node, node)
    flat = list(unique.values())
    if op == "AND":
        ids = {a.spdx_id for a in flat if isinstance(a, _Leaf) and a.spdx_id}
        flat = [
            a
            for a in flat
            if not (isinstance(a, _Leaf) and a.family and not ids.isdisjoint(a.family.members))
        ]
    return flat[0] if len(flat) == 1 else _Op(op, tuple(flat))


def _render(node: _Node, parent: str | None = None) -> str:
    if isinstance(node, _Leaf):
        return node.text
    inner = f" {node.op} ".join(_render(a, node.op) for a in node.args)
    return f"({inner})" if parent is not None else inner


def _no_information(node: _Node) -> bool:
    if isinstance(node, _Leaf):
        return node.no_information
    return all(_no_information(a) for a in node.args)


# --- parsing --------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _tree(text: str, strict: bool) -> _Node | None:
    """The normalised tree of one license text, None when it says nothing.

    Read as an expression first; when that fails or leaves something unknown, a whole text
    that names one license (`GNU General Public License v3.0 or later`, where `or` is no
    operator; `BSD 3-Clause "New" or "Revised" License`; a trove classifier) is that license.
    `strict` (an SPDX expression field): text that is neither raises LicenseSyntaxError;
    otherwise (a license id or name field) it is one unknown license."""
    cleaned = clean_text(text)
    if not cleaned:
        return None
    if known_id(cleaned) or cleaned.upper() in _NO_INFORMATION or _REF.fullmatch(cleaned):
        return _as_license(*_leaf(cleaned))
    if _depth(cleaned) > MAX_NESTING:
        # The parse tree is walked recursively (here and in license-expression).
        if strict:
            raise LicenseSyntaxError(f"parentheses nested deeper than {MAX_NESTING} levels")
        return _Leaf(text=_license_ref(cleaned))
    if _SLASHED.fullmatch(cleaned):
        parts = cleaned.split("/")
        if all(isinstance(known_id(p) or resolve_spelling(p), KnownId) for p in parts):
            cleaned = " OR ".join(parts)
    try:
        parsed = _licensing.parse(cleaned)
    except _licensing.ExpressionError as exc:
        if resolve_spelling(cleaned) is not None:
            return _as_license(*_leaf(cleaned))
        if strict:
            raise LicenseSyntaxError(str(exc)) from None
        return _listed(cleaned) or _as_license(*_leaf(cleaned))
    except Exception as exc:  # the library's own failure (IndexError on some junk, a bug)
        if resolve_spelling(cleaned) is not None:
            return _as_license(*_leaf(cleaned))
        raise LicenseLibraryError(
            f"cannot judge its license: license-expression failed on {text!r} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if parsed is None:
        return None
    tree = _from_parsed(parsed)
    if _has_unknown(tree) and resolve_spelling(cleaned) is not None:
        return _as_license(*_leaf(cleaned))
    return tree


_SEPARATORS = re.compile(r"\s*(?:[,;&]|\band/or\b)\s*", re.IGNORECASE)


def _listed(text: str) -> _Node | None:
    """`GPL-3.0-only, MIT` in a name field: a list naming known licenses, all of which are
    taken to apply (AND: what the list means is not said, and AND is the reading that hides
    none of them). None when no part names a known license (one unknown license then)."""
    parts = [p for p in _SEPARATORS.split(text) if p]
    if len(parts) < 2:
        return None
    nodes = [_tree(part, False) for part in parts]
    if not any(node is not None and not _has_unknown(node) for node in nodes):
        return None
    return _op("AND", [node for node in nodes if node is not None])


def _depth(text: str) -> int:
    """How deep the parentheses of `text` nest."""
    depth = deepest = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def _has_unknown(node: _Node) -> bool:
    if isinstance(node, _Leaf):
        return node.text.startswith("LicenseRef-")
    return any(_has_unknown(a) for a in node.args)


def _rendered(node: _Node | None) -> str | None:
    if node is None or _no_information(node):
        return None
    return _render(node)


@lru_cache(maxsize=8192)
def normalise_expression(text: str) -> str | None:
    """An SPDX license expression field, normalised (`mit or apache-2.0` -> `MIT OR
    Apache-2.0`, `GPLv3` -> `GPL-3.0-only`); None when it says nothing (`NOASSERTION`).

    Raises LicenseSyntaxError when the text is not an expression (`MIT AND`, unbalanced
    parentheses), LicenseLibraryError when license-expression fails on it."""
    return _rendered(_tree(text, True))


@lru_cache(maxsize=8192)
def license_from_id(license_id: str) -> str | None:
    """A CycloneDX `license.id`: as normalise_expression, but text that is not an expression
    is one unknown license (`LicenseRef-...`) rather than an error."""
    return _rendered(_tree(license_id, False))


@lru_cache(maxsize=8192)
def license_from_name(name: str) -> str | None:
    """A CycloneDX `license.name` (`Apache License, Version 2.0`, `MIT License`, a trove
    classifier): the SPDX license it names, else as license_from_id."""
    return _rendered(_tree(name, False))


Entry = tuple[Literal["expression", "id", "name"], str]


@lru_cache(maxsize=8192)
def combine_and(entries: tuple[Entry, ...]) -> str | None:
    """A CycloneDX component's `licenses[]` entries as one expression: all of them apply
    (AND). Entries saying nothing are skipped; a trove classifier naming the family of an
    SPDX id also listed is dropped. Raises as normalise_expression for `expression` entries."""
    nodes = [
        node
        for kind, text in entries
        if (node := _tree(text, kind == "expression")) is not None and not _no_information(node)
    ]
    if not nodes:
        return None
    return _render(_op("AND", nodes))


def clear_caches() -> None:
    """Forget every cached result (benchmarks measuring a cold parse)."""
    for cached in (_tree, _leaf, normalise_expression, license_from_id, license_from_name):
        cached.cache_clear()
    combine_and.cache_clear()
    resolve_spelling.cache_clear()
    spelling_key.cache_clear()
