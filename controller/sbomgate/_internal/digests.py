"""Digests for memo keys, computed without handing the GIL over.

hashlib releases the GIL while it hashes 2,048 bytes or more, and takes it back at once. A
thread that does this thousands of times a second (a large SBOM's runs and components are
keyed by the SHA-256 of their JSON, often 2-20 KB) starves every other thread of the process:
CPython asks the holder to hand the GIL over only when a waiter has waited a whole switch
interval without any switch, and each of these releases counts as one, though the releasing
thread nearly always wins the GIL back. Measured here, a webhook's event loop then waited
40-90 ms at a time while a 5,000-component SBOM was read, and not over 10 ms with the digests
below. So data up to HELD_MAX_BYTES is hashed in pieces under the limit, the GIL held
throughout (at most some 0.2 ms); longer data is hashed in one call, one release.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["HELD_MAX_BYTES", "blake2b_256", "sha256"]

# hashlib releases the GIL from this many bytes on (HASHLIB_GIL_MINSIZE in CPython).
_RELEASED_FROM = 2048
_PIECE = _RELEASED_FROM - 1
HELD_MAX_BYTES = 256 * 1024
"""Data up to this size is hashed with the GIL held (about 0.2 ms at SHA-NI speed)."""


def _held(digest: Any, data: bytes | bytearray | memoryview) -> bytes:
    if len(data) < _RELEASED_FROM or len(data) > HELD_MAX_BYTES:
        digest.update(data)
    else:
        view = memoryview(data)
        for start in range(0, len(view), _PIECE):
            digest.update(view[start : start + _PIECE])
    result: bytes = digest.digest()
    return result


def sha256(data: bytes | bytearray | memoryview) -> bytes:
    """`hashlib.sha256(data).digest()`, the GIL held for data up to HELD_MAX_BYTES."""
    return _held(hashlib.sha256(), data)


def blake2b_256(data: bytes | bytearray | memoryview) -> bytes:
    """`hashlib.blake2b(data, digest_size=32).digest()`, the GIL held as `sha256` holds it."""
    return _held(hashlib.blake2b(digest_size=32), data)
