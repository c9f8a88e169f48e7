"""When a project was first released, and whether its repository may have passed it through from
a public registry: what the PyPI and npm backends read, what the configuration says, and what
the facts, the snapshot and `input.v0` carry (the real indexes are in
tests/integration/intel/test_proxied_sources.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sbomgate.errors import InputError
from sbomgate.identity import identity_from_purl
from sbomgate.intel.facts import IntelFacts, source_configs
from sbomgate.intel.model import PackageFacts
from sbomgate.intel.snapshot import export_snapshot, load_facts_snapshot
from sbomgate.intel.sources import SourceAnswer, SourceConfig
from sbomgate.intel.sources.npm import NpmBackend, first_publication
from sbomgate.intel.sources.pypi import PypiBackend, first_upload
from sbomgate.policy.input import build_input
from sbomgate.registry.transport import Response
from sbomgate.sbom.model import Component

_T = TypeVar("_T")


class FakeClient:
    """One source answering every GET with the same document."""

    def __init__(self, kind: str, body: bytes, content_type: str) -> None:
        self.config = SourceConfig("src", kind, "https://repo.example/simple/")  # type: ignore[arg-type]
        self._body = body
        self._type = content_type
        self.urls: list[str] = []

    def get(self, url: str, accept: str) -> Response | None:
        self.urls.append(url)
        return Response(status=200, headers={"content-type": self._type}, body=self._body, url=url)

    def cached(self, key: tuple[str, ...], load: Callable[[], _T | None]) -> _T | None:
        return load()

    def forget(self, key: tuple[str, ...]) -> None:
        """Nothing is kept."""

    def holds_for(self, seconds: float) -> None:
        """Nothing is remembered."""


def component(purl: str) -> Component:
    identity = identity_from_purl(purl)
    return Component(
        name=identity.package,
        version=identity.version,
        purl=purl,
        purl_type=identity.type,
        namespace=identity.namespace,
    )


def pep691(*files: dict[str, Any]) -> FakeClient:
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "x", "files": list(files)})
    return FakeClient("pypi", body.encode(), "application/vnd.pypi.simple.v1+json")


def ask_pypi(client: FakeClient, purl: str) -> Any:
    c = component(purl)
    identity = identity_from_purl(purl)
    return PypiBackend().ask(client, identity, c)  # type: ignore[arg-type]


def ask_npm(client: FakeClient, purl: str) -> Any:
    c = component(purl)
    identity = identity_from_purl(purl)
    return NpmBackend().ask(client, identity, c)


# --------------------------------------------------------------------------- PyPI


def test_pypi_first_release_is_the_earliest_upload_of_any_file_of_any_version() -> None:
    client = pep691(
        {"filename": "slop-0.2.tar.gz", "upload-time": "2026-11-30T10:00:00.123456Z"},
        {"filename": "slop-0.1-py3-none-any.whl", "upload-time": "2026-11-20T09:00:00Z"},
        # a yanked release was a release all the same
        {"filename": "slop-0.1.tar.gz", "upload-time": "2026-11-19T08:00:00+01:00", "yanked": True},
    )
    listing = ask_pypi(client, "pkg:pypi/slop@0.2")
    assert listing.found_package and listing.version is not None
    assert listing.version.published_at == "2026-11-30T10:00:00Z"
    assert listing.first_published_at == "2026-11-19T07:00:00Z"  # in UTC
    # the version asked about does not change when the project began
    assert ask_pypi(client, "pkg:pypi/slop@9.9").first_published_at == "2026-11-19T07:00:00Z"


def test_pypi_first_release_unknown_when_any_file_is_not_dated() -> None:
    files = [
        {"filename": "slop-0.2.tar.gz", "upload-time": "2026-11-30T10:00:00Z"},
        {"filename": "slop-0.1.tar.gz"},  # perhaps the first: nobody can tell
    ]
    assert ask_pypi(pep691(*files), "pkg:pypi/slop@0.2").first_published_at is None
    assert first_upload(files, "slop") is None
    garbled = [{"filename": "slop-0.1.tar.gz", "upload-time": "last week"}]
    assert first_upload(garbled, "slop") is None
    # Files that are not this project's say nothing either way.
    other = [*files[:1], {"filename": "other-0.1.tar.gz"}, {"filename": 5}]
    assert first_upload(other, "slop") == "2026-11-30T10:00:00Z"
    assert first_upload([], "slop") is None


def test_pypi_html_has_no_upload_times() -> None:
    html = b'<a href="/f/slop-0.1.tar.gz#sha256=' + b"ab" * 32 + b'">slop-0.1.tar.gz</a>'
    listing = ask_pypi(FakeClient("pypi", html, "text/html"), "pkg:pypi/slop@0.1")
    assert listing.version is not None and listing.first_published_at is None


# --------------------------------------------------------------------------- npm


def packument(times: dict[str, Any] | None, versions: tuple[str, ...] = ("1.0.0",)) -> FakeClient:
    document: dict[str, Any] = {"name": "@acme/x", "versions": {v: {} for v in versions}}
    if times is not None:
        document["time"] = times
    return FakeClient("npm", json.dumps(document).encode(), "application/json")


def test_npm_first_release_is_time_created() -> None:
    client = packument(
        {
            "created": "2026-11-20T09:17:12.795Z",
            "modified": "2026-12-01T00:00:00.000Z",
            "1.0.0": "2026-12-01T00:00:00.000Z",
        }
    )
    listing = ask_npm(client, "pkg:npm/%40acme/x@1.0.0")
    assert listing.first_published_at == "2026-11-20T09:17:12Z"
    assert listing.version.published_at == "2026-12-01T00:00:00Z"
    assert client.urls == ["https://repo.example/simple/@acme%2Fx"]


def test_npm_first_release_falls_back_to_the_earliest_version_time() -> None:
    times = {
        "modified": "2026-12-01T00:00:00Z",  # not a publication
        "1.0.0": "2026-11-25T00:00:00Z",
        "0.9.0": "2026-11-21T00:00:00Z",  # unpublished since: still when the name was taken
        "unpublished": {"time": "2026-11-22T00:00:00Z", "versions": ["0.9.0"]},
        "0.1.0": "not a date",
    }
    assert first_publication(times) == "2026-11-21T00:00:00Z"
    assert ask_npm(packument(times), "pkg:npm/%40acme/x@1.0.0").first_published_at == (
        "2026-11-21T00:00:00Z"
    )
    assert first_publication({"created": "garbage", "1.0.0": "2020-01-01"}) == (
        "2020-01-01T00:00:00Z"
    )


@pytest.mark.parametrize("times", [None, {}, {"modified": "2026-12-01T00:00:00Z"}, {"1.0.0": 5}])
def test_npm_first_release_unknown(times: dict[str, Any] | None) -> None:
    listing = ask_npm(packument(times), "pkg:npm/%40acme/x@1.0.0")
    assert listing.found_package and listing.first_published_at is None


# --------------------------------------------------------------------------- configuration


def test_hosting_defaults_to_proxied_and_is_checked() -> None:
    proxied = SourceConfig("p", "npm", "https://npm.example/")
    assert proxied.hosting == "proxied"
    assert proxied.repository() == {
        "name": "p",
        "url": "https://npm.example/",
        "kind": "npm",
        "hosting": "proxied",
    }
    hosted = SourceConfig("h", "npm", "https://npm.example/", hosting="hosted")
    assert hosted.repository()["hosting"] == "hosted"
    with pytest.raises(InputError, match="hosting must be one of hosted, proxied"):
        SourceConfig("x", "npm", "https://npm.example/", hosting="Hosted")  # type: ignore[arg-type]


def test_trusted_sources_settings_take_hosting() -> None:
    configs = source_configs(
        [
            {"name": "a", "kind": "pypi", "url": "https://pypi.example/simple/"},
            {"name": "b", "kind": "npm", "url": "https://npm.example/", "hosting": "hosted"},
        ]
    )
    assert [c.hosting for c in configs] == ["proxied", "hosted"]
    with pytest.raises(InputError, match=r"trustedSources\[0\]: source 'c': hosting must be"):
        source_configs([{"name": "c", "kind": "npm", "url": "https://n.example/", "hosting": None}])
    with pytest.raises(InputError, match="unknown field 'proxies'"):
        source_configs([{"name": "d", "kind": "npm", "url": "https://n.example/", "proxies": True}])


def test_cli_source_flag_takes_hosting() -> None:
    from sbomgate.cli import _sources

    assert _sources(["pypi=https://a/simple/", "npm:hosted=https://b/"]) == [
        {"name": "source-1", "kind": "pypi", "url": "https://a/simple/"},
        {"name": "source-2", "kind": "npm", "url": "https://b/", "hosting": "hosted"},
    ]
    with pytest.raises(InputError, match="hosting must be one of"):
        source_configs(_sources(["npm:hostd=https://b/"]))


# --------------------------------------------------------------------------- facts, snapshot, input


def test_answer_facts_and_input_carry_the_first_release_and_hosting() -> None:
    repository = SourceConfig("npm-proxy", "npm", "https://npm.example/").repository()
    answer = SourceAnswer(
        purl="pkg:npm/x@1.0.0",
        repository=repository,
        found_package=True,
        found_version=True,
        published_at="2026-12-01T00:00:00Z",
        first_published_at="2026-11-20T00:00:00Z",
    )
    facts = answer.facts()
    assert facts.first_published_at == "2026-11-20T00:00:00Z"
    now = 1_796_212_800_000_000_000  # 2026-12-02T12:00:00Z
    v0 = build_input(component("pkg:npm/x@1.0.0"), facts=facts, now_ns=now)["v0"]
    assert v0["package"]["upstream_metadata"] == {
        "published_at": "2026-12-01T00:00:00Z",
        "first_published_at": "2026-11-20T00:00:00Z",
        "published_days_ago": 1,
        "first_published_days_ago": 12,
        "checksum_mismatch": None,
        "yanked": None,
    }
    assert v0["repository"]["hosting"] == "proxied"
    unknown = build_input(component("pkg:npm/x@1.0.0"), facts=PackageFacts())["v0"]
    assert unknown["package"]["upstream_metadata"]["first_published_at"] is None


def test_snapshot_round_trip_keeps_the_first_release_and_hosting(tmp_path: Path) -> None:
    hosted = SourceConfig("pypi-internal", "pypi", "https://pypi.example/simple", hosting="hosted")
    answers = [
        SourceAnswer(
            purl="pkg:pypi/foo@1.0",
            repository=hosted.repository(),
            found_package=True,
            found_version=True,
            first_published_at="2011-02-14T15:13:45Z",
        ),
        SourceAnswer(purl="pkg:pypi/bar@1.0", repository=hosted.repository(), found_version=True),
    ]
    path = tmp_path / "facts.yaml"
    assert export_snapshot(answers, path) == 2
    snapshot = load_facts_snapshot(path)
    foo = snapshot(component("pkg:pypi/foo@1.0"))
    assert foo.first_published_at == "2011-02-14T15:13:45Z"
    assert foo.repository is not None and foo.repository["hosting"] == "hosted"
    assert snapshot(component("pkg:pypi/bar@1.0")).first_published_at is None
    # The facts of a snapshot reach the policy input through IntelFacts as they are.
    combined = IntelFacts(snapshot=snapshot)(component("pkg:pypi/foo@1.0"))
    assert combined.first_published_at == "2011-02-14T15:13:45Z"


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"repository": {"name": "r", "hosting": "Hosted"}}, r"repository\.hosting: expected"),
        ({"repository": {"name": "r"}, "first_published_at": 5}, r"first_published_at: expected"),
    ],
)
def test_snapshot_checks_hosting_and_first_release(
    tmp_path: Path, entry: dict[str, Any], error: str
) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"packages": {"pkg:pypi/foo@1.0": entry}}))
    with pytest.raises(InputError, match=error):
        load_facts_snapshot(path)


def test_credentials_from_files(tmp_path: Path) -> None:
    """A mounted Secret's key: `tokenFile` / `passwordFile` are read (without the newline a
    Secret often ends with), never together with the inline value."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    password = tmp_path / "password"
    password.write_text("hunter2")
    [bearer, basic] = source_configs(
        [
            {
                "name": "a",
                "kind": "pypi",
                "url": "https://p.example/simple/",
                "tokenFile": str(token),
            },
            {
                "name": "b",
                "kind": "npm",
                "url": "https://n.example/",
                "username": "ci",
                "passwordFile": str(password),
            },
        ]
    )
    assert bearer.authorization() == "Bearer s3cret"
    assert basic.password == "hunter2" and basic.authorization() is not None
    for entry, message in (
        ({"token": "x", "tokenFile": str(token)}, "give token or tokenFile, not both"),
        ({"tokenFile": str(tmp_path / "missing")}, "cannot read"),
        ({"tokenFile": str(tmp_path)}, "cannot read"),
    ):
        with pytest.raises(InputError, match=message):
            source_configs([{"name": "c", "kind": "pypi", "url": "https://p.example/", **entry}])
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InputError, match="empty"):
        source_configs(
            [
                {
                    "name": "c",
                    "kind": "pypi",
                    "url": "https://p.example/",
                    "tokenFile": str(tmp_path / "empty"),
                }
            ]
        )


def test_a_snapshot_s_facts_are_remembered_and_a_callable_s_are_not(tmp_path: Path) -> None:
    """IntelFacts remembers what a loaded snapshot and the typosquat detector say per purl (both
    are fixed once loaded): the same facts as asking again. A snapshot given as any other
    callable is asked every time."""
    from sbomgate.intel.typosquat import TyposquatDetector

    path = tmp_path / "facts.yaml"
    path.write_text(
        json.dumps(
            {
                "packages": {
                    "pkg:pypi/reqeusts@1.0": {
                        "repository": {"name": "pypi", "kind": "pypi", "url": "https://p.example"},
                        "published_at": "2024-01-01T00:00:00Z",
                    },
                    "pkg:pypi/flask@3.0": {"published_at": "2024-01-01T00:00:00Z"},
                }
            }
        )
    )
    snapshot = load_facts_snapshot(path)
    remembered = IntelFacts(snapshot=snapshot, typosquat=TyposquatDetector.default())
    asked = IntelFacts(snapshot=lambda c: snapshot(c), typosquat=TyposquatDetector.default())
    for purl in ("pkg:pypi/reqeusts@1.0", "pkg:pypi/flask@3.0", "pkg:pypi/absent@1"):
        for _ in range(2):
            assert remembered(component(purl)) == asked(component(purl)), purl
    assert remembered(component("pkg:pypi/reqeusts@1.0")).typosquat_of == "requests"
    calls: list[str] = []

    def counting(c: Any) -> PackageFacts:
        calls.append(c.purl)
        return PackageFacts(repository={"name": "x", "url": "https://x.example"})

    facts = IntelFacts(snapshot=counting)
    facts(component("pkg:pypi/flask@3.0"))
    facts(component("pkg:pypi/flask@3.0"))
    assert calls == ["pkg:pypi/flask@3.0"] * 2
