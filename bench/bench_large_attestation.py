"""Benchmark: a large real SPDX SBOM through `sbomgate verify` as a cosign attestation.

The SBOM is syft's default SPDX JSON of this machine's own root filesystem (a Debian system
with its Go, Python and npm tools: about 75 MB, 3,000 packages and 96,000 files), written
once into .cache/bench/ and reused. It is attested with the real cosign in both layouts (v3
bundle and legacy `.att`) to Debian's distribution registry on loopback; `sbomgate verify`
reads it (the statement streamed: sbomgate.attest.envelope), and prints its wall time and
peak memory (GNU time's maximum RSS). Peer in the same run: `sbomgate eval` of the same file
(the SBOM streamed from disk, no registry, no envelope). Nothing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.oci_builder import cosign_attest, cosign_keypair, push_image  # noqa: E402
from support.registry_servers import start_distribution  # noqa: E402
from support.trust import trust_file  # noqa: E402

SYFT = ROOT / ".cache" / "bin" / "syft"
SBOM = ROOT / ".cache" / "bench" / "machine.spdx.json"
# What is not the machine's installed software: kernel filesystems, scratch, this checkout.
EXCLUDED = ("proc", "sys", "dev", "run", "tmp", "root", str(ROOT.relative_to("/")))


def machine_sbom() -> Path:
    if SBOM.exists():
        return SBOM
    SBOM.parent.mkdir(parents=True, exist_ok=True)
    excludes = [arg for d in EXCLUDED for arg in ("--exclude", f"./{d}/**")]
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    partial = SBOM.with_suffix(".partial")
    subprocess.run(
        [str(SYFT), "scan", "dir:/", "-q", *excludes, "-o", f"spdx-json={partial}"],
        check=True,
        env=env,
    )
    partial.replace(SBOM)
    return SBOM


def timed(args: list[str]) -> tuple[float, int, dict[str, object]]:
    """(seconds, peak RSS in MiB, the JSON report) of one sbomgate run."""
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "sbomgate.cli", *args],
        capture_output=True,
        text=True,
    )
    seconds, kib = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib) // 1024, json.loads(done.stdout)


def main() -> None:
    sbom = machine_sbom()
    document = json.loads(sbom.read_bytes())
    print(
        f"SBOM: syft SPDX of this machine, {sbom.stat().st_size / 1e6:.1f} MB, "
        f"{len(document['packages'])} packages, {len(document.get('files', []))} files, "
        f"{len(document.get('relationships', []))} relationships"
    )
    del document
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        work = Path(tmp)
        registry = start_distribution(work / "registry", ca=None)
        try:
            key = cosign_keypair(work / "keys")
            trust = trust_file(
                work,
                keys=[key],
                images=(f"{registry.host}/large/**",),
                attestations=[{"name": "sbom", "predicateTypes": ["spdxjson"]}],
            )
            for bundle in (True, False):
                layout = "v3 bundle" if bundle else "legacy .att"
                image = push_image(registry, "large/machine", "bundle" if bundle else "att")
                cosign_attest(
                    registry,
                    image.digest_ref,
                    sbom,
                    "spdxjson",
                    key,
                    new_bundle_format=bundle,
                    workdir=work / "cosign",
                )
                seconds, mib, report = timed(
                    ["verify", image.ref, "--trust", str(trust), "--insecure-registry",
                     registry.host, "--format", "json", "--timeout", "120"]
                )  # fmt: skip
                summary = report["summary"]
                print(
                    f"sbomgate verify ({layout}): {seconds:.2f} s, peak {mib} MiB, "
                    f"{summary['components']} packages read"  # type: ignore[index]
                )
        finally:
            registry.stop()
    seconds, mib, report = timed(["eval", "--sbom", str(sbom), "--format", "json"])
    print(
        f"peer: sbomgate eval of the file: {seconds:.2f} s, peak {mib} MiB, "
        f"{report['summary']['components']} packages read"  # type: ignore[index]
    )


if __name__ == "__main__":
    main()
