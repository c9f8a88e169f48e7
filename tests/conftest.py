"""The suite's layout and its rules.

- tests/unit: no server, no Go-built tool (`make unit`, the fast loop);
- tests/integration: real registries, cosign, OPA, package indexes, `sbomgate serve`;
- tests/e2e: a real kube-apiserver and etcd (kubectl, helm);
- tests/hostile: the black-box hostile corpus, over the same real components as integration.

`make test` runs the suite on two pytest-xdist workers, each module on one (`--dist loadfile`:
its fixtures are made once), in collection order, so tests/e2e's long modules start first; then
the modules marked `alone` (CPU-time budgets, deadlines, in-flight bounds) with nothing beside
them. Only tests/e2e/test_chart_on_node.py runs a real node (it takes the machine's containerd
paths).

Each test is marked by the folder it is in (`-m unit`, `-m integration`, `-m e2e`). Nothing is
ever skipped: a missing tool fails its test with what to run, and a skip is reported as a
failure, so `make test` cannot pass by leaving something out.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

# The helpers' asserts are rewritten too (pytest only rewrites test modules by itself).
pytest.register_assert_rewrite("support")

pytest_plugins = [
    "support.fixtures",
    "support.registry_servers",
    "support.kube_cluster",
    "support.index_servers",
    "support.os_repos",
    "support.toxiproxy",
]

TESTS = Path(__file__).resolve().parent
MARKS = {"unit": "unit", "integration": "integration", "e2e": "e2e", "hostile": "integration"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        item.add_marker(MARKS[folder])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and nothing may be: {report.longrepr}"
    return report
