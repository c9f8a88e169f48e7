"""OCI/Docker manifests and indexes: what is kept, and what is refused."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.registry.oci import (
    ACCEPT_MANIFESTS,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    ImageManifest,
    ManifestFormatError,
    Platform,
    parse_descriptor,
    parse_manifest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha512:" + "3" * 128
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


def desc(digest: Any = D1, media_type: Any = LAYER, size: Any = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def oci_manifest(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(D1, CONFIG, 100),
        "layers": [desc(D2, LAYER, 2000)],
        **extra,
    }


def oci_index(manifests: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests, **extra}


def parse(doc: Any, content_type: str | None = None, **kwargs: Any) -> Any:
    return parse_manifest(orjson.dumps(doc), content_type, **kwargs)


def test_oci_image_manifest() -> None:
    manifest = parse(oci_manifest(annotations={"org.opencontainers.image.created": "now"}))
    assert manifest == ImageManifest(
        media_type=OCI_MANIFEST,
        config=Descriptor(CONFIG, D1, 100),
        layers=(Descriptor(LAYER, D2, 2000),),
        annotations={"org.opencontainers.image.created": "now"},
    )
    assert manifest.effective_artifact_type == CONFIG


def test_artifact_manifest_with_subject_and_artifact_type() -> None:
    doc = oci_manifest(
        artifactType="application/vnd.dsse.envelope.v1+json",
        config=desc("sha256:" + "4" * 64, OCI_EMPTY, 2),
        subject=desc(D3, OCI_INDEX, 512),
    )
    manifest = parse(doc)
    assert isinstance(manifest, ImageManifest)
    assert manifest.artifact_type == "application/vnd.dsse.envelope.v1+json"
    assert manifest.effective_artifact_type == "application/vnd.dsse.envelope.v1+json"
    assert manifest.subject == Descriptor(OCI_INDEX, D3, 512)


def test_manifest_without_layers_is_an_empty_tuple() -> None:
    doc = oci_manifest()
    del doc["layers"]
    assert parse(doc).layers == ()


def test_oci_index_with_platforms_and_annotations() -> None:
    doc = oci_index(
        [
            desc(D1, OCI_MANIFEST, 500, platform={"os": "linux", "architecture": "amd64"}),
            desc(
                D2,
                OCI_MANIFEST,
                501,
                platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
                annotations={"vnd.docker.reference.type": "attestation-manifest"},
                artifactType="application/vnd.example",
            ),
        ],
        annotations={"a": "b"},
    )
    index = parse(doc)
    assert isinstance(index, ImageIndex)
    assert index.media_type == OCI_INDEX
    assert index.annotations == {"a": "b"}
    assert index.subject is None
    first, second = index.manifests
    assert first.platform == Platform("linux", "amd64")
    assert str(first.platform) == "linux/amd64"
    assert second.platform == Platform("linux", "arm64", "v8")
    assert str(second.platform) == "linux/arm64/v8"
    assert second.annotations == {"vnd.docker.reference.type": "attestation-manifest"}
    assert second.artifact_type == "application/vnd.example"


def test_docker_v2_manifest_and_list() -> None:
    manifest = parse(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": desc(D1, "application/vnd.docker.container.image.v1+json", 7),
            "layers": [desc(D2, "application/vnd.docker.image.rootfs.diff.tar.gzip", 9)],
        }
    )
    assert isinstance(manifest, ImageManifest)
    assert manifest.media_type == DOCKER_MANIFEST
    listing = parse(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                desc(D1, DOCKER_MANIFEST, 5, platform={"os": "linux", "architecture": "s390x"})
            ],
        }
    )
    assert isinstance(listing, ImageIndex)
    assert listing.media_type == DOCKER_LIST
    assert listing.manifests[0].platform == Platform("linux", "s390x")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (OCI_INDEX, OCI_INDEX),
        (DOCKER_LIST, DOCKER_LIST),
        (f"{DOCKER_LIST}; charset=utf-8", DOCKER_LIST),
        (None, OCI_INDEX),  # no header: "manifests" says it is an index
        ("application/json", OCI_INDEX),
    ],
)
def test_index_media_type_from_content_type(content_type: str | None, expected: str) -> None:
    doc = oci_index([desc(D1, OCI_MANIFEST)])
    del doc["mediaType"]
    index = parse(doc, content_type)
    assert isinstance(index, ImageIndex)
    assert index.media_type == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (DOCKER_MANIFEST, DOCKER_MANIFEST),
        (f"  {OCI_MANIFEST} ;q=1", OCI_MANIFEST),
        (None, OCI_MANIFEST),
        ("text/plain", OCI_MANIFEST),
    ],
)
def test_manifest_media_type_from_content_type(content_type: str | None, expected: str) -> None:
    doc = oci_manifest()
    del doc["mediaType"]
    manifest = parse(doc, content_type)
    assert isinstance(manifest, ImageManifest)
    assert manifest.media_type == expected


def test_media_type_in_the_document_wins_over_the_header() -> None:
    assert parse(oci_manifest(), OCI_INDEX).media_type == OCI_MANIFEST


def test_max_entries() -> None:
    doc = oci_index([desc(D1, OCI_MANIFEST)] * 3)
    assert len(parse(doc, max_entries=3).manifests) == 3
    with pytest.raises(ManifestFormatError, match="manifests lists 3 entries, over the limit of 2"):
        parse(doc, max_entries=2)
    layers = oci_manifest(layers=[desc()] * 5)
    with pytest.raises(ManifestFormatError, match="layers lists 5 entries, over the limit of 4"):
        parse(layers, max_entries=4)


def test_accept_header_lists_all_four_types() -> None:
    assert set(ACCEPT_MANIFESTS.split(", ")) == {
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_LIST,
        DOCKER_MANIFEST,
    }


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schemaVersion": 1, "name": "x", "fsLayers": []}, "schemaVersion is not 2"),
        ({"mediaType": OCI_MANIFEST}, "schemaVersion is not 2"),
        (oci_manifest(schemaVersion="2"), "schemaVersion is not 2"),
        (oci_manifest(schemaVersion=2.0), "schemaVersion is not 2"),
        (oci_manifest(mediaType=5), "mediaType must be a string"),
        (
            oci_manifest(mediaType="application/vnd.oci.artifact.manifest.v1+json"),
            "unsupported manifest media type",
        ),
        (oci_manifest(config=None), "config must be an object"),
        (
            oci_manifest(config=desc(digest="sha256:abc")),
            "config.digest is missing or not a sha256/sha512 digest",
        ),
        (oci_manifest(config=desc(digest="sha256:" + "A" * 64)), "config.digest"),
        (oci_manifest(config=desc(digest="md5:" + "a" * 32)), "config.digest"),
        (oci_manifest(config=desc(size=-1)), "config.size must be a non-negative integer"),
        (oci_manifest(config=desc(size=1.5)), "config.size must be a non-negative integer"),
        (oci_manifest(config=desc(size=True)), "config.size must be a non-negative integer"),
        (oci_manifest(config=desc(size="10")), "config.size must be a non-negative integer"),
        (oci_manifest(config=desc(media_type="")), "config.mediaType is missing"),
        (oci_manifest(layers={}), "layers must be a list"),
        (oci_manifest(layers=[desc(), "x"]), "layers[1] must be an object"),
        (
            oci_manifest(layers=[desc(annotations={"a": 1})]),
            "layers[0]: annotations must map strings to strings",
        ),
        (
            oci_manifest(layers=[desc(annotations=["a"])]),
            "layers[0]: annotations must map strings to strings",
        ),
        (
            oci_manifest(annotations={"a": None}),
            "manifest: annotations must map strings to strings",
        ),
        (oci_manifest(artifactType=7), "manifest.artifactType must be a string"),
        (oci_manifest(subject="sha256:" + "1" * 64), "subject must be an object"),
        (oci_manifest(subject={}), "subject.mediaType is missing"),
        (oci_manifest(subject=desc(size=-5)), "subject.size must be a non-negative integer"),
        (oci_index(None), "manifests must be a list"),  # type: ignore[arg-type]
        (oci_index([desc(platform="linux/amd64")]), "manifests[0].platform must be an object"),
        (
            oci_index([desc(platform={"os": "linux"})]),
            "manifests[0].platform needs os and architecture",
        ),
        (
            oci_index(
                [desc(), desc(platform={"os": "linux", "architecture": "arm", "variant": 7})]
            ),
            "manifests[1].platform.variant must be a string",
        ),
        (oci_index([desc(artifactType=["x"])]), "manifests[0].artifactType must be a string"),
    ],
)
def test_refusals_name_the_field(doc: Any, message: str) -> None:
    with pytest.raises(ManifestFormatError) as caught:
        parse(doc)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b"null", "not a JSON object"),
    ],
)
def test_not_a_json_object(data: bytes, message: str) -> None:
    with pytest.raises(ManifestFormatError, match=message):
        parse_manifest(data, OCI_MANIFEST)


def test_parse_descriptor_directly() -> None:
    assert parse_descriptor(desc(D3, size=0), "x") == Descriptor(LAYER, D3, 0)
    with pytest.raises(ManifestFormatError, match=r"^where\.digest"):
        parse_descriptor(desc(digest=None), "where")


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([2, 1, "2"]) | _json,
        "mediaType": st.sampled_from([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
        | _json,
        "config": st.just(desc(D1, CONFIG)) | _json,
        "layers": st.lists(st.just(desc()) | _json, max_size=3) | _json,
        "manifests": st.lists(
            st.just(desc(platform={"os": "l", "architecture": "a"})) | _json, max_size=3
        )
        | _json,
        "subject": st.just(desc()) | _json,
        "annotations": st.dictionaries(st.text(max_size=4), st.text(max_size=4) | _json, max_size=2)
        | _json,
        "artifactType": st.text(max_size=8) | _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(_fields, st.sampled_from([None, OCI_INDEX, OCI_MANIFEST, "text/plain"]))
def test_arbitrary_documents_raise_only_manifest_format_error(
    doc: dict[str, Any], content_type: str | None
) -> None:
    try:
        manifest = parse(doc, content_type)
    except ManifestFormatError:
        return
    assert isinstance(manifest, ImageManifest | ImageIndex)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_manifest_format_error(data: bytes) -> None:
    with contextlib.suppress(ManifestFormatError):
        parse_manifest(data, None)
