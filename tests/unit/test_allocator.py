"""The webhook's allocator tuning (glibc's mallopt), in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sbomgate._internal.allocator import tune_allocator


def _tune_in_child(env: dict[str, str]) -> str:
    code = "from sbomgate._internal.allocator import tune_allocator; print(tune_allocator())"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return proc.stdout.strip()


def test_glibc_takes_the_settings() -> None:
    assert _tune_in_child(dict(os.environ)) == "True"


def test_the_environment_wins() -> None:
    env = dict(os.environ, MALLOC_ARENA_MAX="4", MALLOC_MMAP_THRESHOLD_="1048576")
    assert _tune_in_child(env) == "True"  # nothing asked of mallopt, nothing refused


def test_without_a_c_library_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ctypes.util.find_library", lambda _name: None)
    assert tune_allocator() is False
