"""policy/_deepstack.py: work on a thread with a deep stack, its value or its error handed back,
and a smaller stack where the system will not map the largest. That the deep stack holds what
a usual one does not is tested where it matters: regorus' parse of a 50,000-long chain, which
crashed the process on the caller's thread (test_engine.py,
test_a_policy_nested_too_deeply_is_refused_not_a_crash)."""

from __future__ import annotations

import threading

import pytest

from sbomgate.policy import _deepstack
from sbomgate.policy._deepstack import on_deep_stack


def test_the_value_and_the_error_come_back() -> None:
    assert on_deep_stack(lambda: 42) == 42

    def fail() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        on_deep_stack(fail)


def test_a_stack_the_system_will_not_map_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_deepstack, "STACK_BYTES", 1 << 50)  # a petabyte: no thread starts
    asked: list[int] = []
    real = threading.stack_size

    def spy(size: int = 0) -> int:
        asked.append(size)
        return real(size)

    monkeypatch.setattr(threading, "stack_size", spy)  # the module _deepstack calls
    assert on_deep_stack(lambda: "ran") == "ran"
    assert asked[0] == 1 << 50 and 1 << 28 in asked  # refused, then the first fallback
