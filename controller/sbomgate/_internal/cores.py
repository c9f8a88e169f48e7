"""How many cores this process may use: the CPUs it may run on, capped by its cgroup's CPU quota
(a Kubernetes CPU limit), which `os.cpu_count()` does not see."""

from __future__ import annotations

import math
import os
from pathlib import Path

# cgroup v2 (`<quota> <period>`, or `max <period>`), then v1.
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def usable_cores() -> float:
    """The CPUs this process may run on, or its cgroup's quota in cores when that is less (a
    limit of `1500m` is 1.5)."""
    cpus = float(len(os.sched_getaffinity(0)))
    quota = cgroup_quota()
    return min(cpus, quota) if quota is not None else cpus


def cgroup_quota() -> float | None:
    """The cgroup's CPU quota in cores, None when there is none (or it cannot be read)."""
    try:
        return quota_of_v2(_CGROUP_V2.read_text())
    except OSError:
        pass
    try:
        return quota_of_v1(_CGROUP_V1[0].read_text(), _CGROUP_V1[1].read_text())
    except OSError:
        return None


def quota_of_v2(text: str) -> float | None:
    """Cores from a cgroup v2 `cpu.max` (`150000 100000` is 1.5; `max 100000`: none)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    return _cores(parts[0], parts[1])


def quota_of_v1(quota: str, period: str) -> float | None:
    """Cores from cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us` (a quota of -1: none)."""
    return _cores(quota.strip(), period.strip())


def _cores(quota: str, period: str) -> float | None:
    try:
        value, every = int(quota), int(period)
    except ValueError:
        return None
    if value <= 0 or every <= 0:
        return None
    cores = value / every
    return cores if math.isfinite(cores) else None
