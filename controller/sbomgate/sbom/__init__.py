"""SBOM ingestion: CycloneDX 1.2-1.7 (JSON, XML), SPDX 2.2/2.3 (JSON) and SPDX 3.0 (JSON-LD)
into `Sbom`."""

from sbomgate.sbom.model import (
    Component,
    JsonDocument,
    OperatingSystem,
    Sbom,
    SbomFormat,
    is_package,
)
from sbomgate.sbom.parse import (
    MAX_COMPONENT_DEPTH,
    MAX_COMPONENTS,
    MAX_SBOM_BYTES,
    load_sbom_file,
    parse_sbom,
    parse_sbom_decoded,
    parse_sbom_document,
    parse_sbom_in_statement,
)
from sbomgate.sbom.purl import format_for_purl_type

__all__ = [
    "MAX_COMPONENTS",
    "MAX_COMPONENT_DEPTH",
    "MAX_SBOM_BYTES",
    "Component",
    "JsonDocument",
    "OperatingSystem",
    "Sbom",
    "SbomFormat",
    "format_for_purl_type",
    "is_package",
    "load_sbom_file",
    "parse_sbom",
    "parse_sbom_decoded",
    "parse_sbom_document",
    "parse_sbom_in_statement",
]
