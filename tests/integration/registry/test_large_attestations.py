"""Large SPDX attestations: the in-toto statement around syft's SPDX is streamed (only what
sbomgate reads of the SPDX document is built, sbomgate.attest.envelope), and reads exactly as
the same statement parsed whole.

The SPDX is syft's own, of the Debian root filesystem (tests/support/real_sboms.py), attested
by the real cosign in both layouts; the stream threshold is lowered so that this 3.5 MB
document takes the path a 70 MB one takes (the 74.6 MB SPDX of a whole Debian machine was
measured through the same path: see the closing note of issue 14)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sbomgate.attest import envelope
from sbomgate.imagecheck import ImageResult
from sbomgate.sbom import Sbom
from support.oci_builder import CosignKey, cosign_attest, cosign_keypair, push_image
from support.real_sboms import DEBIAN, Output, real_sbom
from support.registry_servers import RegistryServer
from support.trust import check, errors, trust_file

SYFT_SPDX = Output("syft", DEBIAN.name, "spdx-json", "spdx-json")


@pytest.fixture(scope="module")
def spdx_key(work: Path) -> CosignKey:
    return cosign_keypair(work / "keys", "ecdsa")


def _packages(sbom: Sbom) -> list[object]:
    return sorted((replace(c, bom_ref=None) for c in sbom.components), key=repr)


def _read(result: ImageResult) -> Sbom:
    assert result.report.ok, errors(result)
    [checked] = result.sboms
    return checked.sbom


@pytest.mark.parametrize("bundle", [True, False], ids=["bundle", "legacy-att"])
def test_a_streamed_statement_reads_as_parsed_whole(
    plain_registry: RegistryServer,
    spdx_key: CosignKey,
    work: Path,
    bundle: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = push_image(plain_registry, "large/spdx", "bundle" if bundle else "legacy")
    cosign_attest(
        plain_registry,
        image.digest_ref,
        real_sbom(SYFT_SPDX),
        "spdxjson",
        spdx_key,
        new_bundle_format=bundle,
        workdir=work / "cosign",
    )
    trust = trust_file(
        work, keys=[spdx_key], attestations=[{"name": "sbom", "predicateTypes": ["spdxjson"]}]
    )
    whole = _read(check(plain_registry, trust, image.ref))
    streamed_payloads: list[int] = []
    real_stream = envelope._stream_statement

    def counted(payload: bytes) -> object:
        doc = real_stream(payload)
        assert doc is not None, "cosign's statement was not streamed"
        streamed_payloads.append(len(payload))
        return doc

    monkeypatch.setattr(envelope, "STREAM_FROM_BYTES", 0)
    monkeypatch.setattr(envelope, "_stream_statement", counted)
    streamed = _read(check(plain_registry, trust, image.ref))
    assert streamed_payloads, "the statement was not streamed"
    assert len(streamed.components) == 88  # the debs; syft's files are not built at all
    assert _packages(streamed) == _packages(whole)
    assert streamed.subject == whole.subject


def test_a_statement_whose_predicate_comes_first_is_parsed_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Streaming needs the predicate type before the predicate; without it the statement is
    read whole, within its limits (never guessed to be SPDX)."""
    monkeypatch.setattr(envelope, "STREAM_FROM_BYTES", 0)
    payload = (
        b'{"predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []},'
        b' "_type": "https://in-toto.io/Statement/v1", "predicateType": "https://cyclonedx.org/bom",'
        b' "subject": [{"name": "x", "digest": {"sha256": "' + b"a" * 64 + b'"}}]}'
    )
    statement = envelope.parse_statement(payload)
    assert statement.predicate == {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}


def test_a_predicate_embedded_as_text_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cosign attest --type spdx` embeds the SBOM as a JSON string: streamed, it is kept as
    that string (the SBOM parser reads it), never dropped."""
    monkeypatch.setattr(envelope, "STREAM_FROM_BYTES", 0)
    text = "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n"
    payload = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "x", "digest": {"sha256": "a" * 64}}],
            "predicate": text,
        }
    ).encode()
    statement = envelope.parse_statement(payload)
    assert statement.predicate == text and statement.binds("sha256:" + "a" * 64)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"_type": "x", "predicateType": "https://spdx.dev/Document", "predicate": {',
            "not JSON",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": '
            b'"https://spdx.dev/Document", "predicate": {"packages": 5}}',
            "no subject",
        ),
    ],
)
def test_broken_streamed_statements_are_format_errors(
    payload: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(envelope, "STREAM_FROM_BYTES", 0)
    with pytest.raises(envelope.FormatError, match=message):
        envelope.parse_statement(payload)
