"""Where a policy applies: a PackagePolicy's `scope` (namespaces, namespace selector, image
globs) matched against a workload's namespace, its labels and an image reference."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from sbomgate._internal.globs import glob_to_regex
from sbomgate.errors import InputError
from sbomgate.registry.reference import parse_reference


def in_scope(
    scope: Mapping[str, Any], namespace: str, labels: Mapping[str, str] | None, ref: str
) -> bool:
    """A PackagePolicy scope: every part given must match (namespaces, selector, images)."""
    namespaces = scope.get("namespaces")
    if namespaces and not any(fnmatchcase(namespace, n) for n in namespaces):
        return False
    selector = scope.get("namespaceSelector")
    if selector and not selector_matches(selector, labels or {}):
        return False
    images = scope.get("images")
    if images:
        try:
            name = parse_reference(ref).name
        except InputError:
            return True  # an unreadable reference is refused anyway; do not hide policies
        return any(glob_to_regex(g).fullmatch(name) for g in images)
    return True


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key")
        operator = expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
