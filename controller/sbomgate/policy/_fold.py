"""Rules whose value depends on `data` alone, evaluated once when an engine is made.

regorus evaluates every rule again for each query, so a policy that turns its data into the
form it matches against (`_deny_exact := {upper(trim_suffix(e, "+")) | some e in _deny; ...}`)
pays for that on every package: 50 of the 130 µs the bundled licence policy took for a package
licensed MIT. A complete rule that reads no `input` (`RegoModule.constants`), calls nothing whose
answer is not a function of its arguments, and reads no document of `data` that holds a module's
rules has one value for a given policy set and data. Each such rule is written as that value, a
literal, in the module regorus is given: every definition replaced by `name := <literal>` on the
first one's line (the lines stay where they were). What cannot be written as a literal (a value
that is undefined, null, a set of composite values, a float that is not finite, more than
MAX_LITERAL characters) is left as written.

The folded modules are checked before they are used: a fresh engine must give every folded rule
the value it had; otherwise the modules are used as written. Only `PolicyEngine` folds, whose
policies and data are fixed for its life: `sbomgate test` and the conformance harness evaluate
modules as written, where `with` may replace data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sbomgate.errors import PolicyLoadError, SbomgateError
from sbomgate.policy._regorus import FORBIDDEN_BUILTINS, RegoModule, analyse_module, new_engine
from sbomgate.policy.outcomes import IMPURE_BUILTINS

__all__ = ["MAX_LITERAL", "fold_constants"]

# Characters of one folded literal at most: a larger value (a long list in data) is left to the
# rule, so that every module regorus parses stays about the size its author wrote.
MAX_LITERAL = 65_536
# A policy's own answers are not folded: evaluated per document, a `match` that reads no input
# is asked once per thread anyway (its projection has no paths), and one that runs away is
# then stopped under its policy's name, not while the engine is made.
_ENTRY_RULES = frozenset({"match", "reason"})


class _NotALiteral(SbomgateError):
    """The value has no literal here (caught within this module: it never reaches a user)."""


def fold_constants(modules: Sequence[RegoModule], data: Mapping[str, Any]) -> list[RegoModule]:
    """The modules evaluated together, each constant rule written as its value (see above)."""
    if any(m.annotations is not None and m.annotations.calls for m in modules):
        return list(modules)  # rego.metadata.*() is resolved across modules from the source
    packages = [tuple(m.package.split(".")) for m in modules]
    refused = IMPURE_BUILTINS | FORBIDDEN_BUILTINS.keys()
    wanted = {
        (index, constant.name)
        for index, module in enumerate(modules)
        for constant in module.constants
        if constant.name not in _ENTRY_RULES
        and not constant.calls & refused
        and not any(_overlaps(p, package) for p in constant.data_reads for package in packages)
    }
    if not wanted:
        return list(modules)
    try:
        values = _values(modules, data, wanted)
        literals = {}
        for key, value in values.items():
            try:
                literals[key] = _literal(value)
            except _NotALiteral:
                continue
        folded = [
            _folded(module, {name: text for (i, name), text in literals.items() if i == index})
            for index, module in enumerate(modules)
        ]
        if _values(folded, data, set(literals)) != {k: values[k] for k in literals}:
            return list(modules)
    except (PolicyLoadError, RuntimeError, TypeError, ValueError):
        return list(modules)  # regorus' own errors are RuntimeErrors: used as written
    return folded


def _overlaps(path: Sequence[str], package: Sequence[str]) -> bool:
    """Whether reading `data.<path>` reaches into or contains the package's rules."""
    common = min(len(path), len(package))
    return tuple(path[:common]) == tuple(package[:common])


def _values(
    modules: Sequence[RegoModule], data: Mapping[str, Any], wanted: set[tuple[int, str]]
) -> dict[tuple[int, str], Any]:
    """Each wanted rule's value, as the binding gives it; a rule that is undefined, null, fails,
    or whose value the binding cannot give (a set of arrays) is left out. RuntimeError when the
    modules do not compile."""
    engine = new_engine()
    for module in modules:
        engine.add_policy(module.path, module.source)
    if data:
        engine.add_data(dict(data))
    engine.eval_query("true")  # compiles every module: a module that does not is not used
    found = {}
    for index, name in sorted(wanted):
        try:
            value = engine.eval_rule(f"data.{modules[index].package}.{name}")
        except (RuntimeError, TypeError):
            continue  # an error (a conflict), or a value the binding cannot give: left as is
        if value is not None:
            found[(index, name)] = value
    return found


def _literal(value: Any) -> str:
    """Rego source for a value the binding gave (its JSON, sets as `{...}` or `set()`)."""
    text = _text(value)
    if len(text) > MAX_LITERAL:
        raise _NotALiteral
    return text


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool | int | str):
        return orjson.dumps(value).decode()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotALiteral
        return orjson.dumps(value).decode()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, set | frozenset):
        if not value:
            return "set()"
        return "{" + ", ".join(sorted(_text(v) for v in value)) + "}"
    raise _NotALiteral


def _folded(module: RegoModule, literals: Mapping[str, str]) -> RegoModule:
    """The module with every definition of each rule in `literals` replaced (see above)."""
    if not literals:
        return module
    source = module.source.encode()
    # A definition runs to the next one (or the end): regorus' span of a rule stops inside its
    # last `else` value, and what lies between definitions is comments and blank lines.
    starts = sorted({rule.start for rule in module.rules})
    following = dict(zip(starts, [*starts[1:], len(source)], strict=True))
    spans = sorted(
        (rule.start, following[rule.start], rule.name)
        for rule in module.rules
        if rule.name in literals
    )
    out, at, written = [], 0, set()
    for start, end, name in spans:
        out.append(source[at:start])
        lines = source[start:end].count(b"\n")
        if name not in written:
            written.add(name)
            out.append(f"{name} := {literals[name]}".encode())
        out.append(b"\n" * lines)
        at = end
    out.append(source[at:])
    analysed = analyse_module(module.path, b"".join(out).decode())
    return dataclasses.replace(analysed, written=module.written)
