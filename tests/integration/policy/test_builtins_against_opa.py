"""The builtins sbomgate's regorus patch adds or mends (digests, HMAC, JWT, uri.parse,
strings.replace_n, uuid.parse, units.*, json/yaml.is_valid, yaml.unmarshal of YAML streams,
numbers without an integer part (`.5`), sprintf's %f and %e, numbers.range_step, glob.match's
empty alternatives, walk without its output parameter, json.match_schema's and
json.verify_schema's answers), against a real `opa eval`.

Each expression is a rule of one module, evaluated by sbomgate's engine (OPA's default mode: a
builtin's error makes the call undefined) and by OPA in one run: the same value, or undefined in
both. The tokens and keys are made here (by `cryptography`: RSA PKCS#1 v1.5 and PSS with three
salt lengths, ECDSA on P-256/384/521, Ed25519, HMAC), and the keys given as PEM public keys,
certificates, JWKs and JWK sets, so that padding, nesting, broken parts, wrong keys and key
choice by `kid` and `alg` are the ones chosen, not a sample's.

RSA keys are signed over OpenSSL (policy/_rsa_signing.py), not by regorus' rsa crate, whose
private-key operations are not constant time (RUSTSEC-2023-0071): PKCS#1 v1.5 tokens are the
same bytes as OPA's, PSS ones (random salts) verify in both.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sbomgate.policy._regorus import RegoEngine, analyse_module, check_calls


def _b64(data: bytes, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


def _token(
    header: Any, payload: Any, secret: bytes = b"secret", digest: str = "sha256", **kw: Any
) -> str:
    head = _b64(header if isinstance(header, bytes) else json.dumps(header).encode(), **kw)
    body = _b64(payload if isinstance(payload, bytes) else json.dumps(payload).encode(), **kw)
    signed = f"{head}.{body}".encode()
    return f"{head}.{body}.{_b64(hmac.new(secret, signed, digest).digest(), **kw)}"


HS256 = {"alg": "HS256", "typ": "JWT"}
CLAIMS = {"iss": "sbomgate", "sub": "ci", "aud": ["a", "b"], "exp": 1.5e9, "n": 7}
GOOD = _token(HS256, CLAIMS)
INNER = _token(HS256, {"nested": True})
TOKENS = {
    "good": GOOD,
    "padded": _token(HS256, {"p": "xx"}, pad=True),
    "hs384": _token({"alg": "HS384"}, CLAIMS, digest="sha384"),
    "hs512": _token({"alg": "HS512"}, CLAIMS, digest="sha512"),
    "other_key": _token(HS256, CLAIMS, secret=b"not the secret"),
    "nested": _token({"alg": "HS256", "cty": "JWT"}, json.dumps(INNER).encode()),
    "nested_bare": _token({"alg": "HS256", "cty": "JWT"}, INNER.encode()),
    "jwe": _token({"alg": "HS256", "enc": "A128GCM"}, CLAIMS),
    "array_payload": _token(HS256, [1, 2]),
    "not_json": _token(HS256, b"not json"),
    "duplicate_keys": _token(HS256, b'{"iss": "first", "iss": "last"}'),
    "unicode": _token(HS256, {"name": "Zo\u00eb \u2603"}),
    "two_parts": GOOD.rsplit(".", 1)[0],
    "four_parts": GOOD + ".x",
    "no_periods": GOOD.replace(".", ""),
    "bad_header": "ey^%." + GOOD.split(".", 1)[1],
    "bad_signature": GOOD.rsplit(".", 1)[0] + ".ab(c",
    "one_char_over": GOOD + "A",
    "empty_signature": GOOD.rsplit(".", 1)[0] + ".",
}

STRINGS = ["", "abc", "sbomgate", "Zo\u00eb \u2603", "x" * 200]
EXPRESSIONS: list[str] = []
for text in STRINGS:
    literal = json.dumps(text)
    EXPRESSIONS += [f"crypto.{name}({literal})" for name in ("md5", "sha1", "sha256")]
    EXPRESSIONS += [
        f'crypto.hmac.{name}({literal}, "key")' for name in ("md5", "sha1", "sha256", "sha512")
    ]
    EXPRESSIONS.append(f'crypto.hmac.sha256("message", {literal})')
EXPRESSIONS += [
    'crypto.hmac.equal("abc", "abc")',
    'crypto.hmac.equal("abc", "abd")',
    'crypto.hmac.equal("abc", "abcd")',
    'crypto.hmac.equal("", "")',
    "crypto.md5(input.n)",
    'crypto.hmac.sha256("m", input.nothing)',
    'crypto.hmac.equal(input.list, "a")',
    "uri.is_valid(input.n)",
    "uri.parse(input.n)",
]
for token in TOKENS.values():
    literal = json.dumps(token)
    EXPRESSIONS += [
        f"io.jwt.decode({literal})",
        f'io.jwt.verify_hs256({literal}, "secret")',
        f'io.jwt.verify_hs384({literal}, "secret")',
        f'io.jwt.verify_hs512({literal}, "secret")',
    ]
# uri.parse and uri.is_valid read a reference as Go's net/url.Parse does: every branch of it.
URIS = [
    "https://example.com:8080/api?q=1#top",
    "http://[::1]:8080/x",
    "http://[fe80::1%25en0]/",
    "http://[1.2.3.4]/",
    "http://[::1",
    "http://[::1]x/",
    "http://x[y]/",
    "http://1.2.3.4:80",
    "http://a:b@host/p",
    "http://a@b@host/",
    "http://a b@host",
    "http://a%zz@host/",
    "http://host:80:80/",
    "ftp://host:21:22/",
    "http://host:x/",
    "http://x:/",
    "http://ho st/",
    "http://h%41st/",
    "http://h%C3%A9st/",
    "http://h%25st/",
    "/a%2Fb",
    "/a b",
    "/%zz",
    "a:b/c",
    "1a:b",
    ":x",
    "mailto:x@y?subject=hi#f",
    "http://x/?",
    "http://x/a?b?c#d%20e",
    "*",
    "",
    "http://x/\u0001",
    "//host/path",
    "///path",
    "HTTP://X/Y",
    "http://x#",
    "foo#frag%",
    "foo#a%20b",
    "http://x/a%20b",
    "http://x/%41",
    "./a:b",
    "?q=1",
    "#f",
    "http://x/\u00e9",
]
# strings.replace_n: Go's strings.NewReplacer over the keys in sorted order, in one pass.
REPLACEMENTS = [
    ({"a": "b", "b": "a"}, "abba"),
    ({"ab": "b", "b": "Y"}, "baaabbbba"),
    ({"a": "Xa", "ab": "X", "ba": "bYa", "aaa": "X"}, "aaaaab"),
    ({"": "X"}, "ab"),
    ({"": "X", "a": "Y"}, "ab"),
    ({"": "-"}, ""),
    ({"\u00e9": "e", "caf": "CAF"}, "caf\u00e9 caf\u00e9"),
    ({"info": "X", "anotherinfo": "Y"}, "anotherinfo info"),
]
for patterns, text in REPLACEMENTS:
    EXPRESSIONS.append(f"strings.replace_n({json.dumps(patterns)}, {json.dumps(text)})")
# uuid.parse: the forms google/uuid reads (and the 38-character one whose ends it drops unread).
UUIDS = [
    "00000000-0000-4000-8000-000000000000",
    "{00000000-0000-4000-8000-000000000000}",
    "(00000000-0000-4000-8000-000000000000)",
    "x00000000-0000-4000-8000-000000000000x",
    "urn:uuid:000003e8-48b9-21ee-b200-325096b39f47",
    "URN:UUID:000003e8-48b9-21ee-b200-325096b39f47",
    "6bea8ef2d3d33cd184e09bab06a52ece",
    "6BEA8EF2-D3D3-3CD1-84E0-9BAB06A52ECE",
    "\u00e900000000-0000-4000-8000-00000000000",
    "00000000-0000-4000-8000-00000000000",
    "urn:uuid:6bea8ef2d3d33cd184e09bab06a52ece",
    "0000000000000000400080000000000000000000",
]
for text in UUIDS:
    EXPRESSIONS.append(f"uuid.parse({json.dumps(text)})")
for uri in URIS:
    EXPRESSIONS += [f"uri.parse({json.dumps(uri)})", f"uri.is_valid({json.dumps(uri)})"]
# units.*: exponents of up to six digits (OPA refuses longer ones), signs, units after them.
for text in ["1e3", "1e+3", "5e-1K", "10e10000000Ei", "10e1000000", "1e15K", "2.5e2Mi", "1E2"]:
    EXPRESSIONS += [
        f"units.parse({json.dumps(text)})",
        f"units.parse_bytes({json.dumps(text + 'B')})",
    ]
# json.is_valid and yaml.is_valid: false for what is not a string.
for operand in ["input.n", "input.nothing", "input.list", '"{}"', '"a: [1"']:
    EXPRESSIONS += [f"json.is_valid({operand})", f"yaml.is_valid({operand})"]
# yaml.is_valid and yaml.unmarshal on YAML streams: every document read, the first answered
# (null when there is none), an error in any one refusing the text (Kubernetes manifests are
# such streams).
for text in [
    "a: 1\n---\nb: 2\n", "a: 1\n---\n", "---\na: 1\n", "---\n---\na: 1\n", "", "---\n",
    "a: 1\n---\n\tb: 2\n", "a: 1\n---\nb: [1\n", "a: 1\n---\nb: 2\n---\nc: [\n",
    "a: 1\n...\n", "- 1\n---\n- 2\n", "kind: A\n---\nkind: B\n---\nkind: C\n",
]:  # fmt: skip
    EXPRESSIONS += [f"yaml.is_valid({json.dumps(text)})", f"yaml.unmarshal({json.dumps(text)})"]
# Numbers written without their integer part (OPA reads `.5` as 0.5) where OPA can give them.
EXPRESSIONS += ["1 - .5", "[.5 * 2, 1 + .25]", 'sprintf("%.3f", [.125])']
# sprintf's %f and %e as Go writes them: precision 6 unless given, a width with a precision
# (`%3.1f`), zeros after the sign, halves rounded to even on the exact value, float literals with
# an integer value (`0.0`, `1e2`: OPA prints them as floats). An integer computed or written as
# one is left out: OPA prints Go's complaint (`%!f(int64=1)`), sbomgate the float.
EXPRESSIONS += [
    'sprintf("%f, %3.1f, %.3f", [0.0, 100.0, .0])',
    'sprintf("%f %F %.f", [1e2, 2.5, 2.5])',
    'sprintf("%f|%.2f|%e|%E|%.2e", [0.5, 3.1415, 1.5, 1.5, 1e300])',
    'sprintf("%08.3f|%8.3f|%08.3f|%10.4e|%3.1f", [-3.14159, -3.14159, 2.5, 3.5, 99.95])',
    'sprintf("%.0f %.0f %.0f %.2f %.20f %e", [0.5, 1.5, 2.5, 0.125, 0.1, 0.000123])',
]
# numbers.range_step: a step past any 64-bit integer.
EXPRESSIONS += [
    "numbers.range_step(0, 10, 99999999999999999999)",
    "numbers.range_step(10, 0, 99999999999999999999)",
    "numbers.range_step(0, 10, 3)",
]
# glob.match: empty alternatives, with and without delimiters.
for pattern, text in [("{**/,}x", "x"), ("{**/,}x", "a/x"), ("a{,b}", "a"), ("a{,b}", "ab"),
                      ("a{b,}c", "ac"), ("{,}", ""), ("a{.b,}", "a.b")]:  # fmt: skip
    EXPRESSIONS += [
        f"glob.match({json.dumps(pattern)}, null, {json.dumps(text)})",
        f'glob.match({json.dumps(pattern)}, ["."], {json.dumps(text)})',
    ]
# walk without its output parameter: each pair bound by the statement, as walk(x, out).
WALKED = '{"a": [{"b": [{"c": [{"aa": "AA"}, {"bb": "BB"}, {"dd": "DDD"}]}]}], "z": 1}'
EXPRESSIONS += [
    f"sort([p | [p, v] := walk({WALKED}); count(v) == 2])",
    f"sort([v | [_, v] = walk({WALKED}); is_string(v)])",
    f"count([1 | walk({WALKED})])",
    f"sort([p | pair := walk({WALKED}); p := pair[0]; is_number(pair[1])])",
    f'sort([p | walk({WALKED}, [p, "BB"])])',
    "sort([v | [_, v] := walk(input.list)])",
]
EXPRESSIONS += [
    "io.jwt.decode(input.n)",
    f"io.jwt.verify_hs256({json.dumps(GOOD)}, input.n)",
    f'[p | [_, p, _] := io.jwt.decode({json.dumps(GOOD)})][0].iss == "sbomgate"',
]

# Numbers f64 cannot hold as written (beyond its range, below its smallest, more digits than it
# tells apart): compared, printed and read from JSON by the values they denote, as OPA holds
# them; an integer past 64 bits is a Python int, as OPA's JSON has it.
EXPRESSIONS += [
    "[1e400 > 1e399, 1e-400 > 0, -1e-400 < 0, 1e400 == 10e399, 0.10 == 0.1, 1e400 + 1 > 1e400]",
    "[0.1234567890123456789 > 0.1234567890123456788, 123456789012345678901234567890 < 1e30]",
    "count({0.1234567890123456789, 0.1234567890123456788, 0.12345678901234568, 35e-1, 3.5})",
    "array.slice(sort([3, 1e-400, 2, 1e300, 0.5]), 2, 5)",
    'sprintf("%v %v %v %v", [2e308, 1e-400, 0.1234567890123456789, 1e3])',
    "[1234567890123456789012, -1234567890123456789012 * 2, 1e400 / 1e399]",
    'json.unmarshal(`{"a": 1e400, "b": [1e-400]}`).a > 1',
    'json.unmarshal(`{"a": [1e40000]}`)',
    'json.unmarshal(`{"a": 1e2147483648}`)',
    "{1e400: 1}[1e400]",
]
# OPA's operators called by their builtin names.
EXPRESSIONS += [
    '[lt(1, 2), gt(1, 2), lte(2, 2), gte(1, 2), equal(1, 1.0), neq(1, 2), lt("a", 1)]',
    "[plus(1, 2), minus(3, 2.5), sort(minus({1, 2}, {1})), mul(2, 3), div(7, 2), rem(7, 3)]",
    "[sort(and({1, 2}, {1})), sort(or({1}, {2}))]",
    "div(1, 0)",
    "[x | x := [1, 2, 3][_]; lt(x, 3)]",
]

# json.match_schema: each kind of failure as OPA writes gojsonschema's ({error, type, field,
# desc}), nested fields, drafts; json.verify_schema's answers. Documents other than objects,
# and the schemas, go in as JSON text (OPA's type checker refuses some literals). The failures
# inside an anyOf or contains (gojsonschema adds the closest branch's), and the texts for a
# schema keyword's own invalid value, are not OPA's: only whether it matches is compared there.
SCHEMA_CASES: list[tuple[Any, Any]] = [
    ({"type": "object", "properties": {"id": {"type": "integer"}}}, {"id": 5}),
    ({"type": "object", "properties": {"id": {"type": "integer"}}}, {"id": "x"}),
    ({"type": "object", "properties": {"id": {"type": "integer"}}}, {"id": 1.5}),
    ({"type": ["string", "null"]}, 3),
    ({"type": "object", "required": ["name"]}, {}),
    ({"properties": {"a": {"properties": {"b": {"type": "string"}}}}}, {"a": {"b": 1}}),
    ({"enum": ["a", "b", 3]}, "c"),
    ({"const": {"x": 1}}, {"x": 2}),
    ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "z": 2}),
    ({"type": "array", "minItems": 2}, [1]),
    ({"type": "array", "maxItems": 1}, [1, 2]),
    ({"type": "string", "minLength": 3}, "ab"),
    ({"type": "string", "maxLength": 1}, "ab"),
    ({"type": "number", "minimum": 5}, 4),
    ({"type": "number", "maximum": 5.5}, 6),
    ({"type": "number", "exclusiveMinimum": 5}, 5),
    ({"type": "number", "exclusiveMaximum": 5}, 5),
    ({"type": "integer", "multipleOf": 3}, 4),
    ({"type": "string", "pattern": "^a+$"}, "b"),
    ({"type": "string", "format": "email"}, "nope"),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1),
    ({"not": {"type": "string"}}, "x"),
    ({"type": "array", "uniqueItems": True}, [1, 2, 1]),
    ({"minProperties": 2}, {"a": 1}),
    ({"maxProperties": 1}, {"a": 1, "b": 2}),
    ({"type": "array", "items": {"type": "string"}}, ["a", 1]),
    ({"properties": {"l": {"items": {"required": ["k"]}}}}, {"l": [{"k": 1}, {}]}),
    ({"type": "object", "required": ["a", "b"], "properties": {"c": {"type": "string"}}}, {"c": 1}),
    (
        {"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5,
         "exclusiveMaximum": True},
        5,
    ),
    ({"type": "object"}, '{"a": 1}'),
    ({"type": "string"}, '"text"'),
    ({"type": "unknown_type"}, {}),
]  # fmt: skip
MATCH_ONLY = [
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 1.5),
    ({"type": "array", "contains": {"type": "string"}}, [1, 2]),
]


def _schema_call(schema: Any, document: Any) -> str:
    text = document if isinstance(document, str) and document[:1] in '{["' else None
    doc = (
        json.dumps(document)
        if isinstance(document, dict)
        else json.dumps(text or json.dumps(document))
    )
    return f"json.match_schema({doc}, {json.dumps(json.dumps(schema))})"


EXPRESSIONS += [_schema_call(s, d) for s, d in SCHEMA_CASES]
EXPRESSIONS += [f"{_schema_call(s, d)}[0]" for s, d in MATCH_ONLY]
EXPRESSIONS += [f"json.verify_schema({json.dumps(json.dumps(s))})" for s, _ in SCHEMA_CASES[:6]]
EXPRESSIONS += [
    'json.verify_schema({"type": "unknown_type"})',
    'json.verify_schema({"properties": {"a": {"type": ["string", "wrong"]}}})',
    'json.verify_schema("{not json")',
    'json.verify_schema({"minLength": -1})[0]',
]

# Operands of the wrong type come from the input: OPA's type checker refuses literal ones.
INPUT = {"n": 42, "nothing": None, "list": ["a"]}

# ------------------------------------------------------------------ asymmetric keys


def _pem(public_key: Any) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _certificate(private_key: Any) -> str:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "sbomgate test")])
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    algorithm = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(7)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=3650))
        .sign(private_key, algorithm)
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _int(number: int, size: int | None = None) -> str:
    size = size or (number.bit_length() + 7) // 8
    return _b64(number.to_bytes(size, "big"))


def _jwk(public_key: Any, **fields: str) -> dict[str, str]:
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e), **fields}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        size = (public_key.curve.key_size + 7) // 8
        point = public_key.public_numbers()
        curve = {256: "P-256", 384: "P-384", 521: "P-521"}[public_key.curve.key_size]
        return {
            "kty": "EC",
            "crv": curve,
            "x": _int(point.x, size),
            "y": _int(point.y, size),
            **fields,
        }
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), **fields}


HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def _signed(alg: str, key: Any, payload: Any, salt: int | None = None, **header: Any) -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT", **header}).encode())
    body = _b64(json.dumps(payload).encode())
    signed = f"{head}.{body}".encode()
    family, bits = alg[:2], alg[2:]
    if family == "RS":
        signature = key.sign(signed, padding.PKCS1v15(), HASHES[bits])
    elif family == "PS":
        mgf = padding.MGF1(HASHES[bits])
        pss = padding.PSS(mgf, salt if salt is not None else HASHES[bits].digest_size)
        signature = key.sign(signed, pss, HASHES[bits])
    elif family == "ES":
        r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(HASHES[bits])))
        size = (key.curve.key_size + 7) // 8
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        signature = key.sign(signed)
    return f"{head}.{body}.{_b64(signature)}"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEYS = {
    bits: ec.generate_private_key(curve())
    for bits, curve in (("256", ec.SECP256R1), ("384", ec.SECP384R1), ("512", ec.SECP521R1))
}
ED_KEY = ed25519.Ed25519PrivateKey.generate()
NOW_NS = 1_700_000_000 * 10**9
CLAIMS_AT = {"iss": "sbomgate", "aud": "cluster", "nbf": 1_600_000_000, "exp": 1_800_000_000}
RSA_MAX_SALT = 256 - 32 - 2

SIGNED = {
    "RS256": _signed("RS256", RSA_KEY, CLAIMS_AT),
    "RS384": _signed("RS384", RSA_KEY, CLAIMS_AT),
    "RS512": _signed("RS512", RSA_KEY, CLAIMS_AT),
    "PS256": _signed("PS256", RSA_KEY, CLAIMS_AT),
    "PS256-max-salt": _signed("PS256", RSA_KEY, CLAIMS_AT, salt=RSA_MAX_SALT),
    "PS384-no-salt": _signed("PS384", RSA_KEY, CLAIMS_AT, salt=0),
    "PS512": _signed("PS512", RSA_KEY, CLAIMS_AT),
    "ES256": _signed("ES256", EC_KEYS["256"], CLAIMS_AT),
    "ES384": _signed("ES384", EC_KEYS["384"], CLAIMS_AT),
    "ES512": _signed("ES512", EC_KEYS["512"], CLAIMS_AT),
    "EdDSA": _signed("EdDSA", ED_KEY, CLAIMS_AT),
    "RS256-kid": _signed("RS256", RSA_KEY, CLAIMS_AT, kid="second"),
    "RS256-crit": _signed("RS256", RSA_KEY, CLAIMS_AT, crit=["exp-policy"], **{"exp-policy": 1}),
    "RS256-other-key": _signed("RS256", OTHER_RSA_KEY, CLAIMS_AT),
}
PUBLIC = {
    "rsa-pem": _pem(RSA_KEY.public_key()),
    "rsa-cert": _certificate(RSA_KEY),
    "rsa-jwk": json.dumps(_jwk(RSA_KEY.public_key())),
    "ec256-pem": _pem(EC_KEYS["256"].public_key()),
    "ec384-cert": _certificate(EC_KEYS["384"]),
    "ec512-jwk": json.dumps(_jwk(EC_KEYS["512"].public_key())),
    "ed-pem": _pem(ED_KEY.public_key()),
    "ed-cert": _certificate(ED_KEY),
    "ed-jwk": json.dumps(_jwk(ED_KEY.public_key())),
    "jwks-kid": json.dumps(
        {
            "keys": [
                _jwk(OTHER_RSA_KEY.public_key(), kid="first"),
                _jwk(RSA_KEY.public_key(), kid="second", alg="RS256"),
            ]
        }
    ),
    "jwks-alg": json.dumps(
        {
            "keys": [
                _jwk(RSA_KEY.public_key(), alg="PS256"),
                _jwk(EC_KEYS["256"].public_key(), alg="ES256"),
                _jwk(ED_KEY.public_key(), alg="EdDSA"),
            ]
        }
    ),
    "jwks-unknown-alg": json.dumps({"keys": [_jwk(RSA_KEY.public_key(), alg="RSA-OAEP")]}),
    "pem-trailing-line": _pem(RSA_KEY.public_key()) + "\n",
    "pem-one-line": _pem(RSA_KEY.public_key())
    .replace("\n", "", 2)
    .replace("-----MII", "-----\nMII"),
    "not-a-key": "not a key",
    "jwk-missing-n": json.dumps({"kty": "RSA", "e": "AQAB"}),
}
VERIFIERS = [
    "rs256",
    "rs384",
    "rs512",
    "ps256",
    "ps384",
    "ps512",
    "es256",
    "es384",
    "es512",
    "eddsa",
]
for token_name, token in SIGNED.items():
    for key_name in ("rsa-pem", "rsa-cert", "rsa-jwk", "jwks-kid", "jwks-alg"):
        verifier = token_name.split("-")[0].lower()
        EXPRESSIONS.append(
            f"io.jwt.verify_{verifier}({json.dumps(token)}, {json.dumps(PUBLIC[key_name])})"
        )
for key in PUBLIC.values():
    for verifier in VERIFIERS:
        token = next(t for n, t in SIGNED.items() if n.split("-")[0].lower() == verifier)
        EXPRESSIONS.append(f"io.jwt.verify_{verifier}({json.dumps(token)}, {json.dumps(key)})")
CONSTRAINTS: list[dict[str, Any]] = [
    {"cert": PUBLIC["rsa-pem"], "time": NOW_NS},
    {"cert": PUBLIC["rsa-cert"], "time": NOW_NS, "iss": "sbomgate", "aud": "cluster"},
    {"cert": PUBLIC["jwks-kid"], "time": NOW_NS, "alg": "RS256"},
    {"cert": PUBLIC["jwks-alg"], "time": NOW_NS},
    {"cert": PUBLIC["ec256-pem"], "time": NOW_NS, "aud": "elsewhere"},
    {"cert": PUBLIC["ed-jwk"], "time": 1_900_000_000 * 10**9},
    {"cert": PUBLIC["ec512-jwk"], "time": 1_500_000_000 * 10**9},
    {"cert": PUBLIC["ec384-cert"], "time": NOW_NS, "iss": "someone else"},
    {"cert": PUBLIC["rsa-pem"], "secret": "both"},
    {"time": NOW_NS},
    {"cert": PUBLIC["rsa-pem"], "time": NOW_NS, "colour": "blue"},
]
for token in SIGNED.values():
    for constraints in CONSTRAINTS:
        EXPRESSIONS.append(f"io.jwt.decode_verify({json.dumps(token)}, {json.dumps(constraints)})")
for token in TOKENS.values():
    EXPRESSIONS.append(f'io.jwt.decode_verify({json.dumps(token)}, {{"secret": "secret"}})')
    EXPRESSIONS.append(
        f'io.jwt.decode_verify({json.dumps(token)}, {{"secret": "secret", "time": 0}})'
    )

# ------------------------------------------------------------------------- signing
OCT = {"kty": "oct", "k": _b64(b"a secret of some length")}
PRIVATE_ED = {
    **_jwk(ED_KEY.public_key()),
    "d": _b64(
        ED_KEY.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    ),
}
PRIVATE_EC = {
    **_jwk(EC_KEYS["256"].public_key()),
    "d": _int(EC_KEYS["256"].private_numbers().private_value, 32),
}
for header, payload in [
    ({"alg": "HS256", "typ": "JWT"}, {"iss": "a<b>&c", "n": 1, "list": [1, 2], "sub": "x"}),
    ({"alg": "HS512"}, {"exp": 1300819380, "http://example.com/is_root": True}),
    ({"alg": "HS384", "typ": "text/plain"}, {}),
    ({"alg": "none"}, {}),
    ({"typ": "JWT"}, {}),
]:
    EXPRESSIONS.append(
        f"io.jwt.encode_sign({json.dumps(header)}, {json.dumps(payload)}, {json.dumps(OCT)})"
    )
EXPRESSIONS += [
    f'io.jwt.encode_sign({{"alg": "EdDSA"}}, {{"iss": "x"}}, {json.dumps(PRIVATE_ED)})',
    f'io.jwt.encode_sign({{"alg": "ES256"}}, {{"iss": "x"}}, {json.dumps(OCT)})',
    'io.jwt.encode_sign({"alg": "HS256"}, {"iss": "x"}, {"keys": []})',
    f'io.jwt.encode_sign_raw(`{{"alg":"HS256","typ":"text/plain"}}`, "not json", '
    f"{json.dumps(json.dumps(OCT))})",
    f'io.jwt.encode_sign_raw(`{{"alg":"HS256"}}`, "not json", {json.dumps(json.dumps(OCT))})',
    f'io.jwt.encode_sign_raw(`{{"alg":"HS256"}}`, `{{"a": 1}}`, '
    f"{json.dumps(json.dumps({'keys': [OCT, PRIVATE_ED]}))})",
    # ECDSA signatures are random: what is compared is that each one's verifies.
    f'io.jwt.decode_verify(io.jwt.encode_sign({{"alg": "ES256"}}, {{"iss": "x"}}, '
    f'{json.dumps(PRIVATE_EC)}), {{"cert": {json.dumps(PUBLIC["ec256-pem"])}, "time": 0}})',
]
_RSA = RSA_KEY.private_numbers()
PRIVATE_RSA = _jwk(
    RSA_KEY.public_key(),
    d=_int(_RSA.d),
    p=_int(_RSA.p),
    q=_int(_RSA.q),
    dp=_int(_RSA.dmp1),
    dq=_int(_RSA.dmq1),
    qi=_int(_RSA.iqmp),
)
PRIVATE_RSA_SET = {"keys": [PRIVATE_RSA]}
EXPRESSIONS += [
    *(
        f'io.jwt.encode_sign({{"alg": "{alg}", "typ": "JWT"}}, {{"iss": "x", "n": 1}}, '
        f"{json.dumps(PRIVATE_RSA)})"
        for alg in ("RS256", "RS384", "RS512")
    ),
    f'io.jwt.encode_sign_raw(`{{"alg":"RS256"}}`, `{{"a": 1}}`, '
    f"{json.dumps(json.dumps(PRIVATE_RSA_SET))})",
    # PSS salts are random: what is compared is that each one's verifies.
    *(
        f'io.jwt.decode_verify(io.jwt.encode_sign({{"alg": "{alg}"}}, {{"iss": "x"}}, '
        f'{json.dumps(PRIVATE_RSA)}), {{"cert": {json.dumps(PUBLIC["rsa-pem"])}, "time": 0}})'
        for alg in ("PS256", "PS384", "PS512")
    ),
    # RSA keys that cannot sign: no d; no primes; d that is not base64url.
    *(
        f'io.jwt.encode_sign({{"alg": "RS256"}}, {{"iss": "x"}}, '
        f"{json.dumps({k: v for k, v in PRIVATE_RSA.items() if k not in left_out})})"
        for left_out in (("d",), ("p", "q", "dp", "dq", "qi"))
    ),
    f'io.jwt.encode_sign({{"alg": "RS256"}}, {{"iss": "x"}}, {json.dumps({**PRIVATE_RSA, "d": "*"})})',
]

MODULE = "package t\n\n" + "\n".join(
    f"r{index} := {expression}" for index, expression in enumerate(EXPRESSIONS)
)


def _ours() -> dict[int, Any]:
    module = analyse_module("t.rego", MODULE)
    check_calls([module])  # none of these builtins is refused any longer
    engine = RegoEngine([module], {})
    engine.set_input_json(json.dumps(INPUT))
    return {index: engine.eval_rule(f"data.t.r{index}") for index in range(len(EXPRESSIONS))}


def _opa(opa_bin: str, tmp: Path) -> dict[int, Any]:
    path = tmp / "t.rego"
    path.write_text(MODULE)
    (tmp / "input.json").write_text(json.dumps(INPUT))
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "-d", str(path), "-i", str(tmp / "input.json"), "data.t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    values = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    return {index: values.get(f"r{index}") for index in range(len(EXPRESSIONS))}


@pytest.fixture(scope="module")
def answers(opa_bin: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], ...]:
    return _ours(), _opa(opa_bin, tmp_path_factory.mktemp("builtins"))


# Ids by position and builtin: the keys and ECDSA signatures are new in every process, so an
# id holding the expression would differ between pytest-xdist workers.
@pytest.mark.parametrize(
    "index",
    range(len(EXPRESSIONS)),
    ids=[f"{i}-{e.split('(')[0]}" for i, e in enumerate(EXPRESSIONS)],
)
def test_the_value_is_opas(index: int, answers: tuple[dict[int, Any], ...]) -> None:
    ours, theirs = answers
    assert ours[index] == theirs[index]


def test_rsa_tokens_are_made(answers: tuple[dict[int, Any], ...]) -> None:
    """Each RSA expression that OPA answers is answered, so the comparison above is not of two
    undefined values."""
    ours, theirs = answers
    rsa_rows = [i for i, e in enumerate(EXPRESSIONS) if '"RS' in e or '"PS' in e]
    assert sum(theirs[i] is not None for i in rsa_rows) >= 7
    assert all(ours[i] is not None for i in rsa_rows if theirs[i] is not None)


def test_the_comparison_is_not_vacuous(answers: tuple[dict[int, Any], ...]) -> None:
    ours, theirs = answers
    defined = [i for i in theirs if theirs[i] is not None]
    assert len(defined) > len(EXPRESSIONS) // 2
    assert theirs[EXPRESSIONS.index(f'io.jwt.verify_hs256({json.dumps(GOOD)}, "secret")')]
    assert ours[EXPRESSIONS.index('crypto.sha256("abc")')] == hashlib.sha256(b"abc").hexdigest()
    assert any(theirs[i] is None for i in theirs)  # errors are undefined, in both


def test_a_line_longer_than_1024_columns_loads() -> None:
    """regorus' default refuses such a line; OPA has no limit, and a token or a key on one line
    is ordinary (the module above has lines of over 1,000 columns too)."""
    long_line = "package t\n\nr := " + json.dumps("k" * 5000) + "\n"
    module = analyse_module("long.rego", long_line)
    engine = RegoEngine([module], {})
    engine.set_input_json("{}")
    assert engine.eval_rule("data.t.r") == "k" * 5000
