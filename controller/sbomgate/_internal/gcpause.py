"""The cyclic GC paused while a burst of acyclic objects is built (a JSON document decoded, an
SBOM read).

Decoding a large document allocates hundreds of thousands of container objects (orjson's dicts
and lists, the Components) and none of them form cycles, yet each allocation burst makes the
cyclic GC re-scan everything alive: measured here, GC was 35-40% of the parse time of a 5,000-
and a 20,000-component SBOM. So the collector is paused meanwhile (reference counting still
frees everything as usual). The counter makes this correct when several threads pause it at
once: the collector is re-enabled by the last one out, and only if it was on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off within, on again after the last thread leaves (if it was on)."""
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _was_enabled:
                gc.enable()
