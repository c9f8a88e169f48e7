"""Running regorus' parser on a thread whose stack holds the deepest module it reads.

regorus' parser, its AST's JSON writer and the drop of a tree recurse once a level: a long
`1 + 1 + ...` chain (2 bytes a level) overflowed a thread's 8 MiB stack at 20,000 levels (about
400 bytes a level), and 5,000 nested brackets crashed the parser, a crash of the process, not
an error. Parsing on a thread with a 1 GiB stack holds the deepest tree of the largest module
regorus reads (1 MiB: 500,000 levels); only the pages a parse touches are ever used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

STACK_BYTES = 1 << 30
# Smaller stacks to fall back to where the system will not map that much (a small machine
# without overcommit): still far deeper than a thread's usual 8 MiB.
_FALLBACK_STACK_BYTES = (1 << 28, 1 << 26)
_STACK_SIZE_LOCK = threading.Lock()  # threading.stack_size is the process's, for new threads


def on_deep_stack(work: Callable[[], T]) -> T:
    """`work()` run on a thread of its own with a STACK_BYTES stack: its value, or its
    exception raised here."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the caller's thread, whatever it is
            # Without its traceback: the frames it holds would be freed on the caller's
            # thread, and with them any regorus engine of `work` (which must be dropped on
            # the thread that made it; pyo3 reports it "unsendable" otherwise).
            failure.append(exc.with_traceback(None))
            exc.__context__ = exc.__cause__ = None

    thread = _start(run)
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _start(run: Callable[[], None]) -> threading.Thread:
    """A started thread running `run` on the deepest stack the system gives."""
    error: RuntimeError | None = None
    with _STACK_SIZE_LOCK:
        for size in (STACK_BYTES, *_FALLBACK_STACK_BYTES):
            previous = threading.stack_size(size)
            try:
                thread = threading.Thread(target=run, name="sbomgate-deep-stack")
                thread.start()
            except RuntimeError as exc:  # "can't start new thread": the stack was not mapped
                error = exc
                continue
            finally:
                threading.stack_size(previous)
            return thread
    assert error is not None
    raise error
