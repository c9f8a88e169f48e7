"""License text -> one SPDX expression, via license-expression, cached per distinct input.

Real SBOMs repeat the same few licenses thousands of times and parsing one expression costs
15-35 µs, so every function here is cached on its (hashable) input.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

__all__ = [
    "UNKNOWN_LICENSES",
    "LicenseSyntaxError",
    "combine_and",
    "license_from_id",
    "license_from_name",
    "normalise_expression",
]

# Values that mean "we do not know" in SPDX and in CycloneDX tools that copy SPDX.
UNKNOWN_LICENSES = frozenset({"", "NOASSERTION", "NONE"})

_IDSTRING = re.compile(r"[A-Za-z0-9.+-]+")
_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


class LicenseSyntaxError(ValueError):
    """An SPDX license expression that cannot be parsed."""


@lru_cache(maxsize=1)
def _licensing() -> Any:
    return get_spdx_licensing()


def _license_ref(text: str) -> str:
    """`Apache License 2.0` -> `LicenseRef-Apache-License-2.0`."""
    sanitised = _UNSAFE.sub("-", text).strip("-")
    return f"LicenseRef-{sanitised or 'unknown'}"


@lru_cache(maxsize=8192)
def normalise_expression(text: str) -> str:
    """Normalise an SPDX license expression (`mit or apache-2.0` -> `MIT OR Apache-2.0`).

    Unknown license ids are kept as given. Raises LicenseSyntaxError when the text is not an
    expression at all (`MIT AND`, unbalanced parentheses).
    """
    try:
        parsed = _licensing().parse(text, validate=False, simple=False)
    except ExpressionError as exc:
        raise LicenseSyntaxError(str(exc)) from None
    except Exception as exc:  # the library raises bare TypeError/ValueError on some junk
        raise LicenseSyntaxError(f"cannot parse {text!r}: {exc}") from None
    if parsed is None:
        raise LicenseSyntaxError("empty license expression")
    rendered: str = parsed.render()
    return rendered


@lru_cache(maxsize=8192)
def license_from_id(license_id: str) -> str:
    """A CycloneDX `license.id`: normalised when known, kept as given when unknown, and made a
    LicenseRef when it is not even shaped like an SPDX id."""
    if _REF.fullmatch(license_id):
        return license_id
    if _IDSTRING.fullmatch(license_id):
        try:
            expression = normalise_expression(license_id)
        except LicenseSyntaxError:
            return _license_ref(license_id)
        if " " not in expression:  # a single id, not an accidental operator
            return expression
    return _license_ref(license_id)


@lru_cache(maxsize=8192)
def license_from_name(name: str) -> str:
    """A CycloneDX `license.name`: used as SPDX when it is a valid SPDX id or expression of
    known licenses, else `LicenseRef-<sanitised name>`."""
    if _REF.fullmatch(name):
        return name
    licensing = _licensing()
    try:
        parsed = licensing.parse(name, validate=False, simple=False)
    except Exception:
        return _license_ref(name)
    if parsed is None:
        return _license_ref(name)
    unknown = [
        key
        for key in licensing.unknown_license_keys(parsed, unique=True)
        if not _REF.fullmatch(key)
    ]
    if unknown:
        return _license_ref(name)
    rendered: str = parsed.render()
    return rendered


@lru_cache(maxsize=8192)
def combine_and(expressions: tuple[str, ...]) -> str:
    """Join several normalised expressions with AND (CycloneDX: all entries apply).

    Duplicates are dropped; compound members are parenthesised.
    """
    unique = list(dict.fromkeys(expressions))
    if len(unique) == 1:
        return unique[0]
    return " AND ".join(f"({e})" if " " in e else e for e in unique)
