"""Typosquat signal: the well-known package name that an unknown name is a near miss of.

A name that was not found in any trusted repository is often a typo (``reqeusts``), a
squat on a popular name (``crossenv`` for ``cross-env``, ``python-requests`` for
``requests``) or a hallucinated / slopsquatted dependency. :class:`TyposquatDetector`
compares it with lists of popular names per ecosystem (purl type) and returns the closest
popular name, which the policies show as "did you mean ...?".

Checks, in order (the first hit wins; an exact well-known name is never flagged):

1. the same name up to case or separators (``-`` ``_`` ``.``, none; for npm also the scope
   markers, so ``@scope/name``, ``scope-name`` and ``scopename`` meet). For PyPI, names equal
   under PEP 503 normalisation are the same package and are not flagged;
2. for PyPI, the name with a language affix removed (``python-``, ``py``, ``-python``, ``-py``)
   or added (``python-``, ``-python``): ``python-requests``, ``requests-py``, ``dateutil`` for
   ``python-dateutil`` (npm's ``node-``/``-js`` are left out: too many real packages differ
   only by them);
3. the closest popular name by optimal-string-alignment distance (Damerau-Levenshtein where a
   transposition counts as one edit), at most 1 edit for names of 5 to 8 characters and 2 for
   longer ones; names of 4 characters or fewer are too short to tell a typo from another
   package. The threshold is set by the part that differs: for ``@scope/name`` by the name part,
   and for names sharing leading/trailing tokens (``django-cte`` / ``django-csp``) by the tokens
   that differ. A near miss must keep the first character (or swap the first two), and names
   that differ only in digits (``gitdb2`` / ``gitdb``, ``listr`` / ``listr2``) are versioned
   siblings, not typos. Ties go to the more popular name.

Tuned on the 10,000 next-most-popular names of each ecosystem (real packages, none in the
lists): about 2 % of PyPI's and 1.3 % of npm's are reported, mostly genuine near-duplicates
(``config-parser``, ``git-python``, ``babel-register`` for ``@babel/register``). Lookups take
roughly 10-20 microseconds.

The bundled lists (``intel/data/popular-<type>.txt``) are ordered most popular first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from urllib.parse import unquote

from rapidfuzz import process
from rapidfuzz.distance import OSA

__all__ = ["Query", "TyposquatDetector", "fuzzy_threshold"]

# `TyposquatDetector.closest`'s arguments: (purl type, name, namespace).
Query = tuple[str, str, str | None]

# purl types whose lists are bundled, and the aliases that name the same ecosystem.
_BUNDLED = ("pypi", "npm")
_TYPE_ALIASES = {"python": "pypi", "pip": "pypi", "node": "npm", "javascript": "npm"}

_PEP503 = re.compile(r"[-_.]+")
_LOOSE = re.compile(r"[-_.@/]+")

# Affixes that squatters add to (or drop from) a popular name.
# (prefixes to strip, suffixes to strip, prefixes to add, suffixes to add), on the normalised
# name. npm's node-/-js affixes are left out: too many real packages differ only by them.
_AFFIXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "pypi": (
        ("python-", "python", "py-", "py"),
        ("-python", "python", "-py", "py"),
        ("python-",),
        ("-python",),
    ),
}
_DIGITS = re.compile(r"[0-9]+")
_MAX_HITS = 16
# Candidate lists remembered per ecosystem (then forgotten all at once): about 70 names each,
# some 2 MB when full.
_MAX_CHOICE_LISTS = 4096


def _canon_type(purl_type: str) -> str:
    t = purl_type.strip().lower()
    return _TYPE_ALIASES.get(t, t)


def fuzzy_threshold(length: int) -> int:
    """The largest edit distance still treated as a typo for a name of this length."""
    if length <= 4:
        return 0
    if length <= 8:
        return 1
    return 2


def _core_length(norm: str) -> int:
    """Length that sets the threshold: for ``@scope/name`` the name part."""
    return len(norm.rsplit("/", 1)[-1])


@dataclass(kw_only=True)
class _Ecosystem:
    purl_type: str
    # normalised name -> the well-known spelling (first, i.e. most popular, wins)
    display: dict[str, str] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)
    # identities that are "the same package" as a well-known one (never flagged)
    exact: set[str] = field(default_factory=set)
    # separator-free key -> normalised name
    loose: dict[str, str] = field(default_factory=dict)
    # normalised names by (first character, length), most popular first
    buckets: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    # The near-miss candidates of a name, by what they depend on (`_choices`): the buckets put
    # together once, not for every name looked up. Bounded: the names looked up are the SBOM
    # writer's, and so are the characters and lengths these are keyed by.
    choices: dict[tuple[str, str, int, int], list[str]] = field(default_factory=dict)

    def norm(self, name: str) -> str:
        if self.purl_type == "pypi":
            return _PEP503.sub("-", name).lower()
        return name.lower()

    def identity(self, name: str) -> str:
        # PyPI treats PEP 503-equal names as one project; npm (and the rest) compare as spelt.
        if self.purl_type == "pypi":
            return self.norm(name)
        return name

    def add(self, name: str) -> None:
        name = name.strip()
        if not name or name.startswith("#"):
            return
        n = self.norm(name)
        self.exact.add(self.identity(name))
        if n in self.display:
            return
        self.display[n] = name
        self.rank[n] = len(self.rank)
        self.loose.setdefault(_LOOSE.sub("", n), n)
        key = _fuzzy_key(n)
        if len(key) >= 2:
            self.buckets.setdefault((key[0], len(key)), []).append(n)
            self.choices.clear()

    def _affix_variants(self, n: str) -> list[str]:
        """The name with a language affix removed, then with one added."""
        strip_p, strip_s, add_p, add_s = _AFFIXES.get(self.purl_type, ((), (), (), ()))
        out: list[str] = []
        for p in strip_p:
            if n.startswith(p) and len(n) - len(p) >= 2:
                out.append(n[len(p) :].strip("-_."))
        for s in strip_s:
            if n.endswith(s) and len(n) - len(s) >= 2:
                out.append(n[: -len(s)].strip("-_."))
        out += [p + n for p in add_p] + [n + s for s in add_s]
        return [v for v in out if v]

    def _choices(self, first: str, second: str, length: int, max_d: int) -> list[str]:
        """The names a typo of a `length`-character name starting `first` `second` may be of:
        a typo keeps the first character (or swaps the first two), so by that bucket."""
        found = self.choices.get((first, second, length, max_d))
        if found is None:
            found = []
            for size in range(length - max_d, length + max_d + 1):
                found += self.buckets.get((first, size), [])
            if second != first:
                found += self.buckets.get((second, length), [])
            if len(self.choices) >= _MAX_CHOICE_LISTS:
                self.choices.clear()
            self.choices[(first, second, length, max_d)] = found
        return found

    def _fuzzy(self, n: str) -> str | None:
        key = _fuzzy_key(n)
        max_d = fuzzy_threshold(_core_length(n))
        if max_d == 0 or len(key) < 2:
            return None
        choices = self._choices(key[0], key[1], len(key), max_d)
        if not choices:
            return None
        hits = process.extract(n, choices, scorer=OSA.distance, score_cutoff=max_d, limit=_MAX_HITS)
        ranked = sorted((int(d), self.rank[c], c) for c, d, _ in hits)
        for d, _, cand in ranked:
            if _plausible_typo(n, cand, d):
                return cand
        return None

    def closest(self, name: str) -> str | None:
        n = self.norm(name)
        if (n if self.purl_type == "pypi" else name) in self.exact:  # identity(name)
            return None
        # 1. same name up to case (npm) or separators / scope markers
        if n in self.display:
            return self.display[n]
        key = _LOOSE.sub("", n)
        if key in self.loose:
            return self.display[self.loose[key]]
        # 2. a language affix removed or added
        for v in self._affix_variants(n):
            if v in self.display:
                return self.display[v]
            k = _LOOSE.sub("", v)
            if k in self.loose:
                return self.display[self.loose[k]]
        # 3. near misses
        hit = self._fuzzy(n)
        return self.display[hit] if hit is not None else None


def _fuzzy_key(n: str) -> str:
    return n.lstrip("@")


def _tokens(n: str) -> list[str]:
    return [t for t in _LOOSE.split(n) if t]


def _differing_core(a: str, b: str) -> str:
    """The tokens of ``a`` left once the tokens it shares with ``b`` at both ends are dropped."""
    ta, tb = _tokens(a), _tokens(b)
    while ta and tb and ta[0] == tb[0]:
        ta, tb = ta[1:], tb[1:]
    while ta and tb and ta[-1] == tb[-1]:
        ta, tb = ta[:-1], tb[:-1]
    return "".join(ta)


def _plausible_typo(query: str, cand: str, distance: int) -> bool:
    ka, kb = _fuzzy_key(query), _fuzzy_key(cand)
    # first character kept, or the first two swapped
    if ka[0] != kb[0] and ka[:2] != kb[1::-1]:
        return False
    # versioned siblings (gitdb2/gitdb, listr/listr2, linux-arm/linux-arm64) are not typos
    if _DIGITS.sub("", query) == _DIGITS.sub("", cand):
        return False
    # django-cte vs django-csp: judge the edit by the length of the part that differs
    core = _differing_core(query, cand)
    return distance <= fuzzy_threshold(len(core) if core else len(ka))


class TyposquatDetector:
    """Finds the well-known package name that a name is probably a typo or squat of."""

    def __init__(self, well_known: Mapping[str, Iterable[str]]) -> None:
        self._lists = {t: tuple(names) for t, names in well_known.items()}
        self._ecosystems: dict[str, _Ecosystem] = {}
        for purl_type, names in self._lists.items():
            t = _canon_type(purl_type)
            eco = self._ecosystems.setdefault(t, _Ecosystem(purl_type=t))
            for name in names:
                eco.add(name)
        # Answers by (type, name, namespace): a new build lists the packages of the one before,
        # and the fuzzy search is most of a package's facts (22 ms of a 5,000-package image).
        self._answers: dict[Query, str | None] = {}

    @classmethod
    def default(cls) -> TyposquatDetector:
        """A detector over the bundled popular-name lists (loaded once, then shared)."""
        return _default_detector()

    def ecosystems(self) -> frozenset[str]:
        """The purl types it has popular-name lists for."""
        return frozenset(self._ecosystems)

    def lists(self) -> dict[str, tuple[str, ...]]:
        """The popular-name lists it was made with (a detector made with them answers alike)."""
        return dict(self._lists)

    def covers(self, purl_type: str | None) -> bool:
        """Whether it has a popular-name list for the purl type (so may find a near miss)."""
        return bool(purl_type) and _canon_type(purl_type or "") in self._ecosystems

    def answered(self, query: Query) -> bool:
        """Whether it has an answer for `closest(*query)` without working it out."""
        return query in self._answers

    def remember(self, query: Query, answer: str | None) -> None:
        """Keep `answer` as `closest(*query)`'s: one worked out elsewhere with the same lists
        (`intel._typohelper`)."""
        if len(self._answers) >= _MAX_ANSWERS:
            self._answers.clear()  # bounded; the next builds fill it again
        self._answers[query] = answer

    def closest(self, purl_type: str, name: str, namespace: str | None = None) -> str | None:
        """The well-known name that ``name`` looks like a typo or squat of, else None.

        ``purl_type`` is the purl type (``pypi``, ``npm``; ``python`` is accepted for PyPI);
        ``namespace`` the purl namespace (an npm scope, with or without ``@``, percent-encoded
        or not). ``name`` may be the bare name (the purl's) or already carry the scope, as an
        SBOM's component name does (``@babel/core``): the scope is added only once. Returns
        None for a well-known name itself, an unrelated name, or an ecosystem without a list.
        """
        key = (purl_type, name, namespace)
        try:
            return self._answers[key]
        except KeyError:
            pass
        eco = self._ecosystems.get(_canon_type(purl_type or ""))
        if eco is None or not name or not name.strip():
            return None
        found = eco.closest(_full_name(eco.purl_type, unquote(name.strip()), namespace))
        self.remember(key, found)
        return found


# About 10 MB of remembered answers at most.
_MAX_ANSWERS = 65536


def _full_name(purl_type: str, name: str, namespace: str | None) -> str:
    """The name with its namespace (``@scope/name`` for npm), the namespace added once.

    Given ``@babel/core`` and ``@babel`` (an SBOM's name field and the purl's namespace), the
    name already carries the scope; prefixing it again (``@babel/@babel/core``) made every
    scoped near miss an unrelated name (no "did you mean" for any of them)."""
    if not namespace or not namespace.strip():
        return name
    ns = unquote(namespace.strip()).strip("/")
    if purl_type == "npm":
        scope = f"@{ns.lstrip('@')}"
        carried = (f"{scope}/", f"{ns.lstrip('@')}/")
        if name.startswith(carried):
            return f"{scope}/{name.split('/', 1)[1]}"
        return f"{scope}/{name}"
    return name if name.startswith(f"{ns}/") else f"{ns}/{name}"


def _read_list(purl_type: str) -> list[str]:
    text = (
        resources.files("sbomgate.intel")
        .joinpath("data", f"popular-{purl_type}.txt")
        .read_text(encoding="utf-8")
    )
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@cache
def _default_detector() -> TyposquatDetector:
    return TyposquatDetector({t: _read_list(t) for t in _BUNDLED})
