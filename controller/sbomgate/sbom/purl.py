"""Package URLs: canonicalisation (packageurl-python semantics, with a fast path) and the
Cloudsmith format slug of a purl type.

Why a fast path: on this 2-core machine `PackageURL.from_string(s).to_string()` costs about
12 µs per purl (5,000 distinct purls: ~60 ms), which alone is most of the 100 ms budget for
parsing a 5,000-component SBOM, and caching does not help because the purls of one SBOM are
distinct. `_fast_parse` accepts only purls whose every part is made of characters that
`urllib.parse.quote` leaves alone (plus the few spellings handled explicitly below), for which
the library's normalisation reduces to the simple per-type rules re-stated here; anything else
(percent escapes other than `%40`/`%2B`, subpaths, non-ASCII, the types with unusual rules)
goes to the library. tests/unit/sbom/test_sbom_purl.py checks the fast path against the library on a
corpus and on generated strings. The fast path costs ~1.5 µs per purl.

One deliberate difference from packageurl-python 0.17: npm names keep their case. npm names are
case-sensitive (`JSONStream` and `jsonstream` are two packages; purl-spec#872 made the spec say
so, packageurl-python#230 is open), and lower-casing them sent lookups to the wrong package.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, unquote

from packageurl import PackageURL

__all__ = ["ParsedPurl", "format_for_purl_type", "parse_purl"]


class ParsedPurl(NamedTuple):
    """A purl split into its decoded parts, plus its canonical string."""

    canonical: str
    type: str
    namespace: str | None
    name: str
    version: str | None
    qualifiers: dict[str, str]
    subpath: str | None


# purl type -> Cloudsmith package format slug. Any other type maps to itself.
_FORMATS: dict[str, str] = {
    "pypi": "python",
    "npm": "npm",
    "maven": "maven",
    "golang": "go",
    "cargo": "cargo",
    "gem": "ruby",
    "nuget": "nuget",
    "deb": "deb",
    "rpm": "rpm",
    "apk": "alpine",
    "oci": "docker",
    "docker": "docker",
    "composer": "composer",
    "conda": "conda",
    "cran": "cran",
    "hex": "hex",
    "pub": "dart",
    "swift": "swift",
    "cocoapods": "cocoapods",
    "hackage": "hackage",
    "conan": "conan",
    "generic": "raw",
}


def format_for_purl_type(purl_type: str | None) -> str | None:
    """Cloudsmith's format slug for a purl type (`pypi` -> `python`); None for no purl."""
    if purl_type is None:
        return None
    return _FORMATS.get(purl_type, purl_type)


# --- fast path --------------------------------------------------------------------------

# The types whose names (and namespaces) packageurl-python lower-cases.
_LOWER_NAME = frozenset(
    {
        "bitbucket",
        "github",
        "pypi",
        "gitlab",
        "composer",
        "luarocks",
        "oci",
        "alpm",
        "apk",
        "bitnami",
        "hex",
        "pub",
    }
)
_LOWER_NAMESPACE = frozenset(
    {"bitbucket", "github", "pypi", "gitlab", "composer", "luarocks", "qpkg", "alpm", "apk", "hex"}
)
_LOWER_VERSION = frozenset({"huggingface", "oci"})

_SEG = r"[A-Za-z0-9._~-]+"
_VAL = r"(?:[A-Za-z0-9._~:+-]|%2B)+"
_QVAL = r"(?:[A-Za-z0-9._~:/+-]|%2B)+"
_QKEY = r"[a-z][a-z0-9._-]*"
_FAST_RE = re.compile(
    rf"pkg:(?P<type>[a-z][a-z0-9._-]*)/"
    rf"(?P<path>(?:%40)?{_SEG}(?:/{_SEG})*)"
    rf"(?:@(?P<version>{_VAL}))?"
    rf"(?:\?(?P<qualifiers>{_QKEY}={_QVAL}(?:&{_QKEY}={_QVAL})*))?"
)


def _slow_type(purl_type: str) -> bool:
    # packageurl-python tests `ptype in ("mlflow")` and `ptype in ("cpan")`: those are
    # substring tests on a str, so every substring of those words takes a special path.
    return purl_type in "mlflow" or purl_type in "cpan" or purl_type == "pub"


def _fast_parse(purl: str) -> ParsedPurl | None:
    """Parse a purl made only of "safe" characters, or return None to use the library."""
    m = _FAST_RE.fullmatch(purl)
    if m is None:
        return None
    ptype, path, version, quals = m.group("type", "path", "version", "qualifiers")
    if _slow_type(ptype):
        return None
    segments = path.split("/")
    name = segments[-1]
    if name.startswith("%40"):
        return None  # `%40` is accepted only at the start of a namespace
    namespace: str | None = None
    ns_canon = ""
    if len(segments) > 1:
        ns_canon = "/".join(segments[:-1])
        if ptype in _LOWER_NAMESPACE:
            ns_canon = ns_canon.lower()
        namespace = "@" + ns_canon[3:] if ns_canon.startswith("%40") else ns_canon
    if ptype in _LOWER_NAME:
        name = name.lower()
    if ptype == "pypi" or ptype == "hackage":
        name = name.replace("_", "-")
    parts = ["pkg:", ptype, "/"]
    if namespace is not None:
        parts += (ns_canon, "/")
    parts.append(name)
    if version is not None:
        version = version.replace("%2B", "+")
        if ptype in _LOWER_VERSION:
            if "+" in version:
                return None  # the library lower-cases the escape too (`%2b`)
            version = version.lower()
        parts += ("@", version.replace("+", "%2B"))
    qualifiers: dict[str, str] = {}
    if quals is not None:
        previous = ""
        for pair in quals.split("&"):
            key, _, value = pair.partition("=")
            if key <= previous:
                return None  # unsorted or repeated keys: let the library decide
            previous = key
            qualifiers[key] = value.replace("%2B", "+")
        parts += ("?", "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in qualifiers.items()))
    return ParsedPurl(
        canonical="".join(parts),
        type=ptype,
        namespace=namespace,
        name=name,
        version=version,
        qualifiers=qualifiers,
        subpath=None,
    )


def _library_parse(purl: str) -> ParsedPurl:
    try:
        p = PackageURL.from_string(purl)
        canonical, name = p.to_string(), p.name
        if p.type == "npm":
            canonical, name = _npm_case(purl, canonical, p.namespace)
        if "/" in name:
            canonical = _slash_in_name(canonical, p.type, p.namespace)
    except TypeError:  # packageurl-python's to_string() when a part decodes to nothing
        raise ValueError("a part of the purl is empty once percent-decoded") from None
    qualifiers = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    return ParsedPurl(
        canonical=canonical,
        type=p.type,
        namespace=p.namespace or None,
        name=name,
        version=p.version or None,
        qualifiers=qualifiers,
        subpath=p.subpath,
    )


def _npm_case(purl: str, canonical: str, namespace: str | None) -> tuple[str, str]:
    """The library's canonical npm purl with the name as written (it lower-cases it)."""
    name = unquote(PackageURL.from_string(purl, normalize_purl=False).name).strip().strip("/")
    head = f"pkg:npm/{quote(namespace)}/" if namespace else "pkg:npm/"
    rest = canonical[len(head) :]
    end = min((i for i in (rest.find(c) for c in "@?#") if i >= 0), default=len(rest))
    return f"{head}{quote(name)}{rest[end:]}", name


def _slash_in_name(canonical: str, ptype: str, namespace: str | None) -> str:
    """The canonical purl with the `/` of a name written `%2F` again, as the purl specification
    says a name's `/` must be. packageurl-python 0.17 writes it bare, and the purl it writes then
    reads back as another package: `pkg:npm/gar%2Fpromise-retry` became the scoped-looking
    `pkg:npm/gar/promise-retry` (namespace `gar`)."""
    head = f"pkg:{ptype}/"
    rest = canonical[len(head) :]
    end = min((i for i in (rest.find(c) for c in "@?#") if i >= 0), default=len(rest))
    segments = rest[:end].split("/")
    kept = namespace.count("/") + 1 if namespace else 0
    path = "/".join([*segments[:kept], "%2F".join(segments[kept:])])
    return f"{head}{path}{rest[end:]}"


@lru_cache(maxsize=65536)
def parse_purl(purl: str) -> ParsedPurl:
    """Canonicalise a purl as `PackageURL.from_string(purl).to_string()` does.

    Raises ValueError (with packageurl-python's message) when the purl is invalid. Callers must
    not mutate the returned `qualifiers` dict: results are cached.
    """
    fast = _fast_parse(purl)
    if fast is not None:
        return fast
    return _library_parse(purl)
