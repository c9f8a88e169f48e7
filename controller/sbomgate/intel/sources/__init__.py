"""Trusted package sources: is this package, at this version, in a repository we trust?

A package is trusted only when one of the organisation's repositories lists it at that exact
version. `TrustedSources` asks the sources of the component's ecosystem in their configured
order, each through the backend of its kind:

    interface  the SourceBackend protocol, SourceConfig (with its hosting: hosted or proxied),
               SourceAnswer, Listing, VersionInfo, SourceFault
    backends   the backends by kind, and which purl types each can vouch for
    pypi       PyPI simple API (PEP 691 JSON, PEP 503 HTML)
    npm        npm registry API
    maven      Maven repository layout
    go         Go module proxy
    apt        Debian / Ubuntu repositories (signed InRelease, Packages indexes)
    rpm        RPM repositories (signed repomd.xml, primary.xml)
    openpgp    the OpenPGP keyrings and signatures those two are verified with (Sequoia)
    indexes    their signed indexes: bounded decompression, parsed once, kept by digest
    common     dates and digests as the backends read them
    trusted    TrustedSources: order, cache, per-host limits, transport, digest comparison

Every request goes through the registry `Transport` (allow-list, address guard, size caps,
deadlines). Components are asked about by their canonical identity (`sbomgate.identity`).
The answers can be exported as an offline facts snapshot (`sbomgate.intel.snapshot`).
"""

from __future__ import annotations

from sbomgate.intel.model import DEFAULT_HOSTING, HOSTINGS, Hosting
from sbomgate.intel.snapshot import export_snapshot
from sbomgate.intel.sources.backends import BACKENDS, PURL_KINDS
from sbomgate.intel.sources.interface import (
    HASH_ALGORITHMS,
    OS_KINDS,
    SOURCE_KINDS,
    Distribution,
    Listing,
    SourceAnswer,
    SourceBackend,
    SourceClient,
    SourceConfig,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.intel.sources.trusted import TrustedSources

__all__ = [
    "BACKENDS",
    "DEFAULT_HOSTING",
    "HASH_ALGORITHMS",
    "HOSTINGS",
    "OS_KINDS",
    "PURL_KINDS",
    "SOURCE_KINDS",
    "Distribution",
    "Hosting",
    "Listing",
    "SourceAnswer",
    "SourceBackend",
    "SourceClient",
    "SourceConfig",
    "SourceFault",
    "SourceKind",
    "TrustedSources",
    "VersionInfo",
    "export_snapshot",  # lives with the snapshot format; `sbomgate snapshot` imports it here
]
