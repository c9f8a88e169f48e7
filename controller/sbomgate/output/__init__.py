"""Writing verdicts out: one `Format` per output (see `interface`), chosen by name.

text = get_format("sarif").render(Report(verdict=verdict, source="app.cdx.json"))
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sbomgate.errors import InputError
from sbomgate.output.interface import Format, PolicyInfo, Report
from sbomgate.output.json import JsonFormat
from sbomgate.output.policyreport import PolicyReportFormat
from sbomgate.output.sarif import SarifFormat
from sbomgate.output.table import TableFormat

# The registry: here rather than in `interface`, which its formats import.
FORMATS: Mapping[str, Format] = MappingProxyType(
    {f.name: f for f in (TableFormat(), JsonFormat(), SarifFormat(), PolicyReportFormat())}
)


def get_format(name: str) -> Format:
    """The format called `name`."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise InputError(f"unknown output format {name!r} (one of {known})") from None


def render(name: str, report: Report) -> str:
    """The report in the format called `name`."""
    return get_format(name).render(report)


__all__ = ["FORMATS", "Format", "PolicyInfo", "Report", "get_format", "render"]
