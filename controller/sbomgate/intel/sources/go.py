"""The Go module proxy protocol (proxy.golang.org, Athens, Artifactory, a GOPROXY directory).

`<base>/<module>/@v/<version>.info` says the version exists (its `Time` is the publication
time), `<base>/<module>/@v/list` that the module does; module paths and versions are
case-encoded (`!` before a lower-cased capital).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import orjson

from sbomgate.identity import PackageIdentity, go_escape
from sbomgate.intel.sources.common import rfc3339
from sbomgate.intel.sources.interface import (
    Listing,
    SourceClient,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.sbom.model import Component


class GoBackend:
    """A Go module proxy."""

    kind: ClassVar[SourceKind] = "go"
    purl_types: ClassVar[tuple[str, ...]] = ("golang",)

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the module proxy says of the module at this version (`.info`, else `@v/list`)."""
        module, version = identity.package, identity.version or ""
        version = version if version.startswith("v") else f"v{version}"
        base = f"{client.config.base}/{quote(go_escape(module))}/@v"

        def load_info() -> VersionInfo | None:
            response = client.get(f"{base}/{quote(go_escape(version))}.info", "application/json")
            if response is None:
                return None
            try:
                document = orjson.loads(response.body)
            except orjson.JSONDecodeError as exc:
                raise SourceFault(
                    client.config.host, f"invalid .info for {module}@{version}: {exc}"
                ) from None
            when = document.get("Time") if isinstance(document, dict) else None
            return VersionInfo(published_at=rfc3339(when) if isinstance(when, str) else None)

        info = client.cached(("go-info", module, version), load_info)
        if info is not None:
            return Listing(found_package=True, version=info)

        def load_list() -> tuple[str, ...] | None:
            response = client.get(f"{base}/list", "text/plain")
            if response is None:
                return None
            return tuple(response.body.decode("utf-8", "replace").split())

        listed = client.cached(("go-list", module), load_list)
        return Listing(found_package=listed is not None)
