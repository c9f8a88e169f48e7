"""Write a kubeconform schema directory, fully offline once written: built-in kinds from a real
API server's OpenAPI v3, custom resources from CustomResourceDefinition YAML.

    python tools/kube_schemas.py --kubeconfig FILE --out DIR [--crds PATH ...]
    kubeconform -strict -summary \\
        -schema-location 'DIR/{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json' ...

Layout: one standalone JSON Schema (draft-07) per kind and version, at
``DIR/<group>/<version>/<kind, lower case>.json``, so the same kind in two groups or two versions
never shares a file. kubeconform's ``{{ .Group }}`` is the part of apiVersion before the slash,
which for the core group ("v1") is the version itself: core kinds are in ``DIR/v1/v1/``.
``DIR/index.json`` lists every schema with where it came from, and the template above.

Built-in kinds come from ``/openapi/v3/api/v1`` and ``/openapi/v3/apis/<group>/<version>``
(fetched with kubectl, so any kubeconfig kubectl accepts works): every schema whose
``x-kubernetes-group-version-kind`` names that group-version becomes a file, with the
definitions it reaches copied into its own ``definitions`` block (``$ref``s rewritten to
``#/definitions/...``; recursive types stay references). Custom resources come from each
served version of every ``apiextensions.k8s.io/v1`` CustomResourceDefinition in the ``--crds``
files and directories (default: ``charts/sbomgate/crds/`` when it exists); they replace what the
API server publishes for the same group-version-kind.

The conversion keeps what the API server enforces and a JSON Schema can say:

- strict objects: ``additionalProperties: false`` on every built-in object that lists its
  properties, and on every custom-resource object unless ``x-kubernetes-preserve-unknown-fields``
  (what the API server's strict field validation rejects); maps keep their value schema;
- ``required`` lists, enums, formats JSON Schema and Kubernetes agree on (date-time, date, ipv4,
  ipv6, uuid, hostname, email, duration), int32 and int64 ranges, string, number, array and map
  bounds and patterns;
- ``x-kubernetes-int-or-string`` (and IntOrString) as a oneOf of integer or string, Quantity as
  string or number;
- null for a property that is not required (the API server treats it as absent: built-in objects
  decode it as unset, and custom resources prune it) or that a CRD marks ``nullable``;
- ``x-kubernetes-list-type: set`` in a CRD as ``uniqueItems``; ``x-kubernetes-embedded-resource``
  as apiVersion, kind and metadata; a custom resource's ``metadata`` as the API server's
  ObjectMeta (plus any constraints the CRD adds).

What a JSON Schema cannot check is left out: CEL rules (``x-kubernetes-validations``), the
uniqueness of ``x-kubernetes-list-type: map`` keys, and the checks the API server does in code
(names, label syntax, cross-field rules); descriptions and defaults are dropped to keep files small.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CRDS = ROOT / "charts" / "sbomgate" / "crds"
DEFAULT_KUBECTL = ROOT / ".cache" / "bin" / "kubectl"
SCHEMA_LOCATION = "{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json"
INDEX = "index.json"
INDEX_FORMAT = "sbomgate-kube-schemas/v1"
DRAFT = "http://json-schema.org/draft-07/schema#"
OPENAPI_REF = "#/components/schemas/"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CRD_API_VERSION = "apiextensions.k8s.io/v1"
FETCH_WORKERS = 8
FETCH_TIMEOUT = 120.0

# Formats that JSON Schema validators and the API server read the same way; the others (byte,
# int-or-string, uri, cidr, ...) either mean nothing to a validator or mean something stricter.
KEPT_FORMATS = frozenset(
    {"date-time", "date", "ipv4", "ipv6", "uuid", "hostname", "email", "duration"}
)
INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Keywords copied as they are (same meaning in OpenAPI 3.0 schemas and JSON Schema draft-07).
COPIED = (
    "enum",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
COMBINATORS = ("allOf", "anyOf", "oneOf")
SchemaDict = dict[str, Any]


class SchemaError(Exception):
    """Bad input: a CRD that cannot be converted, or a schema that cannot be fetched."""


# --------------------------------------------------------------------------- conversion


def _escape_pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _definition_ref(name: str) -> SchemaDict:
    return {"$ref": "#/definitions/" + _escape_pointer(name)}


def allow_null(schema: SchemaDict) -> SchemaDict:
    """``schema`` or null. A plain typed schema gets "null" added to its type (and enum); a
    reference or combination is wrapped in if-null-else, which reports the inner schema's own
    errors where an anyOf would report one failed branch per level."""
    if not schema:
        return schema
    if "$ref" in schema or "not" in schema or any(key in schema for key in COMBINATORS):
        return {"if": {"type": "null"}, "else": schema}
    result = dict(schema)
    kind = result.get("type")
    if kind is not None:
        kinds = list(kind) if isinstance(kind, list) else [kind]
        if "null" not in kinds:
            result["type"] = [*kinds, "null"]
    if "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]
    return result


@dataclass
class Converter:
    """OpenAPI v3 schema (Kubernetes flavour) to JSON Schema draft-07.

    ``crd`` selects custom-resource rules: every object is strict unless it preserves unknown
    fields (a built-in object is strict only when it lists properties: the API marks free-form
    objects such as RawExtension only by leaving properties out), and ``nullable`` and
    ``x-kubernetes-list-type: set`` apply."""

    crd: bool
    object_meta: SchemaDict | None = None  # a reference to ObjectMeta, for embedded resources
    dropped: set[str] = field(default_factory=set)  # extensions a JSON Schema cannot express

    def convert(self, node: Mapping[str, Any], *, strict: bool = True) -> SchemaDict:
        """``strict`` is False inside allOf/anyOf/oneOf/not of a CRD: those only add
        constraints to the fields their parent declares, so they must not close objects."""
        if not isinstance(node, Mapping):
            raise SchemaError(f"a schema must be a mapping, not {type(node).__name__}")
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref)
        single = node.get("allOf")
        if (
            isinstance(single, list)
            and len(single) == 1
            and isinstance(single[0], Mapping)
            and "$ref" in single[0]
            and not any(k in node for k in ("type", "properties", "items", *COMBINATORS[1:]))
        ):
            return self._ref(single[0]["$ref"])  # the API's way to give a $ref a description

        out: SchemaDict = {}
        kind = node.get("type")
        if node.get("x-kubernetes-int-or-string"):
            out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
        elif isinstance(kind, str) and kind:
            out["type"] = kind
        fmt = node.get("format")
        if isinstance(fmt, str):
            if fmt in KEPT_FORMATS:
                out["format"] = fmt
            elif fmt in INT_RANGES and kind == "integer":
                low, high = INT_RANGES[fmt]
                out["minimum"], out["maximum"] = low, high
        for key in COPIED:
            if key in node:
                out[key] = copy.deepcopy(node[key])
        # OpenAPI 3.0 exclusiveMinimum/Maximum are booleans on minimum/maximum (draft-04 style).
        for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if node.get(exclusive) is True and bound in node:
                out[exclusive] = out.pop(bound)
        if self.crd and node.get("x-kubernetes-list-type") == "set":
            out["uniqueItems"] = True
        for extension in ("x-kubernetes-validations", "x-kubernetes-list-map-keys"):
            if extension in node:
                self.dropped.add(extension)

        items = node.get("items")
        if isinstance(items, Mapping):
            out["items"] = self.convert(items, strict=strict)
        elif isinstance(items, list):  # not structural, but valid OpenAPI; keep it readable
            out["items"] = [self.convert(item, strict=strict) for item in items]

        properties = node.get("properties")
        required = [name for name in node.get("required") or [] if isinstance(name, str)]
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        props: SchemaDict = {}
        if self.crd and strict and node.get("x-kubernetes-embedded-resource"):
            # The API server requires a non-empty apiVersion and kind in an embedded object.
            props["apiVersion"] = {"type": "string", "minLength": 1}
            props["kind"] = {"type": "string", "minLength": 1}
            props["metadata"] = self.object_meta or {"type": "object"}
            required += [name for name in ("apiVersion", "kind") if name not in required]
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                props[str(name)] = self.convert(sub, strict=strict)
        for name, sub in props.items():
            if name not in required:
                props[name] = allow_null(sub)
        if props or isinstance(properties, Mapping):
            out["properties"] = props
        if required:
            out["required"] = required

        additional = node.get("additionalProperties")
        if isinstance(additional, Mapping):
            out["additionalProperties"] = self.convert(additional, strict=strict)
        elif isinstance(additional, bool):
            out["additionalProperties"] = additional
        elif strict and not preserve:
            is_object = kind == "object" or isinstance(properties, Mapping)
            if is_object and (self.crd or isinstance(properties, Mapping)):
                out["additionalProperties"] = False

        for combinator in COMBINATORS:
            branches = node.get(combinator)
            if isinstance(branches, list) and branches:
                converted = [self.convert(b, strict=strict and not self.crd) for b in branches]
                if combinator in out:  # int-or-string already set oneOf: keep both
                    out.setdefault("allOf", []).append({combinator: converted})
                else:
                    out[combinator] = converted
        if isinstance(node.get("not"), Mapping):
            out["not"] = self.convert(node["not"], strict=strict and not self.crd)

        if self.crd and node.get("nullable"):
            out = allow_null(out)
        return out

    def _ref(self, ref: str) -> SchemaDict:
        if not ref.startswith(OPENAPI_REF):
            raise SchemaError(f"unsupported $ref {ref!r} (only {OPENAPI_REF}...)")
        return _definition_ref(ref.removeprefix(OPENAPI_REF))


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, Mapping):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            yield ref.removeprefix("#/definitions/").replace("~1", "/").replace("~0", "~")
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


@dataclass
class Definitions:
    """The converted definitions of one OpenAPI v3 document (one group-version), on demand."""

    source: Mapping[str, Any]
    converter: Converter = field(default_factory=lambda: Converter(crd=False))
    _done: dict[str, SchemaDict] = field(default_factory=dict)

    def get(self, name: str) -> SchemaDict:
        if name not in self._done:
            if name not in self.source:
                raise SchemaError(f"$ref to {name!r}, which the document does not define")
            self._done[name] = self.converter.convert(self.source[name])
        return self._done[name]

    def closure(self, schema: SchemaDict) -> dict[str, SchemaDict]:
        """Every definition ``schema`` reaches, by name."""
        found: dict[str, SchemaDict] = {}
        pending = list(_refs(schema))
        while pending:
            name = pending.pop()
            if name not in found:
                found[name] = self.get(name)
                pending.extend(_refs(found[name]))
        return found


def standalone(root: SchemaDict, definitions: Definitions | None) -> SchemaDict:
    document: SchemaDict = {"$schema": DRAFT, **root}
    if definitions is not None:
        reached = definitions.closure(root)
        if reached:
            document["definitions"] = dict(sorted(reached.items()))
    return document


# --------------------------------------------------------------------------- built-in kinds


@dataclass(frozen=True)
class Schema:
    group: str
    version: str
    kind: str
    document: SchemaDict
    source: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """Where kubeconform looks, with SCHEMA_LOCATION: its Group is the apiVersion's first
        part, which is the version itself for the core group."""
        return f"{self.group or self.version}/{self.version}/{self.kind.lower()}.json"


def builtin_schemas(group: str, version: str, document: Mapping[str, Any]) -> list[Schema]:
    """One schema per kind that the OpenAPI v3 document of ``group/version`` serves."""
    components = document.get("components", {}).get("schemas", {})
    definitions = Definitions(components)
    found: list[Schema] = []
    for name in sorted(components):
        gvks = components[name].get("x-kubernetes-group-version-kind") or []
        for gvk in gvks:
            if gvk.get("group", "") == group and gvk.get("version") == version:
                root = dict(definitions.get(name))
                found.append(
                    Schema(
                        group,
                        version,
                        gvk["kind"],
                        standalone(root, definitions),
                        f"openapi/v3 {name}",
                    )
                )
    return found


def object_meta_definitions(documents: Mapping[tuple[str, str], Any]) -> Definitions | None:
    """ObjectMeta and what it reaches, from any group-version document that has it (they are
    the same in all)."""
    for key in sorted(documents):
        components = documents[key].get("components", {}).get("schemas", {})
        if OBJECT_META in components:
            return Definitions(components)
    return None


# --------------------------------------------------------------------------- CRDs


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
        )
    if path.is_file():
        return [path]
    raise SchemaError(f"{path}: no such file or directory")


def load_crds(paths: Iterable[Path]) -> list[tuple[str, Mapping[str, Any]]]:
    """(source, CRD) for every CustomResourceDefinition document in the files and directories
    (multi-document YAML, e.g. `helm template` output; other kinds are ignored)."""
    crds: list[tuple[str, Mapping[str, Any]]] = []
    for path in paths:
        for file in _yaml_files(path):
            try:
                documents = list(yaml.safe_load_all(file.read_text()))
            except yaml.YAMLError as exc:
                raise SchemaError(f"{file}: not YAML: {exc}") from exc
            for index, doc in enumerate(documents):
                if not isinstance(doc, Mapping) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                if doc.get("apiVersion") != CRD_API_VERSION:
                    raise SchemaError(
                        f"{file} document {index}: {doc.get('apiVersion')} "
                        f"CustomResourceDefinition (only {CRD_API_VERSION} is served)"
                    )
                crds.append((f"{file}#{index}", doc))
    return crds


def crd_schemas(
    source: str, crd: Mapping[str, Any], meta: Definitions | None, dropped: set[str]
) -> list[Schema]:
    """One schema per served version of the CRD."""
    name = (crd.get("metadata") or {}).get("name", "?")
    spec = crd.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    if not isinstance(group, str) or not isinstance(kind, str):
        raise SchemaError(f"{source}: CRD {name} has no spec.group or spec.names.kind")
    meta_ref = _definition_ref(OBJECT_META) if meta is not None else None
    schemas = []
    for entry in spec.get("versions") or []:
        version = entry.get("name")
        if not entry.get("served", True) or not isinstance(version, str):
            continue
        validation = (entry.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(validation, Mapping):
            raise SchemaError(f"{source}: CRD {name} version {version} has no openAPIV3Schema")
        converter = Converter(crd=True, object_meta=meta_ref)
        try:
            root = converter.convert(validation)
        except SchemaError as exc:
            raise SchemaError(f"{source}: CRD {name} version {version}: {exc}") from exc
        dropped |= converter.dropped
        props = root.setdefault("properties", {})
        props["apiVersion"] = allow_null({"type": "string"})
        props["kind"] = allow_null({"type": "string"})
        declared = (validation.get("properties") or {}).get("metadata")
        if meta_ref is None:
            props["metadata"] = allow_null({"type": "object"})
        elif isinstance(declared, Mapping) and declared.get("properties"):
            # Only metadata.name and generateName may be constrained: on top of ObjectMeta.
            extra = Converter(crd=True).convert(declared, strict=False)
            props["metadata"] = allow_null({"allOf": [meta_ref, extra]})
        else:
            props["metadata"] = allow_null(meta_ref)
        schemas.append(
            Schema(group, version, kind, standalone(root, meta), f"crd {name} ({source})")
        )
    return schemas


# --------------------------------------------------------------------------- the API server


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path

    def raw(self, path: str) -> Any:
        args = [self.binary, f"--kubeconfig={self.kubeconfig}", "get", "--raw", path]
        try:
            result = subprocess.run(
                args, capture_output=True, text=True, timeout=FETCH_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchemaError(f"kubectl get --raw {path}: {exc}") from exc
        if result.returncode != 0:
            raise SchemaError(f"kubectl get --raw {path}: {result.stderr.strip()}")
        try:
            return json.loads(result.stdout)
        except ValueError as exc:
            raise SchemaError(f"kubectl get --raw {path}: not JSON: {exc}") from exc


def group_version(path: str) -> tuple[str, str] | None:
    """("", "v1") for api/v1, (group, version) for apis/<group>/<version>, else None."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


def fetch_openapi(kubectl: Kubectl) -> tuple[dict[tuple[str, str], Any], str]:
    """The OpenAPI v3 document of every group-version the server serves, and its version."""
    index = kubectl.raw("/openapi/v3")
    wanted = {}
    for path, entry in sorted((index.get("paths") or {}).items()):
        gv = group_version(path)
        if gv is not None:
            wanted[gv] = entry.get("serverRelativeURL") or f"/openapi/v3/{path}"
    with concurrent.futures.ThreadPoolExecutor(FETCH_WORKERS) as pool:
        futures = {gv: pool.submit(kubectl.raw, url) for gv, url in wanted.items()}
        version = kubectl.raw("/version").get("gitVersion", "")
        documents = {}
        for gv, future in futures.items():
            try:
                documents[gv] = future.result()
            except SchemaError as exc:
                # A group-version removed between the index and the fetch (a CRD just
                # deleted) is no longer served: nothing to validate against, so skip it.
                if "NotFound" not in str(exc) and "could not find" not in str(exc):
                    raise
    return documents, version


# --------------------------------------------------------------------------- output


def collect(
    documents: Mapping[tuple[str, str], Any], crds: list[tuple[str, Mapping[str, Any]]]
) -> tuple[list[Schema], set[str]]:
    """Built-in schemas, then CRD schemas replacing any the server published for the same
    group-version-kind. Two CRD documents that give one kind different schemas are an error."""
    by_path: dict[str, Schema] = {}
    for (group, version), document in sorted(documents.items()):
        for schema in builtin_schemas(group, version, document):
            by_path[schema.path] = schema
    meta = object_meta_definitions(documents)
    dropped: set[str] = set()
    from_crds: dict[str, Schema] = {}
    for source, crd in crds:
        for schema in crd_schemas(source, crd, meta, dropped):
            earlier = from_crds.get(schema.path)
            if earlier is not None and earlier.document != schema.document:
                raise SchemaError(
                    f"{schema.api_version} {schema.kind} has two different schemas: "
                    f"{earlier.source} and {schema.source}"
                )
            from_crds.setdefault(schema.path, schema)
    by_path.update(from_crds)
    return [by_path[path] for path in sorted(by_path)], dropped


def write(out: Path, schemas: list[Schema], server_version: str, dropped: set[str]) -> None:
    """Replace ``out`` with the schemas. A non-empty ``out`` is only replaced when it is one
    this tool wrote (it has our index.json): never someone else's directory."""
    if out.exists() and any(out.iterdir()):
        try:
            previous = json.loads((out / INDEX).read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous != INDEX_FORMAT:
            raise SchemaError(f"{out} is not empty and not a schema directory from this tool")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    for schema in schemas:
        target = out / schema.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema.document, separators=(",", ":"), sort_keys=True))
    index = {
        "format": INDEX_FORMAT,
        "kubernetesVersion": server_version,
        "schemaLocation": f"{out.resolve()}/{SCHEMA_LOCATION}",
        "notChecked": sorted(dropped),
        "schemas": [
            {
                "apiVersion": s.api_version,
                "kind": s.kind,
                "path": s.path,
                "source": s.source,
            }
            for s in schemas
        ],
    }
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write kubeconform schemas: built-in kinds from an API server's OpenAPI v3, "
        "custom resources from CRD YAML.",
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the server")
    parser.add_argument("--out", type=Path, required=True, help="schema directory to (re)write")
    parser.add_argument(
        "--crds",
        type=Path,
        action="append",
        help="CRD YAML file or directory, repeatable (default: charts/sbomgate/crds if present)",
    )
    parser.add_argument(
        "--kubectl",
        default=str(DEFAULT_KUBECTL) if DEFAULT_KUBECTL.exists() else "kubectl",
        help="kubectl binary (default: .cache/bin/kubectl, else kubectl on PATH)",
    )
    args = parser.parse_args(argv)
    crd_paths = args.crds
    if crd_paths is None:
        crd_paths = [DEFAULT_CRDS] if DEFAULT_CRDS.is_dir() else []
    try:
        crds = load_crds(crd_paths)
        documents, server_version = fetch_openapi(Kubectl(args.kubectl, args.kubeconfig))
        schemas, dropped = collect(documents, crds)
        write(args.out, schemas, server_version, dropped)
    except SchemaError as exc:
        print(f"kube_schemas: {exc}", file=sys.stderr)
        return 1
    custom = sum(1 for s in schemas if s.source.startswith("crd "))
    print(
        f"{len(schemas)} schemas ({len(schemas) - custom} from {server_version} OpenAPI v3, "
        f"{custom} from {len(crds)} CRD documents) in {args.out}\n"
        f"kubeconform -strict -schema-location '{args.out.resolve()}/{SCHEMA_LOCATION}'"
    )
    if dropped:
        print(f"not checked by these schemas: {', '.join(sorted(dropped))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
