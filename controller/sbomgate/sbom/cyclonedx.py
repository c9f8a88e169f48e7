"""CycloneDX 1.2-1.6 in its JSON shape (parsed JSON, or XML converted by cyclonedx_xml) ->
subject and flattened components. This is the admission hot path: keep it lean."""

from __future__ import annotations

from typing import Any

from sbomgate.sbom._common import (
    Invalid,
    Limits,
    component_from_parts,
    describe,
    purl_or_error,
    read_hashes,
    shown,
)
from sbomgate.sbom.licenses import (
    UNKNOWN_LICENSES,
    LicenseSyntaxError,
    combine_and,
    license_from_id,
    license_from_name,
    normalise_expression,
)
from sbomgate.sbom.model import Component

__all__ = ["SUPPORTED_VERSIONS", "read_cyclonedx"]

SUPPORTED_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6")


def check_spec_version(spec: Any) -> str:
    if spec is None:
        raise Invalid("CycloneDX document has no specVersion")
    if not isinstance(spec, str):
        raise Invalid(f"specVersion: expected a string, got {describe(spec)}")
    if spec not in SUPPORTED_VERSIONS:
        raise Invalid(f"CycloneDX specVersion {shown(spec)} is not supported (1.2–1.6 are)")  # noqa: RUF001
    return spec


def read_cyclonedx(
    doc: dict[str, Any], limits: Limits
) -> tuple[str, Component | None, tuple[Component, ...]]:
    """Return (specVersion, subject, flattened components) of a CycloneDX JSON-shaped dict."""
    spec = check_spec_version(doc.get("specVersion"))
    out: list[Component] = []
    subject: Component | None = None
    metadata = doc.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise Invalid(f"metadata: expected an object, got {describe(metadata)}")
        main = metadata.get("component")
        if main is not None:
            subject = _component(main, "metadata.component")
            nested = main.get("components")
            if nested is not None:
                # Sub-components of the subject are packages of the image too.
                _walk(nested, "metadata.component.components", 2, limits, out)
    components = doc.get("components")
    if components is not None:
        _walk(components, "components", 1, limits, out)
    return spec, subject, tuple(out)


def _walk(items: Any, path: str, depth: int, limits: Limits, out: list[Component]) -> None:
    """Depth-first, document order: a component, then its nested components."""
    if type(items) is not list:
        raise Invalid(f"{path}: expected an array, got {describe(items)}")
    if depth > limits.max_depth:
        raise Invalid(f"{path}: components nested deeper than {limits.max_depth} levels")
    limits.add(len(items))
    append = out.append
    for i, item in enumerate(items):
        append(_component(item, path, i))
        if type(item) is dict:
            nested = item.get("components")
            if nested is not None:
                _walk(nested, f"{path}[{i}].components", depth + 1, limits, out)


def _component(obj: Any, path: str, index: int | None = None) -> Component:
    if type(obj) is not dict:
        raise Invalid(f"{_at(path, index)}: expected an object, got {describe(obj)}")
    get = obj.get
    name = get("name")
    if name is not None and type(name) is not str:
        raise Invalid(f"{_at(path, index)}.name: expected a string, got {describe(name)}")
    version = get("version")
    if version is not None and type(version) is not str:
        raise Invalid(f"{_at(path, index)}.version: expected a string, got {describe(version)}")
    purl = get("purl")
    parsed = None
    if purl is not None:
        if type(purl) is not str:
            raise Invalid(f"{_at(path, index)}.purl: expected a string, got {describe(purl)}")
        if purl:
            parsed = purl_or_error(purl, f"{_at(path, index)}.purl")
    if parsed is None and not name:
        raise Invalid(f"{_at(path, index)}: component has neither a name nor a purl")
    bom_ref = get("bom-ref")
    if bom_ref is not None and type(bom_ref) is not str:
        raise Invalid(f"{_at(path, index)}.bom-ref: expected a string, got {describe(bom_ref)}")

    license_: str | None = None
    raw_license: str | None = None
    licenses = get("licenses")
    if licenses:
        license_, raw_license = _licenses(licenses, path, index)

    raw_hashes = get("hashes")
    hashes = (
        read_hashes(raw_hashes, f"{_at(path, index)}.hashes", "alg", "content")
        if raw_hashes is not None
        else {}
    )

    return component_from_parts(parsed, name, version, license_, raw_license, hashes, bom_ref)


def _at(path: str, index: int | None) -> str:
    return path if index is None else f"{path}[{index}]"


def _licenses(licenses: Any, path: str, index: int | None) -> tuple[str | None, str | None]:
    """CycloneDX `licenses[]` -> (SPDX expression or None, raw text)."""
    if type(licenses) is not list:
        raise Invalid(f"{_at(path, index)}.licenses: expected an array, got {describe(licenses)}")
    expressions: list[str] = []
    raws: list[str] = []
    for j, entry in enumerate(licenses):
        if type(entry) is not dict:
            raise Invalid(
                f"{_at(path, index)}.licenses[{j}]: expected an object, got {describe(entry)}"
            )
        expression = entry.get("expression")
        if expression is not None:
            if type(expression) is not str:
                raise Invalid(
                    f"{_at(path, index)}.licenses[{j}].expression: expected a string, "
                    f"got {describe(expression)}"
                )
            text = expression.strip()
            raws.append(text)
            if text in UNKNOWN_LICENSES:
                continue
            try:
                expressions.append(normalise_expression(text))
            except LicenseSyntaxError as exc:
                raise Invalid(
                    f"{_at(path, index)}.licenses[{j}].expression: invalid SPDX license "
                    f"expression {text!r}: {exc}"
                ) from None
            continue
        lic = entry.get("license")
        if lic is None:
            continue
        if type(lic) is not dict:
            raise Invalid(
                f"{_at(path, index)}.licenses[{j}].license: expected an object, got {describe(lic)}"
            )
        lid = lic.get("id")
        if lid is not None:
            if type(lid) is not str:
                raise Invalid(
                    f"{_at(path, index)}.licenses[{j}].license.id: expected a string, "
                    f"got {describe(lid)}"
                )
            text = lid.strip()
            raws.append(text)
            if text not in UNKNOWN_LICENSES:
                expressions.append(license_from_id(text))
            continue
        lname = lic.get("name")
        if lname is not None:
            if type(lname) is not str:
                raise Invalid(
                    f"{_at(path, index)}.licenses[{j}].license.name: expected a string, "
                    f"got {describe(lname)}"
                )
            text = lname.strip()
            raws.append(text)
            if text not in UNKNOWN_LICENSES:
                expressions.append(license_from_name(text))
    raw = " AND ".join(raws) if raws else None
    if not expressions:
        return None, raw
    if len(expressions) == 1:
        return expressions[0], raw
    return combine_and(tuple(expressions)), raw
