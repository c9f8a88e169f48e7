"""The cyclic GC paused while a burst of acyclic objects is built (a JSON document decoded, an
SBOM read), and such a burst freed off the path of the request that made it.

Decoding a large document allocates hundreds of thousands of container objects (orjson's dicts
and lists, the Components) and none of them form cycles, yet each allocation burst makes the
cyclic GC re-scan everything alive: measured here, GC was 35-40% of the parse time of a 5,000-
and a 20,000-component SBOM. So the collector is paused meanwhile (reference counting still
frees everything as usual). The counter makes this correct when several threads pause it at
once: the collector is re-enabled by the last one out, and only if it was on.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_was_enabled = False

# How long after `free_later` its object is freed: past the answer of the admission that
# decoded it (a new build's evaluation and answer take some 30 ms after its parse).
FREE_AFTER_SECONDS = 0.1
_doomed: queue.SimpleQueue[tuple[float, object]] = queue.SimpleQueue()
_reaper: threading.Thread | None = None
_pending = 0  # given to free_later, not yet freed
_all_freed = threading.Condition(_lock)


def _pause() -> None:
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1


def _resume() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0 and _was_enabled:
            gc.enable()


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off within, on again after the last thread leaves (if it was on)."""
    _pause()
    try:
        yield
    finally:
        _resume()


def free_later(doomed: object) -> None:
    """Free `doomed` on a thread of its own FREE_AFTER_SECONDS from now, the cyclic GC paused
    until then (so no collection walks it meanwhile). The caller gives up its references: the
    queue's must be the last. Freeing a decoded 5,000-component statement (some 100,000 dicts
    and lists, one GIL hold) took 3-6 ms of the admission that waited on it; the work is the
    same, after the answer."""
    global _reaper, _pending
    _pause()
    with _lock:
        _pending += 1
    _doomed.put((time.monotonic() + FREE_AFTER_SECONDS, doomed))
    if _reaper is None:
        with _lock:
            if _reaper is None:
                _reaper = threading.Thread(target=_reap, name="sbomgate-free", daemon=True)
                _reaper.start()


def _reap() -> None:
    while True:
        due, doomed = _doomed.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        del doomed  # the last reference: everything it alone holds is freed here
        _resume()
        _freed()


def _freed() -> None:
    global _pending
    with _lock:
        _pending -= 1
        if _pending == 0:
            _all_freed.notify_all()


def wait_freed(timeout: float) -> bool:
    """Wait until everything given to `free_later` so far is freed (and its pause over), for
    at most `timeout` seconds; whether it was. For whoever needs the GC's state or the memory
    settled: a test, a benchmark's memory figure."""
    with _lock:
        return _all_freed.wait_for(lambda: _pending == 0, timeout)
