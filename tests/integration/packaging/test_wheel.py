"""The package as a user installs it: the wheel built from the checkout's files (what a clean
clone has), pip-installed with its locked dependencies (requirements-runtime.lock, and the
regorus binding `make venv` builds) into a fresh venv outside the checkout. `eval`, `verify`, `test` and `serve` work there with the bundled
policies, which the wheel carries as package data."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import build_image
import pytest

from support.net import free_port
from support.oci_builder import CosignKey, cosign_attest, push_image
from support.paths import BAD_SBOM, GOOD_SBOM, ROOT
from support.registry_servers import RegistryCA, RegistryServer
from support.trust import trust_file

FACTS = ROOT / "examples" / "trusted-facts.yaml"


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh venv with the wheel and its locked dependencies installed."""
    base = tmp_path_factory.mktemp("wheel")
    # Built from the checkout's files as `make image` builds it (tools/build_image.py).
    [wheel] = build_image.own_wheel(base, build_image.source_date_epoch()).glob("sbomgate-*.whl")
    _run([sys.executable, "-m", "venv", str(base / "venv")])
    pip = [str(base / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    # The pip the project locks first (the venv's own may be older than the lock's syntax).
    _run([*pip, "--require-hashes", "-r", str(ROOT / "requirements-pip.lock")])
    _run([*pip, "--require-hashes", "-r", str(ROOT / "requirements-runtime.lock")])
    # The regorus binding, built from source with sbomgate's patch (not in the lock).
    _run([*pip, "--no-deps", "--no-index", "--find-links", str(build_image.REGORUS_WHEELS),
          build_image.REGORUS])  # fmt: skip
    _run([*pip, "--no-deps", str(wheel)])
    return base / "venv" / "bin"


def sbomgate(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SBOMGATE_POLICIES")}
    return subprocess.run(
        [str(venv / "sbomgate"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_installed_outside_the_checkout(venv: Path, tmp_path: Path) -> None:
    from sbomgate import __version__

    assert sbomgate(venv, "--version", cwd=tmp_path).stdout.strip() == f"sbomgate {__version__}"
    code = "import sbomgate, sbomgate.runtime as r; print(sbomgate.__file__); print(r.bundled_policies_dir())"
    where = _run([str(venv / "python"), "-I", "-c", code], cwd=tmp_path).stdout.split()
    for path in where:
        assert Path(path).is_relative_to(venv.parent), path
    policies = Path(where[1])
    assert (policies / "license.rego").is_file() and (policies / "license_test.rego").is_file()
    assert (policies / "data.example.yaml").is_file()
    code = "import importlib.metadata as m; print(m.metadata('sbomgate')['License-Expression'])"
    licence = _run([str(venv / "python"), "-I", "-c", code], cwd=tmp_path).stdout.strip()
    assert licence == "Apache-2.0"


def test_eval_with_the_bundled_policies(venv: Path, tmp_path: Path) -> None:
    for name in (GOOD_SBOM, BAD_SBOM, FACTS):
        shutil.copy(name, tmp_path / name.name)
    good = sbomgate(
        venv, "eval", "--sbom", GOOD_SBOM.name, "--facts", FACTS.name, "-o", "json", cwd=tmp_path
    )
    assert good.returncode == 0, good.stderr
    bad = sbomgate(
        venv, "eval", "--sbom", BAD_SBOM.name, "--facts", FACTS.name, "-o", "json", cwd=tmp_path
    )
    assert bad.returncode == 1, bad.stderr
    assert {v["policy"] for v in json.loads(bad.stdout)["violations"]} >= {"unverified", "malware"}


def test_test_runs_the_bundled_policy_tests(venv: Path, tmp_path: Path) -> None:
    done = sbomgate(venv, "test", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith("passed, 0 failed")


def test_verify(venv: Path, plain_registry: RegistryServer, key: CosignKey, tmp_path: Path) -> None:
    image = push_image(plain_registry, "wheel/app", "v1")
    cosign_attest(
        plain_registry,
        image.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        key,
        new_bundle_format=True,
        workdir=tmp_path / "cosign",
    )
    trust = trust_file(tmp_path, keys=[key])
    done = sbomgate(venv, "verify", image.ref, "--trust", str(trust), "--insecure-registry",
                    plain_registry.host, "--facts", str(FACTS), "-o", "json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"]["images"] == 1


def test_serve(venv: Path, registry_ca: RegistryCA, key: CosignKey, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "sbomgate.yaml"
    config.write_text(
        json.dumps(
            {
                "trustPolicies": [str(trust_file(tmp_path, keys=[key]))],
                "tls": {
                    "certFile": str(registry_ca.cert_file),
                    "keyFile": str(registry_ca.key_file),
                },
                "listen": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log = (tmp_path / "serve.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SBOMGATE_POLICIES")}
    server = subprocess.Popen(
        [str(venv / "sbomgate"), "serve", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(registry_ca.ca_file))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/readyz", context=context
                ) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "sbomgate serve was not ready in 60 s"
                time.sleep(0.3)
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "kube-system",
                "operation": "CREATE",
                "object": {
                    "metadata": {"name": "p"},
                    "spec": {"containers": [{"name": "c", "image": "x:1"}]},
                },
            },
        }
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/validate",
            data=json.dumps(review).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context) as r:
            answer = json.loads(r.read())
        assert answer["response"]["uid"] == "u-1" and answer["response"]["allowed"] is True
    finally:
        server.terminate()
        server.wait(20)
        log.close()
