"""Reproducible OCI images from directory trees, without a container runtime.

A layer is a gzipped tar of a tree: entries in sorted order, owners kept, names and times
normalised (every mtime clamped to SOURCE_DATE_EPOCH), gzip without a name or time; its
`diff_id` is the digest of the tar, its blob digest that of the gzip. The same trees and the
same epoch give the same bytes, so the same image digest. Used by `make image`
(tools/build_image.py) and by the demo's image (tests/support/real_image.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Layer:
    """A built layer: the gzipped tar on disk, its blob digest and its diff_id."""

    path: Path
    digest: str
    diff_id: str

    def descriptor(self) -> dict[str, Any]:
        """Its OCI descriptor."""
        return {
            "mediaType": OCI_LAYER_GZIP,
            "digest": self.digest,
            "size": self.path.stat().st_size,
        }


class _TarSink:
    """Where the tar stream goes: hashed as written (the diff_id), then gzipped."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.out.write(data)


def tar_layer(tree: Path, target: Path, *, epoch: int) -> Layer:
    """A reproducible layer of everything under `tree` (names relative to it, sorted, owners
    kept, times clamped to `epoch`, hard links as links)."""

    def normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = min(int(info.mtime), epoch)
        info.uname = info.gname = ""
        return info

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=3) as zipped,
    ):
        sink = _TarSink(zipped)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for child in sorted(tree.iterdir()):
                tar.add(child, arcname=child.name, filter=normalised)
    digest = "sha256:" + hashlib.sha256(partial.read_bytes()).hexdigest()
    partial.replace(target)
    return Layer(target, digest, "sha256:" + sink.sha.hexdigest())


def cached_layer(tree: Path, stamp: Path, target: Path, *, epoch: int) -> Layer:
    """`tar_layer` of a tree that changes only when `stamp` does (a debootstrap root), kept
    beside `target` and reused while the stamp and epoch are the same."""
    meta = target.with_suffix(".json")
    key = {"stamp": stamp.stat().st_mtime_ns, "epoch": epoch}
    if target.exists() and meta.exists():
        known = json.loads(meta.read_text())
        if {k: known.get(k) for k in key} == key:
            return Layer(target, known["digest"], known["diff_id"])
    layer = tar_layer(tree, target, epoch=epoch)
    meta.write_text(json.dumps({**key, "digest": layer.digest, "diff_id": layer.diff_id}))
    return layer


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same document, the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def rfc3339(epoch: int) -> str:
    """`epoch` as an RFC 3339 UTC time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class Image:
    """An image's config and manifest, as bytes, with its layers."""

    config: bytes
    manifest: bytes
    layers: tuple[Layer, ...]

    @property
    def digest(self) -> str:
        """The manifest's digest: the image's."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def image(
    layers: Sequence[Layer],
    *,
    epoch: int,
    history: Sequence[str],
    config: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> Image:
    """The OCI config (linux/amd64, `config` as its runtime settings) and manifest."""
    created = rfc3339(epoch)
    body = canonical_json(
        {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": line} for line in history],
        }
    )
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body),
        },
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    return Image(body, canonical_json(manifest), tuple(layers))


def write_layout(built: Image, directory: Path, *, ref_name: str) -> None:
    """The image as an OCI image layout directory (`oci-layout`, `index.json`, `blobs/`), the
    form skopeo, crane, oras and BuildKit read and write."""
    shutil.rmtree(directory, ignore_errors=True)
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for data in (built.config, built.manifest):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    for layer in built.layers:
        shutil.copy(layer.path, blobs / layer.digest.removeprefix("sha256:"))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": built.digest,
                "size": len(built.manifest),
                "annotations": {"org.opencontainers.image.ref.name": ref_name},
            }
        ],
    }
    (directory / "index.json").write_bytes(canonical_json(index))
