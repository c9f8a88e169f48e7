"""Image references: Docker normalisation, strict refusals, and round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.errors import InputError
from sbomgate.registry.reference import (
    DOCKER_HUB,
    DOCKER_HUB_API_HOST,
    ImageReference,
    is_digest,
    parse_reference,
)

SHA = "sha256:" + "ab" * 32
SHA512 = "sha512:" + "cd" * 64


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/nginx", "docker.io", "bitnami/nginx", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/nginx:1", "docker.io", "library/nginx", "1", None),
        ("registry-1.docker.io/acme/app", "docker.io", "acme/app", "latest", None),
        ("Docker.IO/library/nginx", "docker.io", "library/nginx", "latest", None),
        ("localhost/x", "localhost", "x", "latest", None),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None),
        ("127.0.0.1:5000/a/b:tag@" + SHA, "127.0.0.1:5000", "a/b", "tag", SHA),
        ("[::1]:5000/x", "[::1]:5000", "x", "latest", None),
        ("[::1]/x", "[::1]", "x", "latest", None),
        ("[FE80::1]:5000/x", "[fe80::1]:5000", "x", "latest", None),
        ("[FE80::1]/x", "[fe80::1]", "x", "latest", None),
        ("ghcr.io/acme/app@" + SHA, "ghcr.io", "acme/app", None, SHA),
        ("nginx@" + SHA512, "docker.io", "library/nginx", None, SHA512),
        ("Registry.Example:443/a/b/c:v1", "registry.example:443", "a/b/c", "v1", None),
        (
            "r.example/a.b/c_d/e__f/g--h:V1.0_x-Y",
            "r.example",
            "a.b/c_d/e__f/g--h",
            "V1.0_x-Y",
            None,
        ),
        # A first component that is not a host name belongs to the Docker Hub path.
        ("acme/app:1", "docker.io", "acme/app", "1", None),
        # `localhost:5000` alone is the Hub image library/localhost with tag 5000, as in Docker.
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
    ],
)
def test_normalisation(
    ref: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert parse_reference(ref) == ImageReference(registry, repository, tag, digest)


def test_digest_only_reference_keeps_tag_none() -> None:
    parsed = parse_reference("alpine@" + SHA)
    assert parsed.tag is None
    assert parsed.digest == SHA
    assert str(parsed) == "docker.io/library/alpine@" + SHA


def test_tag_and_digest_both_kept() -> None:
    parsed = parse_reference("alpine:3.20@" + SHA)
    assert (parsed.tag, parsed.digest) == ("3.20", SHA)
    assert str(parsed) == f"docker.io/library/alpine:3.20@{SHA}"


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "empty"),
        ("https://ghcr.io/acme/app", "no scheme"),
        ("oci://ghcr.io/acme/app", "no scheme"),
        ("user@host/x", "userinfo"),
        ("user:secret@ghcr.io/acme/app:1", "userinfo"),
        ("user@ghcr.io/x@" + SHA, "more than one '@'"),
        ("ghcr.io/Acme/app", "bad repository name component 'Acme'"),
        ("Nginx", "bad repository name component 'Nginx'"),
        ("ghcr.io/acme//app", "bad repository name component ''"),
        ("ghcr.io/acme/app/", "bad repository name component ''"),
        ("ghcr.io/acme/-app", "bad repository name component '-app'"),
        ("ghcr.io/acme/app:", "bad tag ''"),
        ("ghcr.io/acme/app:-x", "bad tag '-x'"),
        ("ghcr.io/acme/app:" + "t" * 129, "bad tag"),
        ("ghcr.io/acme/app@sha256:abc", "bad digest 'sha256:abc'"),
        ("ghcr.io/acme/app@sha256:" + "a" * 63, "bad digest"),
        ("ghcr.io/acme/app@sha256:" + "a" * 65, "bad digest"),
        ("ghcr.io/acme/app@sha256:" + "A" * 64, "bad digest"),
        ("ghcr.io/acme/app@md5:" + "a" * 32, "bad digest"),
        ("ghcr.io/acme/app@sha512:" + "a" * 64, "bad digest"),
        ("localhost:0/x", "bad registry port '0'"),
        ("localhost:70000/x", "bad registry port '70000'"),
        ("localhost:65536/x", "bad registry port '65536'"),
        ("localhost:http/x", "bad registry port 'http'"),
        ("[::1]:0/x", "bad registry port '0'"),
        ("[::1]:/x", "bad registry port ''"),
        ("[::1]x/y", "bad registry address"),
        ("[1.2.3.4]/x", "bad IPv6 registry address"),
        ("[zz::1]/x", "bad IPv6 registry address"),
        ("[::1/x", "bad IPv6 registry address"),
        ("bad_host.example/x", "bad registry host name 'bad_host.example'"),
        ("-bad.example/x", "bad registry host name"),
        ("ghcr.io/acme/app :1", "whitespace or control characters"),
        (" nginx", "whitespace or control characters"),
        ("nginx\n", "whitespace or control characters"),
        ("ngi\tnx", "whitespace or control characters"),
        ("ngi\x00nx", "whitespace or control characters"),
        ("ngi\x1bnx", "whitespace or control characters"),
        ("nginx\u2028", "whitespace or control characters"),
        ("ghcr.io/" + "a/" * 400 + "b", "too long"),
        ("ghcr.io/" + "a" * 250, "name longer than 255 characters"),
    ],
)
def test_refusals_name_the_reason(ref: str, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_reference(ref)
    message = str(caught.value)
    assert message.startswith("invalid image reference ")
    assert reason in message


def test_long_reference_is_truncated_in_the_message() -> None:
    with pytest.raises(InputError) as caught:
        parse_reference("x" * 5000)
    assert len(str(caught.value)) < 300
    assert "…" in str(caught.value)


def test_name_of_exactly_255_characters_is_accepted() -> None:
    path = "a" * (255 - len("ghcr.io/"))
    assert parse_reference(f"ghcr.io/{path}").repository == path


def test_api_host_for_docker_hub_and_others() -> None:
    hub = parse_reference("nginx")
    assert hub.registry == DOCKER_HUB
    assert hub.api_host == DOCKER_HUB_API_HOST == "registry-1.docker.io"
    assert parse_reference("registry-1.docker.io/acme/x").api_host == "registry-1.docker.io"
    assert parse_reference("ghcr.io/acme/x").api_host == "ghcr.io"
    assert parse_reference("localhost:5000/x").api_host == "localhost:5000"


def test_name_with_digest_and_pinned() -> None:
    tagged = parse_reference("ghcr.io/acme/app:1.0")
    assert tagged.name == "ghcr.io/acme/app"
    assert tagged.pinned == "ghcr.io/acme/app:1.0"  # no digest yet: the reference as given
    resolved = tagged.with_digest(SHA)
    assert resolved == ImageReference("ghcr.io", "acme/app", "1.0", SHA)
    assert tagged.digest is None  # frozen: with_digest returns a new value
    assert resolved.pinned == f"ghcr.io/acme/app@{SHA}"
    assert str(resolved) == f"ghcr.io/acme/app:1.0@{SHA}"


def test_is_digest() -> None:
    assert is_digest(SHA)
    assert is_digest(SHA512)
    assert not is_digest("sha256:" + "a" * 63)
    assert not is_digest(SHA + "\n")
    assert not is_digest("sha1:" + "a" * 40)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120) | st.text(alphabet="ab.:/@[]-_0159AZsh", max_size=40))
def test_arbitrary_text_raises_only_input_error(text: str) -> None:
    try:
        parsed = parse_reference(text)
    except InputError:
        return
    assert parse_reference(str(parsed)) == parsed


_component = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4}){0,2}", fullmatch=True)
_host = st.sampled_from(
    ["", "docker.io/", "index.docker.io/", "ghcr.io/", "localhost:5000/", "[::1]:5000/", "r.ex/"]
)
_tag = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.none() | st.sampled_from([SHA, SHA512])


@settings(max_examples=300, deadline=None)
@given(_host, st.lists(_component, min_size=1, max_size=4), _tag, _digest)
def test_valid_references_round_trip(
    host: str, path: list[str], tag: str | None, digest: str | None
) -> None:
    if not host and "." in path[0]:
        path[0] = path[0].replace(".", "-")  # else the first component is taken for a host
    ref = host + "/".join(path)
    if tag is not None:
        ref += f":{tag}"
    if digest is not None:
        ref += f"@{digest}"
    parsed = parse_reference(ref)
    assert parsed.digest == digest
    assert parsed.tag == (tag if tag is not None or digest is not None else "latest")
    assert parse_reference(str(parsed)) == parsed
    assert parse_reference(parsed.pinned).name == parsed.name
