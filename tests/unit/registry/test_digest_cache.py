"""DigestCache: hits and misses, TTLs, the byte bound (LRU), and single-flight loading."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from sbomgate._internal import cache as cache_module
from sbomgate._internal.cache import DigestCache, Loaded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts its calls; returns `Loaded(f"{key}#{n}", size, negative)`."""

    def __init__(self, key: str, size: int = 10, negative: bool = False) -> None:
        self.key, self.size, self.negative = key, size, negative
        self.calls = 0

    def __call__(self) -> Loaded[str]:
        self.calls += 1
        return Loaded(f"{self.key}#{self.calls}", self.size, self.negative)


def make(**kwargs: float) -> tuple[DigestCache[str], Clock]:
    clock = Clock()
    return DigestCache(clock=clock, **kwargs), clock  # type: ignore[arg-type]


def test_miss_then_hits() -> None:
    cache, _ = make()
    load = Loader("a")
    assert cache.get("a") is None
    assert cache.get_or_load("a", load) == "a#1"
    assert cache.get_or_load("a", load) == "a#1"
    assert cache.get_or_load("a", load) == "a#1"
    assert load.calls == 1
    assert (cache.hits, cache.misses) == (2, 1)
    assert cache.get("a") == "a#1"
    assert len(cache) == 1
    assert cache.size_bytes == 10


def test_keys_are_independent() -> None:
    cache, _ = make()
    assert cache.get_or_load(("sha256:1", "policies-v1"), Loader("x")) == "x#1"
    assert cache.get_or_load(("sha256:1", "policies-v2"), Loader("y")) == "y#1"
    assert (cache.hits, cache.misses) == (0, 2)
    assert len(cache) == 2


def test_ttl_expiry() -> None:
    cache, clock = make(ttl=60.0, negative_ttl=5.0)
    load = Loader("a")
    cache.get_or_load("a", load)
    clock.now += 59.9
    assert cache.get_or_load("a", load) == "a#1"
    clock.now += 0.1  # exactly at expiry: gone
    assert cache.get("a") is None
    assert len(cache) == 0
    assert cache.size_bytes == 0
    assert cache.get_or_load("a", load) == "a#2"
    assert load.calls == 2
    assert (cache.hits, cache.misses) == (1, 2)


def test_negative_results_have_the_shorter_ttl() -> None:
    cache, clock = make(ttl=60.0, negative_ttl=5.0)
    refused = Loader("bad", negative=True)
    admitted = Loader("good")
    cache.get_or_load("bad", refused)
    cache.get_or_load("good", admitted)
    clock.now += 4.9
    assert cache.get_or_load("bad", refused) == "bad#1"
    clock.now += 0.2
    assert cache.get_or_load("bad", refused) == "bad#2"
    assert cache.get_or_load("good", admitted) == "good#1"
    assert (refused.calls, admitted.calls) == (2, 1)


def test_byte_bound_evicts_least_recently_used() -> None:
    cache, _ = make(max_bytes=30)
    for key in "abc":
        cache.get_or_load(key, Loader(key, size=10))
    assert cache.size_bytes == 30
    assert cache.get("a") == "a#1"  # a is now the most recently used; b the least
    cache.get_or_load("d", Loader("d", size=10))
    assert cache.get("b") is None
    assert {k: cache.get(k) for k in "acd"} == {"a": "a#1", "c": "c#1", "d": "d#1"}
    assert cache.size_bytes == 30
    # A large value pushes out as many old ones as needed.
    cache.get_or_load("e", Loader("e", size=25))
    assert cache.size_bytes == 25
    assert len(cache) == 1
    assert cache.get("e") == "e#1"


def test_hits_refresh_recency_too() -> None:
    cache, _ = make(max_bytes=20)
    cache.get_or_load("a", Loader("a"))
    cache.get_or_load("b", Loader("b"))
    cache.get_or_load("a", Loader("never"))  # a hit: a becomes the most recent
    cache.get_or_load("c", Loader("c"))
    assert cache.get("a") == "a#1"
    assert cache.get("b") is None


def test_value_larger_than_max_bytes_is_returned_but_not_kept() -> None:
    cache, _ = make(max_bytes=100)
    cache.get_or_load("small", Loader("small", size=50))
    huge = Loader("huge", size=101)
    assert cache.get_or_load("huge", huge) == "huge#1"
    assert cache.get_or_load("huge", huge) == "huge#2"
    assert huge.calls == 2
    assert cache.get("huge") is None
    assert cache.get("small") == "small#1"  # nothing was evicted for it
    assert cache.size_bytes == 50
    exact = Loader("exact", size=100)
    cache.get_or_load("exact", exact)
    assert cache.get("exact") == "exact#1"
    assert cache.size_bytes == 100


def test_clear() -> None:
    cache, _ = make()
    cache.get_or_load("a", Loader("a"))
    cache.clear()
    assert len(cache) == 0
    assert cache.size_bytes == 0
    assert cache.get("a") is None


def run_threads(count: int, target: Callable[[int], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


class CountingEvent(threading.Event):
    """An Event that counts the threads that have started waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0
        self._count_lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> bool:
        with self._count_lock:
            self.waiting += 1
        return super().wait(timeout)


@pytest.fixture
def flights(monkeypatch: pytest.MonkeyPatch) -> list[CountingEvent]:
    """Every flight's `done` event, so a test can see how many lookups wait on it."""
    events: list[CountingEvent] = []

    class CountingFlight(cache_module._Flight):  # type: ignore[type-arg]
        def __init__(self) -> None:
            super().__init__()
            self.done = CountingEvent()
            events.append(self.done)

    monkeypatch.setattr(cache_module, "_Flight", CountingFlight)
    return events


def wait_until(condition: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(2500):
        if condition():
            return
        pause.wait(0.002)
    raise AssertionError("condition not reached in 5 s")


def test_single_flight_calls_the_loader_once_for_concurrent_lookups(
    flights: list[CountingEvent],
) -> None:
    cache, _ = make()
    release = threading.Event()
    started = threading.Event()
    calls = 0

    def loader() -> Loaded[str]:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(5), "the test never released the loader"
        return Loaded("verified", 10)

    results: list[str] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        value = cache.get_or_load("sha256:abc", loader)
        with lock:
            results.append(value)

    threads = run_threads(8, worker)
    assert started.wait(5)
    # The leader runs the loader; the seven others all wait on its one flight.
    wait_until(lambda: len(flights) == 1 and flights[0].waiting == 7)
    release.set()
    for thread in threads:
        thread.join(5)
    assert not any(t.is_alive() for t in threads)
    assert calls == 1
    assert len(flights) == 1
    assert results == ["verified"] * 8
    assert cache.misses == 1
    assert cache.get_or_load("sha256:abc", loader) == "verified"
    assert calls == 1
    assert not cache._flights


def test_loader_error_reaches_every_waiter_and_is_not_cached(
    flights: list[CountingEvent],
) -> None:
    cache, _ = make()
    release = threading.Event()
    started = threading.Event()
    calls = 0

    class RegistryDown(Exception):
        pass

    def failing() -> Loaded[str]:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(5)
        raise RegistryDown("registry unreachable")

    errors: list[BaseException] = []
    values: list[str] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        try:
            value = cache.get_or_load("sha256:abc", failing)
        except RegistryDown as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                values.append(value)

    threads = run_threads(8, worker)
    assert started.wait(5)
    # The leader runs the loader; the seven others all wait on its one flight.
    wait_until(lambda: len(flights) == 1 and flights[0].waiting == 7)
    release.set()
    for thread in threads:
        thread.join(5)
    assert not any(t.is_alive() for t in threads)
    assert values == []
    assert len(errors) == 8
    assert all(str(e) == "registry unreachable" for e in errors)
    assert calls == 1
    assert len(flights) == 1
    assert len(cache) == 0
    assert not cache._flights
    # Nothing was cached: the next lookup loads again, and this time succeeds.
    assert cache.get_or_load("sha256:abc", Loader("ok")) == "ok#1"


def test_loader_error_in_a_single_thread_is_raised_and_not_cached() -> None:
    cache, _ = make()

    def failing() -> Loaded[str]:
        raise TimeoutError("deadline")

    with pytest.raises(TimeoutError, match="deadline"):
        cache.get_or_load("k", failing)
    assert len(cache) == 0
    assert not cache._flights
    assert cache.get_or_load("k", Loader("k")) == "k#1"


def test_single_flight_per_key_not_global() -> None:
    cache, _ = make()
    release = threading.Event()
    started = threading.Event()

    def slow() -> Loaded[str]:
        started.set()
        assert release.wait(5)
        return Loaded("slow", 1)

    thread = threading.Thread(target=lambda: cache.get_or_load("slow", slow), daemon=True)
    thread.start()
    assert started.wait(5)
    # Another key loads while the first is still in flight.
    assert cache.get_or_load("fast", Loader("fast")) == "fast#1"
    release.set()
    thread.join(5)
    assert cache.get("slow") == "slow"


def test_refresh_ahead_of_expiry() -> None:
    cache, clock = make(ttl=60.0, negative_ttl=5.0)
    first = Loader("v")
    assert cache.get_or_load("k", first) == "v#1"
    assert not cache.claim_refresh("k", within=10.0)  # 60 s left
    clock.now += 55.0
    assert cache.claim_refresh("k", within=10.0)
    assert not cache.claim_refresh("k", within=10.0)  # one refresh at a time
    assert cache.get("k") == "v#1"  # the old value meanwhile
    cache.refresh("k", first)
    assert cache.get("k") == "v#2"
    clock.now += 59.0
    assert cache.get("k") == "v#2"  # a new TTL from the refresh

    # Refusals are not refreshed: they are meant to be asked again when they expire.
    refused = Loader("r", negative=True)
    cache.get_or_load("r", refused)
    clock.now += 4.0
    assert not cache.claim_refresh("r", within=10.0)


def test_a_lookup_after_expiry_waits_for_the_refresh_in_flight() -> None:
    cache, clock = make(ttl=60.0)
    cache.get_or_load("k", Loader("v"))
    clock.now += 55.0
    assert cache.claim_refresh("k", within=10.0)
    clock.now += 10.0  # expired while the refresh runs
    started, release = threading.Event(), threading.Event()
    answers: list[str] = []
    lookup = Loader("duplicate")
    waiter = threading.Thread(target=lambda: answers.append(cache.get_or_load("k", lookup)))

    def slow() -> Loaded[str]:
        started.set()
        release.wait()
        return Loaded("refreshed", 10)

    refresher = threading.Thread(target=cache.refresh, args=("k", slow))
    refresher.start()
    started.wait()
    waiter.start()
    release.set()
    refresher.join()
    waiter.join()
    assert answers == ["refreshed"] and lookup.calls == 0
