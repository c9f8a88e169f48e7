"""RSA signing for io.jwt.encode_sign (policy/_rsa_signing.py): the JWK read as jwx reads it
(its primes required), the CRT values computed rather than trusted, keys that cannot sign
refused with a message. The tokens are compared with a real OPA's in
test_builtins_against_opa.py."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sbomgate.policy._regorus import RegoEngine, analyse_module
from sbomgate.policy._rsa_signing import RsaSigningError, sign_rsa

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MESSAGE = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0"


def _b64(number: int, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big"))
    return text.decode() if pad else text.decode().rstrip("=")


def _jwk(key: rsa.RSAPrivateKey = KEY, **changes: object) -> str:
    numbers = key.private_numbers()
    fields: dict[str, object] = {
        "kty": "RSA",
        "n": _b64(numbers.public_numbers.n),
        "e": _b64(numbers.public_numbers.e),
        "d": _b64(numbers.d),
        "p": _b64(numbers.p),
        "q": _b64(numbers.q),
        "dp": _b64(numbers.dmp1),
        "dq": _b64(numbers.dmq1),
        "qi": _b64(numbers.iqmp),
    }
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not None})


@pytest.mark.parametrize(("alg", "digest"), [("RS256", hashes.SHA256), ("RS512", hashes.SHA512)])
def test_pkcs1v15_is_openssls_signature(alg: str, digest: type[hashes.HashAlgorithm]) -> None:
    assert sign_rsa(alg, _jwk(), MESSAGE) == KEY.sign(MESSAGE, padding.PKCS1v15(), digest())


def test_pss_verifies_with_a_salt_as_long_as_the_hash() -> None:
    signature = sign_rsa("PS384", _jwk(), MESSAGE)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    KEY.public_key().verify(signature, MESSAGE, pss, hashes.SHA384())


def test_padding_is_optional() -> None:
    padded = _jwk(d=_b64(KEY.private_numbers().d, pad=True))
    assert sign_rsa("RS256", padded, MESSAGE) == sign_rsa("RS256", _jwk(), MESSAGE)


def test_wrong_crt_values_are_not_used() -> None:
    """A wrong dp would make an OpenSSL signature reveal a prime (the Bellcore attack): the
    values are computed from p, q and d, so the signature is the right one."""
    signature = sign_rsa("RS256", _jwk(dp=_b64(12345)), MESSAGE)
    KEY.public_key().verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("alg", "jwk", "message"),
    [
        ("HS256", _jwk(), "not an RSA signature algorithm"),
        ("RS256", _jwk(d=None), "needs n, e, d, p and q"),
        ("RS256", _jwk(p=None), "needs n, e, d, p and q"),
        ("RS256", _jwk(d="*"), "d is not base64url"),
        ("RS256", _jwk(n=7), "n must be a base64url string"),
        ("RS256", "[1]", "not an object"),
        ("RS256", "{", "failed to parse a JWK key"),
        ("RS256", _jwk(q=_b64(17)), "invalid RSA private key"),
        (
            "RS256",
            _jwk(
                rsa.generate_private_key(public_exponent=65537, key_size=1024), n=_b64(2**600 + 1)
            ),
            "601 bits",
        ),
    ],
)
def test_keys_that_cannot_sign_are_refused(alg: str, jwk: str, message: str) -> None:
    with pytest.raises(RsaSigningError, match=message):
        sign_rsa(alg, jwk, MESSAGE)


def test_the_engine_signs_through_it() -> None:
    """regorus' encode_sign hands an RSA key to this signer: the token's signature verifies."""
    jwk = json.loads(_jwk())
    source = (
        "package t\n\n"
        f'token := io.jwt.encode_sign({{"alg": "RS256"}}, {{"iss": "x"}}, {json.dumps(jwk)})\n'
        f'unsigned := io.jwt.encode_sign({{"alg": "RS256"}}, {{"iss": "x"}}, '
        f"{json.dumps({**jwk, 'd': '*'})})\n"
    )
    engine = RegoEngine([analyse_module("t.rego", source)], {})
    token = engine.eval_rule("data.t.token")
    assert isinstance(token, str)
    head, body, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    KEY.public_key().verify(raw, f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        KEY.public_key().verify(raw, b"other", padding.PKCS1v15(), hashes.SHA256())
    assert engine.eval_rule("data.t.unsigned") is None  # the signer's error: undefined
