"""Fixtures shared by the hostile corpus: the lab (real registries, a cosign key) and the
runner of `eval` cases. Registries and the key are made once per session; each section's
module builds its own content and starts its own `sbomgate serve` once per configuration."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import pytest

from hostile.content import Lab
from hostile.corpus import Outcome
from hostile.doors import in_parallel, selected
from hostile.sbom_cases import run_eval_case
from support.oci_builder import CosignKey, cosign_keypair
from support.registry_servers import RegistryServer


@pytest.fixture(scope="session")
def hostile_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def corpus_key(hostile_work: Path) -> CosignKey:
    return cosign_keypair(hostile_work / "keys" / "corpus", "ecdsa")


@pytest.fixture(scope="session")
def lab(
    hostile_work: Path,
    plain_registry: RegistryServer,
    referrers_registry: RegistryServer,
    registry_ca_file: Path,
    corpus_key: CosignKey,
) -> Lab:
    return Lab(hostile_work, plain_registry, referrers_registry, registry_ca_file, corpus_key)


@pytest.fixture(scope="module")
def eval_outcomes(
    request: pytest.FixtureRequest, hostile_work: Path
) -> Iterator[dict[str, Future[Outcome]]]:
    """Every selected `eval` case of the requesting module, run a few at a time up front."""
    cases = [c for c in selected(request) if c.door == "eval"]
    pypi_url = None
    if any(c.build.get("source") for c in cases):
        pypi_url = request.getfixturevalue("pypi_server").url
    work = hostile_work / "eval"
    yield in_parallel({c.id: partial(run_eval_case, c, work / c.id, pypi_url) for c in cases})
