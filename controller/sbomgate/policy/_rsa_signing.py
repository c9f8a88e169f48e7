"""RSA signatures for `io.jwt.encode_sign` and `encode_sign_raw` (RS256/384/512, PS256/384/512).

regorus signs every other key type itself, but its rsa crate's private-key operations are not
constant time (RUSTSEC-2023-0071, the Marvin attack), so sbomgate's regorus build asks the
function given to `regorus.set_rsa_signer` instead: this one, over OpenSSL (`cryptography`).

It reads the JWK as OPA's jwx does: `n`, `e`, `d`, `p` and `q` in base64url, with or without
padding (a key without its primes does not sign in OPA either); the CRT values are computed
from the primes rather than trusted (a wrong `dp` would make OpenSSL's signature leak a prime).
PSS salts are as long as the hash (RFC 7518 section 3.5, and jwx). Keys of 1,024 to 16,384
bits, as the verifying side reads them.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sbomgate.errors import EvaluationError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_MIN_BITS, _MAX_BITS = 1024, 16384


class RsaSigningError(EvaluationError):
    """The key or the algorithm cannot sign: the builtin call's error (undefined when not
    strict, as OPA's default mode reads a builtin's error)."""


def sign_rsa(alg: str, jwk_json: str, signing_input: bytes) -> bytes:
    """The JWS signature of `signing_input` by the RSA JWK `jwk_json` with `alg`."""
    if len(alg) != 5 or alg[:2] not in ("RS", "PS") or alg[2:] not in _HASHES:
        raise RsaSigningError(f"{alg} is not an RSA signature algorithm")
    key = _private_key(jwk_json)
    algorithm = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        return key.sign(signing_input, padding.PKCS1v15(), algorithm)
    pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
    return key.sign(signing_input, pss, algorithm)


@lru_cache(maxsize=32)
def _private_key(jwk_json: str) -> rsa.RSAPrivateKey:
    """The JWK's private key (loading one checks it, a few milliseconds: remembered)."""
    try:
        jwk = orjson.loads(jwk_json)
    except orjson.JSONDecodeError as exc:
        raise RsaSigningError(f"failed to parse a JWK key: {exc}") from None
    if not isinstance(jwk, dict):
        raise RsaSigningError("failed to parse a JWK key: not an object")
    n, e, d, p, q = (_integer(jwk, name) for name in ("n", "e", "d", "p", "q"))
    if n is None or e is None or d is None or p is None or q is None:
        raise RsaSigningError(
            "failed to parse a JWK key: an RSA private key needs n, e, d, p and q"
        )
    if not _MIN_BITS <= n.bit_length() <= _MAX_BITS:
        raise RsaSigningError(
            f"failed to parse a JWK key: an RSA key of {n.bit_length()} bits "
            f"(from {_MIN_BITS} to {_MAX_BITS} are read)"
        )
    try:
        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=rsa.rsa_crt_dmp1(d, p),
            dmq1=rsa.rsa_crt_dmq1(d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(e=e, n=n),
        )
        return numbers.private_key()
    except (ValueError, ZeroDivisionError) as exc:
        raise RsaSigningError(
            f"failed to parse a JWK key: invalid RSA private key ({exc})"
        ) from None


def _integer(jwk: dict[str, Any], name: str) -> int | None:
    """A JWK field's big-endian unsigned integer (base64url, padding optional); None if absent."""
    text = jwk.get(name)
    if text is None:
        return None
    if not isinstance(text, str) or not text:
        raise RsaSigningError(f"failed to parse a JWK key: {name} must be a base64url string")
    try:
        raw = base64.b64decode(
            text.rstrip("=").translate(_URL_TO_STANDARD) + "=" * (-len(text.rstrip("=")) % 4),
            validate=True,
        )
    except binascii.Error:
        raise RsaSigningError(f"failed to parse a JWK key: {name} is not base64url") from None
    return int.from_bytes(raw, "big")


_URL_TO_STANDARD = str.maketrans("-_", "+/")
