"""What a policy does when it matches: shared by policies and the findings they produce.

A module of its own, below both: `verdict.py` (the findings) cannot import `policy/`, which
imports it.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """A policy's action; its value is the spelling in METADATA, CRDs and JSON output."""

    DENY = "Deny"
    WARN = "Warn"
    AUDIT = "Audit"
    QUARANTINE = "Quarantine"  # deny, and record the package in the quarantine list
    ALLOW = "Allow"  # an exemption: with `terminal`, later policies do not run

    @property
    def denies(self) -> bool:
        """True for the actions that refuse the package (Deny, Quarantine)."""
        return self in (Action.DENY, Action.QUARANTINE)
