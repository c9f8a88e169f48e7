"""Reading regorus' AST (its `get_ast_as_json`): shared by the module analysis and the rewrites."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in the AST under `node` (itself included), depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def ref_name(node: Any) -> str | None:
    """`a.b.c` for a chain of Var, RefDot and RefBrack with a string (`a["b"].c`), None for
    anything else."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    kind, body = next(iter(node.items()))
    if kind == "Var":
        return str(body["value"])
    if kind == "RefDot":
        base = ref_name(body["refr"])
        return None if base is None else f"{base}.{body['field'][1]}"
    if kind == "RefBrack":  # `foo["bar"]` names what `foo.bar` names
        index = body["index"]
        literal = index.get("String") if isinstance(index, dict) else None
        base = ref_name(body["refr"])
        if base is None or not isinstance(literal, dict):
            return None
        return f"{base}.{literal['value']}"
    return None
