"""Rego's `semver.compare` and `semver.is_valid`, exactly as OPA evaluates them.

regorus' own builtins follow the Rust `semver` crate, which differs from OPA at the edges:
OPA accepts one leading `v` (`v1.2.3`) and refuses a major, minor or patch beyond int64;
the crate does the opposite. A policy written for OPA must mean the same here (issue 17), so
both builtins are replaced by this module. What OPA reads (its `internal/semver`):

- one leading `v` is dropped; build metadata follows the first `+`, the pre-release the first
  `-` before it; each is dot-separated identifiers of `[0-9A-Za-z-]`, and a numeric
  pre-release identifier has no leading zero;
- the rest is exactly three dot-separated decimal numbers, each without sign or leading zero,
  each within int64;
- precedence is SemVer 2.0's (metadata ignored); a numeric pre-release identifier beyond int64
  counts as int64's maximum, as Go's `strconv.Atoi` leaves it.

A version OPA cannot parse makes `semver.compare` an error, which OPA's default (non-strict)
mode turns into "undefined", as sbomgate's engine does for every failing builtin; `semver.
is_valid` is false for it and for anything that is not a string.

This replaced a lenient comparator (padded SemVer, then PEP 440), which compared `0.15` with
`0.16.0` where OPA does not: the one Cloudsmith recipe that calls `semver.compare` (recipe 12)
only ever compares SemVer versions, and gives the same answers either way.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sbomgate.errors import SbomgateError

_INT64_MAX = (1 << 63) - 1
_IDENTIFIERS = re.compile(r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*")
_NUMERIC = re.compile(r"0|[1-9][0-9]*")
_DIGITS = re.compile(r"[0-9]+")


class InvalidSemver(SbomgateError):
    """A string that is not a SemVer version as OPA reads it (the Rego call that asked is
    undefined, as a failing builtin is in OPA: not the user's mistake)."""


# (major, minor, patch, pre-release): the pre-release is "" for a release.
_Version = tuple[int, int, int, str]


def _is_numeric(identifier: str) -> bool:
    # ASCII digits only: str.isdigit would also take other scripts' digits
    return _DIGITS.fullmatch(identifier) is not None


@lru_cache(maxsize=65536)
def _parse(text: str) -> _Version:
    """`text` as OPA's `semver.Parse` reads it; InvalidSemver when it cannot."""
    rest = text.removeprefix("v")
    rest, plus, metadata = rest.partition("+")
    if plus and not _IDENTIFIERS.fullmatch(metadata):
        raise InvalidSemver(f"invalid metadata identifier: {metadata}")
    rest, dash, pre = rest.partition("-")
    if dash and (
        not _IDENTIFIERS.fullmatch(pre)
        or any(len(i) > 1 and i[0] == "0" and _is_numeric(i) for i in pre.split("."))
    ):
        raise InvalidSemver(f"invalid pre-release identifier: {pre}")
    parts = rest.split(".")
    if len(parts) != 3:
        raise InvalidSemver(f"{rest} should contain major, minor, and patch versions")
    numbers = []
    for part in parts:
        if not _NUMERIC.fullmatch(part) or int(part) > _INT64_MAX:
            raise InvalidSemver(f"{part!r} is not a valid numeric identifier")
        numbers.append(int(part))
    return numbers[0], numbers[1], numbers[2], pre


def _compare_pre_release(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a:  # a release is above its pre-releases
        return 1
    if not b:
        return -1
    for x, y in zip(a.split("."), b.split("."), strict=False):
        x_numeric, y_numeric = _is_numeric(x), _is_numeric(y)
        if x_numeric != y_numeric:  # numeric identifiers are below alphanumeric ones
            return -1 if x_numeric else 1
        if x_numeric:
            x_key: int | str = min(int(x), _INT64_MAX)
            y_key: int | str = min(int(y), _INT64_MAX)
        else:
            x_key, y_key = x, y  # ASCII only (checked above): code points order as bytes
        if x_key != y_key:
            return -1 if x_key < y_key else 1  # type: ignore[operator]
    count_a, count_b = a.count("."), b.count(".")
    return (count_a > count_b) - (count_a < count_b)


def semver_compare(a: Any, b: Any) -> int:
    """OPA's `semver.compare(a, b)`: -1, 0 or 1; InvalidSemver for what OPA refuses."""
    if not isinstance(a, str):
        raise InvalidSemver("operand 1 must be a string")
    if not isinstance(b, str):
        raise InvalidSemver("operand 2 must be a string")
    try:
        left = _parse(a)
    except InvalidSemver:
        raise InvalidSemver(f"operand 1: string {a} is not a valid SemVer") from None
    try:
        right = _parse(b)
    except InvalidSemver:
        raise InvalidSemver(f"operand 2: string {b} is not a valid SemVer") from None
    if left[:3] != right[:3]:
        return -1 if left[:3] < right[:3] else 1
    return _compare_pre_release(left[3], right[3])


def semver_is_valid(value: Any) -> bool:
    """OPA's `semver.is_valid(value)`: false for anything but a string OPA parses as SemVer."""
    if not isinstance(value, str):
        return False
    try:
        _parse(value)
    except InvalidSemver:
        return False
    return True
