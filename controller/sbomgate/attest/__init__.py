"""Attestation verification: trust policies, DSSE/in-toto, key-based and keyless signatures."""

from sbomgate.attest.envelope import parse_statement
from sbomgate.attest.keyless import KeylessVerifier
from sbomgate.attest.trust import (
    AttestationRequirement,
    Authority,
    KeylessIdentity,
    TrustPolicy,
    load_trust_policies,
    parse_trust_policy,
)
from sbomgate.attest.verifier import (
    AttestationCheck,
    AttestationVerifier,
    ImageVerification,
    VerifiedDocument,
)

__all__ = [
    "AttestationCheck",
    "AttestationRequirement",
    "AttestationVerifier",
    "Authority",
    "ImageVerification",
    "KeylessIdentity",
    "KeylessVerifier",
    "TrustPolicy",
    "VerifiedDocument",
    "load_trust_policies",
    "parse_statement",
    "parse_trust_policy",
]
