"""Image-name globs, shared by trust policies (`spec.images`) and policy scopes (`images`)."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)  # scopes are matched on every admission review
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """`**` crosses `/`, `*` and `?` do not: `registry.example/**`, `ghcr.io/acme/*`."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.IGNORECASE)
