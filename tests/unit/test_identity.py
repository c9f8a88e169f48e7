"""One canonical identity per package (controller/sbomgate/identity.py): every spelling of a
package a purl allows is one identity, and two packages never share one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion, Version

from sbomgate.identity import (
    canonical_version,
    component_disagreements,
    declared_fields,
    disagreements,
    go_escape,
    go_unescape,
    identity_from_purl,
    identity_of,
    url_host,
)
from sbomgate.sbom import parse_sbom
from sbomgate.sbom.model import Component


def key(purl: str) -> object:
    return identity_from_purl(purl).key


@pytest.mark.parametrize(
    "spelling",
    [
        "pkg:pypi/evil__pkg@1.0",
        "pkg:pypi/Evil.Pkg@1.0",
        "pkg:pypi/evil-_-pkg@1.0",
        "pkg:pypi/EVIL_PKG@1.0",
        "pkg:pypi/evil...pkg@1.0",
        "pkg:pypi/evil-pkg@v1.0",
        "pkg:pypi/evil-pkg@1.00",
        "pkg:pypi/evil-pkg@1.0.0",
        "pkg:pypi/evil-pkg@1.0.0.0?extension=whl",
    ],
)
def test_pypi_spellings_are_one_identity(spelling: str) -> None:
    identity = identity_from_purl(spelling)
    assert identity.package == "evil-pkg"
    assert identity.key == key("pkg:pypi/evil-pkg@1.0")


def test_pypi_versions_keep_their_pep440_normal_form() -> None:
    assert identity_from_purl("pkg:pypi/x@v1.0").version == "1.0"
    assert identity_from_purl("pkg:pypi/x@1.00").version == "1.0"
    assert identity_from_purl("pkg:pypi/x@1.0.0RC1").version == "1.0.0rc1"
    assert identity_from_purl("pkg:pypi/x@2!1.0").version == "2!1.0"
    assert identity_from_purl("pkg:pypi/x@1.0-evil!").version == "1.0-evil!"  # kept as written
    assert key("pkg:pypi/x@1.0.1") != key("pkg:pypi/x@1.0")
    assert key("pkg:pypi/x@2!1.0") != key("pkg:pypi/x@1.0")


_RELEASE_PART = st.sampled_from(["0", "00", "1", "01", "9", "10", "007", "123456789012345678901"])


@given(
    parts=st.lists(_RELEASE_PART, min_size=1, max_size=5),
    tail=st.sampled_from(["", "a1", "rc2", ".post1", ".dev0", "+local", "-1", ".", "x"]),
    head=st.sampled_from(["", "v", "1!", " ", "="]),
)
def test_pypi_canonical_version_is_packagings_normal_form(
    parts: list[str], tail: str, head: str
) -> None:
    # A bare release is taken as written, not parsed: it must be what packaging would write.
    written = head + ".".join(parts) + tail
    try:
        expected = str(Version(written.strip()))
    except InvalidVersion:
        expected = written.strip()
    assert canonical_version("pypi", written) == expected


@pytest.mark.parametrize(
    ("written", "version"),
    [
        ("pkg:npm/event-stream@3.3.6+build", "3.3.6+build"),
        ("pkg:npm/event-stream@3.3.6%2Bbuild", "3.3.6+build"),
        ("pkg:npm/event-stream@3.3.6%2bbuild", "3.3.6+build"),
        ("pkg:pypi/foo@1.0.0%2Blocal", "1.0.0+local"),
        ("pkg:pypi/foo@1.0.0+local", "1.0.0+local"),
        ("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4", "2.36-9+deb12u4"),
        ("pkg:deb/debian/libc6@2.36-9+deb12u4", "2.36-9+deb12u4"),
    ],
)
def test_plus_and_percent_2b_are_one_character(written: str, version: str) -> None:
    assert identity_from_purl(written).version == version


@pytest.mark.parametrize(
    "spelling",
    [
        "pkg:npm/%40acme/util@1.0.0",
        "pkg:npm/@acme/util@1.0.0",
        "pkg:npm/acme/util@1.0.0",
        "pkg:npm/%40acme/util@v1.0.0",
        "pkg:npm/%40acme/util@=1.0.0",
    ],
)
def test_npm_scope_with_or_without_at(spelling: str) -> None:
    identity = identity_from_purl(spelling)
    assert (identity.namespace, identity.name, identity.package) == ("@acme", "util", "@acme/util")
    assert identity.version == "1.0.0"
    assert identity.key == key("pkg:npm/%40acme/util@1.0.0")


@pytest.mark.parametrize(
    ("legacy", "other"),
    [("JSONStream", "jsonstream"), ("Base64", "base64"), ("JSV", "jsv")],
)
def test_npm_names_are_case_sensitive(legacy: str, other: str) -> None:
    # Three of npm's 15,000 most downloaded packages have capitals: lower-casing them named
    # another (or no) package.
    mine = identity_from_purl(f"pkg:npm/{legacy}@1.0.0")
    assert mine.package == legacy
    assert mine.key != key(f"pkg:npm/{other}@1.0.0")
    assert mine.purl == f"pkg:npm/{legacy}@1.0.0"


def test_an_unscoped_name_is_not_the_scoped_one() -> None:
    assert key("pkg:npm/util@1.0.0") != key("pkg:npm/%40acme/util@1.0.0")
    # PyPI has no namespaces: one written in a purl is kept, never dropped.
    assert identity_from_purl("pkg:pypi/evil/requests@2.31.0").package == "evil/requests"


@pytest.mark.parametrize(
    "spelling",
    [
        "pkg:golang/github.com/Azure/azure-sdk-for-go@v1.9.0",
        "pkg:golang/github.com/!azure/azure-sdk-for-go@v1.9.0",
        "pkg:golang/github.com/Azure/azure-sdk-for-go@1.9.0",
    ],
)
def test_go_module_paths_decode_proxy_case_escapes(spelling: str) -> None:
    identity = identity_from_purl(spelling)
    assert identity.package == "github.com/Azure/azure-sdk-for-go"
    assert identity.version == "v1.9.0"
    assert go_escape(identity.package) == "github.com/!azure/azure-sdk-for-go"
    assert go_unescape(go_escape(identity.package)) == identity.package


def test_go_toolchain_versions() -> None:
    assert identity_from_purl("pkg:golang/stdlib@go1.22.1").version == "v1.22.1"
    assert identity_from_purl("pkg:golang/stdlib@1.22.1").version == "v1.22.1"
    assert identity_from_purl("pkg:golang/example.com/m@(devel)").version == "(devel)"


def test_maven_is_group_and_artifact() -> None:
    identity = identity_from_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar")
    assert identity.package == "org.apache.logging.log4j:log4j-core"
    assert identity.key != key("pkg:maven/com.evil/log4j-core@2.14.1")


def test_os_packages_binary_source_vendor_and_distro() -> None:
    deb = identity_from_purl(
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?arch=amd64&distro=debian-12"
        "&upstream=openssl%403.0.11-1~deb12u2"
    )
    assert (deb.package, deb.vendor, deb.source, deb.source_version) == (
        "libssl3",
        "debian",
        "openssl",
        "3.0.11-1~deb12u2",
    )
    assert deb.origin == (("distro", "debian-12"),)
    assert deb.key != key("pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?distro=debian-11")
    assert deb.key != key("pkg:deb/ubuntu/libssl3@3.0.11-1~deb12u2%2Bb1?distro=debian-12")
    rpm = identity_from_purl("pkg:rpm/redhat/openssl@3.0.7-27.el9?epoch=1&arch=x86_64")
    assert rpm.version == "1:3.0.7-27.el9"


@pytest.mark.parametrize(
    ("purl", "origin"),
    [
        (
            "pkg:pypi/requests@2.31.0?repository_url=https://evil.example/simple",
            (("repository_url", "https://evil.example/simple"),),
        ),
        (
            "pkg:npm/left-pad@1.3.0?download_url=https://evil.example/left-pad-1.3.0.tgz",
            (("download_url", "https://evil.example/left-pad-1.3.0.tgz"),),
        ),
        ("pkg:apk/alpine/musl@1.2.4-r2?distro=3.18.4", (("distro", "3.18.4"),)),
        # vcs_url is where the source lives (CycloneDX's npm tooling sets it for registry
        # packages), not where the artifact came from; arch and type change nothing.
        ("pkg:npm/x@1.0.0?vcs_url=git%2Bhttps://github.com/a/x.git", ()),
        ("pkg:maven/g/a@1?type=jar&classifier=sources", ()),
        ("pkg:pypi/requests@2.31.0?distro=debian-12", ()),  # distro is for OS packages
    ],
)
def test_origin_qualifiers_are_part_of_the_identity(
    purl: str, origin: tuple[tuple[str, str], ...]
) -> None:
    identity = identity_from_purl(purl)
    assert identity.origin == origin
    assert (identity.key == key(purl.split("?")[0])) is (not origin)


def test_comes_from_compares_hosts() -> None:
    evil = identity_from_purl("pkg:pypi/r@1?repository_url=https://evil.example/simple")
    assert not evil.comes_from("https://pypi.acme.example/simple/")
    assert evil.comes_from("https://EVIL.example:443/other/")
    plain = identity_from_purl("pkg:pypi/r@1")
    assert plain.comes_from("https://pypi.acme.example/simple/")
    distro = identity_from_purl("pkg:deb/debian/x@1?distro=debian-12")
    assert not distro.comes_from("https://deb.debian.org/debian")
    assert url_host("ghcr.io/acme/web") == "ghcr.io"
    assert url_host("http://127.0.0.1:8080/simple") == "127.0.0.1:8080"


def test_canonical_purl_round_trips() -> None:
    for purl in (
        "pkg:pypi/evil-pkg@1.0",
        "pkg:npm/%40acme/util@1.0.0",
        "pkg:golang/github.com/Azure/azure-sdk-for-go@v1.9.0",
        "pkg:maven/org.example/lib@1.0",
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-12",
        "pkg:pypi/r@1?repository_url=https://evil.example/simple",
    ):
        identity = identity_from_purl(purl)
        assert identity.purl == purl
        assert identity_from_purl(identity.purl) == identity


def test_component_identity_prefers_the_purls_version() -> None:
    component = Component(
        name="requests", version="2.32.3", purl="pkg:pypi/requests@2.31.0", purl_type="pypi"
    )
    identity = identity_of(component)
    assert identity is not None and identity.version == "2.31.0"
    versionless = Component(name="x", version="1.0", purl="pkg:pypi/x", purl_type="pypi")
    assert identity_of(versionless).version == "1.0"  # type: ignore[union-attr]
    assert identity_of(Component(name="x")) is None


# --- fields that disagree with the purl ------------------------------------------------------


@pytest.mark.parametrize(
    ("purl", "name", "group", "version"),
    [
        ("pkg:npm/%40scope/x@1.0.0", "x", "@scope", "1.0.0"),  # cyclonedx-npm
        ("pkg:npm/%40scope/x@1.0.0", "@scope/x", None, "1.0.0"),  # syft
        ("pkg:npm/JSONStream@1.3.5", "JSONStream", None, "1.3.5"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "log4j-core",
         "org.apache.logging.log4j", "2.14.1"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "log4j-core", None, "2.14.1"),
        ("pkg:pypi/pyyaml@6.0.1", "PyYAML", None, "6.0.1"),
        ("pkg:pypi/typing-extensions@4.8.0", "typing_extensions", None, "4.8.0"),
        ("pkg:golang/github.com/foo/bar@v1.2.3", "github.com/foo/bar", None, "v1.2.3"),
        ("pkg:golang/stdlib@1.22.1", "stdlib", None, "go1.22.1"),
        ("pkg:rpm/redhat/openssl@3.0.7-27.el9?epoch=1", "openssl", None, "1:3.0.7-27.el9"),
        ("pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1", "zlib1g", None, "1:1.2.13.dfsg-1"),
        ("pkg:nuget/Newtonsoft.Json@13.0.3", "Newtonsoft.Json", None, "13.0.3"),
        ("pkg:gem/rails@7.0.0", "Rails", None, "7.0.0"),
        ("pkg:oci/web@sha256%3Aabc", "ghcr.io/acme/web:1.4", None, None),  # not checked
    ],
)  # fmt: skip
def test_real_sboms_spellings_agree(
    purl: str, name: str, group: str | None, version: str | None
) -> None:
    identity = identity_from_purl(purl)
    assert disagreements(identity, name=name, group=group, version=version) == ()


@pytest.mark.parametrize(
    ("purl", "name", "group", "version", "problem"),
    [
        ("pkg:pypi/evil@6.6.6", "requests", None, "6.6.6", "its name 'requests'"),
        ("pkg:pypi/requests@6.6.6", "requests", None, "2.31.0", "its version '2.31.0'"),
        ("pkg:npm/jsonstream@1.3.5", "JSONStream", None, "1.3.5", "its name 'JSONStream'"),
        ("pkg:npm/%40evil/x@1.0.0", "x", "@scope", "1.0.0", "its name '@scope/x'"),
        ("pkg:maven/com.evil/log4j-core@2.17.1", "log4j-core", "org.apache.logging.log4j",
         "2.17.1", "'org.apache.logging.log4j:log4j-core'"),
        ("pkg:golang/github.com/evil/bar@v1.2.3", "github.com/foo/bar", None, "v1.2.3", "its name"),
    ],
)  # fmt: skip
def test_disagreeing_fields_are_reported(
    purl: str, name: str, group: str | None, version: str, problem: str
) -> None:
    found = disagreements(identity_from_purl(purl), name=name, group=group, version=version)
    assert len(found) == 1 and problem in found[0]


def test_declared_fields_are_read_from_the_whole_document() -> None:
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "application", "name": "app", "purl": "pkg:oci/app"}},
        "components": [
            {
                "type": "library",
                "name": "x",
                "group": "@scope",
                "version": "1.0.0",
                "purl": "pkg:npm/%40scope/x@1.0.0",
                "components": [
                    {"type": "library", "name": "requests", "version": "2.31.0",
                     "purl": "pkg:pypi/evil@2.31.0"},
                ],
            },
        ],
    }  # fmt: skip
    import json

    sbom = parse_sbom(json.dumps(document).encode(), source="t.cdx.json")
    declared = declared_fields(sbom.document)
    assert declared["pkg:npm/%40scope/x@1.0.0"] == (("x", "@scope"),)
    by_name = {c.purl: component_disagreements(c, declared) for c in sbom.components}
    assert by_name["pkg:npm/%40scope/x@1.0.0"] == ()
    (problem,) = by_name["pkg:pypi/evil@2.31.0"]
    assert problem == "its name 'requests' is not the purl's 'evil'"


def test_the_policies_see_the_canonical_identity() -> None:
    from sbomgate.policy.input import build_input

    component = Component(
        name="evil--pkg",
        version="2.0",
        purl="pkg:pypi/evil--pkg@1.0?repository_url=https://evil.example/simple",
        purl_type="pypi",
        qualifiers={"repository_url": "https://evil.example/simple"},
        format="python",
    )
    v0 = build_input(component, disagreements=("its version '2.0' is not the purl's '1.0'",))["v0"]
    # Cloudsmith's fields are as they were...
    assert v0["package"]["name"] == "evil--pkg" and v0["package"]["version"] == "2.0"
    assert v0["identity"]["name"] == "evil--pkg"
    # ...and the identity every lookup used is beside them.
    assert v0["identity"]["canonical"] == {
        "type": "pypi",
        "package": "evil-pkg",
        "version": "1.0",
        "origin": {"repository_url": "https://evil.example/simple"},
        "source": None,
        "disagreements": ["its version '2.0' is not the purl's '1.0'"],
    }
    assert build_input(Component(name="no-purl"))["v0"]["identity"]["canonical"] is None


_CHECKED = [
    "pypi",
    "npm",
    "maven",
    "golang",
    "cargo",
    "gem",
    "nuget",
    "deb",
    "rpm",
    "apk",
    "composer",
]
_PART = st.text(alphabet="aAzZ09-_.!@/ %", min_size=1, max_size=8)


@given(
    ptype=st.sampled_from(_CHECKED),
    namespace=st.one_of(st.none(), _PART),
    name=_PART,
    version=st.one_of(st.none(), st.text(alphabet="0123456789.:v~+-abAB ", min_size=1, max_size=8)),
    declared_version=st.one_of(st.none(), st.text(alphabet="0123456789.:v~+-abAB ", max_size=8)),
    group_from=st.sampled_from(["namespace", "none", "other"]),
    other=_PART,
)
def test_the_shortcuts_of_disagreements_change_no_answer(
    ptype: str,
    namespace: str | None,
    name: str,
    version: str | None,
    declared_version: str | None,
    group_from: str,
    other: str,
) -> None:
    """A component whose name and group are its identity's own parts, or whose version is its
    identity's own text, is taken to agree without working the declared package or version key
    out (`identity._its_own_parts`): it does, for every checked type."""
    from sbomgate import identity as identity_module
    from sbomgate.identity import _build

    identity = _build(ptype, namespace, name, version, {})
    group = {"namespace": identity.namespace, "none": None, "other": other}[group_from]
    for declared_name in (identity.name, name, other):
        for declared in (version, identity.version, declared_version):
            found = disagreements(identity, name=declared_name, group=group, version=declared)
            # The same question without the shortcuts: the declared package and version key.
            expected: list[str] = []
            package = identity_module._declared_package(identity, declared_name, group)
            if package is not None and package != identity.package:
                expected.append("name")
            with_epoch = identity_module._with_epoch(identity, declared) if declared else None
            if (
                declared
                and identity.version is not None
                and identity_module.version_key(ptype, with_epoch) != identity.version_key
            ):
                expected.append("version")
            assert [p.split()[1] for p in found] == expected
