"""What the OS repository backends (apt, rpm) share: package indexes named by the digest their
signed metadata lists, decompressed within bounds, parsed once and kept by that digest.

A digest names one content, so a parsed index is shared by every source and kept across
refreshes of the signed metadata that still list it (Debian's `main` index changes a few times a
day; its `InRelease` is re-read every `positive_ttl`). Concurrent lookups of one index wait for
the one load; what is kept is bounded by the number of packages held (about 0.5 KiB each: the
63,440 packages of Debian 12's main/amd64 index take 32 MiB), least recently used dropped first.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

import zstandard

from sbomgate.errors import SbomgateError

MiB = 1 << 20


class Weighed(Protocol):
    """A parsed index: how many packages it holds."""

    @property
    def weight(self) -> int:
        """The number of packages held (what the cache is bounded by)."""
        ...


_W = TypeVar("_W", bound=Weighed)


class IndexCache:
    """Parsed indexes by key (their signed digest): each loaded once however many ask at once,
    at most `max_weight` packages kept in all; thread-safe. A load that raises is not kept."""

    def __init__(self, max_weight: int = 400_000, stripes: int = 64) -> None:
        self.max_weight = max_weight
        self._entries: OrderedDict[tuple[str, ...], Weighed] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()
        self._flights = FlightLocks(stripes)
        self.loads = 0

    def get(self, key: tuple[str, ...], load: Callable[[], _W]) -> _W:
        """The value kept for `key`, else `load()`'s (one load at a time per key)."""
        found = self._kept(key)
        if found is not None:
            return found  # type: ignore[return-value]
        with self._flights.lock(key):
            found = self._kept(key)
            if found is not None:
                return found  # type: ignore[return-value]
            value = load()
            with self._lock:
                self.loads += 1
                self._entries[key] = value
                self._weight += value.weight
                while self._weight > self.max_weight and len(self._entries) > 1:
                    _, dropped = self._entries.popitem(last=False)
                    self._weight -= dropped.weight
            return value

    def _kept(self, key: tuple[str, ...]) -> Weighed | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def clear(self) -> None:
        """Forget every index kept."""
        with self._lock:
            self._entries.clear()
            self._weight = 0


class FlightLocks:
    """A fixed set of locks a key hashes to: one load per key at a time, in bounded memory."""

    def __init__(self, stripes: int = 64) -> None:
        self._locks = tuple(threading.Lock() for _ in range(max(1, stripes)))

    def lock(self, key: object) -> threading.Lock:
        """The lock `key` is loaded under."""
        return self._locks[hash(key) % len(self._locks)]


class BadIndex(SbomgateError, ValueError):
    """An index that is not what its signed metadata says (digest, size, compression)."""


def check_digest(
    body: bytes, *, sha256: str, size: int | None, what: str, algorithm: str = "sha256"
) -> None:
    """BadIndex unless `body` has the digest (SHA-256, or `algorithm`: sha512) and the size the
    signed metadata lists."""
    if size is not None and len(body) != size:
        raise BadIndex(
            f"{what} is {len(body)} bytes, not the {size} its signed metadata lists: it is not the "
            "index that was signed"
        )
    if algorithm not in ("sha256", "sha512"):
        raise BadIndex(f"{what}: its signed metadata gives a {algorithm} digest; sha256 is needed")
    actual = hashlib.new(algorithm, body).hexdigest()
    if actual != sha256.lower():
        raise BadIndex(
            f"{what} has {algorithm} {actual[:16]}..., not the {sha256.lower()[:16]}... its signed "
            "metadata lists: it is not the index that was signed"
        )


def _unzstd(body: bytes, name: str, limit: int) -> bytes:
    """One Zstandard frame, whole (a frame cut short, or followed by anything, is refused),
    expanded within `limit`: a declared size over it is refused unread, and an undeclared one
    stops at the limit."""
    try:
        declared = zstandard.frame_content_size(body)
        if declared > limit:
            raise BadIndex(f"{name} expands beyond {limit} bytes, over what is read")
        out = zstandard.ZstdDecompressor().decompress(
            body, max_output_size=limit + 1, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise BadIndex(f"{name} does not decompress within {limit} bytes: {exc}") from None
    if len(out) > limit:
        raise BadIndex(f"{name} expands beyond {limit} bytes, over what is read")
    return out


def decompress(body: bytes, name: str, limit: int) -> bytes:
    """`body` decompressed by the suffix of `name` (`.zst`, `.xz`, `.lzma`, `.gz`, `.bz2`, or
    none);
    BadIndex when it is corrupt, cut short, or larger than `limit` bytes once expanded."""
    lowered = name.lower()
    if lowered.endswith((".zst", ".zstd")):
        return _unzstd(body, name, limit)
    if lowered.endswith(".lz4"):
        raise BadIndex(f"{name}: this compression is not read (zstd, xz, gzip, bzip2 or none are)")
    if not lowered.endswith((".xz", ".lzma", ".bz2", ".gz")):
        if len(body) > limit:
            raise BadIndex(f"{name} is {len(body)} bytes, over the {limit} read")
        return body
    try:
        if lowered.endswith(".gz"):
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflate.decompress(body, limit + 1)
            done = inflate.eof
        else:
            expand = (
                lzma.LZMADecompressor() if not lowered.endswith(".bz2") else bz2.BZ2Decompressor()
            )
            out = expand.decompress(body, max_length=limit + 1)
            done = expand.eof
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise BadIndex(f"{name} does not decompress: {exc}") from None
    if len(out) > limit:
        raise BadIndex(f"{name} expands beyond {limit} bytes, over what is read")
    if not done:
        raise BadIndex(f"{name} is cut short: its compressed stream does not end")
    return out
