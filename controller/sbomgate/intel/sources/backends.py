"""The registry of backends: the one place a new kind of repository is plugged in."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sbomgate.intel.sources.apt import AptBackend
from sbomgate.intel.sources.go import GoBackend
from sbomgate.intel.sources.interface import SourceBackend, SourceKind
from sbomgate.intel.sources.maven import MavenBackend
from sbomgate.intel.sources.npm import NpmBackend
from sbomgate.intel.sources.pypi import PypiBackend
from sbomgate.intel.sources.rpm import RpmBackend

BACKENDS: Mapping[SourceKind, SourceBackend] = MappingProxyType(
    {
        b.kind: b
        for b in (
            PypiBackend(),
            NpmBackend(),
            MavenBackend(),
            GoBackend(),
            AptBackend(),
            RpmBackend(),
        )
    }
)
# purl type -> the kind of source that can vouch for it.
PURL_KINDS: Mapping[str, SourceKind] = MappingProxyType(
    {purl_type: b.kind for b in BACKENDS.values() for purl_type in b.purl_types}
)
