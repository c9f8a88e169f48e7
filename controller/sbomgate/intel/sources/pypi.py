"""The PyPI "simple" repository API (pypiserver, devpi, Artifactory, Nexus, Cloudsmith).

`GET <base>/<project>/` with the project name normalised (PEP 503), asking for PEP 691 JSON
first and reading PEP 503 HTML otherwise. Versions come from the file names (wheels, sdists,
eggs); a version is yanked when all of its files are (PEP 592) and published when its first
file was uploaded (PEP 700 `upload-time`, JSON only); `#sha256=` fragments and `hashes` are the
digests.

The project's first release is its earliest upload over every file of every version, yanked
ones too (`first_upload`). It is known only when every file says when it was uploaded: PEP 503
HTML never does (pypiserver, Nexus, most proxies), and a JSON page where some files have no
`upload-time` cannot say what came first. Unknown is None, never "old".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

import orjson
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from sbomgate.identity import PackageIdentity, version_key
from sbomgate.intel.sources.common import add_hash, frozen_hashes, rfc3339
from sbomgate.intel.sources.interface import (
    NOT_LISTED,
    Listing,
    SourceClient,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.sbom.model import Component

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
# What pypiserver lists as sdists besides the `.tar.gz` and `.zip` packaging knows.
_LEGACY_SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tar", ".zip")


class PypiBackend:
    """A PyPI simple-API index."""

    kind: ClassVar[SourceKind] = "pypi"
    purl_types: ClassVar[tuple[str, ...]] = ("pypi",)

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the simple index's project page lists for the package at this version."""
        project = canonicalize_name(identity.package)
        host = client.config.host

        def load() -> tuple[dict[str, VersionInfo], str | None] | None:
            response = client.get(f"{client.config.base}/{quote(project)}/", _ACCEPT)
            if response is None:
                return None
            content_type = (response.header("content-type") or "").split(";", 1)[0].strip()
            if content_type.endswith("+json") or content_type == "application/json":
                try:
                    document = orjson.loads(response.body)
                except orjson.JSONDecodeError as exc:
                    raise SourceFault(host, f"invalid PEP 691 JSON for {project}: {exc}") from None
                files = document.get("files") if isinstance(document, dict) else None
                if not isinstance(files, list):
                    raise SourceFault(host, f"PEP 691 answer for {project} has no `files` list")
                entries = [f for f in files if isinstance(f, dict)]
            else:
                entries = files_from_html(response.body)
            return versions_from_files(entries, project), first_upload(entries, project)

        page = client.cached(("pypi", project), load)
        if page is None:
            return NOT_LISTED
        versions, first = page
        # identity.version_key is the same PEP 440 key the file versions are filed under.
        return Listing(
            found_package=True,
            version=versions.get(identity.version_key or ""),
            first_published_at=first,
        )


# --------------------------------------------------------------------------- file names


def pypi_file_version(filename: str, project: str) -> str | None:
    """The version in a distribution file name (or URL) of `project` (normalised), or None;
    in PEP 440 normal form where packaging parses the name."""
    version = _file_version(unquote(filename.rsplit("/", 1)[-1]), project)
    return str(version) if version is not None else None


def _version_key(version: Version | str) -> str:
    """What a file's version is filed under: `sbomgate.identity`'s PEP 440 key."""
    if isinstance(version, Version):
        return canonicalize_version(version)
    return version_key("pypi", version) or version.strip()


def _file_version(base: str, project: str) -> Version | str | None:
    if base.endswith(".whl"):
        # Wheel names are strict (PEP 427, PEP 440 versions) and pip reads them with this same
        # function: a name it refuses is a wheel pip will not install, so it vouches for nothing.
        try:
            name, version, _, _ = parse_wheel_filename(base)
        except InvalidWheelFilename:
            return None
        return version if name == project else None
    if base.endswith(".egg"):
        # `name-version-pyX.Y[-platform].egg`, both parts escaped by setuptools (no `-`);
        # packaging has no parser for eggs.
        parts = base[:-4].split("-")
        if len(parts) >= 2 and canonicalize_name(parts[0]) == project:
            return parts[1]
        return None
    try:
        name, version = parse_sdist_filename(base)
    except InvalidSdistFilename:
        pass
    else:
        if name == project:
            return version
    return _legacy_sdist_version(base, project)


def _legacy_sdist_version(base: str, project: str) -> str | None:
    """The version of an sdist that packaging refuses or splits wrongly.

    pypiserver lists whatever archives its directory holds, and older sdists are named as
    their tools pleased: `.tgz`, `.tar.bz2`, `.tar.xz`, `.tar` and upper-case suffixes, which
    packaging refuses; versions that are not PEP 440 (`pytz-2012b.tar.bz2`,
    `package-1.0.0-alpha.1.zip`), which it refuses; and versions holding a `-`
    (`foo-1.0-1.tar.gz`, `flup-1.0.3.dev-20110405.tar.gz`), which it splits at the last `-`
    into another name. So: the first `-` before a digit whose left side is the project.
    """
    stem = next((base[: -len(s)] for s in _LEGACY_SDIST_SUFFIXES if base.lower().endswith(s)), None)
    if stem is None:
        return None
    for at, character in enumerate(stem):
        if character != "-" or not stem[at + 1 : at + 2].isdigit():
            continue
        if canonicalize_name(stem[:at]) == project:
            return stem[at + 1 :]
    return None


# --------------------------------------------------------------------------- PEP 503 HTML


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def files_from_html(body: bytes) -> list[dict[str, Any]]:
    """A PEP 503 page's anchors as PEP 691 file entries."""
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    files: list[dict[str, Any]] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, _, fragment = href.partition("#")
        hashes: dict[str, str] = {}
        algorithm, _, digest = fragment.partition("=")
        if algorithm and digest:
            hashes[algorithm] = digest
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        files.append(
            {
                "filename": text or urlsplit(url).path.rsplit("/", 1)[-1],
                "hashes": hashes,
                "yanked": yanked,
                "requires-python": attrs.get("data-requires-python"),
            }
        )
    return files


def _upload_time(entry: Mapping[str, Any]) -> str | None:
    """A file entry's PEP 700 `upload-time` as RFC 3339 UTC, or None."""
    value = entry.get("upload-time")
    return rfc3339(value) if isinstance(value, str) else None


def first_upload(files: Iterable[Mapping[str, Any]], project: str) -> str | None:
    """When the project's first file was uploaded: the earliest PEP 700 `upload-time` over the
    files of every version (yanked or not), or None when any of them does not say (or there
    are none): a page that dates only some files cannot tell what came first."""
    times = []
    for entry in files:
        filename = entry.get("filename")
        if not isinstance(filename, str):
            continue
        if _file_version(unquote(filename.rsplit("/", 1)[-1]), project) is None:
            continue  # not a file of this project: it says nothing of when the project began
        uploaded = _upload_time(entry)
        if uploaded is None:
            return None
        times.append(uploaded)
    return min(times) if times else None


def versions_from_files(files: Iterable[Mapping[str, Any]], project: str) -> dict[str, VersionInfo]:
    """{version key: info} from PEP 691-shaped file entries."""
    collected: dict[str, tuple[list[str], list[bool], dict[str, set[str]]]] = {}
    for entry in files:
        filename = entry.get("filename")
        if not isinstance(filename, str):
            continue
        version = _file_version(unquote(filename.rsplit("/", 1)[-1]), project)
        if version is None:
            continue
        times, yanks, hashes = collected.setdefault(_version_key(version), ([], [], {}))
        uploaded = _upload_time(entry)
        if uploaded:
            times.append(uploaded)
        yanked = entry.get("yanked")
        yanks.append(bool(yanked) if isinstance(yanked, bool | str) else False)
        raw_hashes = entry.get("hashes")
        if isinstance(raw_hashes, dict):
            for algorithm, digest in raw_hashes.items():
                add_hash(hashes, str(algorithm), digest)
    # A version is yanked when all of its files are (PEP 592); published when its first file was.
    return {
        version: VersionInfo(
            published_at=min(times) if times else None,
            yanked=bool(yanks) and all(yanks),
            hashes=frozen_hashes(hashes),
        )
        for version, (times, yanks, hashes) in collected.items()
    }
