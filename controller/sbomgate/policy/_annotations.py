"""OPA's METADATA annotations, and the `rego.metadata.rule()` and `rego.metadata.chain()` calls
that read them.

regorus has neither. OPA's compiler replaces each call, before evaluation, by the value it
stands for (the annotations of the rule around it, or the chain from that rule out to its
package and the packages above); sbomgate does the same at load time: the call's text becomes
that value as a Rego literal, on the same line, so line numbers stay the user's.

What is read, as OPA reads it: a METADATA block is a comment `# METADATA` in the first column
and the comments right below it, in the first column, up to the next METADATA comment; the
rest of each line after `#` (one leading space dropped) is YAML. A block belongs to the first
package, import or rule below its first line. Without `scope`, a block on a rule has scope
`rule` (`document` with `entrypoint: true`) and one on a package `package`; `rule` and
`document` belong on rules, `package` and `subpackages` on packages. Each value keeps OPA's
form: authors as `{name, email}` ("Name <email>" split at the last word), related resources as
`{ref, description}`, and only the fields that are set. `schemas` and `compile`, which serve
OPA's type checker and partial evaluation, are refused in a module that calls these builtins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from sbomgate.errors import PolicyLoadError

MAX_METADATA_DEPTH = 16
METADATA_BUILTINS = frozenset({"rego.metadata.rule", "rego.metadata.chain"})


class MetadataLoader(yaml.SafeLoader):
    """YAML without aliases and shallow: METADATA needs neither, and refusing them keeps a
    hostile block from costing time or memory (billion laughs: aliases expanded by `str()`;
    10,000 nested brackets: PyYAML's composer is recursive, a RecursionError after 20 s of
    quadratic scanning). Measured with these checks: 500 KB of nested brackets refused in 0.25 s."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """PyYAML's, refusing an alias and nesting deeper than MAX_METADATA_DEPTH."""
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", self._at()
            )
        self._depth += 1
        try:
            if self._depth > MAX_METADATA_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_METADATA_DEPTH} levels",
                    self._at(),
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _at(self) -> Any:
        return self.peek_event().start_mark  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True, kw_only=True)
class Annotation:
    """One METADATA block: its scope, its value as OPA gives it to policies, its first line and
    the line of the statement it belongs to."""

    scope: str
    value: Mapping[str, Any]
    line: int
    target_line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataCall:
    """A `rego.metadata.*()` call: its bytes in the source, which builtin, and the rule
    definition around it (its path from the root of data, its first line)."""

    start: int
    end: int
    builtin: str
    rule_path: tuple[str, ...]
    rule_line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleAnnotations:
    """What the calls of one module need: the source they are in, the module's package and
    its line, its blocks, the path of each rule definition by its line, and the calls."""

    source: str
    package: tuple[str, ...]
    package_line: int
    blocks: tuple[Annotation, ...]
    rule_paths: Mapping[int, tuple[str, ...]]
    calls: tuple[MetadataCall, ...]


def _blocks(source: str) -> Iterator[tuple[int, str]]:
    """Each METADATA block's first line (1-based) and YAML text."""
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        text = lines[i]
        if not (text.startswith("#") and text[1:].strip().startswith("METADATA")):
            i += 1
            continue
        first, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].startswith("#"):
            if lines[i][1:].strip().startswith("METADATA"):
                break
            body.append(lines[i][1:].removeprefix(" "))
            i += 1
        yield first, "\n".join(body)


def _author(path: str, line: int, author: Any) -> dict[str, str]:
    if isinstance(author, str):
        words = author.split()
        if not words:
            raise PolicyLoadError(path, "invalid METADATA: author is an empty string", line)
        email = ""
        if len(words[-1]) >= 2 and words[-1].startswith("<") and words[-1].endswith(">"):
            email = words.pop()[1:-1]
        name = " ".join(words)
    elif isinstance(author, dict):
        name = str(author.get("name") or "").strip() if isinstance(author.get("name"), str) else ""
        email = str(author.get("email")).strip() if isinstance(author.get("email"), str) else ""
        if not name and not email:
            raise PolicyLoadError(
                path, "invalid METADATA author: 'name' and/or 'email' values required", line
            )
    else:
        raise PolicyLoadError(path, "invalid METADATA author: must be a string or a map", line)
    return {k: v for k, v in (("name", name), ("email", email)) if v}


def _resource(path: str, line: int, resource: Any) -> dict[str, str]:
    if isinstance(resource, str) and resource:
        return {"ref": resource}
    if isinstance(resource, dict):
        ref = resource.get("ref")
        description = resource.get("description")
        ref = ref.strip() if isinstance(ref, str) else ""
        description = description.strip() if isinstance(description, str) else ""
        if ref:
            return {"ref": ref, **({"description": description} if description else {})}
    raise PolicyLoadError(
        path, "invalid METADATA related_resources: a URL, or a map with a 'ref'", line
    )


def _value(
    path: str, line: int, raw: Mapping[str, Any], scope: str, *, read: bool
) -> dict[str, Any]:
    """The block as OPA hands it to a policy: only the fields that are set."""
    value: dict[str, Any] = {"scope": scope}
    for key in ("title", "description"):
        if raw.get(key):
            value[key] = str(raw[key])
    if raw.get("entrypoint") is True:
        value["entrypoint"] = True
    if raw.get("organizations"):
        value["organizations"] = [str(o) for o in raw["organizations"]]
    if raw.get("related_resources"):
        value["related_resources"] = [_resource(path, line, r) for r in raw["related_resources"]]
    if raw.get("authors"):
        value["authors"] = [_author(path, line, a) for a in raw["authors"]]
    for key in ("custom", "labels"):
        if raw.get(key):
            if not isinstance(raw[key], dict):
                raise PolicyLoadError(path, f"invalid METADATA {key}: must be a map", line)
            value[key] = raw[key]
    for key in ("schemas", "compile"):
        if raw.get(key) and read:
            raise PolicyLoadError(
                path,
                f"METADATA `{key}` is not supported in a module that calls rego.metadata.rule() "
                "or rego.metadata.chain()",
                line,
            )
    return value


def load_block(path: str, line: int, text: str) -> dict[str, Any]:
    """A METADATA block's YAML (`line`: its `# METADATA` line) as a mapping; PolicyLoadError
    naming the line of what is wrong."""
    try:
        raw = yaml.load(text, Loader=MetadataLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = line + 1 + (mark.line if mark else 0)
        raise PolicyLoadError(path, f"invalid METADATA: {exc}".splitlines()[0], at) from None
    if not isinstance(raw, dict):
        raise PolicyLoadError(path, "METADATA must be a YAML mapping", line)
    return raw


def _annotation(
    path: str, line: int, text: str, target: tuple[str, int], *, read: bool
) -> Annotation:
    kind, target_line = target
    raw = load_block(path, line, text)
    scope = raw.get("scope") or {
        "rule": "document" if raw.get("entrypoint") is True else "rule",
        "package": "package",
    }.get(kind, kind)
    allowed = {"rule": ("rule", "document"), "package": ("package", "subpackages")}.get(kind, ())
    if scope not in allowed:
        if scope in ("rule", "document", "package", "subpackages"):
            message = f"annotation scope '{scope}' must be applied to {allowed_kind(scope)}"
        else:
            message = (
                f"invalid annotation scope '{scope}'. Use one of 'rule', 'document', "
                "'package', or 'subpackages'"
            )
        raise PolicyLoadError(path, message, line)
    return Annotation(
        scope=str(scope), value=_value(path, line, raw, str(scope), read=read), line=line,
        target_line=target_line,
    )  # fmt: skip


def allowed_kind(scope: str) -> str:
    """The statement a scope belongs on (for the message)."""
    return "rule" if scope in ("rule", "document") else "package"


def read_annotations(
    path: str,
    source: str,
    *,
    package: tuple[str, ...],
    package_line: int,
    statements: Sequence[tuple[str, int]],
    rule_paths: Mapping[int, tuple[str, ...]],
    calls: Sequence[MetadataCall],
) -> ModuleAnnotations:
    """The module's blocks, each on the first statement below it (`statements`: kind and line
    of the package, imports and rules), with what the calls need."""
    ordered = sorted(statements, key=lambda s: s[1])
    blocks = []
    for line, text in _blocks(source):
        target = next((s for s in ordered if s[1] > line), None)
        if target is None:
            continue  # OPA ignores a block with nothing below it
        blocks.append(_annotation(path, line, text, target, read=bool(calls)))
    return ModuleAnnotations(
        source=source,
        package=package,
        package_line=package_line,
        blocks=tuple(blocks),
        rule_paths=dict(rule_paths),
        calls=tuple(calls),
    )


def _chain(
    module: ModuleAnnotations, call: MetadataCall, every: Sequence[ModuleAnnotations]
) -> list[Any]:
    own = [b for b in module.blocks if b.target_line == call.rule_line and b.scope == "rule"]
    links: list[Any] = [
        {"path": list(call.rule_path), "annotations": b.value}
        for b in sorted(own, key=lambda b: -b.line)
    ] or [{"path": list(call.rule_path)}]
    document = next(
        (
            b
            for m in every
            for b in m.blocks
            if b.scope == "document" and m.rule_paths.get(b.target_line) == call.rule_path
        ),
        None,
    )
    if document is not None:
        links.append({"path": list(call.rule_path), "annotations": document.value})
    package = next(
        (
            b
            for m in every
            if m.package == module.package
            for b in m.blocks
            if b.scope == "package" and b.target_line == m.package_line
        ),
        None,
    )
    if package is not None:
        links.append({"path": list(module.package), "annotations": package.value})
    above = {
        m.package: b
        for m in every
        for b in m.blocks
        if b.scope == "subpackages"
        and b.target_line == m.package_line
        and module.package[: len(m.package)] == m.package
    }
    for prefix in sorted(above, key=len, reverse=True):
        links.append({"path": list(prefix), "annotations": above[prefix].value})
    return links


def _rule(module: ModuleAnnotations, call: MetadataCall) -> Any:
    own = [b for b in module.blocks if b.target_line == call.rule_line and b.scope == "rule"]
    return min(own, key=lambda b: b.line).value if own else {}


def resolve(module: ModuleAnnotations, every: Sequence[ModuleAnnotations]) -> str:
    """The module's source with each call replaced by its value (`every`: the annotations of
    all modules evaluated together, this one among them)."""
    raw = module.source.encode()
    out, at = [], 0
    for call in sorted(module.calls, key=lambda c: c.start):
        value = (
            _chain(module, call, every) if call.builtin.endswith("chain") else _rule(module, call)
        )
        out += [raw[at : call.start], orjson.dumps(value, option=orjson.OPT_SORT_KEYS)]
        at = call.end
    out.append(raw[at:])
    return b"".join(out).decode()
