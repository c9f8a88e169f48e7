"""An offline facts snapshot: exported trusted-repository answers and advisories, keyed by purl.

The format (JSON or YAML):

    packages:
      "pkg:pypi/requests@2.31.0":
        repository: {name: pypi-internal, url: "https://pypi.internal/simple"}
        published_at: "2023-05-22T15:12:42Z"
        osv: [ {OSV record}, ... ]

A component whose purl (or purl without qualifiers and subpath) is not listed gets no facts:
`repository: null`, which the bundled policies treat as unverified (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbomgate._internal.documents import load_json_or_yaml
from sbomgate.errors import InputError
from sbomgate.policy.input import NO_FACTS, PackageFacts
from sbomgate.sbom.model import Component
from sbomgate.sbom.purl import parse_purl

MAX_SNAPSHOT_BYTES = 256 << 20


def _bare(purl: str) -> str:
    return purl.split("#", 1)[0].split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class FactsSnapshot:
    packages: Mapping[str, PackageFacts]

    def __call__(self, component: Component) -> PackageFacts:
        if not component.purl:
            return NO_FACTS
        found = self.packages.get(component.purl) or self.packages.get(_bare(component.purl))
        return found or NO_FACTS


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
        {_canonical(str(p)): _facts(str(file), str(p), e) for p, e in packages.items()}
    )


def _canonical(purl: str) -> str:
    """The purl as SBOM components carry it (`+` in a version is `%2B`, PyPI names
    normalised, ...), so a hand-written key matches; an unparsable key is kept as written."""
    try:
        return parse_purl(purl).canonical
    except ValueError:
        return purl
