"""Loading policies: `.rego` files with optional OPA METADATA annotations on the package."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Re-exported: Action lived here, and `from sbomgate.policy.loader import Action` keeps working.
from sbomgate.actions import Action as Action
from sbomgate.errors import InputError, PolicyLoadError
from sbomgate.policy._annotations import MAX_METADATA_DEPTH as MAX_METADATA_DEPTH
from sbomgate.policy._annotations import load_block
from sbomgate.policy._regorus import RegoModule, analyse_module, check_calls, check_compiles

MAX_POLICY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A loaded, checked policy. Lower `precedence` runs first."""

    name: str
    path: str
    package: str
    module: RegoModule
    title: str
    description: str
    action: Action = Action.DENY
    precedence: int = 100
    terminal: bool = False
    enabled: bool = True
    # Where it applies (PackagePolicy spec.scope): namespaces, namespaceSelector, images.
    scope: Mapping[str, Any] | None = None

    @property
    def match_rule(self) -> str:
        """The query of the policy's `match` rule."""
        return f"data.{self.package}.match"

    @property
    def reason_rule(self) -> str:
        """The query of the policy's `reason` rule."""
        return f"data.{self.package}.reason"


_PACKAGE_LINE = re.compile(r"^\s*package\s+\S", re.MULTILINE)


def read_metadata(path: str, source: str) -> tuple[dict[str, Any], int | None]:
    """The package's METADATA block (YAML in comments right before `package`), and its line."""
    lines = source.splitlines()
    package_at = next((i for i, line in enumerate(lines) if _PACKAGE_LINE.match(line)), None)
    if package_at is None:
        return {}, None
    start = package_at
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    block = lines[start:package_at]
    marker = next((i for i, line in enumerate(block) if line.strip() == "# METADATA"), None)
    if marker is None:
        return {}, None
    text = "\n".join(line.lstrip()[1:].removeprefix(" ") for line in block[marker + 1 :])
    first_line = start + marker + 1
    return load_block(path, first_line, text), first_line


def _key_line(source: str, key: str, after: int | None) -> int | None:
    """The 1-based line of the METADATA comment that sets `key` (for precise errors)."""
    if after is None:
        return None
    pattern = re.compile(rf"^\s*#\s*{re.escape(key)}\s*:")
    for number, text in enumerate(source.splitlines()[after - 1 :], start=after):
        if pattern.match(text):
            return number
    return after


def _custom(path: str, source: str, meta: Mapping[str, Any], first: int | None) -> dict[str, Any]:
    custom = meta.get("custom") or {}
    line = first
    if not isinstance(custom, dict):
        raise PolicyLoadError(path, "METADATA custom must be a mapping", line)
    out: dict[str, Any] = {}
    if "action" in custom:
        line = _key_line(source, "action", first)
        try:
            out["action"] = Action(str(custom["action"]))
        except ValueError:
            allowed = ", ".join(a.value for a in Action)
            raise PolicyLoadError(
                path, f"METADATA custom.action {custom['action']!r} is not one of {allowed}", line
            ) from None
    if "precedence" in custom:
        value = custom["precedence"]
        line = _key_line(source, "precedence", first)
        if not isinstance(value, int) or isinstance(value, bool):
            raise PolicyLoadError(path, "METADATA custom.precedence must be an integer", line)
        out["precedence"] = value
    for key in ("terminal", "enabled"):
        if key in custom:
            line = _key_line(source, key, first)
            if not isinstance(custom[key], bool):
                raise PolicyLoadError(path, f"METADATA custom.{key} must be true or false", line)
            out[key] = custom[key]
    return out


def load_policy(path: str, source: str) -> Policy:
    """A policy from its source: analysed, its builtins checked, its METADATA read; PolicyLoadError
    otherwise."""
    if len(source) > MAX_POLICY_BYTES:  # a policy from a resource, not a file
        raise PolicyLoadError(path, f"policy is {len(source)} characters, over the 1 MiB limit")
    module = analyse_module(path, source)
    check_calls([module])
    check_compiles(module)
    meta, line = read_metadata(path, source)
    if not module.definitions("match"):
        raise PolicyLoadError(path, f"package {module.package} has no `match` rule")
    return Policy(
        name=policy_name(Path(path).stem),
        path=path,
        package=module.package,
        module=module,
        title=str(meta.get("title") or Path(path).stem),
        description=str(meta.get("description") or ""),
        **_custom(path, source, meta, line),
    )


def policy_name(text: str) -> str:
    """A policy's name: its file's stem (or its resource's name) with `_` written `-`, as a
    Kubernetes name must be, so that `package_age.rego` is `package-age` in the CLI, SARIF,
    the cluster and `policyModes` alike."""
    return text.replace("_", "-")


def is_test_file(path: Path) -> bool:
    """True for Rego test files (`*_test.rego`)."""
    return path.name.endswith("_test.rego")


def read_policy_file(path: Path) -> str:
    """A policy file's text; PolicyLoadError when it is too big, not UTF-8 or unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise PolicyLoadError(str(path), f"policy is {size} bytes, over the 1 MiB limit")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PolicyLoadError(str(path), "policy is not UTF-8 text") from None
    except OSError as exc:
        raise PolicyLoadError(str(path), f"cannot read: {exc.strerror}") from None


def load_policy_dir(directory: str | Path) -> list[Policy]:
    """Every non-test `.rego` file of `directory` (not recursive), sorted by precedence."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: policy directory not found")
    policies = [
        load_policy(str(p), read_policy_file(p))
        for p in sorted(root.glob("*.rego"))
        if not is_test_file(p)
    ]
    if not policies:
        raise InputError(f"{root}: no .rego policies found")
    return sorted(policies, key=lambda p: (p.precedence, p.name))
