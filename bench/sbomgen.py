"""Synthetic but realistic CycloneDX JSON SBOMs for benchmarks.

`make_cyclonedx(n, seed)` returns a CycloneDX 1.6 document (a dict) with exactly `n`
components: purls across pypi, npm (some scoped), maven, golang and deb (with qualifiers and
`+` in versions), a small set of licenses repeated as real images do (ids, names, expressions),
SHA-256/SHA-1 hashes, and some components nested under others.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

__all__ = ["make_cyclonedx"]

_WORDS = [
    "core",
    "util",
    "http",
    "json",
    "yaml",
    "log",
    "auth",
    "cache",
    "crypto",
    "async",
    "test",
    "parse",
    "data",
    "stream",
    "client",
    "server",
    "config",
    "cli",
    "math",
    "time",
    "image",
    "xml",
    "sql",
    "orm",
    "web",
    "net",
    "io",
    "fs",
    "path",
    "color",
    "string",
]
_LICENSES: tuple[dict[str, Any], ...] = (
    {"license": {"id": "MIT"}},
    {"license": {"id": "Apache-2.0"}},
    {"license": {"id": "BSD-3-Clause"}},
    {"license": {"id": "ISC"}},
    {"expression": "MIT OR Apache-2.0"},
    {"expression": "GPL-2.0-or-later"},
    {"license": {"name": "Apache License 2.0"}},
    {"license": {"id": "mit"}},
    {"license": {"id": "LGPL-2.1-only"}},
    {"expression": "(MIT OR Apache-2.0) AND Unicode-DFS-2016"},
)


def _name(rng: random.Random) -> str:
    return "-".join(rng.sample(_WORDS, rng.randint(1, 3)))


def _version(rng: random.Random) -> str:
    return f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}"


def _purl(rng: random.Random, i: int) -> tuple[str, str, str, str | None]:
    """(purl, name, version, group) for the i-th component."""
    kind = rng.choices(("pypi", "npm", "npm-scoped", "maven", "golang", "deb"), (3, 3, 1, 2, 2, 2))[
        0
    ]
    name = f"{_name(rng)}{i}"
    version = _version(rng)
    if kind == "pypi":
        return f"pkg:pypi/{name}@{version}", name, version, None
    if kind == "npm":
        return f"pkg:npm/{name}@{version}", name, version, None
    if kind == "npm-scoped":
        scope = f"@{rng.choice(_WORDS)}"
        return f"pkg:npm/%40{scope[1:]}/{name}@{version}", name, version, scope
    if kind == "maven":
        group = f"org.{rng.choice(_WORDS)}.{rng.choice(_WORDS)}"
        return f"pkg:maven/{group}/{name}@{version}?type=jar", name, version, group
    if kind == "golang":
        module = f"github.com/{rng.choice(_WORDS)}/{name}"
        version = f"v{version}"
        return f"pkg:golang/{module}@{version}", module, version, None
    version = f"{version}-{rng.randint(1, 9)}+deb12u{rng.randint(1, 5)}"
    return (
        f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
        name,
        version,
        None,
    )


def _component(rng: random.Random, i: int) -> dict[str, Any]:
    purl, name, version, group = _purl(rng, i)
    comp: dict[str, Any] = {
        "type": "library",
        "bom-ref": f"{purl}#{i}",
        "name": name,
        "version": version,
        "purl": purl,
        "licenses": [rng.choice(_LICENSES)],
        "hashes": [
            {"alg": "SHA-256", "content": hashlib.sha256(purl.encode()).hexdigest()},
        ],
    }
    if group is not None:
        comp["group"] = group
    if rng.random() < 0.1:
        comp["licenses"].append(rng.choice(_LICENSES))
    if rng.random() < 0.3:
        comp["hashes"].append({"alg": "SHA-1", "content": hashlib.sha1(purl.encode()).hexdigest()})
    return comp


def make_cyclonedx(n: int, seed: int = 0) -> dict[str, Any]:
    """A CycloneDX 1.6 JSON document (as a dict) with exactly n components in all.

    About one component in ten carries 1-4 nested components (and rarely a second level).
    """
    rng = random.Random(seed)
    top: list[dict[str, Any]] = []
    made = 0
    while made < n:
        comp = _component(rng, made)
        made += 1
        top.append(comp)
        if rng.random() < 0.1 and made < n:
            children = []
            for _ in range(min(rng.randint(1, 4), n - made)):
                child = _component(rng, made)
                made += 1
                if rng.random() < 0.2 and made < n:
                    child["components"] = [_component(rng, made)]
                    made += 1
                children.append(child)
            comp["components"] = children
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:00000000-0000-4000-8000-{seed:012d}",
        "version": 1,
        "metadata": {
            "timestamp": "2025-01-01T00:00:00Z",
            "tools": {"components": [{"type": "application", "name": "sbomgen", "version": "1"}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": "registry.example.com/shop/api",
                "version": "sha256:" + hashlib.sha256(str(seed).encode()).hexdigest(),
                "purl": "pkg:oci/api@sha256%3A"
                + hashlib.sha256(str(seed).encode()).hexdigest()
                + "?repository_url=registry.example.com/shop/api",
            },
        },
        "components": top,
    }
