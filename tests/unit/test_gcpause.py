"""The cyclic GC's pause, and objects freed after the answer (`free_later`)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

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
