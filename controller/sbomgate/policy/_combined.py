"""Several policies in one regorus engine, so that a package's input is parsed once for all.

regorus parses the input document anew for every engine it is given to (`set_input_json`, about
20 µs for a package's 2 KB): with one engine per policy that was a third of a package's
evaluation. Cloudsmith's policies all declare `package cloudsmith`, so they cannot share an
engine as they are; each is given a package of its own (`sbomgate_policy_<n>`), a change of its
`package` line only (lines and columns of everything else are kept, so errors still point at
the user's file).

A policy shares only when the rename cannot change what it means: it must not read `data` as a
whole, nor at a computed key right under it, nor any path leading to or inside its own package
(its `data.cloudsmith.x` would be gone) or the others' new packages (which it would now see).
Every other policy keeps an engine of its own.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

from sbomgate.errors import PolicyLoadError
from sbomgate.policy._regorus import RegoModule, analyse_module
from sbomgate.policy.loader import Policy

# The package declaration (the first statement of a module, so the first line that starts so).
_PACKAGE = re.compile(r"^(\s*package\s+)(\S+)", re.MULTILINE)
_RENAMED_PREFIX = "sbomgate_policy_"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CombinedPlan:
    """Which policies share one engine, and each policy as it is evaluated there.

    `shared` holds the policies (renamed) of the common engine, in policy order; `renamed`
    maps a policy's name to its renamed copy."""

    shared: tuple[Policy, ...]
    renamed: Mapping[str, Policy]

    NONE: ClassVar[CombinedPlan]


CombinedPlan.NONE = CombinedPlan(shared=(), renamed={})


def _overlaps(path: Sequence[str], package: Sequence[str]) -> bool:
    """Whether reading `data.<path>` reaches into or contains the package's rules."""
    common = min(len(path), len(package))
    return tuple(path[:common]) == tuple(package[:common])


def _renamed_module(module: RegoModule, package: str) -> RegoModule | None:
    """The module with its package declaration replaced, or None when that cannot be done
    without changing anything else."""
    if module.annotations is not None and module.annotations.calls:
        return None  # rego.metadata.chain() shows its package, which must stay the author's
    found = _PACKAGE.search(module.source)
    if found is None or found.group(2) != module.package:
        return None  # a package spelt with brackets or spread over lines: not worth it
    source = module.source[: found.start(2)] + package + module.source[found.end(2) :]
    try:
        renamed = analyse_module(module.path, source)
    except PolicyLoadError:
        return None
    same_rules = [(r.name, r.kind, r.line) for r in renamed.rules] == [
        (r.name, r.kind, r.line) for r in module.rules
    ]
    if renamed.package != package or not same_rules:
        return None
    return renamed


def plan_combined(policies: Sequence[Policy], data: Mapping[str, Any]) -> CombinedPlan:
    """The policies that can share one engine, each under a package of its own (see above).

    Fewer than two candidates share nothing (a shared engine would gain nothing)."""
    taken: set[str] = set(data) | {p.package.split(".")[0] for p in policies}
    names: list[str] = []
    for index in range(len(policies)):
        name = f"{_RENAMED_PREFIX}{index}"
        while name in taken:
            name += "_"
        taken.add(name)
        names.append(name)
    new_roots: Collection[str] = frozenset(names)
    candidates: list[tuple[Policy, str]] = []
    for policy, name in zip(policies, names, strict=True):
        module = policy.module
        own = tuple(module.package.split("."))
        if any(
            not path or path[0] in new_roots or _overlaps(path, own) for path in module.data_reads
        ):
            continue
        candidates.append((policy, name))
    if len({p.module.path for p, _ in candidates}) != len(candidates):
        candidates = []  # two modules of one path could not both be added to one engine
    renamed: dict[str, Policy] = {}
    for policy, name in candidates if len(candidates) > 1 else ():
        renamed_module = _renamed_module(policy.module, name)
        if renamed_module is not None:
            renamed[policy.name] = dataclasses.replace(policy, package=name, module=renamed_module)
    if len(renamed) < 2:
        renamed = {}
    return CombinedPlan(
        shared=tuple(renamed[p.name] for p in policies if p.name in renamed),
        renamed=renamed,
    )
