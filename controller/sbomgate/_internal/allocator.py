"""glibc's allocator, tuned for the webhook's process before its threads start.

Each thread that allocates gets an arena of its own (up to 8 per core), and glibc raises its
mmap threshold after freeing a large block, so the 1-5 MB buffers of each cold image (a DSSE
envelope, its statement, orjson's output) come from those arenas afterwards and stay there,
fragmented, after they are freed. Measured with bench/bench_soak.py at 40 reviews/s with 10 %
new images for 3 minutes (2 cores): the server's process tree grew from 613 to 904 MB and did
not stop (+20 % after the first minute); with two arenas and a fixed 256 KiB threshold, set
by the environment, from 463 to 583 MB (+2 %), and set here, from 471 to 594 MB (+3 %). Latency
and CPU stayed within the runs' spread: warm p99 18, 19 and 21 ms, cold p50 87, 90 and 95 ms,
the main process at 0.26-0.36 cores in all three.

The environment's MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ win when set. Elsewhere than
glibc (musl, macOS) there is no `mallopt`, and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt's parameters (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 256 << 10


def tune_allocator() -> bool:
    """Set glibc's arena count and mmap threshold (see the module doc); whether it could."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = True
    if "MALLOC_ARENA_MAX" not in os.environ:
        done = mallopt(_M_ARENA_MAX, ARENAS) == 1 and done
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and done
    return done
