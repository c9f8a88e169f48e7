"""Binaries a tool found inside the installed files of a package the SBOM lists.

syft's binary catalogers list the executables they recognise (PE version resources, ELF notes)
as components of their own, without a purl. Every Python environment with pip and setuptools
has fourteen: distlib's and setuptools' Windows launchers (`pip/_vendor/distlib/t64.exe` is
"Simple Launcher" 1.1.0.14, `setuptools/cli-64.exe` is `cli-64` of version UNKNOWN). No
repository serves them apart, so nothing can verify them, and judged on their own they refuse
every image with pip in it. They are files of a package the SBOM lists and that is judged:
its wheel or tarball carries them.

So a component without a purl, every location of which lies inside the installed directory of
a PyPI or npm package the same SBOM lists (`…/site-packages/<name>/…`,
`…/dist-packages/<name>/…`, `…/node_modules/<name>/…` or `…/node_modules/@scope/<name>/…`, the
innermost such folder), is kept with the other files (`Sbom.others`), not judged. Names are
compared as each ecosystem normalises them. Anything else stays judged, so it fails closed: a
component with no location, one outside every listed package, one whose folder is named
unlike its distribution (PyYAML installs `yaml/`).
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.utils import canonicalize_name

from sbomgate.sbom.model import Component

_PYTHON_DIRS = frozenset({"site-packages", "dist-packages"})


def _owner(path: str) -> tuple[str, str] | None:
    """(purl type, normalised package name) of the installed package folder `path` lies in,
    or None."""
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        folder = parts[i]
        if folder in _PYTHON_DIRS and i + 2 < len(parts):
            return "pypi", canonicalize_name(parts[i + 1])
        if folder == "node_modules" and i + 2 < len(parts):
            if parts[i + 1].startswith("@"):
                if i + 3 < len(parts):
                    return "npm", f"{parts[i + 1]}/{parts[i + 2]}".lower()
                return None
            return "npm", parts[i + 1].lower()
    return None


def _listed(packages: Iterable[Component]) -> frozenset[tuple[str, str]]:
    names: set[tuple[str, str]] = set()
    for c in packages:
        if c.purl_type == "pypi":
            names.add(("pypi", canonicalize_name(c.name)))
        elif c.purl_type == "npm":
            names.add(("npm", c.name.lower()))
    return frozenset(names)


def split_contained(
    packages: tuple[Component, ...],
) -> tuple[tuple[Component, ...], tuple[Component, ...]]:
    """(packages judged, components that are files of a listed package)."""
    candidates = [c for c in packages if c.purl is None and c.locations]
    if not candidates:
        return packages, ()
    listed = _listed(packages)
    contained = {id(c) for c in candidates if all(_owner(path) in listed for path in c.locations)}
    if not contained:
        return packages, ()
    return (
        tuple(c for c in packages if id(c) not in contained),
        tuple(c for c in packages if id(c) in contained),
    )
