"""sbomgate's own SBOM, and the facts that vouch for it: the dogfood step of `make test`.

Writes a CycloneDX 1.6 SBOM of the Python environment sbomgate runs in (every installed
distribution, with its license as the distribution declares it), made with
cyclonedx-python-lib, and a facts snapshot in which the trusted repository is the project's
hash-pinned lock files (`requirements-pip.lock`, `requirements.lock`, and the regorus binding
built from source by tools/regorus/build.sh): a package is vouched
for only if a lock pins exactly that version (anything else installed is unverified, as it
should be).

    python tools/own_sbom.py --out DIR        -> DIR/sbomgate.cdx.json, DIR/facts.yaml
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

import yaml
from build_image import REGORUS  # tools/, the script's own folder
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", re.MULTILINE)
_LICENSE_CLASSIFIER = "License :: OSI Approved :: "
# Trove classifiers to SPDX, for distributions that declare no License-Expression.
_CLASSIFIERS = {
    "MIT License": "MIT",
    "BSD License": "BSD-3-Clause",
    "Apache Software License": "Apache-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "ISC License (ISCL)": "ISC",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.1-or-later",
    "The Unlicense (Unlicense)": "Unlicense",
}


def pinned() -> dict[str, str]:
    """Name to version, as the lock files pin them, and the regorus binding as `make venv`
    builds it (from its source, pinned by hash, with sbomgate's patch)."""
    text = "\n".join(
        (ROOT / lock).read_text() for lock in ("requirements-pip.lock", "requirements.lock")
    )
    return {
        canonicalize_name(name): version for name, version in _PIN.findall(f"{text}\n{REGORUS}")
    }


def license_of(dist: metadata.Distribution) -> str | None:
    expression = dist.metadata.get("License-Expression")
    if expression:
        return str(expression)
    spdx = [
        _CLASSIFIERS[c[len(_LICENSE_CLASSIFIER) :]]
        for c in dist.metadata.get_all("Classifier") or []
        if c.startswith(_LICENSE_CLASSIFIER) and c[len(_LICENSE_CLASSIFIER) :] in _CLASSIFIERS
    ]
    return " OR ".join(sorted(set(spdx))) if spdx else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bom = Bom()
    seen: set[str] = set()
    lock = pinned()
    packages: dict[str, dict[str, object]] = {}
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = canonicalize_name(dist.metadata["Name"])
        if name in seen or name == "sbomgate":
            continue
        seen.add(name)
        version = dist.version
        purl = PackageURL(type="pypi", name=name, version=version)
        component = Component(
            name=name, version=version, type=ComponentType.LIBRARY, purl=purl, bom_ref=str(purl)
        )
        spdx = license_of(dist)
        if spdx:
            component.licenses.add(LicenseExpression(spdx))
        bom.components.add(component)
        if lock.get(name) == version:
            packages[str(purl)] = {
                "repository": {
                    "name": "lock files",
                    "url": "requirements.lock",
                    "hosting": "hosted",
                },
                "published_at": None,
                "osv": [],
            }
    (args.out / "sbomgate.cdx.json").write_text(JsonV1Dot6(bom).output_as_string(indent=2))
    (args.out / "facts.yaml").write_text(yaml.safe_dump({"packages": packages}, sort_keys=True))
    print(
        f"{len(seen)} distributions, {len(packages)} pinned by requirements.lock", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
