"""Trusted sources against real indexes on loopback (tests/support/index_servers.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from sbomgate.identity import go_escape
from sbomgate.intel.snapshot import load_facts_snapshot
from sbomgate.intel.sources import (
    BACKENDS,
    PURL_KINDS,
    SOURCE_KINDS,
    SourceAnswer,
    SourceBackend,
    SourceConfig,
    TrustedSources,
    export_snapshot,
)
from sbomgate.intel.sources.pypi import pypi_file_version, versions_from_files
from sbomgate.sbom.model import Component
from support.index_servers import INDEX_TOKEN, IndexServer, StaticIndex, StaticRepo, free_port


def pypi(name: str, version: str, **hashes: str) -> Component:
    purl = f"pkg:pypi/{canonicalize_name(name)}@{version}"
    return Component(name, version, purl, "pypi", format="python", hashes=hashes)


def npm(name: str, version: str, **hashes: str) -> Component:
    namespace = name.rsplit("/", 1)[0] if name.startswith("@") else None
    purl = f"pkg:npm/{name.replace('@', '%40', 1)}@{version}"
    return Component(name, version, purl, "npm", namespace, format="npm", hashes=hashes)


def maven(group: str, artifact: str, version: str, **hashes: str) -> Component:
    purl = f"pkg:maven/{group}/{artifact}@{version}"
    return Component(artifact, version, purl, "maven", group, format="maven", hashes=hashes)


def golang(module: str, version: str) -> Component:
    return Component(module, version, f"pkg:golang/{module}@{version}", "golang", format="go")


def sri_hex(sri: str) -> str:
    return base64.b64decode(sri.split("-", 1)[1]).hex()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def down_url() -> str:
    return f"http://127.0.0.1:{free_port()}/simple/"  # nothing listens there


# --------------------------------------------------------------------------- unit helpers


def test_name_and_version_helpers() -> None:
    assert pypi_file_version("Foo_Bar-1.0.tar.gz", "foo-bar") == "1.0"
    assert pypi_file_version("foo_bar-2.0-py3-none-any.whl", "foo-bar") == "2.0"
    assert pypi_file_version("foo-bar-baz-1.0.zip", "foo-bar-baz") == "1.0"
    assert pypi_file_version("foo-bar-baz-1.0.zip", "foo-bar") is None
    assert go_escape("github.com/Azure/azure-sdk") == "github.com/!azure/azure-sdk"


# File names pypiserver lists (most from its own test suite): what packaging reads, and the
# older sdists it refuses or splits at the wrong `-`, which the legacy scan reads.
@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        ("pywin32-217-55-cp27-none-win32.whl", "pywin32", "217"),  # build tag 55
        ("foo.bar-1.0-py3-none-any.whl", "foo-bar", "1.0"),
        ("foo-1.0_dev-py3-none-any.whl", "foo", "1.0.dev0"),
        ("Foo-Bar-1.0-py3-none-any.whl", "foo-bar", None),  # not a wheel name (PEP 427)
        ("zope.interface-5.4.0.tar.gz", "zope-interface", "5.4.0"),
        ("package-1.3.7+build.11.e0f985a.zip", "package", "1.3.7+build.11.e0f985a"),
        ("pytz-2012b.tar.bz2", "pytz", "2012b"),
        ("pytz-2012b.tgz", "pytz", "2012b"),
        ("pytz-2012b.ZIP", "pytz", "2012b"),
        ("foo-1.0.tar.xz", "foo", "1.0"),
        ("foo-1.0-1.tar.gz", "foo", "1.0-1"),
        ("flup-123-1.0.3.dev-20110405.tar.gz", "flup-123", "1.0.3.dev-20110405"),
        ("package-1.0.0-alpha.1.zip", "package", "1.0.0-alpha.1"),
        (
            "pyelasticsearch-0.5-brainbot-1-20130712.zip",
            "pyelasticsearch",
            "0.5-brainbot-1-20130712",
        ),
        ("greenlet-0.3.4-py2.7-linux-x86_64.egg", "greenlet", "0.3.4"),
        ("package.zip", "package", None),
    ],
)
def test_file_names_in_the_wild(filename: str, project: str, version: str | None) -> None:
    assert pypi_file_version(filename, project) == version
    assert pypi_file_version(f"https://files.example/x/{filename}", project) == version


def test_a_legacy_sdist_and_a_wheel_of_one_version_meet() -> None:
    files: list[dict[str, object]] = [
        {"filename": "foo-1.0-1.tar.gz", "hashes": {"sha256": "aa" * 32}},
        {"filename": "foo-1.0.post1-py3-none-any.whl", "hashes": {"sha256": "bb" * 32}},
        {"filename": "foo-1.0.tar.gz", "upload-time": 1700000000},  # not a date: ignored
    ]
    versions = versions_from_files(files, "foo")
    assert set(versions) == {"1.post1", "1"}
    assert versions["1.post1"].hashes == {"sha256": frozenset({"aa" * 32, "bb" * 32})}
    assert versions["1"].published_at is None


def test_every_kind_has_a_backend() -> None:
    assert set(BACKENDS) == set(SOURCE_KINDS)
    for kind, backend in BACKENDS.items():
        assert isinstance(backend, SourceBackend) and backend.kind == kind
    assert dict(PURL_KINDS) == {
        "pypi": "pypi",
        "npm": "npm",
        "maven": "maven",
        "golang": "go",
        "deb": "apt",
        "rpm": "rpm",
    }


# --------------------------------------------------------------------------- PyPI


def test_pypiserver_found_normalised_and_not_found(pypi_server: IndexServer) -> None:
    with TrustedSources([SourceConfig("internal", "pypi", pypi_server.url)]) as sources:
        for spelling in ("Foo_Bar", "foo.bar", "FOO-BAR", "foo_bar"):
            answer = sources.lookup(pypi(spelling, "1.0"))
            assert answer.found_version and answer.error is None, (spelling, answer)
            assert answer.repository == {
                "name": "internal",
                "url": pypi_server.url,
                "kind": "pypi",
                "hosting": "proxied",  # not said: the safe assumption
            }
        assert answer.published_at is None  # PEP 503 HTML has no upload time
        assert answer.first_published_at is None  # nor, so, a first release
        assert sources.lookup(pypi("foo-bar", "2.0")).found_version
        missing_version = sources.lookup(pypi("foo-bar", "3.0"))
        assert missing_version.found_package and not missing_version.found_version
        assert missing_version.repository is None and missing_version.error is None
        missing = sources.lookup(pypi("no-such-thing", "1.0"))
        assert not missing.found_package and missing.repository is None and missing.error is None


def test_pypiserver_hash_match_and_mismatch(pypi_server: IndexServer) -> None:
    sdist = pypi_server.packages["foo-bar@1.0"]
    wheel = pypi_server.packages["foo-bar@1.0+wheel"]
    with TrustedSources([SourceConfig("internal", "pypi", pypi_server.url)]) as sources:
        assert sources.lookup(pypi("foo-bar", "1.0", sha256=sdist)).repository is not None
        assert sources.lookup(pypi("foo-bar", "1.0", sha256=wheel)).repository is not None
        bad = sources.lookup(pypi("foo-bar", "1.0", sha256="ab" * 32))
        assert bad.repository is None and bad.found_version
        assert bad.hash_mismatch is not None and "sha256" in bad.hash_mismatch
        assert "internal" in bad.hash_mismatch
        # The 2.0 wheel's digest is not the 1.0 one.
        assert sources.lookup(pypi("foo-bar", "2.0", sha256=sdist)).hash_mismatch


@pytest.mark.parametrize("prefix", ["simple", "html/simple"])
def test_pep691_and_html_yanked_published(pep691_server: StaticIndex, prefix: str) -> None:
    url = pep691_server.url.replace("/simple/", f"/{prefix}/")
    with TrustedSources([SourceConfig("static", "pypi", url)]) as sources:
        yanked = sources.lookup(pypi("yankee", "1.0"))
        current = sources.lookup(pypi("Yankee", "1.1"))
    assert yanked.found_version and yanked.yanked and yanked.repository is not None
    assert not current.yanked and current.found_version
    if prefix == "simple":  # PEP 700 upload-time is JSON only
        assert yanked.published_at == "2023-11-14T22:13:20Z"  # the first file's
        assert current.published_at == "2024-01-02T03:04:05Z"
        # The project began with 1.0's first file, yanked since or not.
        assert yanked.first_published_at == current.first_published_at == "2023-11-14T22:13:20Z"
    else:
        assert yanked.published_at is None and current.published_at is None
        assert yanked.first_published_at is None and current.first_published_at is None
    assert yanked.facts().tags == ("yanked",)


def test_bearer_token(pep691_server: StaticIndex) -> None:
    url = pep691_server.url.replace("/simple/", "/private/simple/")
    with TrustedSources([SourceConfig("private", "pypi", url)]) as sources:
        refused = sources.lookup(pypi("yankee", "1.1"))
    assert refused.error is not None and "401" in refused.error and not refused.found_package
    with TrustedSources([SourceConfig("private", "pypi", url, token=INDEX_TOKEN)]) as sources:
        assert sources.lookup(pypi("yankee", "1.1")).found_version


# --------------------------------------------------------------------------- npm


def test_verdaccio(verdaccio: IndexServer) -> None:
    with TrustedSources([SourceConfig("npm-internal", "npm", verdaccio.url)]) as sources:
        first = sources.lookup(
            npm("left-pad-lite", "1.0.0", sha512=sri_hex(verdaccio.packages["left-pad-lite@1.0.0"]))
        )
        assert first.found_version and first.repository is not None
        assert first.published_at is not None and first.published_at.endswith("Z")
        assert first.deprecated is None
        deprecated = sources.lookup(npm("left-pad-lite", "1.1.0"))
        assert deprecated.found_version and deprecated.deprecated == "use left-pad-lite@1.0.0"
        scoped = sources.lookup(
            npm("@acme/widget", "2.0.0", sha512=sri_hex(verdaccio.packages["@acme/widget@2.0.0"]))
        )
        assert scoped.found_version and scoped.repository is not None, scoped
        assert scoped.published_at is not None
        # Verdaccio's `time.created`: its one version's publication, by the server's clock.
        assert scoped.first_published_at == scoped.published_at
        assert first.first_published_at is not None and deprecated.published_at is not None
        assert first.first_published_at <= deprecated.published_at
        assert deprecated.first_published_at == first.first_published_at  # one project
        bad = sources.lookup(npm("@acme/widget", "2.0.0", sha512="00" * 64))
        assert bad.repository is None and bad.hash_mismatch and "sha512" in bad.hash_mismatch
        no_version = sources.lookup(npm("left-pad-lite", "9.9.9"))
        assert no_version.found_package and not no_version.found_version
        for name in ("@acme/nothing", "nothing-here"):
            missing = sources.lookup(npm(name, "1.0.0"))
            assert not missing.found_package and missing.error is None, missing


# --------------------------------------------------------------------------- Maven and Go


def test_maven(static_repo: StaticRepo) -> None:
    with TrustedSources([SourceConfig("maven-internal", "maven", static_repo.maven_url)]) as src:
        found = src.lookup(maven("com.example", "demo", "1.0", sha1=static_repo.jar_sha1))
        assert found.found_version and found.repository is not None
        assert found.published_at == "2023-11-14T22:13:20Z"
        both = maven("com.example", "demo", "1.1", sha1=static_repo.jar_sha1)
        assert src.lookup(both).repository is not None
        bad = src.lookup(maven("com.example", "demo", "1.0", sha256="11" * 32))
        assert bad.repository is None and bad.hash_mismatch and "sha256" in bad.hash_mismatch
        no_version = src.lookup(maven("com.example", "demo", "2.0"))
        assert no_version.found_package and not no_version.found_version
        missing = src.lookup(maven("com.example", "other", "1.0"))
        assert not missing.found_package and missing.error is None


def test_go_proxy(static_repo: StaticRepo) -> None:
    with TrustedSources([SourceConfig("goproxy", "go", static_repo.go_url)]) as sources:
        found = sources.lookup(golang("example.com/My/mod", "v1.0.0"))
        assert found.found_version and found.published_at == "2022-03-04T05:06:07Z"
        no_version = sources.lookup(golang("example.com/My/mod", "v2.0.0"))
        assert no_version.found_package and not no_version.found_version
        missing = sources.lookup(golang("example.com/my/mod", "v1.0.0"))  # case matters
        assert not missing.found_package and missing.error is None


# --------------------------------------------------------------------------- order, cache, faults


def test_sources_in_configured_order(pypi_server: IndexServer, pep691_server: StaticIndex) -> None:
    configs = [
        SourceConfig("static", "pypi", pep691_server.url),
        SourceConfig("first", "pypi", pypi_server.url),
        SourceConfig("second", "pypi", pypi_server.url.rstrip("/")),
    ]
    with TrustedSources(configs) as sources:
        assert sources.lookup(pypi("yankee", "1.1")).repository["name"] == "static"  # type: ignore[index]
        assert sources.lookup(pypi("foo-bar", "1.0")).repository["name"] == "first"  # type: ignore[index]
        # Sources of another kind are never asked.
        assert sources.lookup(npm("foo-bar", "1.0")) == SourceAnswer(purl="pkg:npm/foo-bar@1.0")


def test_cache_positive_and_negative_ttl(pep691_server: StaticIndex) -> None:
    clock = FakeClock()
    config = SourceConfig("static", "pypi", pep691_server.url)
    with TrustedSources([config], negative_ttl=60, positive_ttl=3600, clock=clock) as sources:
        before = pep691_server.count()
        assert sources.lookup(pypi("yankee", "1.1")).found_version
        assert pep691_server.count() == before + 1
        # The same package again, and another version of it: no request.
        assert sources.lookup(pypi("yankee", "1.1")).found_version
        assert sources.lookup(pypi("yankee", "1.0")).yanked
        assert pep691_server.count() == before + 1 and sources.requests_sent == 1
        assert not sources.lookup(pypi("absent", "1.0")).found_package
        assert not sources.lookup(pypi("absent", "1.0")).found_package
        assert sources.requests_sent == 2
        clock.now += 61  # past the negative TTL, within the positive one
        assert not sources.lookup(pypi("absent", "1.0")).found_package
        assert sources.lookup(pypi("yankee", "1.1")).found_version
        assert sources.requests_sent == 3
        clock.now += 3600
        assert sources.lookup(pypi("yankee", "1.1")).found_version
        assert sources.requests_sent == 4


def test_an_answer_is_given_again_while_what_it_read_holds(pep691_server: StaticIndex) -> None:
    """A new build asks again about the packages of the one before: the same answer object,
    from lookup and lookup_many alike, until the first cache entry it was made of expires
    (then it is asked again), and never for a component it was not made of."""
    clock = FakeClock()
    config = SourceConfig("static", "pypi", pep691_server.url)
    with TrustedSources([config], negative_ttl=60, positive_ttl=3600, clock=clock) as sources:
        found = sources.lookup(pypi("yankee", "1.1"))
        absent = sources.lookup(pypi("absent", "1.0"))
        assert found.found_version and not absent.found_package
        assert sources.lookup(pypi("yankee", "1.1")) is found
        assert sources.lookup_many([pypi("absent", "1.0"), pypi("yankee", "1.1")]) == [
            absent,
            found,
        ]
        assert all(
            a is b
            for a, b in zip(
                sources.lookup_many([pypi("absent", "1.0"), pypi("yankee", "1.1")]),
                [absent, found],
                strict=True,
            )
        )
        assert sources.requests_sent == 2
        # Another digest of the same version is another question (a mismatch names it).
        other = sources.lookup(pypi("yankee", "1.1", sha256="00" * 32))
        assert other is not found and other.hash_mismatch and not other.repository
        clock.now += 61  # the negative answer's entry expired: asked again
        again = sources.lookup(pypi("absent", "1.0"))
        assert again == absent and again is not absent and sources.requests_sent == 3
        assert sources.lookup(pypi("yankee", "1.1")) is found
        clock.now += 3600
        assert sources.lookup(pypi("yankee", "1.1")) is not found
        assert sources.requests_sent == 4
        sources.clear_cache()
        assert sources.lookup(pypi("absent", "1.0")) is not again
        assert sources.requests_sent == 5


def test_source_down_is_an_error_not_found(pypi_server: IndexServer) -> None:
    down = SourceConfig("down", "pypi", down_url())
    with TrustedSources([down], timeout=3) as sources:
        answer = sources.lookup(pypi("foo-bar", "1.0"))
        assert answer.error is not None and "down" in answer.error
        assert not answer.found_package and answer.repository is None
        assert sources.lookup(pypi("foo-bar", "1.0")) is not answer
        assert sources.lookup_many([pypi("foo-bar", "1.0")])[0].error is not None
        assert sources.requests_sent == 3  # faults are not cached, nor the answers they made
    # A later source that has it still answers.
    up = SourceConfig("up", "pypi", pypi_server.url)
    with TrustedSources([down, up], timeout=3) as sources:
        answer = sources.lookup(pypi("foo-bar", "1.0"))
        assert answer.repository is not None and answer.repository["name"] == "up"
        assert answer.error is None
        # Not given again: the first source, which could not be asked, is asked again (it
        # would vouch first once it answers).
        before = sources.requests_sent
        again = sources.lookup(pypi("foo-bar", "1.0"))
        assert again == answer and again is not answer and sources.requests_sent > before
        # Not found where it could be asked, unknown where it could not: an error.
        assert sources.lookup(pypi("no-such-thing", "1.0")).error is not None


def test_lookup_many_keeps_order(pypi_server: IndexServer, static_repo: StaticRepo) -> None:
    configs = [
        SourceConfig("internal", "pypi", pypi_server.url),
        SourceConfig("goproxy", "go", static_repo.go_url),
    ]
    components = [pypi("foo-bar", "1.0"), golang("example.com/My/mod", "v1.0.0")] * 10
    components.append(pypi("no-such-thing", "1.0"))
    with TrustedSources(configs, per_host=2) as sources:
        answers = sources.lookup_many(components)
    assert [a.purl for a in answers] == [c.purl for c in components]
    assert all(a.found_version for a in answers[:-1]) and not answers[-1].found_package


# --------------------------------------------------------------------------- offline snapshot


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_snapshot_round_trip(
    tmp_path: Path,
    suffix: str,
    pypi_server: IndexServer,
    pep691_server: StaticIndex,
    static_repo: StaticRepo,
) -> None:
    configs = [
        SourceConfig("internal", "pypi", pypi_server.url),
        SourceConfig("static", "pypi", pep691_server.url),
        SourceConfig("maven-internal", "maven", static_repo.maven_url),
        SourceConfig("goproxy", "go", static_repo.go_url),
    ]
    components = [
        pypi("foo-bar", "1.0"),
        pypi("yankee", "1.0"),
        pypi("foo-bar", "3.0"),
        pypi("foo-bar", "2.0", sha256="ab" * 32),  # a snapshot is keyed by purl alone
        maven("com.example", "demo", "1.0"),
        golang("example.com/My/mod", "v1.0.0"),
    ]
    with TrustedSources(configs) as sources:
        answers = sources.lookup_many(components)
    with TrustedSources([SourceConfig("down", "npm", down_url())], timeout=3) as sources:
        fault = sources.lookup(npm("left-pad-lite", "1.0.0"))
    assert fault.error is not None
    path = tmp_path / f"facts{suffix}"
    assert export_snapshot([*answers, fault], path) == len(answers)

    facts = load_facts_snapshot(path)
    for component, answer in zip(components, answers, strict=True):
        assert facts(component).repository == answer.repository
        assert facts(component).published_at == answer.published_at
        assert facts(component).first_published_at == answer.first_published_at
        entry = facts.entry(component)
        assert entry is not None
        listed = (entry.found_package, entry.found_version, entry.yanked, entry.deprecated)
        assert listed == (
            answer.found_package,
            answer.found_version,
            answer.yanked,
            answer.deprecated,
        )
        assert entry.hash_mismatch == answer.hash_mismatch
    # The fault was left out: unknown offline, so unverified.
    assert facts.entry(npm("left-pad-lite", "1.0.0")) is None
    assert facts(npm("left-pad-lite", "1.0.0")).repository is None


# --------------------------------------------------------------------------- one identity


def from_purl(purl: str, version: str | None = None) -> Component:
    """A component as the SBOM parser makes it (the SBOM's own version field may differ)."""
    from sbomgate.sbom.purl import format_for_purl_type, parse_purl

    p = parse_purl(purl)
    name = f"{p.namespace}/{p.name}" if p.namespace and p.type in ("npm", "golang") else p.name
    return Component(
        name=name,
        version=version or p.version,
        purl=p.canonical,
        purl_type=p.type,
        namespace=p.namespace,
        qualifiers=p.qualifiers,
        format=format_for_purl_type(p.type),
    )


@pytest.mark.parametrize(
    "qualifiers",
    [
        "repository_url=https://evil.example/simple",
        "repository_url=evil.example/simple",
        "download_url=https://evil.example/packages/foo_bar-1.0-py3-none-any.whl",
        "download_url=https%3A%2F%2Fevil.example%2Ffoo_bar-1.0.tar.gz",
    ],
)
def test_a_purl_from_another_index_is_not_vouched_for(
    pypi_server: IndexServer, qualifiers: str
) -> None:
    foreign = from_purl(f"pkg:pypi/foo-bar@1.0?{qualifiers}")
    with TrustedSources([SourceConfig("internal", "pypi", pypi_server.url)]) as sources:
        assert sources.sources_for(foreign) == ()
        before = sources.requests_sent
        answer = sources.lookup(foreign)
        assert answer.repository is None and answer.error is None
        assert sources.requests_sent == before  # not even asked
        # The same package from the trusted index itself is vouched for.
        host = pypi_server.url.split("/")[2]
        own = from_purl(f"pkg:pypi/foo-bar@1.0?download_url=http://{host}/packages/x.whl")
        assert sources.lookup(own).repository is not None
        assert sources.lookup(from_purl("pkg:pypi/foo-bar@1.0?arch=x")).repository is not None


@pytest.mark.parametrize("spelling", ["Foo__Bar", "foo.-_bar", "FOO.BAR"])
def test_pypi_lookups_use_the_purls_name_and_version(
    pypi_server: IndexServer, spelling: str
) -> None:
    with TrustedSources([SourceConfig("internal", "pypi", pypi_server.url)]) as sources:
        for version in ("1.0", "v1.0", "1.00", "1.0.0"):
            component = from_purl(f"pkg:pypi/{spelling}@{version}")
            assert sources.lookup(component).repository is not None, (spelling, version)
        # The SBOM's own version field does not decide: the purl's 3.0 is not published.
        lying = from_purl("pkg:pypi/foo-bar@3.0", version="1.0")
        assert sources.lookup(lying).repository is None


class _NpmRegistry:
    """A static npm registry whose package names are case-sensitive, as npm's are."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        documents = {
            "/JSONStream": {"name": "JSONStream", "versions": {"1.3.5": {}}},
            "/jsonstream": {"name": "jsonstream", "versions": {"1.0.3": {}}},
            "/@acme%2Fwidget": {"name": "@acme/widget", "versions": {"2.0.0": {}}},
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                document = documents.get(self.path)
                body = json.dumps(document or {"error": "not found"}).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_npm_lookups_keep_the_names_case() -> None:
    registry = _NpmRegistry()
    try:
        with TrustedSources([SourceConfig("npm", "npm", registry.url)]) as sources:
            assert sources.lookup(from_purl("pkg:npm/JSONStream@1.3.5")).repository is not None
            assert sources.lookup(from_purl("pkg:npm/jsonstream@1.0.3")).repository is not None
            assert sources.lookup(from_purl("pkg:npm/jsonstream@1.3.5")).repository is None
            for scope in ("%40acme", "@acme", "acme"):
                found = sources.lookup(from_purl(f"pkg:npm/{scope}/widget@v2.0.0"))
                assert found.repository is not None, scope
    finally:
        registry.server.shutdown()
        registry.server.server_close()


def test_snapshot_entries_are_matched_by_identity_and_origin(tmp_path: Path) -> None:
    path = tmp_path / "facts.yaml"
    path.write_text(
        "packages:\n"
        '  "pkg:pypi/Foo_Bar@1.0":\n'
        "    repository: {name: internal, url: 'https://pypi.acme.example/simple'}\n"
    )
    snapshot = load_facts_snapshot(path)
    for purl in ("pkg:pypi/foo-bar@1.0.0", "pkg:pypi/foo.bar@v1.0"):
        entry = snapshot.entry(from_purl(purl))
        assert entry is not None and entry.repository is not None, purl
        assert entry.found_package and entry.found_version  # a repository says it is there
    evil = from_purl("pkg:pypi/foo-bar@1.0?repository_url=https://evil.example/simple")
    assert snapshot.entry(evil) is None and snapshot(evil).repository is None
    own = from_purl("pkg:pypi/foo-bar@1.0?repository_url=https://pypi.acme.example/simple")
    assert snapshot(own).repository is not None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("yanked", "'yes'", "yanked: expected true or false"),
        ("deprecated", "5", "deprecated: expected a string or null"),
        ("hash_mismatch", "[1]", "hash_mismatch: expected a string or null"),
    ],
)
def test_snapshot_answer_fields_are_checked(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    from sbomgate.errors import InputError

    path = tmp_path / "facts.yaml"
    path.write_text(f'packages:\n  "pkg:pypi/foo@1.0":\n    {field}: {value}\n')
    with pytest.raises(InputError, match=message):
        load_facts_snapshot(path)
