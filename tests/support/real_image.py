"""A real image, for `make demo` and tests/e2e/test_real_image.py.

The base is Debian 12 minbase with Debian's python3, made by debootstrap (`make demo-image`);
on it a Flask application (examples/real-image) installed by pip from its hash-locked wheels.
It is pushed to a registry as two gzip layers with an OCI config and manifest, as a build tool
would; syft scans it from the registry; the repositories that vouch for its packages run on
loopback: the signed apt mirror of the .debs debootstrap installed (tests/support/os_repos.py),
the organisation's hosted PyPI (pypiserver with the locked wheels), and its pass-through of the
public PyPI (a PEP 691 index with upload times), where an attacker's freshly registered
project, a slopsquat of a name an assistant made up, is found like any other.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ociimage import Image, Layer, cached_layer, image, tar_layer
from packaging.utils import parse_wheel_filename

from support.index_servers import (
    StaticIndex,
    build_wheel,
    index_entry,
    start_pypiserver,
    start_static_index,
    upload_time,
)
from support.oci_builder import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, OciClient, PushedImage
from support.os_repos import ImageArchive, serve_image_archive
from support.paths import ROOT
from support.registry_servers import RegistryServer

DEMO_CACHE = ROOT / ".cache" / "demo-image"
ROOTFS = DEMO_CACHE / "debian-bookworm-python"
DEBS = DEMO_CACHE / "debian-bookworm-python-debs"
WHEELS = DEMO_CACHE / "wheels"
APP = ROOT / "examples" / "real-image"
SYFT = ROOT / ".cache" / "bin" / "syft"
# Debian's python3 looks for what is installed locally here (not in a venv).
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
# Every timestamp in the image (SOURCE_DATE_EPOCH, as reproducible builds set it).
EPOCH = 1700000000
# The slopsquat: a name assistants suggest for the Hugging Face command line (which is really
# `huggingface_hub[cli]`), registered on the public index by someone else two days ago.
SLOPSQUAT = ("huggingface-cli", "0.1.0")
SLOPSQUAT_AGE_DAYS = 2


class DemoImageMissing(RuntimeError):
    """The debootstrap root filesystem or the application's wheels are not built."""


def need_demo_image() -> None:
    """Fail with what to run when `make demo-image` has not run."""
    for stamp in (DEMO_CACHE / f"{ROOTFS.name}.done", WHEELS / ".done"):
        if not stamp.exists():
            raise DemoImageMissing(f"{stamp} is missing: run `make demo-image`")
    if not SYFT.exists():
        raise DemoImageMissing(f"{SYFT} is missing: run `make sbom-tools`")


# --------------------------------------------------------------------------- layers


def base_layer() -> Layer:
    """The debootstrap root filesystem as a layer, cached beside it (rebuilt when it is)."""
    stamp = DEMO_CACHE / f"{ROOTFS.name}.done"
    return cached_layer(ROOTFS, stamp, DEMO_CACHE / "layers" / "base.tar.gz", epoch=EPOCH)


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-compile", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def app_layer(work: Path, extra_wheels: Sequence[Path] = ()) -> Layer:
    """The application's layer: /app/app.py and its locked dependencies installed by pip from
    their wheels (and `extra_wheels`, what a developer added on an assistant's advice)."""
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    site = tree / SITE_PACKAGES
    _pip("--find-links", str(WHEELS), "--require-hashes", "--only-binary", ":all:",
         "--target", str(site), "-r", str(APP / "requirements.lock"))  # fmt: skip
    for wheel in extra_wheels:
        # By name from a folder, as from an index: pip records a path given directly
        # (direct_url.json), and the layer would change with the folder's name.
        name, version, _, _ = parse_wheel_filename(wheel.name)
        _pip("--no-deps", "--find-links", str(wheel.parent), "--target", str(site),
             f"{name}=={version}")  # fmt: skip
    (tree / "app").mkdir()
    shutil.copy(APP / "app.py", tree / "app" / "app.py")
    return tar_layer(tree, work / "app.tar.gz", epoch=EPOCH)


def push_layers(
    registry: RegistryServer, repo: str, tag: str, layers: list[Layer], history: list[str]
) -> PushedImage:
    """Push the layers, an OCI image config that runs the application as a non-root user, and
    the manifest (tagged)."""
    built = image(
        layers,
        epoch=EPOCH,
        history=history,
        config={
            "User": "65532:65532",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["python3", "/app/app.py"],
            "WorkingDir": "/app",
            "ExposedPorts": {"8080/tcp": {}},
        },
    )
    return push_image_blobs(registry, repo, tag, built)


def push_image_blobs(registry: RegistryServer, repo: str, tag: str, built: Image) -> PushedImage:
    """Push a built image's layers, config and manifest (tagged)."""
    client = OciClient(registry)
    for layer in built.layers:
        client.push_blob(repo, layer.path.read_bytes(), OCI_LAYER_GZIP)
    client.push_blob(repo, built.config, OCI_CONFIG)
    client.put_manifest(repo, tag, built.manifest, OCI_MANIFEST)
    return PushedImage(registry, repo, tag, built.digest, OCI_MANIFEST, built.manifest)


def push_layout(registry: RegistryServer, repo: str, tag: str, layout: Path) -> PushedImage:
    """Push the one image of an OCI image layout directory (as `make image` writes it)."""
    index = json.loads((layout / "index.json").read_bytes())
    [entry] = index["manifests"]
    blobs = layout / "blobs" / "sha256"
    manifest = (blobs / entry["digest"].removeprefix("sha256:")).read_bytes()
    document = json.loads(manifest)
    client = OciClient(registry)
    for descriptor in [document["config"], *document["layers"]]:
        data = (blobs / descriptor["digest"].removeprefix("sha256:")).read_bytes()
        client.push_blob(repo, data, descriptor["mediaType"])
    client.put_manifest(repo, tag, manifest, OCI_MANIFEST)
    return PushedImage(registry, repo, tag, entry["digest"], OCI_MANIFEST, manifest)


HISTORY = [
    "debootstrap --variant=minbase --include=python3 bookworm",
    "pip install --target /usr/local/lib/python3.11/dist-packages -r requirements.lock; "
    "COPY app.py /app/",
]


def push_app_image(
    registry: RegistryServer,
    repo: str,
    tag: str,
    work: Path,
    extra_wheels: Sequence[Path] = (),
) -> PushedImage:
    """The demo application's image: the Debian base and the application's layer."""
    need_demo_image()
    return push_layers(registry, repo, tag, [base_layer(), app_layer(work, extra_wheels)], HISTORY)


def syft_sbom(image: PushedImage, target: Path, work: Path) -> Path:
    """syft's CycloneDX JSON of the image as it is in the registry (syft's default catalogers
    for an image), pulled from the registry (over TLS when it has a CA)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYFT_")}
    env.update(
        HOME=str(work / "home"),
        SYFT_CHECK_FOR_APP_UPDATE="false",
        SYFT_CACHE_DIR=str(work / "syft-cache"),
        TMPDIR=str(work),
    )
    if image.server.scheme == "https" and image.server.ca_file is not None:
        env["SSL_CERT_FILE"] = str(image.server.ca_file)
    else:
        env["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"

    done = subprocess.run(
        [str(SYFT), "scan", f"registry:{image.digest_ref}", "-q", "-o", f"cyclonedx-json={target}"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"syft scan {image.digest_ref} failed:\n{done.stderr[-3000:]}")
    return target


# --------------------------------------------------------------------------- repositories


@dataclass
class DemoRepositories:
    """The trusted repositories of the demo's organisation, on loopback."""

    apt: ImageArchive
    pypi_hosted: str  # pypiserver with the application's locked wheels
    pypi_proxy: StaticIndex  # its pass-through of the public PyPI
    slopsquat_wheel: Path

    def sources(self) -> list[dict[str, Any]]:
        """The `trustedSources` entries, asked in this order."""
        return [
            self.apt.source(),
            {"name": "pypi-internal", "kind": "pypi", "url": self.pypi_hosted, "hosting": "hosted"},
            {
                "name": "pypi-proxy",
                "kind": "pypi",
                "url": self.pypi_proxy.url,
                "hosting": "proxied",
            },
        ]


@contextmanager
def demo_repositories(work: Path, bind: str = "127.0.0.1") -> Iterator[DemoRepositories]:
    """The apt mirror of the base image's .debs, the hosted PyPI with the locked wheels, and the
    pass-through PyPI where the slopsquat was published SLOPSQUAT_AGE_DAYS days ago, listening
    on `bind` (loopback, or a node's address for Pods)."""
    need_demo_image()
    with ExitStack() as stack:
        apt = stack.enter_context(serve_image_archive(work / "apt", DEBS, bind))
        wheels = work / "pypi-internal"
        wheels.mkdir(parents=True)
        for wheel in WHEELS.glob("*.whl"):
            shutil.copy(wheel, wheels / wheel.name)
        hosted = start_pypiserver(wheels, work / "pypiserver.log", bind=bind)
        stack.callback(hosted.stop)
        proxy = start_static_index(bind)
        stack.callback(proxy.stop)
        name, version = SLOPSQUAT
        built = work / "slopsquat"
        built.mkdir()
        wheel = build_wheel(built, name, version)
        proxy.projects[name] = [index_entry(wheel.name, upload_time(SLOPSQUAT_AGE_DAYS))]
        yield DemoRepositories(apt, hosted.url, proxy, wheel)
