"""The cyclic GC's pause, and objects freed after the answer (`free_later`)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sbomgate._internal import gcpause


class Doomed:
    """Something whose freeing can be watched (a weak reference to it dies)."""

    def __init__(self) -> None:
        self.payload = [{"n": n} for n in range(1000)]


@pytest.fixture(autouse=True)
def gc_on() -> Iterator[None]:
    assert gcpause.wait_freed(30)
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_pause_nests_across_threads_and_the_gc_comes_back_on() -> None:
    inside = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with gcpause.gc_paused():
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=other)
    with gcpause.gc_paused():
        assert not gc.isenabled()
        thread.start()
        assert inside.wait(30)
    assert not gc.isenabled()  # the other thread's pause still holds
    leave.set()
    thread.join(30)
    assert gc.isenabled()


class Cyclic:
    """Garbage only the cyclic GC can free: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


def test_what_a_pause_made_is_not_left_to_the_youngest_generation() -> None:
    """A burst made while paused is in the oldest generation once the pause ends, so the next
    young collection does not walk it; a cycle made then is still collected by a full one."""
    gc.collect()
    with gcpause.gc_paused():
        burst = [[n] for n in range(20_000)]  # lists: always tracked (such dicts are not)
        cycle = weakref.ref(Cyclic())
        assert len(gc.get_objects(generation=0)) > 20_000
    young = {id(o) for o in gc.get_objects(generation=0)}
    assert not any(id(item) in young for item in burst)
    assert len(young) < 1_000
    assert any(o is burst[0] for o in gc.get_objects(generation=2))
    assert cycle() is not None  # not collected yet: it waits for a full collection
    gc.collect(0)
    assert cycle() is not None
    gc.collect()
    assert cycle() is None


def test_a_pause_of_a_disabled_gc_moves_nothing() -> None:
    """Whoever turned the GC off keeps it as it was: off, its generations untouched."""
    gc.disable()
    try:
        with gcpause.gc_paused():
            made = ["made now"]
        assert any(o is made for o in gc.get_objects(generation=0))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_free_later_frees_on_another_thread_after_the_caller_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Long enough that the checks below run before it is due, on a machine however busy.
    monkeypatch.setattr(gcpause, "FREE_AFTER_SECONDS", 3.0)
    freed_on: list[str] = []
    doomed = Doomed()
    watch = weakref.ref(doomed, lambda _: freed_on.append(threading.current_thread().name))
    gcpause.free_later(doomed)
    del doomed
    # Not freed as the caller lets go: the reaper holds it, the GC paused meanwhile.
    assert watch() is not None
    assert not gc.isenabled()
    assert gcpause.wait_freed(30)
    assert watch() is None
    assert freed_on == ["sbomgate-free"]
    assert gc.isenabled()  # the reaper's pause ended once it had freed what it held


def test_a_pause_held_elsewhere_outlives_the_reaper() -> None:
    doomed = Doomed()
    watch = weakref.ref(doomed)
    with gcpause.gc_paused():
        gcpause.free_later(doomed)
        del doomed
        assert gcpause.wait_freed(30)
        assert watch() is None
        assert not gc.isenabled()  # this thread's pause still holds
    assert gc.isenabled()


class Watched:
    """A leaf whose freeing can be watched."""


@dataclass(frozen=True, slots=True)
class Statement:
    """Shaped as what free_later is given: a dataclass holding a decoded document."""

    predicate: dict[str, Any]
    raw: bytes


@dataclass(frozen=True)
class Verification:
    statements: tuple[Statement, ...]


def verification(components: int) -> tuple[Verification, list[weakref.ref[Watched]]]:
    leaves = [Watched() for _ in range(components)]
    predicate = {
        "bomFormat": "CycloneDX",
        "metadata": {"component": {"name": "app", "leaf": Watched()}},
        "components": [
            {"name": f"c{i}", "leaf": leaf, "hashes": [{"alg": "SHA-256"}]}
            for i, leaf in enumerate(leaves)
        ],
    }
    done = Verification(statements=(Statement(predicate=predicate, raw=b"{}"),))
    return done, [weakref.ref(leaf) for leaf in leaves]


def test_dismantle_frees_everything_a_piece_at_a_time() -> None:
    doomed, leaves = verification(2000)
    box = [doomed]
    del doomed
    pieces = gcpause.dismantle(box)
    assert box == [] and all(leaf() is None for leaf in leaves)
    # The components list emptied 256 entries at a time, not dropped in one cascade.
    assert pieces >= 2000 // 256


def test_dismantle_leaves_what_is_shared_as_it_was() -> None:
    """A list or dict that a live object also holds is neither emptied nor taken apart: the
    walk only drops its own references, so no holder can tell."""
    doomed, leaves = verification(600)
    components = doomed.statements[0].predicate["components"]
    metadata = doomed.statements[0].predicate["metadata"]
    before = (list(components), dict(metadata), dict(components[7]))
    box = [doomed]
    del doomed
    gcpause.dismantle(box)
    assert (list(components), dict(metadata), dict(components[7])) == before
    assert all(leaf() is not None for leaf in leaves)
    del components, before
    assert all(leaf() is None for leaf in leaves)


def test_free_later_takes_a_verification_apart_on_the_reaper() -> None:
    doomed, leaves = verification(1000)
    gcpause.free_later(doomed)
    del doomed
    assert gcpause.wait_freed(30)
    assert all(leaf() is None for leaf in leaves)
