"""Package policies and small SBOMs for the operator's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def small_sbom(path: Path) -> Path:
    """Two trusted packages, idna among them (also in the good SBOM)."""
    path.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "version": 1,
                "components": [
                    {
                        "type": "library",
                        "name": "idna",
                        "version": "3.10",
                        "purl": "pkg:pypi/idna@3.10",
                    },
                    {
                        "type": "library",
                        "name": "certifi",
                        "version": "2024.8.30",
                        "purl": "pkg:pypi/certifi@2024.8.30",
                    },
                ],
            }
        )
    )
    return path


def package_policy(name: str, rego: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "PackagePolicy",
        "metadata": {"name": name},
        "spec": {"rego": rego, **spec},
    }


def deny_package(package: str) -> str:
    return (
        "package cloudsmith\nimport rego.v1\n"
        f'match if input.v0.package.name == "{package}"\n'
        f'reason contains "{package} is not allowed here" if match\n'
    )
