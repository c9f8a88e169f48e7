"""Public keys of key-based authorities (what `cosign attest --key` signs with)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from sbomgate.errors import InputError

_ECDSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


class KeyMaterialError(InputError):
    """The key material (a trust policy's) cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """ECDSA (P-256/384/521), Ed25519 or RSA (>= 2048 bits) public key."""

    key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
    key_id: str  # sha256 of the DER SubjectPublicKeyInfo, hex (matches cosign/Sigstore hints)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # `cryptography`'s key objects do not pickle; their PEM does (`serve` sends its trust
        # policies to the process that checks images: serving/coldpath.py).
        pem = self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return (load_public_key, (pem,))

    @property
    def kind(self) -> str:
        """The algorithm, with the curve or size (`ecdsa-secp256r1`, `ed25519`, `rsa-4096`)."""
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return f"ecdsa-{self.key.curve.name}"
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            return "ed25519"
        return f"rsa-{self.key.key_size}"

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is a valid signature of `data` by this key."""
        key = self.key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                algorithm = _ECDSA_HASHES[key.curve.name]()
                key.verify(signature, data, ec.ECDSA(algorithm))
            elif isinstance(key, ed25519.Ed25519PublicKey):
                try:
                    key.verify(signature, data)
                except InvalidSignature:
                    return _verify_ed25519ph(key, signature, data)
            else:
                try:
                    key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:
                    key.verify(
                        signature,
                        data,
                        # Signers differ on the salt length (32, or the maximum): accept any.
                        padding.PSS(
                            mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO
                        ),
                        hashes.SHA256(),
                    )
        except (InvalidSignature, ValueError):
            return False
        return True


def _verify_ed25519ph(key: ed25519.Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Ed25519ph (SHA-512 prehash), cosign's default for Ed25519 keys."""
    from Crypto.Hash import SHA512
    from Crypto.Signature import eddsa

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    verifier = eddsa.new(eddsa.import_public_key(raw), "rfc8032")
    try:
        verifier.verify(SHA512.new(data), signature)
    except ValueError:
        return False
    return True


def load_public_key(pem: bytes) -> PublicKey:
    """A PEM public key (SubjectPublicKeyInfo); KeyMaterialError says why it is not one."""
    if b"PRIVATE KEY" in pem:
        raise KeyMaterialError("this is a private key: give the public key (cosign.pub)")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyMaterialError(f"not a PEM public key ({exc})") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _ECDSA_HASHES:
            raise KeyMaterialError(f"unsupported elliptic curve {key.curve.name}")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise KeyMaterialError(f"RSA key of {key.key_size} bits is too small (2048 at least)")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyMaterialError(f"unsupported key type {type(key).__name__}")
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicKey(key, hashlib.sha256(der).hexdigest())
