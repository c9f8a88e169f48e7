"""Reading the small JSON/YAML documents users hand us (data files, facts snapshots)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml

from sbomgate.errors import InputError


def load_json_or_yaml(path: Path, *, what: str, max_bytes: int) -> Any:
    """The parsed document (JSON for `.json`, else YAML), or InputError naming file and line."""
    try:
        if path.stat().st_size > max_bytes:
            raise InputError(f"{path}: {what} is over the {max_bytes >> 20} MiB limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        return orjson.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}: invalid YAML{where}") from None


MAX_DATA_BYTES = 16 << 20


def load_data_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML data document, merged at the root of `data` (as `opa eval -d` does)."""
    value = load_json_or_yaml(path, what="data file", max_bytes=MAX_DATA_BYTES)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{path}: data must be a mapping at the top level")
    return value


def load_data_files(paths: Iterable[Path]) -> dict[str, Any]:
    """Several data documents deep-merged in order (later keys win)."""
    merged: dict[str, Any] = {}
    for path in paths:
        _deep_merge(merged, load_data_file(path))
    return merged


def _deep_merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
