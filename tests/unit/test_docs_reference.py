"""The reference documentation keeps up with the code: every Prometheus metric sbomgate defines
is in README's "Metrics reference", and every field of every CRD schema in
charts/sbomgate/crds has a description (what `kubectl explain` prints)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "controller" / "sbomgate"
README = ROOT / "README.md"
CRDS = ROOT / "charts" / "sbomgate" / "crds"
SECTION = "## Metrics reference"

# prometheus_client's metric classes, and the suffix each adds to the name it is given.
METRIC_SUFFIXES = {
    "Counter": "_total",
    "Gauge": "",
    "Histogram": "",
    "Summary": "",
    "Info": "_info",
    "Enum": "",
}


def metrics_section() -> str:
    """README's "Metrics reference" section, up to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.find(f"\n{SECTION}\n")
    assert start >= 0, f"README.md has no {SECTION!r} section"
    end = text.find("\n## ", start + len(SECTION) + 1)
    return text[start : end if end >= 0 else len(text)]


def exposed_name(name: str, suffix: str) -> str:
    """The name a metric is exposed under: prometheus_client adds `_total` to a counter's
    name (once: a given `_total` is dropped first) and `_info` to an Info's."""
    if suffix == "_total":
        name = name.removesuffix("_total")
    return name + suffix


def _metric_class(call: ast.Call, imported: dict[str, str]) -> str | None:
    """The prometheus_client class a call constructs (`Counter(...)`, `prometheus_client.Counter(
    ...)`, or an alias of either), or None."""
    func = call.func
    if isinstance(func, ast.Name):
        return imported.get(func.id)
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "prometheus_client"
        and func.attr in METRIC_SUFFIXES
    ):
        return func.attr
    return None


def _name_argument(call: ast.Call) -> ast.expr | None:
    """The expression a metric constructor is given as its name (first argument or `name=`)."""
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "name"), None)


def defined_metrics() -> dict[str, str]:
    """Every metric the package constructs, read from its source: exposed name -> file."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported = {
            alias.asname or alias.name: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client"
            for alias in node.names
            if alias.name in METRIC_SUFFIXES
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            kind = _metric_class(node, imported)
            if kind is None:
                continue
            argument = _name_argument(node)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), (
                f"{where}: a {kind}'s name is not a string literal; give it one, or teach "
                "this test to read it"
            )
            found[exposed_name(argument.value, METRIC_SUFFIXES[kind])] = where
    return found


def registered_metrics() -> set[str]:
    """The exposed names of the metrics in the server's registry (what /metrics serves)."""
    from sbomgate.serving.metrics import Metrics

    names = set()
    for family in Metrics().registry.collect():
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.add(exposed_name(family.name, suffix))
    return names


def test_the_source_scan_finds_every_metric_the_server_registers() -> None:
    """The source scan below is not blind: it sees at least what the server's registry holds."""
    registered = registered_metrics()
    assert registered, "the server registers no metric: is the registry read right?"
    assert registered <= set(defined_metrics())


def test_every_metric_is_in_the_readme_metrics_reference() -> None:
    """Each metric's exposed name (a counter with `_total`) is written in the section."""
    section = metrics_section()
    missing = {
        name: where for name, where in defined_metrics().items() if f"`{name}" not in section
    }
    assert not missing, f"not in README's {SECTION!r}: {missing}"


def crd_files() -> list[Path]:
    """The CRD manifests of the chart."""
    files = sorted(CRDS.glob("*.yaml"))
    assert files, f"no CRDs in {CRDS}"
    return files


def undescribed(schema: Any, path: str) -> Iterator[str]:
    """The paths of the fields under `schema`, at any depth, whose description is missing or
    empty (array items and map values are walked into; they are not fields of their own)."""
    if not isinstance(schema, dict):
        return
    for name, field in (schema.get("properties") or {}).items():
        where = f"{path}.{name}" if path else name
        if where == "metadata":
            # The API server refuses anything on an object's metadata but its type: kubectl
            # explain shows ObjectMeta's own descriptions there.
            continue
        description = field.get("description") if isinstance(field, dict) else None
        if not (isinstance(description, str) and description.strip()):
            yield where
        yield from undescribed(field, where)
    yield from undescribed(schema.get("items"), f"{path}[]")
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        yield from undescribed(additional, f"{path}{{}}")


@pytest.mark.parametrize("crd", crd_files(), ids=lambda p: p.name)
def test_every_crd_field_has_a_description(crd: Path) -> None:
    """The schema of every version, and every field in it, say what they are."""
    document = yaml.safe_load(crd.read_text(encoding="utf-8"))
    assert document["kind"] == "CustomResourceDefinition"
    for version in document["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        name = f"{document['metadata']['name']} {version['name']}"
        assert str(schema.get("description") or "").strip(), f"{name}: the schema's root"
        missing = list(undescribed(schema, ""))
        assert not missing, f"{name}: no description for {missing}"


def test_the_walk_finds_fields_without_a_description() -> None:
    """The CRD check can fail: a nested field, one inside array items and one inside a map's
    values without a description are all found."""
    schema = {
        "properties": {
            "spec": {
                "description": "described",
                "properties": {
                    "list": {
                        "description": "described",
                        "items": {"properties": {"inner": {"type": "string"}}},
                    },
                    "map": {
                        "description": "described",
                        "additionalProperties": {"properties": {"value": {"description": " "}}},
                    },
                    "plain": {"type": "string"},
                },
            }
        }
    }
    assert list(undescribed(schema, "")) == ["spec.list[].inner", "spec.map{}.value", "spec.plain"]
