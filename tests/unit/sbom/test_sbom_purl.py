"""The purl fast path must agree exactly with packageurl-python wherever it answers."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from packageurl import PackageURL

from sbomgate.sbom.purl import _fast_parse, _library_parse, parse_purl

CORPUS = [
    "pkg:npm/%40scope/name@1.0.0",
    "pkg:npm/%40Scope/Name@1.0.0",
    "pkg:npm/@scope/name@1.0.0",
    "pkg:npm/lodash@4.17.21",
    "pkg:golang/github.com/foo/bar@v1.2.3",
    "pkg:golang/github.com/Azure/azure-sdk-for-go/sdk/azcore@v1.9.0",
    "pkg:maven/org.apache/commons-lang3@3.1?type=jar",
    "pkg:maven/org.apache/commons-lang3@3.1?type=jar&classifier=sources",
    "pkg:maven/org.apache/commons-lang3@3.1?type=jar&classifier=sources&type=pom",
    "pkg:pypi/Django@4.2",
    "pkg:pypi/django_rest_framework@3.14.0",
    "pkg:PYPI/django@4.2",
    "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12",
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
    "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64",
    "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64",
    "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25",
    "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4",
    "pkg:apk/Alpine/Musl@1.2.4-r2",
    "pkg:oci/alpine@sha256%3Aabc?repository_url=docker.io/library/alpine&tag=3",
    "pkg:oci/Alpine@sha256:ABC",
    "pkg:oci/alpine@1.0+x",
    "pkg:github/Package-Url/Purl-Spec@244fd47e07d1004",
    "pkg:hackage/a_b@1.0",
    "pkg:pub/Flutter_Foo@1.0",
    "pkg:cpan/Perl::Version@1.0",
    "pkg:mlflow/CreditFraud@3?repository_url=https://westus2.api.azureml.ms/mlflow/v1.0",
    "pkg:generic/openssl@1.1.10g?download_url=https://openssl.org/source/openssl-1.1.0g.tar.gz",
    "pkg:generic/foo@1#sub/path",
    "pkg:gem/rails@7.0.0?platform=ruby",
    "pkg:cargo/serde@1.0.1",
    "pkg:nuget/Newtonsoft.Json@13.0.3",
    "pkg:composer/Laravel/Framework@10.0.0",
    "pkg:swift/github.com/apple/swift-nio@2.0.0",
    "pkg:conan/openssl@3.0.3?user=bincrafters&channel=stable",
    "pkg:docker/library/nginx@latest?tag=1.25",
    "pkg:npm/foo@1?Key=V",
    "pkg:npm/foo@1?a=",
    "pkg:npm/foo@",
    "pkg:npm/foo@1?b=2&a=1",
    "pkg:npm/foo%20bar@1",
    "pkg:npm/foo@1%20",
    "pkg://npm/foo@1",
]


def _npm_name_as_written(purl: str, expected: PackageURL) -> tuple[str, str]:
    """packageurl-python lower-cases npm names; sbomgate keeps their case (npm names are
    case-sensitive, purl-spec#872): the library's answer with the name as written."""
    canonical = expected.to_string()
    if expected.type != "npm":
        return canonical, expected.name
    written = unquote(PackageURL.from_string(purl, normalize_purl=False).name)
    return canonical.replace(quote(expected.name), quote(written), 1), written


@pytest.mark.parametrize("purl", CORPUS)
def test_corpus_agrees_with_library(purl: str) -> None:
    expected = PackageURL.from_string(purl)
    canonical, name = _npm_name_as_written(purl, expected)
    got = parse_purl(purl)
    assert got.canonical == canonical
    assert (got.type, got.namespace, got.name) == (
        expected.type,
        expected.namespace or None,
        name,
    )
    assert got.version == (expected.version or None)
    assert got.qualifiers == expected.qualifiers
    assert got.subpath == expected.subpath
    fast = _fast_parse(purl)
    if fast is not None:
        assert fast == _library_parse(purl)


def test_fast_path_covers_common_purls() -> None:
    for purl in (
        "pkg:npm/%40scope/name@1.0.0",
        "pkg:golang/github.com/foo/bar@v1.2.3",
        "pkg:maven/org.apache/commons-lang3@3.1?type=jar",
        "pkg:pypi/Django@4.2",
        "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12",
    ):
        assert _fast_parse(purl) is not None, purl


@pytest.mark.parametrize(
    ("purl", "name", "canonical"),
    [
        ("pkg:npm/JSONStream@1.3.5", "JSONStream", "pkg:npm/JSONStream@1.3.5"),
        ("pkg:npm/Base64@1.0.0?b=2&a=1", "Base64", "pkg:npm/Base64@1.0.0?a=1&b=2"),
        ("pkg:npm/%40Scope/Name@1.0.0", "Name", "pkg:npm/%40Scope/Name@1.0.0"),
        ("pkg:npm/JSV@4.0.2#lib", "JSV", "pkg:npm/JSV@4.0.2#lib"),
        ("pkg:npm/jsonstream@1.0.3", "jsonstream", "pkg:npm/jsonstream@1.0.3"),
    ],
)
def test_npm_names_keep_their_case(purl: str, name: str, canonical: str) -> None:
    parsed = parse_purl(purl)
    assert (parsed.name, parsed.canonical) == (name, canonical)
    assert _library_parse(purl)[:4] == parsed[:4]


def test_invalid_purls_raise_value_error() -> None:
    for purl in (
        "npm/foo@1",
        "pkg:",
        "pkg:npm",
        "pkg:1npm/foo",
        "pkg:npm/@1",
        "pkg:npm/%2F %2F",  # packageurl-python raised TypeError (its name decodes to nothing)
    ):
        with pytest.raises(ValueError):
            parse_purl(purl)


_TYPES = st.sampled_from(
    ["npm", "pypi", "maven", "golang", "deb", "oci", "hackage", "pub", "cpan", "m", "flow",
     "an", "github", "apk", "generic", "Npm", "x.y-z_w", "huggingface", "composer"]
)  # fmt: skip
_PIECES = st.sampled_from(
    ["a", "B", "z9", ".", "-", "_", "~", ":", "+", "/", "@", "?", "&", "=", "#", " ", "%40",
     "%2B", "%2b", "%3A", "%20", "%2F", "%", "é", "\t"]
)  # fmt: skip
_TEXT = st.lists(_PIECES, min_size=1, max_size=12).map("".join)


@settings(max_examples=1500, deadline=None)
@given(ptype=_TYPES, rest=_TEXT)
@example(ptype="npm", rest="%40a/b@1+2?a=b+c")
@example(ptype="oci", rest="a@B?z=1")
def test_fast_path_agrees_with_library_on_generated_purls(ptype: str, rest: str) -> None:
    purl = f"pkg:{ptype}/{rest}"
    fast = _fast_parse(purl)
    if fast is None:
        return
    assert fast == _library_parse(purl), purl
