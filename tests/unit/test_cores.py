"""Usable cores: the CPUs a process may run on, capped by its cgroup's quota (a CPU limit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sbomgate._internal import cores
from sbomgate._internal.cores import quota_of_v1, quota_of_v2, usable_cores


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max 100000\n", None),
        ("150000 100000\n", 1.5),
        ("100000 100000", 1.0),
        ("200000 50000", 4.0),
        ("0 100000", None),
        ("garbage", None),
        ("", None),
        ("x 100000", None),
    ],
)
def test_cgroup_v2_quota(text: str, expected: float | None) -> None:
    assert quota_of_v2(text) == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("-1\n", "100000\n", None), ("50000\n", "100000\n", 0.5), ("300000", "100000", 3.0)],
)
def test_cgroup_v1_quota(quota: str, period: str, expected: float | None) -> None:
    assert quota_of_v1(quota, period) == expected


def test_usable_cores_are_the_cpus_capped_by_the_quota(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cpus = len(os.sched_getaffinity(0))
    limit = tmp_path / "cpu.max"
    monkeypatch.setattr(cores, "_CGROUP_V2", limit)
    limit.write_text("max 100000\n")
    assert usable_cores() == cpus
    limit.write_text("50000 100000\n")
    assert usable_cores() == min(cpus, 0.5)
    limit.write_text(f"{(cpus + 3) * 100000} 100000\n")
    assert usable_cores() == cpus
