"""The one license-expression `Licensing`, safe to share between threads.

license-expression builds its tokenizer (an Aho-Corasick automaton of ~2,600 ids and aliases)
lazily on first use and publishes it before it is filled, so a second thread parsing meanwhile
walks a half-built automaton: "'object' object has no attribute 'children'", seen in 2 of 24
two-image `sbomgate verify` runs. Here the automaton is built before the object is shared, and
every parse holds a lock, so a later library change that keeps other mutable state cannot
bring the race back.

Why a lock rather than a Licensing per thread, measured here: building one costs about 26 ms
(index, symbols, automaton) and some megabytes, and `check_many` starts new threads for every
call; a lock costs well under a microsecond against 17-45 µs per parse, and each distinct
license text is parsed once (the callers cache results). Parsing is pure Python, so it holds
the GIL anyway: the lock takes no parallelism away.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

__all__ = ["ExpressionError", "library_symbols", "parse"]

_lock = threading.Lock()
_shared: Any = None


def _licensing() -> Any:
    global _shared
    licensing = _shared
    if licensing is None:
        with _lock:
            if _shared is None:
                built = get_spdx_licensing()
                built.get_advanced_tokenizer()  # complete before anyone else can see it
                _shared = built
            licensing = _shared
    return licensing


def parse(text: str) -> Any:
    """license-expression's parse tree of `text` (unknown license names are kept as symbols).

    Raises ExpressionError when the text is not an expression; anything else it raises is the
    library failing on this text."""
    licensing = _licensing()
    with _lock:
        return licensing.parse(text, validate=False, simple=False)


@cache
def library_symbols() -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    """(SPDX id, aliases, is an exception) for every symbol license-expression knows."""
    licensing = _licensing()
    return tuple(
        (symbol.key, tuple(symbol.aliases), bool(symbol.is_exception))
        for symbol in licensing.known_symbols.values()
    )
