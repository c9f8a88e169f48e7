"""Reading the small JSON/YAML documents users hand us (data files, facts snapshots)."""

from __future__ import annotations

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
