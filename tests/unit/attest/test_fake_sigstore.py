"""The fake Sigstore instance against the unmodified sigstore-python verifier (offline)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sigstore.errors import CertValidationError, VerificationError
from sigstore.models import Bundle, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

from support.fake_sigstore import PAYLOAD_TYPE, FakeSigstore

IDENTITY = "https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
STATEMENT: dict[str, Any] = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "registry.example/acme/web", "digest": {"sha256": "ab" * 32}}],
    "predicateType": "https://cyclonedx.org/bom",
    "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []},
}


@pytest.fixture(scope="module")
def fake() -> FakeSigstore:
    return FakeSigstore()


@pytest.fixture(scope="module")
def verifier(fake: FakeSigstore, tmp_path_factory: pytest.TempPathFactory) -> Verifier:
    path = fake.write_trusted_root(tmp_path_factory.mktemp("root") / "trusted_root.json")
    return Verifier(trusted_root=TrustedRoot.from_file(str(path)))


def _verify(
    verifier: Verifier, bundle: str, identity: str = IDENTITY, issuer: str = ISSUER
) -> tuple[str, bytes]:
    return verifier.verify_dsse(
        Bundle.from_json(bundle), Identity(identity=identity, issuer=issuer)
    )


def test_good_bundle_verifies_and_returns_exact_payload(
    fake: FakeSigstore, verifier: Verifier
) -> None:
    payload = json.dumps(STATEMENT, indent=1).encode()
    bundle = fake.sign_statement(payload, identity=IDENTITY, issuer=ISSUER)
    assert _verify(verifier, bundle) == (PAYLOAD_TYPE, payload)
    # A dict statement is encoded compactly.
    bundle = fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER)
    _, got = _verify(verifier, bundle)
    assert got == json.dumps(STATEMENT, separators=(",", ":")).encode()


def test_email_identity_and_fixed_clock(tmp_path: Path) -> None:
    fake = FakeSigstore(now=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    root = TrustedRoot.from_file(str(fake.write_trusted_root(tmp_path / "root.json")))
    bundle = fake.sign_statement(
        STATEMENT, identity="dev@acme.example", issuer="https://accounts.google.com"
    )
    _verify(Verifier(trusted_root=root), bundle, "dev@acme.example", "https://accounts.google.com")


def test_wrong_identity_rejected(fake: FakeSigstore, verifier: Verifier) -> None:
    bundle = fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER)
    other = "https://github.com/evil/web/.github/workflows/build.yml@refs/heads/main"
    with pytest.raises(VerificationError, match="SANs do not match"):
        _verify(verifier, bundle, identity=other)


def test_wrong_issuer_rejected(fake: FakeSigstore, verifier: Verifier) -> None:
    bundle = fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER)
    with pytest.raises(VerificationError, match="OIDCIssuer does not match"):
        _verify(verifier, bundle, issuer="https://accounts.google.com")


def test_tampered_payload_rejected(fake: FakeSigstore, verifier: Verifier) -> None:
    doc = json.loads(fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER))
    evil = {**STATEMENT, "predicate": {"bomFormat": "CycloneDX", "components": ["x"]}}
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(evil).encode()).decode()
    with pytest.raises(VerificationError, match="DSSE: invalid signature"):
        _verify(verifier, json.dumps(doc))


def test_other_instance_rejected(verifier: Verifier) -> None:
    bundle = FakeSigstore().sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER)
    with pytest.raises(CertValidationError, match="failed to build timestamp certificate chain"):
        _verify(verifier, bundle)


@pytest.mark.parametrize("offset", [timedelta(minutes=-1), timedelta(minutes=11)])
def test_integrated_time_outside_cert_validity_rejected(
    fake: FakeSigstore, verifier: Verifier, offset: timedelta
) -> None:
    bundle = fake.sign_statement(
        STATEMENT, identity=IDENTITY, issuer=ISSUER, integrated_time=fake.now + offset
    )
    with pytest.raises(CertValidationError, match="cert is not valid at validation time"):
        _verify(verifier, bundle)


def test_missing_tlog_entry_rejected_when_parsing(fake: FakeSigstore) -> None:
    bundle = fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER, include_tlog=False)
    with pytest.raises(InvalidBundle, match="expected exactly one log entry"):
        Bundle.from_json(bundle)


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("rootHash", "inclusion proof contains invalid root hash"),
        ("hashes", "inclusion proof contains invalid root hash"),
        ("signedEntryTimestamp", "SET: invalid inclusion promise"),
        ("integratedTime", "SET: invalid inclusion promise"),
        ("checkpoint", "checkpoint: invalid signature"),
    ],
)
def test_tampered_log_entry_rejected(
    fake: FakeSigstore, verifier: Verifier, field: str, message: str
) -> None:
    """The fake's log material is really checked, not waved through."""
    doc = json.loads(fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER))
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    proof = entry["inclusionProof"]
    if field == "rootHash":
        proof["rootHash"] = _flip(proof["rootHash"])
    elif field == "hashes":
        proof["hashes"][0] = _flip(proof["hashes"][0])
    elif field == "signedEntryTimestamp":
        entry["inclusionPromise"]["signedEntryTimestamp"] = _flip(
            entry["inclusionPromise"]["signedEntryTimestamp"]
        )
    elif field == "integratedTime":
        entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    else:
        proof["checkpoint"]["envelope"] = proof["checkpoint"]["envelope"].replace(
            " - 42\n", " - 43\n"
        )
    with pytest.raises(VerificationError, match=message):
        _verify(verifier, json.dumps(doc))


@pytest.mark.parametrize(
    ("section", "message"),
    [("ctlogs", "failed to verify SCT"), ("tlogs", "invalid log entry: checkpoint")],
)
def test_foreign_log_key_in_trusted_root_rejected(
    fake: FakeSigstore, tmp_path: Path, section: str, message: str
) -> None:
    """The SCT is checked against `ctlogs`, the checkpoint and SET against `tlogs`."""
    root = json.loads(fake.trusted_root_json())
    root[section] = json.loads(FakeSigstore().trusted_root_json())[section]
    path = tmp_path / "root.json"
    path.write_text(json.dumps(root))
    bundle = fake.sign_statement(STATEMENT, identity=IDENTITY, issuer=ISSUER)
    with pytest.raises(VerificationError, match=message):
        _verify(Verifier(trusted_root=TrustedRoot.from_file(str(path))), bundle)
