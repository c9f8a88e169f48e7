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

import dataclasses
import gc
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
            # What was made meanwhile (a parsed SBOM, the memos' new entries: 100,000 objects
            # and more for a large image) would all be in the youngest generation, and the
            # first collection would walk it with the GIL held (20-170 ms measured, on
            # whichever thread allocated next). Freezing and unfreezing moves every tracked
            # object to the oldest generation without a walk (two list splices); garbage
            # among them, if any, waits for the next full collection.
            gc.freeze()
            gc.unfreeze()
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
        box = [doomed]
        del doomed  # the box's reference is now the last
        dismantle(box)
        _resume()
        _freed()


# Freed a piece at a time: anything reached through at most one dict (a statement's predicate
# and its lists), and deeper, a container with more entries than _WIDE. The rest (a component's
# own fields, a few dozen objects) is freed whole with its parent, or _CHUNK entries of a list
# at once (some 0.3 ms of freeing: long enough that the walk costs little on top).
_WIDE = 32
_CHUNK = 256
_LEAVES = frozenset({str, bytes, int, float, bool, type(None)})


def dismantle(box: list[Any]) -> int:
    """Free what `box`'s one item alone holds, a piece at a time rather than in one cascade.

    Dropping the last reference to a decoded statement frees its 100,000 objects in one C call
    (5 ms for a 5,000-component SBOM), and no other thread runs meanwhile: a warm review that
    arrives then waits it out. Here the statement is taken apart from the top, and its large
    lists are emptied _CHUNK entries at a time, so the interpreter hands the GIL over in
    between. Only what nothing else refers to is touched (the reference count says whether
    another holder exists: a list shared with a live object is left as it is, and only the
    walk's reference to it dropped), so no one can see the difference. Returns how many pieces
    were freed separately."""
    stack: list[tuple[Any, int]] = [(box.pop(), 0)]
    pieces = 0
    while stack:
        item, dicts = stack.pop()
        pieces += 1
        # `item` and getrefcount's argument: anything more is another holder's.
        if sys.getrefcount(item) > 2:
            continue
        kind = type(item)
        if kind is dict:
            dicts += 1
            if dicts <= 1 or len(item) > _WIDE:
                stack.extend((v, dicts) for v in item.values() if type(v) not in _LEAVES)
        elif kind is list:
            if dicts <= 1 or len(item) > _WIDE:
                while len(item) > _CHUNK:
                    del item[-_CHUNK:]
                    pieces += 1
        elif kind is tuple:
            if dicts <= 1 or len(item) > _WIDE:
                stack.extend((v, dicts) for v in item if type(v) not in _LEAVES)
        elif dicts == 0 and kind not in _LEAVES:
            stack.extend((v, dicts) for v in _attributes(item) if type(v) not in _LEAVES)
        del item  # freed now (what it held is on the stack)
    return pieces


def _attributes(obj: object) -> list[Any]:
    """A dataclass instance's field values (a verification, a statement); nothing for others."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return []
    return [getattr(obj, f.name, None) for f in dataclasses.fields(obj)]


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


def settle_long_lived() -> None:
    """For a long-running process (the server, its cold-path process) once it has started:
    what exists now (modules, policies, clients) lives as long as the process, so it goes out
    of the cyclic GC's sight, and full collections come far less often than CPython's default
    (700, 10, 10), since what the caches keep (SBOMs, verdicts, outcomes) makes each walk
    millions of objects with the GIL held. Measured by bench/bench_burst.py (100 Deployments,
    new builds of 25 applications of 1,000-5,000 packages): by default 25 full collections in
    the server's first minute, 4.0 s of pauses (up to 450 ms each), 14-67 of the 100 refused
    for the deadline; with 1000, 7 full collections, 0.8 s, 0-7 refused. The young generations
    keep their default (larger ones, tried, paused warm reviews up to 200 ms: p99 76 ms at
    400/s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1000)
