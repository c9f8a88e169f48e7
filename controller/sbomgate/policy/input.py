"""Building `input.v0`, the document a policy sees (Cloudsmith's PolicyInputV0, extended).

Every key is always present; a fact we do not know is `null`, never absent, so policies written
against Cloudsmith's cookbook (whose tests feed `license: null`, `osv: null`) behave the same.

Added to Cloudsmith's shape (its fields are unchanged):
- `identity.canonical`: the package's canonical identity (`sbomgate.identity`), which every
  lookup used: `{type, package, version, origin, source, disagreements}`; null without a purl.
  `disagreements` lists where the SBOM's own name, group or version fields name something else
  than the purl.
- `lists`: `{allow, blocklist, quarantine}`, the entries of `data.sbomgate.<list>` that name
  this package, matched in Python against the canonical identity (`intel/lists.py`), each
  `{entry, version, reason, uncertain}`; `uncertain` says why the version could not be
  compared (deny lists count such a package as listed).
- `package.upstream_metadata.first_published_at`: when the project's first release (any
  version) was published, as the vouching repository says (null: it does not say), next to
  `published_at`, this version's.
- `repository.hosting`: `hosted` or `proxied` (`intel.model.Hosting`), beside the vouching
  repository's `name`, `url` and `kind`.
- `package.upstream_metadata.published_days_ago` and `first_published_days_ago`: whole days
  (rounded down; negative: dated in the future) from `published_at` and `first_published_at`
  to the evaluation's clock, null when the timestamp is null or cannot be read (see
  `days_since`). Computed here, once, so that a policy about age reads no clock: its outcome
  depends on the input alone and can be kept across images (`policy/outcomes.py`).
- `image_subject`: true in the image-level evaluation (where `sbom` is set), false for every
  package. A policy that needs only to tell the two apart reads this rather than `sbom`, and
  is then evaluated without the whole SBOM (`PolicyEngine`: parsing it per policy is most of
  an image's evaluation).
- `identity.purl_type`: the type of the purl as written (what lies between `pkg:` and the first
  `/`), lowercased; null when the purl is not a string starting with `pkg:`. A policy that
  needs only the type reads this rather than `package.purl`, so that its `match` does not
  depend on the package's name and its outcome is reused across packages (`PolicyEngine`).
- `package.license.spdx_terms`: `oss_license.spdx_identifier` split into its terms (see
  `spdx_terms`), so that a license policy does not tokenise the same expression again for
  every package; null when there is no expression.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

import orjson

from sbomgate.identity import PackageIdentity, identity_of

# Re-exported: the facts lived here, and `from sbomgate.policy.input import PackageFacts` works.
from sbomgate.intel.model import NO_FACTS as NO_FACTS
from sbomgate.intel.model import PackageFacts as PackageFacts
from sbomgate.sbom.model import Component, JsonDocument, Sbom

ListMatches = Mapping[str, Sequence[Mapping[str, Any]]]
NO_LIST_MATCHES: ListMatches = {"allow": (), "blocklist": (), "quarantine": ()}


class ListMatcher(Protocol):
    """The compiled data lists (`intel.lists.PackageLists`)."""

    def match(self, identity: PackageIdentity | None) -> ListMatches:
        """The list entries that name `identity`, per list."""


_NS_PER_DAY = 24 * 60 * 60 * 1_000_000_000
# What a readable timestamp is: RFC 3339 (1970 to 2199, at most nanoseconds) or a bare date,
# midnight UTC. Anything else is unreadable, never old. (The bundled policies read ages only
# from here, so this is the one place that decides.)
_DATE = r"(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_RFC3339 = re.compile(
    _DATE + r"T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,9}))?"
    r"(?:Z|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))"
)
_DATE_ONLY = re.compile(_DATE)
# Whitespace around the parentheses of an SPDX expression, so that they split as terms.
_PARENTHESES = str.maketrans({"(": " ( ", ")": " ) "})


@lru_cache(maxsize=65536)
def timestamp_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 timestamp or a bare `YYYY-MM-DD` (midnight
    UTC); None when it is neither, or names no real calendar date (`2024-02-30`)."""
    found = _RFC3339.fullmatch(text) or _DATE_ONLY.fullmatch(text)
    if found is None:
        return None
    year, month, day = (int(found.group(i)) for i in (1, 2, 3))
    if day > calendar.monthrange(year, month)[1]:
        return None
    if found.re is _DATE_ONLY:
        return calendar.timegm((year, month, day, 0, 0, 0)) * 1_000_000_000
    hour, minute, second = (int(found.group(i)) for i in (4, 5, 6))
    fraction = found.group(7) or ""
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    if found.group(8):
        offset = int(found.group(9)) * 3600 + int(found.group(10)) * 60
        seconds -= offset if found.group(8) == "+" else -offset
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))


def days_since(timestamp: str | None, now_ns: int) -> int | None:
    """Whole days from `timestamp` to `now_ns`, rounded down (so -1 for a moment later today:
    in the future); None when the timestamp is missing or unreadable (`timestamp_ns`).

    A policy comparing these to a minimum (`days < 14`) decides as it would on nanoseconds for
    a whole number of days; for a fractional minimum it errs towards "too young"."""
    if timestamp is None:
        return None
    published = timestamp_ns(timestamp)
    if published is None:
        return None
    return (now_ns - published) // _NS_PER_DAY


def day_window(facts: PackageFacts, now_ns: int) -> tuple[int, int]:
    """The clock readings [start, end) around `now_ns` over which every day count the input
    holds of `facts` (`published_days_ago`, `first_published_days_ago`) stays as it is at
    `now_ns`: an input made at `now_ns` is the same for any clock in it."""
    start, end = -(1 << 80), 1 << 80
    for timestamp in (facts.published_at, facts.first_published_at):
        published = timestamp_ns(timestamp) if timestamp is not None else None
        if published is None:
            continue  # null whatever the clock
        day_start = published + (now_ns - published) // _NS_PER_DAY * _NS_PER_DAY
        start, end = max(start, day_start), min(end, day_start + _NS_PER_DAY)
    return start, end


@lru_cache(maxsize=8192)
def spdx_terms(expression: str) -> tuple[str, ...]:
    """An SPDX expression's terms as a license policy reads them: parentheses, `AND`, `OR`
    and license ids, in order, with each `WITH <exception>` left out (the license it qualifies
    is what is judged). Keywords keep their spelling; the bundled license policy compares them
    case-insensitively, and tokenises `spdx_identifier` the same way when this is absent."""
    tokens = expression.translate(_PARENTHESES).split()
    terms: list[str] = []
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token.upper() == "WITH":
            skip = True
        else:
            terms.append(token)
    return tuple(terms)


def _license(component: Component) -> dict[str, Any] | None:
    if component.license is None and component.raw_license is None:
        return None
    expression = component.license
    return {
        "oss_license": ({"spdx_identifier": expression} if expression is not None else None),
        "raw_license": component.raw_license,
        "spdx_terms": list(spdx_terms(expression.strip())) if expression else None,
    }


def package_document(
    component: Component, facts: PackageFacts = NO_FACTS, *, now_ns: int | None = None
) -> dict[str, Any]:
    """`input.v0.package`: the component's own fields and what the facts say of it; ages are
    counted to `now_ns` (default: the clock now)."""
    now = time.time_ns() if now_ns is None else now_ns
    return {
        "name": component.name,
        "version": component.version,
        "format": component.format,
        "purl": component.purl,
        "license": _license(component),
        "checksum_sha256": component.hashes.get("sha256"),
        "upstream_metadata": {
            "published_at": facts.published_at,
            "first_published_at": facts.first_published_at,
            "published_days_ago": days_since(facts.published_at, now),
            "first_published_days_ago": days_since(facts.first_published_at, now),
            "checksum_mismatch": facts.checksum_mismatch,
            "yanked": facts.yanked,
        },
        "typosquat_of": facts.typosquat_of,
        "tags": [{"name": t} for t in facts.tags],
        "files": [],
    }


def identity_document(
    component: Component,
    identity: PackageIdentity | None = None,
    disagreements: Sequence[str] = (),
) -> dict[str, Any]:
    """`input.v0.identity`: the SBOM's name fields and the canonical identity."""
    canonical = None
    if identity is not None:
        canonical = identity.to_input()
        canonical["disagreements"] = list(disagreements)
    return {
        "namespace": component.namespace,
        "name": component.name,
        "version": component.version,
        "qualifiers": dict(component.qualifiers),
        "format": component.format,
        "purl_type": purl_type(component.purl),
        "canonical": canonical,
    }


def purl_type(purl: str | None) -> str | None:
    """`identity.purl_type`: Rego's `lower(split(trim_prefix(purl, "pkg:"), "/")[0])` for a
    purl starting with `pkg:`, else None."""
    if not isinstance(purl, str) or not purl.startswith("pkg:"):
        return None
    return purl[4:].split("/", 1)[0].lower()


def build_input(
    component: Component | None,
    *,
    sbom: Sbom | None = None,
    facts: PackageFacts = NO_FACTS,
    image: Mapping[str, Any] | None = None,
    workload: Mapping[str, Any] | None = None,
    lists: ListMatcher | None = None,
    disagreements: Sequence[str] = (),
    now_ns: int | None = None,
    sbom_document: bool = True,
) -> dict[str, Any]:
    """`{"v0": {...}}` for one package; pass `sbom` only for the image-level (subject) input,
    `lists` to match the data lists, `disagreements` from `identity.component_disagreements`,
    `now_ns` for the clock ages are counted to (default: now). With `sbom_document=False` the
    subject's `input.v0.sbom` is null (for policies that do not read it)."""
    identity = identity_of(component) if component is not None else None
    return {
        "v0": {
            "package": package_document(component, facts, now_ns=now_ns) if component else None,
            "identity": (
                identity_document(component, identity, disagreements) if component else None
            ),
            "lists": lists.match(identity) if lists is not None else NO_LIST_MATCHES,
            "osv": list(facts.osv) if facts.osv is not None else None,
            "vulnerabilities": (
                list(facts.vulnerabilities) if facts.vulnerabilities is not None else None
            ),
            "repository": facts.repository,
            "sbom": _sbom_value(sbom.document) if sbom is not None and sbom_document else None,
            "image_subject": sbom is not None,
            "image": image,
            "workload": workload,
        }
    }


# The fields of a component and of its facts that `build_input` does not read, so that
# `input_fingerprint` leaves them out: a bom-ref (Trivy writes a new UUID per scan) or where a
# file was found must not make the same package a new one. A test checks that changing any of
# them leaves the input as it was, and that every other field is in the fingerprint.
UNREAD_COMPONENT_FIELDS = frozenset({"bom_ref", "license_error", "locations", "type"})
UNREAD_FACT_FIELDS = frozenset({"unavailable"})


def _sbom_value(document: Mapping[str, Any]) -> Any:
    """`input.v0.sbom`: the document, or its JSON text as it is when it is kept as text (the
    input is written by orjson, which copies a Fragment verbatim)."""
    if type(document) is JsonDocument:
        return orjson.Fragment(document.json)
    return document


def input_fingerprint(
    component: Component,
    *,
    facts: PackageFacts = NO_FACTS,
    disagreements: Sequence[str] = (),
    now_ns: int,
) -> bytes:
    """Bytes that determine `build_input(component, facts=facts, disagreements=disagreements,
    now_ns=now_ns, lists=L)` for one list matcher L: equal bytes, equal input (the ages are in
    as the day counts the input holds, not as the clock).

    It is what the input is made of, serialised as it is (about a fifth of building and
    serialising the input): a new build's packages are mostly known, and their input need not
    be built at all when the outcome cache has their outcomes (`PolicyEngine.evaluate_sbom`).
    Hashes other than SHA-256 are left out with the fields in UNREAD_COMPONENT_FIELDS: the
    input does not hold them."""
    return orjson.dumps(
        (
            component.name,
            component.version,
            component.purl,
            component.purl_type,
            component.namespace,
            component.qualifiers,
            component.format,
            component.license,
            component.raw_license,
            component.hashes.get("sha256"),
            facts.repository,
            facts.published_at,
            facts.first_published_at,
            days_since(facts.published_at, now_ns),
            days_since(facts.first_published_at, now_ns),
            facts.osv,
            facts.vulnerabilities,
            facts.tags,
            facts.typosquat_of,
            facts.checksum_mismatch,
            facts.yanked,
            tuple(disagreements),
        ),
        default=_plain,
    )


def _plain(value: object) -> object:
    """A mapping that is not a dict (a read-only view), as orjson serialises a dict."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
