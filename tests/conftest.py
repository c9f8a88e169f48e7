from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kube_cluster import *  # noqa: F403  (kube_cluster: a real etcd + kube-apiserver)
from registry_servers import *  # noqa: F403  (registry fixtures: plain_registry, ...)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def opa_bin() -> str:
    """The real OPA binary built by `make tools` (the conformance oracle)."""
    candidate = ROOT / ".cache" / "bin" / "opa"
    found = str(candidate) if candidate.exists() else shutil.which("opa")
    if not found:
        pytest.fail("OPA is not built: run `make tools` (make test does it for you)")
    return found


@pytest.fixture(scope="session")
def policies_dir() -> Path:
    return ROOT / "policies"


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SBOMGATE_DEBUG", raising=False)
    os.environ.setdefault("NO_COLOR", "1")
