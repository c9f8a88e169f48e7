"""The fixtures every suite may ask for (registered by tests/conftest.py): a work directory and a
cosign key per test module, the real OPA, the bundled policies, and the webhook suites' images.

The servers' fixtures live beside the servers: support.registry_servers (the registries),
support.kube_cluster (the API server), support.index_servers (package indexes),
support.toxiproxy (faults on the wire).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.images import attested_image
from support.oci_builder import CosignKey, PushedImage, cosign_keypair, push_image
from support.paths import BAD_SBOM, GOOD_SBOM, POLICIES, ROOT
from support.registry_servers import RegistryServer


@pytest.fixture(scope="module")
def work(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of the test module's own, kept for the whole module."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2].removeprefix("test_"))


@pytest.fixture(scope="module")
def key(work: Path) -> CosignKey:
    """An ECDSA P-256 key pair made by the real cosign, one per test module."""
    return cosign_keypair(work / "keys", "ecdsa")


@pytest.fixture(scope="module")
def hook_images(
    plain_registry: RegistryServer, key: CosignKey, work: Path
) -> dict[str, PushedImage]:
    """The webhook suites' images: good and bad SBOMs attested by `key`, and one unsigned."""
    return {
        "good": attested_image(
            plain_registry, "hook/good", GOOD_SBOM, key, work, seed="webhook-hook/good"
        ),
        "bad": attested_image(
            plain_registry, "hook/bad", BAD_SBOM, key, work, seed="webhook-hook/bad"
        ),
        "unsigned": push_image(plain_registry, "hook/unsigned", "v1", seed="webhook-unsigned"),
    }


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
    """The policies sbomgate bundles."""
    return POLICIES


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SBOMGATE_DEBUG", raising=False)
    os.environ.setdefault("NO_COLOR", "1")
    yield
