"""`make image`: sbomgate's own OCI image, built offline and reproducibly.

    python tools/build_image.py [--out .cache/image]

Two layers: Debian 12 minbase with Debian's python3 (debootstrap, `make demo-image`: the root
the demo image has too), then sbomgate's locked runtime dependencies
(requirements-runtime.lock) and the wheel built from this checkout, installed by pip into
/usr/local/lib/python3.11/dist-packages, where Debian's python3 looks. It runs as
65532:65532 `python3 -m sbomgate.cli serve ...`: no shell is needed, and nothing is written
under / at run time (no .pyc: PYTHONDONTWRITEBYTECODE), so the root filesystem can be mounted
read-only. Every time in it is SOURCE_DATE_EPOCH (the commit's time unless set): the same
commit gives the same digest.

Writes, under --out: `oci/` (an OCI image layout), `wheels/` (the dependencies' wheels, as
downloaded from PyPI with the lock's hashes) and `own/` (sbomgate's wheel): together the
organisation's hosted PyPI, which vouches for the image's Python packages in the dogfood test.
Prints the image digest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ociimage import cached_layer, image, tar_layer, write_layout

ROOT = Path(__file__).resolve().parents[1]
DEMO_CACHE = ROOT / ".cache" / "demo-image"
ROOTFS = DEMO_CACHE / "debian-bookworm-python"
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
LOCK = ROOT / "requirements-runtime.lock"
# The regorus binding is not in the lock: `make venv` builds it from its source with sbomgate's
# patch (tools/regorus/build.sh).
REGORUS_WHEELS = ROOT / ".cache" / "regorus" / "wheel"
REGORUS = "gordon-to-regorus==0.13.0+sbomgate.18"
PYTHON = ROOT / ".venv" / "bin" / "python"
NONROOT_PASSWD = "nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin"
NONROOT_GROUP = "nonroot:x:65532:"
HISTORY = (
    "debootstrap --variant=minbase --include=python3 bookworm",
    "pip install --target /usr/local/lib/python3.11/dist-packages -r requirements-runtime.lock "
    f"{REGORUS} sbomgate",
)


def _run(args: list[str], **kwargs: object) -> str:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}")
    return str(done.stdout)


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH, else the time of the checkout's commit."""
    given = os.environ.get("SOURCE_DATE_EPOCH")
    if given:
        return int(given)
    return int(_run(["git", "log", "-1", "--format=%ct"], cwd=ROOT).strip())


def version() -> str:
    """sbomgate's version, from the checkout's pyproject.toml."""
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def dependency_wheels(out: Path) -> Path:
    """The locked runtime dependencies' wheels, downloaded once per lock (by its digest)."""
    wheels = out / "wheels"
    stamp = wheels / f".lock-{hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return wheels
    shutil.rmtree(wheels, ignore_errors=True)
    _run([str(PYTHON), "-m", "pip", "download", "-q", "--require-hashes", "--only-binary",
          ":all:", "--no-deps", "-d", str(wheels), "-r", str(LOCK)])  # fmt: skip
    stamp.touch()
    return wheels


def own_wheel(out: Path, epoch: int) -> Path:
    """sbomgate's wheel, built from the checkout's files (what a clean clone has)."""
    own = out / "own"
    shutil.rmtree(own, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="sbomgate-wheel-") as tmp:
        source = Path(tmp) / "source"
        listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                      cwd=ROOT).split("\0")  # fmt: skip
        for name in filter(None, listed):
            origin = ROOT / name
            if origin.exists() or origin.is_symlink():
                target = source / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target, follow_symlinks=False)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
        _run([str(PYTHON), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", str(own), str(source)], env=env)  # fmt: skip
    return own


def app_tree(out: Path, wheels: Path, own: Path) -> Path:
    """The second layer's tree: the dependencies, then sbomgate, installed by pip."""
    tree = out / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    site = tree / SITE_PACKAGES
    pip = [str(PYTHON), "-m", "pip", "install", "-q", "--no-index", "--no-compile",
           "--only-binary", ":all:", "--target", str(site)]  # fmt: skip
    _run([*pip, "--find-links", str(wheels), "--require-hashes", "-r", str(LOCK)])
    _run([*pip, "--find-links", str(REGORUS_WHEELS), "--no-deps", REGORUS])
    # By name from a folder: a wheel given by path would be recorded with it (direct_url.json).
    _run([*pip, "--find-links", str(own), "--no-deps", f"sbomgate=={version()}"])
    # Console scripts carry this machine's interpreter path; the image runs `python3 -m`.
    shutil.rmtree(site / "bin", ignore_errors=True)
    # A name for the uid the image runs as (as distroless images have): without one, whatever
    # asks the user database for it (getpass.getuser(), ~ expansion) fails.
    for table, entry in (("passwd", NONROOT_PASSWD), ("group", NONROOT_GROUP)):
        lines = (ROOTFS / "etc" / table).read_text().splitlines()
        (tree / "etc").mkdir(exist_ok=True)
        (tree / "etc" / table).write_text("\n".join([*lines, entry]) + "\n")
    return tree


def build(out: Path) -> str:
    """Build the image into `out`; its digest."""
    stamp = DEMO_CACHE / f"{ROOTFS.name}.done"
    if not stamp.exists():
        raise SystemExit(f"{stamp} is missing: run `make demo-image`")
    epoch = source_date_epoch()
    out.mkdir(parents=True, exist_ok=True)
    wheels = dependency_wheels(out)
    own = own_wheel(out, epoch)
    base = cached_layer(ROOTFS, stamp, DEMO_CACHE / "layers" / "base-image.tar.gz", epoch=epoch)
    app = tar_layer(app_tree(out, wheels, own), out / "app.tar.gz", epoch=epoch)
    revision = _run(["git", "rev-parse", "HEAD"], cwd=ROOT).strip()
    built = image(
        [base, app],
        epoch=epoch,
        history=HISTORY,
        config={
            "User": "65532:65532",
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
            ],
            "Entrypoint": ["python3", "-m", "sbomgate.cli"],
            "Cmd": ["serve", "--config", "/etc/sbomgate/sbomgate.yaml"],
            "WorkingDir": "/",
            "ExposedPorts": {"8443/tcp": {}},
        },
        annotations={
            "org.opencontainers.image.title": "sbomgate",
            "org.opencontainers.image.version": version(),
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.licenses": "Apache-2.0",
        },
    )
    write_layout(built, out / "oci", ref_name=version())
    (out / "digest").write_text(built.digest + "\n")
    return built.digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "image")
    args = parser.parse_args()
    print(build(args.out))


if __name__ == "__main__":
    main()
