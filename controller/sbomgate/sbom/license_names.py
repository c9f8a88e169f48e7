"""License names and common spellings -> SPDX ids.

SBOMs hold what package metadata says: `GNU General Public License v3.0`, `GPLv3`,
`Apache License, Version 2.0`, a PyPI trove classifier, a Unicode hyphen. Each is resolved to
the SPDX id it names, from (in this order):

1. the ids and aliases license-expression knows (`GPL-3.0` and `GPL-2.0+` are aliases there),
   and every id of the SPDX License List (`_spdx_list.py`), case-insensitively;
2. a spelling key (see `spelling_key`) shared by those ids, their aliases, the SPDX License
   List's full names, and the small table of common spellings below (`_SPELLINGS`);
3. a version-less name (`Server Side Public License`) whose key matches exactly one listed
   license without its version; several (`Apache Software License`: 1.0, 1.1 or 2.0) make a
   `Family`, which says only that it is one of them.

A key two different licenses share is dropped (ambiguous), never guessed. Everything here is
pure and built once; lookups are cached per distinct text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

from sbomgate.sbom import _spdx_list
from sbomgate.sbom._licensing import library_symbols

__all__ = [
    "EXPANDED",
    "Family",
    "KnownId",
    "clean_text",
    "known_id",
    "resolve_spelling",
    "spelling_key",
]


@dataclass(frozen=True, slots=True)
class KnownId:
    """An SPDX license or exception id, in its canonical spelling."""

    id: str
    is_exception: bool


@dataclass(frozen=True, slots=True)
class Family:
    """A license named without the version that would say which (`BSD License`): one of
    `members`, not known which. Alone it is unknown; next to one of its members (cyclonedx-py
    lists the SPDX id and the trove classifier) it says nothing more."""

    members: frozenset[str]


# --- text cleaning -----------------------------------------------------------------------

# After NFKC: dashes and minus signs that look like "-" (`GPL-3.0-only` with U+2010).
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58"), "-")
# Cyrillic and Greek letters drawn like the Latin ones license ids are written with
# (`GPL-3.0` with a Cyrillic Er for the P). License ids are ASCII: folding loses nothing.
_LOOKALIKE_PAIRS = (
    # Cyrillic capitals, then small letters, then Greek: each with its Latin twin.
    ("\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420", "ABEKMHOP"),
    ("\u0421\u0422\u0425\u0423\u0406\u0408\u0405", "CTXYIJS"),
    ("\u0430\u0435\u043e\u0440\u0441\u0443\u0445", "aeopcyx"),
    ("\u0456\u0458\u0455\u0501\u051b\u051d", "ijsdqw"),
    ("\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c", "ABEZHIKM"),
    ("\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03bf\u03bd", "NOPTYXov"),
)
_LOOKALIKES = {
    ord(other): latin
    for others, latins in _LOOKALIKE_PAIRS
    for other, latin in zip(others, latins, strict=True)
}
_FOLD = _DASHES | _LOOKALIKES


def clean_text(text: str) -> str:
    """NFKC (full-width letters, non-breaking spaces), look-alike dashes and letters folded to
    ASCII, invisible format characters (zero-width space, ...) dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_FOLD)
    if not text.isascii():
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split())


# --- spelling keys -----------------------------------------------------------------------

# Phrases written out or abbreviated: both sides of a comparison get the short form.
_PHRASES = (
    (r"gnu (?:library or lesser|lesser|library) general public", "lgpl"),
    (r"gnu affero general public|affero general public|affero gpl|gnu agpl", "agpl"),
    (r"gnu general public|gnu gpl", "gpl"),
    (r"gnu lgpl", "lgpl"),
    (r"gnu free documentation|gnu fdl|fdl", "gfdl"),
    (r"mozilla public", "mpl"),
    (r"eclipse public", "epl"),
    (r"european union public", "eupl"),
    (r"common development and distribution", "cddl"),
    (r"server side public", "sspl"),
    (r"creative commons", "cc"),
    (r"apache software", "apache"),
    (r"python software foundation", "psf"),
    (r"boost software", "bsl"),
)
# One pass for all of them (the first alternative that matches at a position wins).
_PHRASE_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<p{i}>{p})" for i, (p, _) in enumerate(_PHRASES)) + r")\b"
)
_SHORT = {f"p{i}": short for i, (_, short) in enumerate(_PHRASES)}
# `v3`, `GPLv3`, `version 3`: the version marker goes, the number stays.
_VERSION_MARK = re.compile(r"(?<=[a-z])v(?=\d)|\bv(?=\d)|\bv\b|\bversion\b|\bver\b")
_LATER = re.compile(r"\b(?:or|and) (?:any )?(?:later|newer|greater)(?: versions?)?\b|\bor-later\b")
_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)*|\+")
_NOISE = frozenset({"the", "license", "licence", "licenses", "licences", "licensed"})


@lru_cache(maxsize=8192)
def spelling_key(text: str) -> str:
    """A comparison key: case, punctuation, `license`/`the`/`version` words, trailing `.0`s
    and long forms of well-known names (`GNU General Public` -> `gpl`) do not matter;
    `or later` and `+` are one token. `GPL-3.0`, `GPLv3` and `GNU General Public License v3`
    share the key `gpl 3`; `GPL-3.0-only` is `gpl 3 only`."""
    t = clean_text(text).casefold()
    t = _LATER.sub(" + ", t)
    t = _VERSION_MARK.sub(" ", t)
    t = _PHRASE_RE.sub(lambda m: _SHORT[m.lastgroup or ""], t)
    tokens = []
    for token in _TOKEN.findall(t):
        if token in _NOISE:
            continue
        if token[0].isdigit():
            while token.endswith(".0"):
                token = token[:-2]
        tokens.append(token)
    return " ".join(tokens)


# Common spellings the SPDX data does not cover, each checked by
# tests/integration/policy/test_licenses_real.py.
# The GNU licenses say that a program naming no version of them may be used under any version
# ever published (GPLv3 section 14, GPLv2 section 9, LGPL, AGPL and GFDL alike): so a bare
# `GPL` is `GPL-1.0-or-later`, not a guess at one version.
_SPELLINGS: Mapping[str, str] = {
    "GPL": "GPL-1.0-or-later",
    "LGPL": "LGPL-2.0-or-later",
    "AGPL": "AGPL-3.0-or-later",
    "GFDL": "GFDL-1.1-or-later",
    "Expat": "MIT",
    "MIT/X11": "MIT",
    "ISCL": "ISC",
    "ASL 2.0": "Apache-2.0",
    "ASL 1.1": "Apache-1.1",
    "AL 2.0": "Apache-2.0",
    "BSD-3": "BSD-3-Clause",
    "3-Clause BSD": "BSD-3-Clause",
    "New BSD": "BSD-3-Clause",
    "BSD New": "BSD-3-Clause",
    "Modified BSD": "BSD-3-Clause",
    "Revised BSD": "BSD-3-Clause",
    "BSD-2": "BSD-2-Clause",
    "2-Clause BSD": "BSD-2-Clause",
    "Simplified BSD": "BSD-2-Clause",
    "FreeBSD": "BSD-2-Clause",
    "CC0": "CC0-1.0",
    "CC0 1.0 Universal": "CC0-1.0",
    "zlib/libpng": "Zlib",
    "PSF": "PSF-2.0",
    "PSFL": "PSF-2.0",
    "SSPL": "SSPL-1.0",
    "ELv2": "Elastic-2.0",
    "Classpath exception": "Classpath-exception-2.0",
    "LLVM exception": "LLVM-exception",
    "Python License (CNRI Python License)": "CNRI-Python",
    "AFPL": "Aladdin",
    "NOKOS": "Nokia",
}

# Deprecated SPDX ids that stand for a license with an exception (license-expression calls
# them exceptions): the expression SPDX gives as their replacement.
EXPANDED: Mapping[str, tuple[str, str]] = {
    "GPL-2.0-with-autoconf-exception": ("GPL-2.0-only", "Autoconf-exception-2.0"),
    "GPL-2.0-with-bison-exception": ("GPL-2.0-or-later", "Bison-exception-2.2"),
    "GPL-2.0-with-classpath-exception": ("GPL-2.0-only", "Classpath-exception-2.0"),
    "GPL-2.0-with-font-exception": ("GPL-2.0-only", "Font-exception-2.0"),
    "GPL-2.0-with-GCC-exception": ("GPL-2.0-only", "GCC-exception-2.0"),
    "GPL-3.0-with-autoconf-exception": ("GPL-3.0-only", "Autoconf-exception-3.0"),
    "GPL-3.0-with-GCC-exception": ("GPL-3.0-only", "GCC-exception-3.1"),
}

# Version-less family names whose members are spelled with a common id prefix.
_FAMILY_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "BSD": ("BSD-", "0BSD"),
    "BSD-style": ("BSD-", "0BSD"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Index:
    exact: Mapping[str, KnownId]  # lower-case id or alias -> id
    keys: Mapping[str, KnownId]  # spelling key -> id (unambiguous keys only)
    families: Mapping[str, Family]  # spelling key without its version -> members


@cache
def _index() -> _Index:
    """Built once (pure: two threads building it at once get equal results)."""
    exact: dict[str, KnownId] = {}
    spellings: list[tuple[str, str]] = []  # (text, the id it spells)
    for key, aliases, is_exception in library_symbols():
        if _is_ref(key):
            continue  # scancode's own licenses: LicenseRefs, not on the SPDX list
        exact[key.lower()] = KnownId(key, is_exception and key not in EXPANDED)
        spellings.append((key, key))
        for alias in aliases:
            if _is_ref(alias):
                continue  # a document's own name for a license; not a spelling of it
            exact.setdefault(alias.lower(), exact[key.lower()])
            spellings.append((alias, key))
    for entries, is_exception in ((_spdx_list.LICENSES, False), (_spdx_list.EXCEPTIONS, True)):
        for spdx_id, name in entries:
            known = exact.get(spdx_id.lower())
            if spdx_id not in EXPANDED and (
                known is None or (known.id == spdx_id and known.is_exception != is_exception)
            ):
                # New to license-expression's index, or filed there as the other kind
                # (`MPL-2.0-no-copyleft-exception` is a license): the SPDX list decides.
                known = exact[spdx_id.lower()] = KnownId(spdx_id, is_exception)
            elif known is None:
                known = exact[spdx_id.lower()] = KnownId(spdx_id, False)
            spellings.extend(((spdx_id, known.id), (name, known.id)))
    keyed: dict[str, set[KnownId]] = {}
    for text, spdx_id in spellings:
        key = spelling_key(text)
        if key:
            keyed.setdefault(key, set()).add(exact[spdx_id.lower()])
    keys = {k: next(iter(v)) for k, v in keyed.items() if len(v) == 1}
    for spelling, spdx_id in _SPELLINGS.items():
        keys[spelling_key(spelling)] = exact[spdx_id.lower()]
    families = _families(keys, exact.values())
    for name, family in list(families.items()):
        if len(family.members) == 1:  # only one version listed: `Common Public License`
            (only,) = family.members
            keys[name] = exact[only.lower()]
            del families[name]
    return _Index(exact=exact, keys=keys, families=families)


def _is_ref(text: str) -> bool:
    return text.lower().startswith(("licenseref-", "documentref-"))


_VERSIONED = re.compile(r"(.+?) (\d+(?:\.\d+)*)(?: only)?")


def _families(keys: Mapping[str, KnownId], known: Iterable[KnownId]) -> dict[str, Family]:
    """`apache` -> Family(Apache-1.0, Apache-1.1, Apache-2.0): every listed license whose key
    is a name then a version (and `only`), grouped by the name."""
    members: dict[str, set[str]] = {}
    for key, target in keys.items():
        matched = _VERSIONED.fullmatch(key)
        if matched and not target.is_exception and not _glued(matched, target.id):
            members.setdefault(matched.group(1), set()).add(target.id)
    families = {k: Family(frozenset(v)) for k, v in members.items() if k not in keys}
    ids = {k.id for k in known if not k.is_exception}
    for name, prefixes in _FAMILY_PREFIXES.items():
        families[spelling_key(name)] = Family(
            frozenset(i for i in ids if i.startswith(prefixes) or i in prefixes)
        )
    return families


def _glued(matched: re.Match[str], spdx_id: str) -> bool:
    """Whether the key's "version" is digits the id writes glued to the name (`X11`, `HDF5`,
    `SGP4`, `CC0-1.0`'s `0`): part of the name, not a version, so `X` does not name X11, nor
    `CC` CC0-1.0."""
    last = matched.group(1).rpartition(" ")[2]
    return (
        re.search(rf"{re.escape(last)}{re.escape(matched.group(2))}(?![0-9])", spdx_id.lower())
        is not None
    )


def known_id(text: str) -> KnownId | None:
    """The id `text` is (an SPDX id or an alias license-expression knows), any case."""
    return _index().exact.get(text.lower())


_TROVE = re.compile(r"\s*license\s*::\s*(?:(?:osi|dfsg) approved\s*::\s*)?", re.IGNORECASE)
_PARENTHESISED = re.compile(r"\(([^()]*)\)")
_OPERATORS = frozenset({"and", "or", "with"})


@lru_cache(maxsize=8192)
def resolve_spelling(text: str) -> KnownId | Family | None:
    """What license (or exception) `text` names, if it names one; None when unknown."""
    text = clean_text(text).strip(" \"'")
    if not text:
        return None
    trove = _TROVE.match(text)
    if trove:  # `License :: OSI Approved :: MIT License` (a PyPI trove classifier)
        text = text[trove.end() :]
    found = _resolve_plain(text)
    if found is None and "(" in text:
        found = _resolve_parenthesised(text)
    return found


def _resolve_plain(text: str) -> KnownId | Family | None:
    index = _index()
    exact = index.exact.get(text.lower())
    if exact is not None:
        return exact
    if not _balanced(text):
        return None  # `(MIT`: not a name, and not an expression either
    key = spelling_key(text)  # parentheses too: `Artistic License 1.0 (Perl)` is a name
    if not key:
        return None
    found = index.keys.get(key)
    if found is None:
        # A version without `only` or `or later` is the `only` one, as SPDX's deprecated
        # `GPL-3.0` is `GPL-3.0-only`.
        found = index.keys.get(f"{key} only")
    if found is not None:
        return found
    return index.families.get(key)


def _resolve_parenthesised(text: str) -> KnownId | Family | None:
    """`GNU General Public License v3 (GPLv3)`, `ISC License (ISCL)`: a name with its
    abbreviation. Every part in parentheses must name the license too (`Apache License 2.0
    (modified)` is not Apache-2.0), and no part may disagree; the name outside may be one
    sbomgate does not know (`CC0 1.0 Universal (CC0 1.0) Public Domain Dedication`)."""
    if not _balanced(text):
        return None
    parts = [_PARENTHESISED.sub(" ", text), *_PARENTHESISED.findall(text)]
    if len(parts) == 1:
        return None
    found: list[KnownId | Family | None] = []
    for part in parts:
        resolved = _resolve_plain(part)
        if resolved is None and (found or _OPERATORS.intersection(spelling_key(part).split())):
            # An unknown qualifier (`(modified)`), or an expression (`GPL-3.0-only AND (MIT)`)
            # rather than a name.
            return None
        found.append(resolved)
    named = [r for r in found if r is not None]
    ids = {r.id for r in named if isinstance(r, KnownId)}
    families = [r for r in named if isinstance(r, Family)]
    if len(ids) > 1:
        return None  # the name and its abbreviation say different things
    if ids:
        (spdx_id,) = ids
        if all(spdx_id in f.members for f in families):
            return _index().exact[spdx_id.lower()]
        return None
    return families[0] if all(f == families[0] for f in families) else None


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0
