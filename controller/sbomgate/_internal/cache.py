"""A process-wide cache of results about immutable content: bounded by bytes, with TTLs,
single-flight. Its callers' keys (and why each part is in them) are in sbomgate/cache_keys.py.

Digests name immutable content, so a verified result stays right until what else is in the
key changes (the repository, the trust policies) or its TTL ends. Refusals are kept for a
short negative TTL (so a storm of Pods with a bad image does not hammer the registry);
infrastructure faults are not kept at all. Concurrent lookups of the same key wait for the
one load in flight.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Loaded(Generic[V]):
    """What a loader returns: the value, its approximate size, and whether it is a refusal."""

    value: V
    size: int
    negative: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Expiry:
    """How an entry is kept: its size, whether it is a refusal, and the seconds it has left (so
    that another process's cache keeps a copy exactly as long: serving/coldpath.py)."""

    size: int
    negative: bool
    seconds_left: float


@dataclass(slots=True, kw_only=True)
class _Entry(Generic[V]):
    value: V
    size: int
    expires: float
    negative: bool = False


class _Flight(Generic[V]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: V | None = None


class DigestCache(Generic[V]):
    """Results by key, bounded by bytes, with TTLs, loaded once for concurrent callers."""

    def __init__(
        self,
        *,
        max_bytes: int = 256 << 20,
        ttl: float = 3600.0,
        negative_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._flights: dict[Hashable, _Flight[V]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        """The approximate bytes held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        """The value cached for `key` and not yet expired, else None."""
        with self._lock:
            return self._get_locked(key)

    def _get_locked(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def expiry(self, key: Hashable) -> Expiry | None:
        """How the entry for `key` is kept, or None when there is none (or it expired)."""
        with self._lock:
            entry = self._entries.get(key)
            left = entry.expires - self._clock() if entry is not None else 0.0
            if entry is None or left <= 0:
                return None
            return Expiry(size=entry.size, negative=entry.negative, seconds_left=left)

    def put(self, key: Hashable, value: V, expiry: Expiry) -> None:
        """Keep `value` as another cache kept it (`expiry`), replacing what `key` held."""
        self._store(key, Loaded(value, expiry.size, expiry.negative), ttl=expiry.seconds_left)

    def claim_refresh(self, key: Hashable, within: float) -> bool:
        """True when `key` is cached (not as a refusal: those are meant to be asked again
        later), expires within `within` seconds, and nobody is loading it. The caller must then
        call `refresh`; meanwhile `get` answers the old value, and a `get_or_load` after it
        expired waits for the refresh instead of loading too."""
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is None
                or entry.negative
                or key in self._flights
                or entry.expires - self._clock() > within
            ):
                return False
            self._flights[key] = _Flight()
            return True

    def refresh(self, key: Hashable, loader: Callable[[], Loaded[V]]) -> None:
        """Load a key claimed with `claim_refresh` again and keep the new value."""
        with self._lock:
            flight = self._flights[key]
        self._lead(key, flight, loader)

    def get_or_load(self, key: Hashable, loader: Callable[[], Loaded[V]]) -> V:
        """The cached value, else `loader`'s, loaded once however many callers wait for it."""
        with self._lock:
            value = self._get_locked(key)
            if value is not None:
                self.hits += 1
                return value
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            self.misses += leader
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.value is not None
            return flight.value
        return self._lead(key, flight, loader)

    def _lead(self, key: Hashable, flight: _Flight[V], loader: Callable[[], Loaded[V]]) -> V:
        """Load for everyone waiting on `flight`, keep the value, and let them go."""
        try:
            loaded = loader()
            flight.value = loaded.value
            self._store(key, loaded)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
        return loaded.value

    def _store(self, key: Hashable, loaded: Loaded[V], *, ttl: float | None = None) -> None:
        if loaded.size > self.max_bytes:
            return
        if ttl is None:
            ttl = self.negative_ttl if loaded.negative else self.ttl
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(
                value=loaded.value,
                size=loaded.size,
                expires=self._clock() + ttl,
                negative=loaded.negative,
            )
            self._bytes += loaded.size
            while self._bytes > self.max_bytes and self._entries:
                oldest = next(iter(self._entries))
                self._drop(oldest)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size

    def clear(self) -> None:
        """Drop every entry (loads in flight finish and store theirs)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
