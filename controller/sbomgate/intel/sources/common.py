"""What the backends share to read a repository's answer: its dates and its digests."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Iterable, Mapping

from sbomgate.intel.sources.interface import HASH_ALGORITHMS

_HEX = re.compile(r"^[0-9a-f]+$")


def rfc3339(value: str | None) -> str | None:
    """An ISO 8601 / RFC 3339 or HTTP date as `YYYY-MM-DDTHH:MM:SSZ` (UTC), else None."""
    if not value:
        return None
    when: dt.datetime | None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_hash(hashes: dict[str, set[str]], algorithm: str, digest: object) -> None:
    """Collect a listed digest, if it is hex of an algorithm we compare (others are noise)."""
    if not isinstance(digest, str):
        return
    algorithm = algorithm.lower().replace("-", "")
    digest = digest.strip().lower()
    if algorithm in HASH_ALGORITHMS and digest and _HEX.match(digest):
        hashes.setdefault(algorithm, set()).add(digest)


def frozen_hashes(hashes: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Collected digests as `VersionInfo.hashes`."""
    return {a: frozenset(d) for a, d in hashes.items()}
