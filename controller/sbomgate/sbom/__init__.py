"""SBOM ingestion: CycloneDX 1.2-1.6 (JSON, XML) and SPDX 2.2/2.3 (JSON) into `Sbom`."""

from sbomgate.sbom.model import Component, Sbom, SbomFormat

__all__ = ["Component", "Sbom", "SbomFormat"]
