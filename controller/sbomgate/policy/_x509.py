"""OPA's X.509 and private-key builtins for regorus, answering as OPA 1.22 answers.

OPA hands a policy Go's encoding/json of crypto/x509's structs (`Certificate`,
`CertificateRequest`, `tls.Certificate`, the private keys): Go's field names, `[]byte` as
base64, `big.Int` as a number, `time.Time` as RFC 3339, enums as integers, nil slices as null.
Those documents are built here from what `cryptography` parses, and, where it does not expose
a field (raw names, the raw extension list, key usage bits, CSR attributes, PSS parameters),
from the DER by the small reader below. URIs are taken apart as Go's net/url reports them
(the fields of `url.URL` and its `String()`), from the facts of its behaviour.

Chain verification follows Go's documented and observed rules (the first certificate is the
root, the last the leaf, those between intermediates; a path is built from the leaf by issuer
name and signature; validity times, CA flags and key usage of issuers, path length, name
constraints, extended key usages along the chain, critical extensions nobody handles, explicit
policy). It fails closed: where a rule is uncertain here (policy mappings, signature
algorithms Go may refuse, names that cannot be read), the chain is not valid.

Errors raise `X509BuiltinError`: the call is undefined, as a builtin's error is in OPA's
default mode.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa, x25519
from cryptography.x509.oid import ExtensionOID

from sbomgate.errors import EvaluationError

__all__ = [
    "X509BuiltinError",
    "extensions",
    "for_regorus",
    "parse_and_verify_certificates",
    "parse_and_verify_certificates_with_options",
    "parse_certificate_request",
    "parse_certificates",
    "parse_keypair",
    "parse_private_keys",
    "parse_rsa_private_key",
]


class X509BuiltinError(EvaluationError, ValueError):
    """A crypto.* builtin failed (the call is undefined, as OPA's builtin error is)."""


Doc = dict[str, Any]

# --------------------------------------------------------------------------- a small DER reader


@dataclass(frozen=True)
class _Tlv:
    """One DER element: its tag byte, its whole encoding and its contents."""

    tag: int
    raw: bytes
    body: bytes


def _tlv_at(data: bytes, pos: int) -> tuple[_Tlv, int]:
    """The element starting at `pos` and the position after it."""
    if pos + 2 > len(data):
        raise X509BuiltinError("x509: truncated DER element")
    tag, size = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise X509BuiltinError("x509: high tag numbers are not supported")
    at = pos + 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise X509BuiltinError("x509: bad DER length")
        size = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + size > len(data):
        raise X509BuiltinError("x509: truncated DER element")
    return _Tlv(tag, data[pos : at + size], data[at : at + size]), at + size


def _children(body: bytes) -> list[_Tlv]:
    """The elements one after another in `body`."""
    out, pos = [], 0
    while pos < len(body):
        element, pos = _tlv_at(body, pos)
        out.append(element)
    return out


def _one(data: bytes) -> _Tlv:
    element, end = _tlv_at(data, 0)
    if end != len(data):
        raise X509BuiltinError("x509: trailing data")
    return element


def _oid_text(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or body[-1] & 0x80:
        raise X509BuiltinError("x509: bad object identifier")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _oid_ints(dotted: str) -> list[int]:
    """An OID as Go's asn1.ObjectIdentifier marshals (arcs must fit 31 bits to be read)."""
    arcs = [int(a) for a in dotted.split(".")]
    if any(a > 0x7FFFFFFF for a in arcs):
        raise X509BuiltinError(f"x509: object identifier {dotted} is too large")
    return arcs


def _int_body(body: bytes) -> int:
    return int.from_bytes(body, "big", signed=True)


# --------------------------------------------------------------------------- base64 and PEM


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _go_b64decode(text: str | bytes) -> bytes:
    """Go's base64.StdEncoding.DecodeString: padded, CR and LF ignored."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    if len(raw) % 4:
        raise X509BuiltinError("illegal base64 data")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise X509BuiltinError("illegal base64 data") from None


_PEM_BEGIN = re.compile(rb"(?:^|\n)-----BEGIN ([^\r\n-]*)-----[ \t]*\r?\n")


def _pem_block_at(data: bytes, match: re.Match[bytes]) -> tuple[str, bytes, bytes] | None:
    """The block that `match` begins, with what follows its END line, if well formed."""
    kind = match.group(1)
    rest = data[match.end() :]
    end_marker = b"-----END " + kind + b"-----"
    # headers: "Key: value" lines up to an empty line
    lines = rest.split(b"\n")
    if lines and b":" in lines[0] and not lines[0].startswith(b"-----"):
        while lines and lines[0].strip(b"\r"):
            if b":" not in lines[0]:
                return None
            lines.pop(0)
        if not lines:
            return None
        lines.pop(0)
        rest = b"\n".join(lines)
    if rest.startswith(end_marker):
        index = 0
    else:
        index = rest.find(b"\n" + end_marker)
        if index < 0:
            return None
        index += 1
    body = rest[:index]
    after = rest[index + len(end_marker) :]
    line_end = after.find(b"\n")
    tail, remainder = (after, b"") if line_end < 0 else (after[:line_end], after[line_end + 1 :])
    if tail.strip(b" \t\r"):
        return None
    try:
        decoded = _go_b64decode(body.replace(b" ", b"").replace(b"\t", b""))
    except X509BuiltinError:
        return None
    return kind.decode("latin-1"), decoded, remainder


def _pem_decode(data: bytes) -> tuple[tuple[str, bytes] | None, bytes]:
    """The first well-formed PEM block and the rest after it; (None, data) if there is none."""
    for match in _PEM_BEGIN.finditer(data):
        if match.group(0).startswith(b"\n") and match.start() + 1 > len(data):
            continue
        block = _pem_block_at(data, match)
        if block is not None:
            return (block[0], block[1]), block[2]
    return None, data


def _pem_blocks(data: bytes) -> Iterator[tuple[str, bytes]]:
    while data:
        block, data = _pem_decode(data)
        if block is None:
            return
        yield block


# --------------------------------------------------------------------------- Go's enums

_SIGNATURE_OIDS = {
    "1.2.840.113549.1.1.2": 1,
    "1.2.840.113549.1.1.4": 2,
    "1.2.840.113549.1.1.5": 3,
    "1.3.14.3.2.29": 3,
    "1.2.840.113549.1.1.11": 4,
    "1.2.840.113549.1.1.12": 5,
    "1.2.840.113549.1.1.13": 6,
    "1.2.840.10040.4.3": 7,
    "2.16.840.1.101.3.4.3.2": 8,
    "1.2.840.10045.4.1": 9,
    "1.2.840.10045.4.3.2": 10,
    "1.2.840.10045.4.3.3": 11,
    "1.2.840.10045.4.3.4": 12,
    "1.3.101.112": 16,
}
_PSS_OID = "1.2.840.113549.1.1.10"
_PSS_HASHES = {"2.16.840.1.101.3.4.2.1": (13, 32), "2.16.840.1.101.3.4.2.2": (14, 48),
               "2.16.840.1.101.3.4.2.3": (15, 64)}  # fmt: skip
_MGF1_OID = "1.2.840.113549.1.1.8"
_PUBLIC_KEY_OIDS = {
    "1.2.840.113549.1.1.1": 1,
    "1.2.840.10040.4.1": 2,
    "1.2.840.10045.2.1": 3,
    "1.3.101.112": 4,
}
_EXT_KEY_USAGES = {
    "2.5.29.37.0": 0,
    "1.3.6.1.5.5.7.3.1": 1,
    "1.3.6.1.5.5.7.3.2": 2,
    "1.3.6.1.5.5.7.3.3": 3,
    "1.3.6.1.5.5.7.3.4": 4,
    "1.3.6.1.5.5.7.3.5": 5,
    "1.3.6.1.5.5.7.3.6": 6,
    "1.3.6.1.5.5.7.3.7": 7,
    "1.3.6.1.5.5.7.3.8": 8,
    "1.3.6.1.5.5.7.3.9": 9,
    "1.3.6.1.4.1.311.10.3.3": 10,
    "2.16.840.1.113730.4.1": 11,
    "1.3.6.1.4.1.311.2.1.22": 12,
    "1.3.6.1.4.1.311.61.1.1": 13,
}
_KEY_USAGE_OPTIONS = {
    "KeyUsageAny": 0,
    "KeyUsageServerAuth": 1,
    "KeyUsageClientAuth": 2,
    "KeyUsageCodeSigning": 3,
    "KeyUsageEmailProtection": 4,
    "KeyUsageIPSECEndSystem": 5,
    "KeyUsageIPSECTunnel": 6,
    "KeyUsageIPSECUser": 7,
    "KeyUsageTimeStamping": 8,
    "KeyUsageOCSPSigning": 9,
    "KeyUsageMicrosoftServerGatedCrypto": 10,
    "KeyUsageNetscapeServerGatedCrypto": 11,
    "KeyUsageMicrosoftCommercialCodeSigning": 12,
    "KeyUsageMicrosoftKernelCodeSigning": 13,
}
# Extensions crypto/x509 reads (a critical one of any other kind is "unhandled").
_HANDLED = {
    "2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.30", "2.5.29.31", "2.5.29.32",
    "2.5.29.33", "2.5.29.35", "2.5.29.36", "2.5.29.37", "2.5.29.54", "1.3.6.1.5.5.7.1.1",
}  # fmt: skip
_CURVES = (ec.SECP224R1, ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_NAME_FIELDS = {
    "2.5.4.6": "Country",
    "2.5.4.10": "Organization",
    "2.5.4.11": "OrganizationalUnit",
    "2.5.4.7": "Locality",
    "2.5.4.8": "Province",
    "2.5.4.9": "StreetAddress",
    "2.5.4.17": "PostalCode",
}


def _signature_algorithm(algorithm: _Tlv) -> int:
    """Go's SignatureAlgorithm for an AlgorithmIdentifier (0 when it does not know it)."""
    parts = _children(algorithm.body)
    if not parts or parts[0].tag != 0x06:
        raise X509BuiltinError("x509: malformed algorithm identifier")
    oid = _oid_text(parts[0].body)
    if oid != _PSS_OID:
        return _SIGNATURE_OIDS.get(oid, 0)
    try:
        return _pss_kind(parts[1] if len(parts) > 1 else None)
    except X509BuiltinError:
        return 0


def _hash_oid(algorithm: _Tlv) -> str:
    parts = _children(algorithm.body)
    if not parts or parts[0].tag != 0x06 or len(parts) > 2:
        raise X509BuiltinError("bad hash")
    if len(parts) == 2 and parts[1].raw != b"\x05\x00":
        raise X509BuiltinError("bad hash")
    return _oid_text(parts[0].body)


def _pss_kind(params: _Tlv | None) -> int:
    """13, 14 or 15 for RSA-PSS with SHA-256/384/512, MGF1 of the same hash, a salt of the
    hash's length and the usual trailer; anything else is an error."""
    if params is None or params.tag != 0x30:
        raise X509BuiltinError("bad PSS parameters")
    fields = {p.tag: _one(p.body) for p in _children(params.body)}
    if set(fields) - {0xA0, 0xA1, 0xA2, 0xA3} or 0xA0 not in fields or 0xA1 not in fields:
        raise X509BuiltinError("bad PSS parameters")
    hash_oid = _hash_oid(fields[0xA0])
    mgf = _children(fields[0xA1].body)
    if len(mgf) != 2 or mgf[0].tag != 0x06 or _oid_text(mgf[0].body) != _MGF1_OID:
        raise X509BuiltinError("bad PSS parameters")
    if _hash_oid(mgf[1]) != hash_oid or hash_oid not in _PSS_HASHES:
        raise X509BuiltinError("bad PSS parameters")
    kind, size = _PSS_HASHES[hash_oid]
    salt = fields.get(0xA2)
    if salt is None or salt.tag != 0x02 or _int_body(salt.body) != size:
        raise X509BuiltinError("bad PSS parameters")
    trailer = fields.get(0xA3)
    if trailer is not None and (trailer.tag != 0x02 or _int_body(trailer.body) != 1):
        raise X509BuiltinError("bad PSS parameters")
    return kind


# --------------------------------------------------------------------------- Go's value formats


def _time(value: datetime.datetime) -> str:
    value = value.astimezone(datetime.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _ip_text(packed: bytes) -> str:
    """net.IP's String (a 16-byte IPv4-mapped address prints as IPv4)."""
    if len(packed) == 4:
        return str(ipaddress.IPv4Address(packed))
    if len(packed) == 16:
        address = ipaddress.IPv6Address(packed)
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else address.compressed
    raise X509BuiltinError("x509: invalid IP address length")


def _packed(address: Any) -> bytes:
    """An IP address's bytes as the certificate holds them."""
    return bytes(address.packed)


def _name(name: x509.Name) -> Doc:
    """pkix.Name as Go fills it from an RDN sequence."""
    doc: Doc = {field: None for field in _NAME_FIELDS.values()}
    doc.update({"CommonName": "", "SerialNumber": "", "ExtraNames": None})
    names: list[Doc] = []
    for rdn in name.rdns:
        for attribute in rdn:
            oid = attribute.oid.dotted_string
            value: Any = attribute.value
            if isinstance(value, bytes):
                value = _b64(value)
            names.append({"Type": _oid_ints(oid), "Value": value})
            if not isinstance(value, str):
                continue
            if oid == "2.5.4.3":
                doc["CommonName"] = value
            elif oid == "2.5.4.5":
                doc["SerialNumber"] = value
            elif oid in _NAME_FIELDS:
                doc[_NAME_FIELDS[oid]] = [*(doc[_NAME_FIELDS[oid]] or []), value]
    doc["Names"] = names or None
    return doc


def _public_key(key: Any) -> Any:
    """A public key as Go's encoding/json writes crypto/rsa's, crypto/ecdsa's, ..."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"N": numbers.n, "E": numbers.e}
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise X509BuiltinError("x509: unsupported elliptic curve")
        point = key.public_numbers()
        return {"Curve": {}, "X": point.x, "Y": point.y}
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    if isinstance(key, dsa.DSAPublicKey):
        dsa_numbers = key.public_numbers()
        p = dsa_numbers.parameter_numbers
        return {"P": p.p, "Q": p.q, "G": p.g, "Y": dsa_numbers.y}
    return None


def _spki_key(spki: bytes) -> tuple[int, Any]:
    """Go's PublicKeyAlgorithm and its JSON for a SubjectPublicKeyInfo."""
    parts = _children(_one(spki).body)
    algorithm = _children(parts[0].body)
    kind = _PUBLIC_KEY_OIDS.get(_oid_text(algorithm[0].body), 0)
    if kind == 0:
        return 0, None
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm):
        raise X509BuiltinError("x509: failed to parse public key") from None
    return kind, _public_key(key)


# --------------------------------------------------------------------------- URIs as net/url


_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]")


def _should_escape(char: str, mode: str) -> bool:
    if _UNRESERVED.fullmatch(char):
        return False
    if mode == "host":
        return char not in "!$&'()*+,;=:[]<>\""
    if char in "$&+,/:;=?@":
        if mode == "path":
            return char == "?"
        if mode == "userinfo":
            return char in "@/?:"
        return mode not in ("query", "fragment")
    return not (mode == "fragment" and char in "!()*")


def _escape(text: str, mode: str) -> str:
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if byte < 0x80 and not _should_escape(char, mode):
            out.append(char)
        elif char == " " and mode == "query":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _unescape(text: str, mode: str) -> str:
    if "%" not in text:
        return text
    if mode == "host":
        raise X509BuiltinError("x509: escaped host in URI")
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    index = 0
    while index < len(raw):
        if raw[index] == 0x25:
            pair = raw[index + 1 : index + 3]
            if len(pair) != 2 or not all(chr(b) in "0123456789abcdefABCDEF" for b in pair):
                raise X509BuiltinError("invalid URL escape")
            out.append(int(pair, 16))
            index += 3
        else:
            out.append(raw[index])
            index += 1
    return out.decode("utf-8", "surrogateescape")


def _valid_encoded(text: str, mode: str) -> bool:
    for char in text:
        if char in "!$&'()*+,;=:@[]":
            continue
        if char == "%":
            continue
        if ord(char) >= 0x80 or _should_escape(char, mode):
            return False
    return True


def _parse_uri(text: str) -> tuple[Doc, str]:
    """A URI's url.URL document and its String(), as Go's url.Parse reads it."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise X509BuiltinError("invalid control character in URL")
    doc: Doc = {"Scheme": "", "Opaque": "", "User": None, "Host": "", "Path": "",
                "RawPath": "", "OmitHost": False, "ForceQuery": False, "RawQuery": "",
                "Fragment": "", "RawFragment": ""}  # fmt: skip
    rest, hash_mark, fragment = text.partition("#")
    if hash_mark:
        doc["Fragment"] = _unescape(fragment, "fragment")
        if _escape(doc["Fragment"], "fragment") != fragment:
            doc["RawFragment"] = fragment
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+\-.]*):", rest)
    if scheme:
        doc["Scheme"] = scheme.group(1).lower()
        rest = rest[scheme.end() :]
    elif rest.startswith(":"):
        raise X509BuiltinError("missing protocol scheme")
    if rest.endswith("?") and rest.count("?") == 1:
        doc["ForceQuery"] = True
        rest = rest[:-1]
    else:
        rest, _, doc["RawQuery"] = rest.partition("?")
    if not rest.startswith("/") and doc["Scheme"]:
        doc["Opaque"] = rest
    else:
        if not doc["Scheme"] and ":" in rest.split("/", 1)[0]:
            raise X509BuiltinError("first path segment in URL cannot contain colon")
        if rest.startswith("//"):
            authority, slash, path = rest[2:].partition("/")
            rest = slash + path
            if "@" in authority:
                userinfo, _, authority = authority.rpartition("@")
                name, _, password = userinfo.partition(":")
                _unescape(name, "userinfo")
                _unescape(password, "userinfo")
                doc["User"] = {}
            doc["Host"] = _parse_host(authority)
        elif doc["Scheme"] and rest.startswith("/"):
            doc["OmitHost"] = True
        doc["Path"] = _unescape(rest, "path")
        if _escape(doc["Path"], "path") != rest:
            doc["RawPath"] = rest
    return doc, _uri_string(doc, text)


def _parse_host(host: str) -> str:
    if host.startswith("["):
        close = host.find("]")
        if close < 0:
            raise X509BuiltinError("missing ']' in host")
        port = host[close + 1 :]
        if port and not re.fullmatch(r":[0-9]*", port):
            raise X509BuiltinError("invalid port after host")
        return host
    name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    if colon and not re.fullmatch(r"[0-9]*", port):
        raise X509BuiltinError("invalid port in host")
    if any(c in ' "<>\\^`{|}' for c in name):
        raise X509BuiltinError("invalid character in host name")
    return _unescape(host, "host")


def _uri_string(doc: Doc, original: str) -> str:
    """url.URL's String()."""
    out = []
    if doc["Scheme"]:
        out.append(doc["Scheme"] + ":")
    if doc["Opaque"]:
        out.append(doc["Opaque"])
    else:
        path = doc["Path"]
        if doc["Scheme"] or doc["Host"] or doc["User"] is not None:
            if not (doc["OmitHost"] and not doc["Host"] and doc["User"] is None) and (
                doc["Host"] or path or doc["User"] is not None
            ):
                out.append("//")
            if doc["User"] is not None:
                out.append(_userinfo_string(original))
            if doc["Host"]:
                out.append(_escape(doc["Host"], "host"))
        raw_path = doc["RawPath"]
        if raw_path and _valid_encoded(raw_path, "path") and _unescape(raw_path, "path") == path:
            escaped = raw_path
        elif path == "*":
            escaped = "*"
        else:
            escaped = _escape(path, "path")
        if escaped and not escaped.startswith("/") and doc["Host"]:
            out.append("/")
        if not out and ":" in escaped.split("/", 1)[0]:
            out.append("./")
        out.append(escaped)
    if doc["ForceQuery"] or doc["RawQuery"]:
        out.append("?" + doc["RawQuery"])
    if doc["Fragment"]:
        raw = doc["RawFragment"]
        if (
            raw
            and _valid_encoded(raw, "fragment")
            and _unescape(raw, "fragment") == doc["Fragment"]
        ):
            out.append("#" + raw)
        else:
            out.append("#" + _escape(doc["Fragment"], "fragment"))
    return "".join(out)


def _userinfo_string(original: str) -> str:
    authority = original.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    userinfo = authority.rpartition("@")[0]
    name, colon, password = userinfo.partition(":")
    text = _escape(_unescape(name, "userinfo"), "userinfo")
    if colon:
        text += ":" + _escape(_unescape(password, "userinfo"), "userinfo")
    return text + "@"


# --------------------------------------------------------------------------- certificates


@dataclass
class _Parsed:
    """A certificate: `cryptography`'s object, Go's document and what verification reads."""

    cert: x509.Certificate
    doc: Doc
    raw: bytes
    raw_subject: bytes
    raw_issuer: bytes
    tbs_algorithm: _Tlv
    san_names: list[tuple[str, Any]]
    unhandled_nc: bool


def _extension_list(tbs: _Tlv) -> list[tuple[str, bool, bytes]]:
    out = []
    for part in _children(tbs.body):
        if part.tag != 0xA3:
            continue
        for ext in _children(_one(part.body).body):
            fields = _children(ext.body)
            critical = len(fields) == 3 and fields[1].body != b"\x00"
            out.append((_oid_text(fields[0].body), critical, fields[-1].body))
    return out


def _key_usage_bits(value: bytes) -> int:
    bits = _one(value)
    if bits.tag != 0x03 or not bits.body:
        raise X509BuiltinError("x509: invalid key usage")
    usage = 0
    data = bits.body[1:]
    for index in range(9):
        byte = index // 8
        if byte < len(data) and data[byte] & (0x80 >> (index % 8)):
            usage |= 1 << index
    return usage


def _ext(cert: x509.Certificate | x509.CertificateSigningRequest, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _general_names(names: Any) -> tuple[Doc, list[tuple[str, Any]], bool]:
    """DNSNames, EmailAddresses, IPAddresses, URIs (and URIStrings) of a SAN, the names for
    constraint checks, and whether it held any of those four kinds."""
    dns: list[str] = []
    emails: list[str] = []
    ips: list[str] = []
    uris: list[Doc] = []
    uri_strings: list[str] = []
    checks: list[tuple[str, Any]] = []
    for name in names or []:
        if isinstance(name, x509.DNSName):
            dns.append(name.value)
            checks.append(("dns", name.value))
        elif isinstance(name, x509.RFC822Name):
            emails.append(name.value)
            checks.append(("email", name.value))
        elif isinstance(name, x509.IPAddress):
            packed = _packed(name.value)
            ips.append(_ip_text(packed))
            checks.append(("ip", packed))
        elif isinstance(name, x509.UniformResourceIdentifier):
            uri, text = _parse_uri(name.value)
            uris.append(uri)
            uri_strings.append(text)
            checks.append(("uri", uri))
    doc = {
        "DNSNames": dns or None,
        "EmailAddresses": emails or None,
        "IPAddresses": ips or None,
        "URIs": uris or None,
        "URIStrings": uri_strings or None,
    }
    return doc, checks, bool(checks)


def _constraints(nc: Any) -> tuple[Doc, bool]:
    doc: Doc = {}
    unhandled = False
    for side, trees in (("Permitted", nc.permitted_subtrees), ("Excluded", nc.excluded_subtrees)):
        dns: list[str] = []
        emails: list[str] = []
        uris: list[str] = []
        ranges: list[Doc] = []
        for tree in trees or []:
            if isinstance(tree, x509.DNSName):
                dns.append(tree.value)
            elif isinstance(tree, x509.RFC822Name):
                emails.append(tree.value)
            elif isinstance(tree, x509.UniformResourceIdentifier):
                uris.append(tree.value)
            elif isinstance(tree, x509.IPAddress):
                network: Any = tree.value
                ranges.append(
                    {"IP": _ip_text(network.network_address.packed),
                     "Mask": _b64(network.netmask.packed)}
                )  # fmt: skip
            else:
                unhandled = True
        doc[f"{side}DNSDomains"] = dns or None
        doc[f"{side}EmailAddresses"] = emails or None
        doc[f"{side}URIDomains"] = uris or None
        doc[f"{side}IPRanges"] = ranges or None
    return doc, unhandled


def _load_certificate(der: bytes) -> _Parsed:
    try:
        cert = x509.load_der_x509_certificate(der)
        extensions = cert.extensions
    except ValueError as exc:
        raise X509BuiltinError(f"x509: {exc}") from None
    outer = _children(_one(der).body)
    if len(outer) != 3:
        raise X509BuiltinError("x509: malformed certificate")
    tbs = outer[0]
    fields = _children(tbs.body)
    if fields and fields[0].tag == 0xA0:
        fields = fields[1:]
    serial_tlv, algorithm, issuer, _validity, subject, spki = fields[:6]
    if algorithm.raw != outer[1].raw:
        raise X509BuiltinError("x509: inner and outer signature algorithm identifiers don't match")
    del serial_tlv
    public_algorithm, public_key = _spki_key(spki.raw)
    ext_list = _extension_list(tbs)
    doc: Doc = {
        "Raw": _b64(der),
        "RawTBSCertificate": _b64(tbs.raw),
        "RawSubjectPublicKeyInfo": _b64(spki.raw),
        "RawSubject": _b64(subject.raw),
        "RawIssuer": _b64(issuer.raw),
        "Signature": _b64(cert.signature),
        "SignatureAlgorithm": _signature_algorithm(outer[1]),
        "PublicKeyAlgorithm": public_algorithm,
        "PublicKey": public_key,
        "Version": cert.version.value + 1,
        "SerialNumber": cert.serial_number,
        "Issuer": _name(cert.issuer),
        "Subject": _name(cert.subject),
        "NotBefore": _time(cert.not_valid_before_utc),
        "NotAfter": _time(cert.not_valid_after_utc),
        "KeyUsage": 0,
        "Extensions": [
            {"Id": _oid_ints(oid), "Critical": critical, "Value": _b64(value)}
            for oid, critical, value in ext_list
        ]
        or None,
        "ExtraExtensions": None,
        "ExtKeyUsage": None,
        "UnknownExtKeyUsage": None,
        "BasicConstraintsValid": False,
        "IsCA": False,
        "MaxPathLen": 0,
        "MaxPathLenZero": False,
        "SubjectKeyId": None,
        "AuthorityKeyId": None,
        "OCSPServer": None,
        "IssuingCertificateURL": None,
        "PermittedDNSDomainsCritical": False,
        "CRLDistributionPoints": None,
        "PolicyIdentifiers": None,
        "Policies": None,
        "InhibitAnyPolicy": 0,
        "InhibitAnyPolicyZero": False,
        "InhibitPolicyMapping": 0,
        "InhibitPolicyMappingZero": False,
        "RequireExplicitPolicy": 0,
        "RequireExplicitPolicyZero": False,
        "PolicyMappings": None,
    }
    unhandled: list[list[int]] = []
    san_checks: list[tuple[str, Any]] = []
    unhandled_nc = False
    san_doc, _, _ = _general_names(None)
    nc_doc, _ = _constraints(x509.NameConstraints(None, [x509.DNSName("x")]))
    nc_doc = dict.fromkeys(nc_doc)
    for oid, critical, value in ext_list:
        extension: Any = extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
        if oid == "2.5.29.15":
            doc["KeyUsage"] = _key_usage_bits(value)
        elif oid == "2.5.29.19":
            doc["BasicConstraintsValid"] = True
            doc["IsCA"] = extension.ca
            length = extension.path_length
            doc["MaxPathLen"] = -1 if length is None else length
            doc["MaxPathLenZero"] = length == 0
        elif oid == "2.5.29.17":
            san_doc, san_checks, known = _general_names(extension)
            if critical and not known:
                unhandled.append(_oid_ints(oid))
        elif oid == "2.5.29.30":
            nc_doc, unhandled_nc = _constraints(extension)
            doc["PermittedDNSDomainsCritical"] = critical
            if critical and unhandled_nc:
                unhandled.append(_oid_ints(oid))
        elif oid == "2.5.29.37":
            known_usages = []
            unknown = []
            for usage in extension:
                if usage.dotted_string in _EXT_KEY_USAGES:
                    known_usages.append(_EXT_KEY_USAGES[usage.dotted_string])
                else:
                    unknown.append(_oid_ints(usage.dotted_string))
            doc["ExtKeyUsage"] = known_usages or None
            doc["UnknownExtKeyUsage"] = unknown or None
        elif oid == "2.5.29.14":
            doc["SubjectKeyId"] = _b64(extension.digest)
        elif oid == "2.5.29.35":
            if extension.key_identifier is not None:
                doc["AuthorityKeyId"] = _b64(extension.key_identifier)
        elif oid == "1.3.6.1.5.5.7.1.1":
            ocsp: list[str] = []
            issuers: list[str] = []
            for access in extension:
                if isinstance(access.access_location, x509.UniformResourceIdentifier):
                    target = ocsp if access.access_method.dotted_string.endswith(".1") else issuers
                    if access.access_method.dotted_string in ("1.3.6.1.5.5.7.48.1",
                                                              "1.3.6.1.5.5.7.48.2"):  # fmt: skip
                        target.append(access.access_location.value)
            doc["OCSPServer"] = ocsp or None
            doc["IssuingCertificateURL"] = issuers or None
        elif oid == "2.5.29.31":
            points = [
                name.value
                for point in extension
                for name in point.full_name or []
                if isinstance(name, x509.UniformResourceIdentifier)
            ]
            doc["CRLDistributionPoints"] = points or None
        elif oid == "2.5.29.32":
            dotted = [p.policy_identifier.dotted_string for p in extension]
            doc["Policies"] = dotted or None
            small = [
                [int(a) for a in d.split(".")]
                for d in dotted
                if all(int(a) <= 0x7FFFFFFF for a in d.split("."))
            ]
            doc["PolicyIdentifiers"] = small or None
        elif oid == "2.5.29.36":
            if extension.require_explicit_policy is not None:
                doc["RequireExplicitPolicy"] = extension.require_explicit_policy
                doc["RequireExplicitPolicyZero"] = extension.require_explicit_policy == 0
            if extension.inhibit_policy_mapping is not None:
                doc["InhibitPolicyMapping"] = extension.inhibit_policy_mapping
                doc["InhibitPolicyMappingZero"] = extension.inhibit_policy_mapping == 0
        elif oid == "2.5.29.54":
            doc["InhibitAnyPolicy"] = extension.skip_certs
            doc["InhibitAnyPolicyZero"] = extension.skip_certs == 0
        elif oid == "2.5.29.33":
            doc["PolicyMappings"] = [
                {"IssuerDomainPolicy": m.dotted_string, "SubjectDomainPolicy": s.dotted_string}
                for m, s in _policy_mappings(value)
            ] or None
        elif critical and oid not in _HANDLED:
            unhandled.append(_oid_ints(oid))
    doc.update({k: v for k, v in san_doc.items() if k != "URIStrings"})
    doc.update(nc_doc)
    doc["UnhandledCriticalExtensions"] = unhandled or None
    doc["URIStrings"] = san_doc["URIStrings"]
    return _Parsed(cert, doc, der, subject.raw, issuer.raw, outer[1], san_checks, unhandled_nc)


def _policy_mappings(value: bytes) -> list[tuple[x509.ObjectIdentifier, x509.ObjectIdentifier]]:
    out = []
    for pair in _children(_one(value).body):
        first, second = _children(pair.body)
        out.append(
            (x509.ObjectIdentifier(_oid_text(first.body)),
             x509.ObjectIdentifier(_oid_text(second.body)))
        )  # fmt: skip
    return out


def _split_der(data: bytes) -> list[bytes]:
    return [element.raw for element in _children(data)]


def _certs_from_pem(data: bytes) -> list[_Parsed]:
    der = b""
    for kind, body in _pem_blocks(data):
        if kind != "CERTIFICATE":
            raise X509BuiltinError(f"PEM block type is '{kind}', expected CERTIFICATE")
        der += body
    return [_load_certificate(one) for one in _split_der(der)]


def _certs_from_string(text: str) -> list[_Parsed]:
    if text.startswith("-----BEGIN"):
        return _certs_from_pem(text.encode("utf-8", "surrogatepass"))
    raw = _go_b64decode(text)
    if raw.startswith(b"-----BEGIN"):
        return _certs_from_pem(raw)
    return [_load_certificate(one) for one in _split_der(raw)]


def _string(value: Any, builtin: str) -> str:
    if not isinstance(value, str):
        raise X509BuiltinError(f"{builtin}: operand must be a string")
    return value


def parse_certificates(certs: Any) -> list[Doc]:
    """crypto.x509.parse_certificates: PEM, base64 of PEM or base64 of DER certificates."""
    text = _string(certs, "crypto.x509.parse_certificates")
    return [p.doc for p in _certs_from_string(text)]


# --------------------------------------------------------------------------- verification


@dataclass
class _Options:
    dns_name: str = ""
    now_ns: int | None = None
    key_usages: tuple[int, ...] = ()


def _verify_signature(child: _Parsed, parent: _Parsed) -> bool:
    """Whether `parent`'s key signed `child`, with an algorithm Go accepts."""
    kind = _signature_algorithm(child.tbs_algorithm)
    key = parent.cert.public_key()
    tbs = child.cert.tbs_certificate_bytes
    signature = child.cert.signature
    digests: dict[int, type[hashes.HashAlgorithm]] = {
        4: hashes.SHA256, 5: hashes.SHA384, 6: hashes.SHA512, 10: hashes.SHA256,
        11: hashes.SHA384, 12: hashes.SHA512, 13: hashes.SHA256, 14: hashes.SHA384,
        15: hashes.SHA512,
    }  # fmt: skip
    try:
        if kind in (4, 5, 6, 13, 14, 15):
            if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 1024:
                return False
            digest = digests[kind]()
            if kind >= 13:
                pad: padding.AsymmetricPadding = padding.PSS(
                    padding.MGF1(digests[kind]()), digest.digest_size
                )
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, tbs, pad, digest)
        elif kind in (10, 11, 12):
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, _CURVES):
                return False
            key.verify(signature, tbs, ec.ECDSA(digests[kind]()))
        elif kind == 16:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(signature, tbs)
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True


def _labels(domain: str) -> list[str] | None:
    """A domain's labels, last first, lower case; None if it is not one Go would read."""
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain:
        return []
    labels = domain.lower().split(".")
    if any(not label or not re.fullmatch(r"[\x21-\x7e]+", label) for label in labels):
        return None
    return labels[::-1]


def _domain_match(domain: list[str], constraint: str) -> bool | None:
    """Whether a domain is inside a DNS-style constraint (None: the constraint is unreadable)."""
    if not constraint:
        return True
    subdomains_only = constraint.startswith(".")
    wanted = _labels(constraint[1:] if subdomains_only else constraint)
    if wanted is None:
        return None
    if len(domain) < len(wanted) or (subdomains_only and len(domain) == len(wanted)):
        return False
    return domain[: len(wanted)] == wanted


def _name_allowed(
    names: list[str] | None, matches: Callable[[str], bool | None], excluded: bool
) -> bool:
    """Whether a name passes one side of the constraints (fail closed on unreadable ones)."""
    if not names:
        return True
    results = [matches(c) for c in names]
    if excluded:
        return not any(r is None or r for r in results)
    return any(r is True for r in results)


def _ip_in(packed: bytes, network: Doc) -> bool:
    base = _ip_bytes(network["IP"], len(base64.b64decode(network["Mask"])))
    mask = base64.b64decode(network["Mask"])
    if base is None or len(base) != len(packed):
        return False
    return all((a & m) == (b & m) for a, b, m in zip(packed, base, mask, strict=True))


def _ip_bytes(text: str, size: int) -> bytes | None:
    address = ipaddress.ip_address(text)
    packed = address.packed
    if size == 16 and len(packed) == 4:
        return b"\x00" * 10 + b"\xff\xff" + packed
    return packed if len(packed) == size else None


def _constraints_allow(ca: Doc, leaf: _Parsed) -> bool:
    """Go's name-constraint check of a CA over the leaf's SAN names (fail closed)."""
    for kind, value in leaf.san_names:
        if kind in ("dns", "uri"):
            if kind == "dns":
                host = value
                wildcard = host.startswith("*.")
            else:
                host = value["Host"]
                if not host or host.startswith("["):
                    return False
                host = host.rsplit(":", 1)[0] if ":" in host else host
                wildcard = False
                try:
                    ipaddress.ip_address(host)
                    return False
                except ValueError:
                    pass
            labels = _labels(host)
            if labels is None or (kind == "uri" and not labels):
                return False
            field = "DNSDomains" if kind == "dns" else "URIDomains"

            def match(c: str, labels: list[str] = labels) -> bool | None:
                return _domain_match(labels, c)

            if not _name_allowed(ca[f"Permitted{field}"], match, excluded=False):
                return False
            if not _name_allowed(ca[f"Excluded{field}"], match, excluded=True):
                return False
            if wildcard and ca[f"Excluded{field}"]:
                parent = labels[:-1]
                for c in ca[f"Excluded{field}"]:
                    inner = _labels(c.lstrip("."))
                    if inner is None or inner[: len(parent)] == parent:
                        return False
        elif kind == "email":
            local, at, domain = value.rpartition("@")
            labels = _labels(domain)
            if not at or not local or labels is None or not labels:
                return False
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+", local):
                return False

            def email_match(c: str, local: str = local, labels: list[str] = labels) -> bool | None:
                if "@" in c:
                    c_local, _, c_domain = c.rpartition("@")
                    c_labels = _labels(c_domain)
                    if c_labels is None:
                        return None
                    return c_local == local and c_labels == labels
                return _domain_match(labels, c)

            if not _name_allowed(ca["PermittedEmailAddresses"], email_match, excluded=False):
                return False
            if not _name_allowed(ca["ExcludedEmailAddresses"], email_match, excluded=True):
                return False
        elif kind == "ip":
            permitted = ca["PermittedIPRanges"]
            if permitted and not any(_ip_in(value, n) for n in permitted):
                return False
            for network in ca["ExcludedIPRanges"] or []:
                mapped = value if len(value) == 16 else b"\x00" * 10 + b"\xff\xff" + value
                short = value[12:] if value[:12] == b"\x00" * 10 + b"\xff\xff" else value
                if any(_ip_in(v, network) for v in (value, mapped, short)):
                    return False
    return True


def _has_constraints(doc: Doc) -> bool:
    return any(
        doc[f"{side}{field}"]
        for side in ("Permitted", "Excluded")
        for field in ("DNSDomains", "EmailAddresses", "URIDomains", "IPRanges")
    )


def _time_ok(parsed: _Parsed, now_ns: int) -> bool:
    start = int(parsed.cert.not_valid_before_utc.timestamp()) * 10**9
    end = int(parsed.cert.not_valid_after_utc.timestamp()) * 10**9
    return start <= now_ns <= end


def _issuer_ok(ca: _Parsed, below: list[_Parsed]) -> bool:
    """Whether `ca` may sign for the chain `below` (leaf first)."""
    doc = ca.doc
    if not doc["BasicConstraintsValid"] or not doc["IsCA"]:
        return False
    if any(e["Id"] == [2, 5, 29, 15] for e in doc["Extensions"] or []) and not (
        doc["KeyUsage"] & 32
    ):
        return False
    if doc["MaxPathLen"] >= 0 and len(below) - 1 > doc["MaxPathLen"]:
        return False
    if ca.unhandled_nc:
        return False
    return not (_has_constraints(doc) and not _constraints_allow(doc, below[0]))


def _hostname_ok(leaf: Doc, host: str) -> bool:
    if not host:
        return True
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        address = None
    if address is not None:
        packed = address.packed
        for text in leaf["IPAddresses"] or []:
            other = ipaddress.ip_address(text).packed
            if other == packed:
                return True
        return False
    wanted = host.lower().removesuffix(".")
    if not wanted or any(not label for label in wanted.split(".")):
        return False
    for pattern in leaf["DNSNames"] or []:
        pattern = pattern.lower().removesuffix(".")
        if pattern == wanted:
            return True
        parts, host_parts = pattern.split("."), wanted.split(".")
        if (
            parts[0] == "*"
            and len(parts) > 2
            and "*" not in ".".join(parts[1:])
            and len(host_parts) == len(parts)
            and host_parts[1:] == parts[1:]
            and host_parts[0]
        ):
            return True
    return False


def _usages_ok(chain: list[_Parsed], wanted: tuple[int, ...]) -> bool:
    usages = set(wanted or (1,))
    if 0 in usages:
        return True
    for parsed in chain:
        doc = parsed.doc
        if doc["ExtKeyUsage"] is None and doc["UnknownExtKeyUsage"] is None:
            continue
        have = set(doc["ExtKeyUsage"] or [])
        if 0 in have:
            continue
        usages &= have
        if not usages:
            return False
    return True


def _policies_ok(chain: list[_Parsed]) -> bool:
    """RFC 5280's explicit-policy check over the chain without its root (fail closed where
    policy mappings would matter)."""
    path = chain[:-1][::-1]  # the intermediates from the top down, then the leaf
    size = len(path)
    explicit = size + 1
    inhibit_any = size + 1
    valid: set[str] | None = {"2.5.29.32.0"}
    for index, parsed in enumerate(path):
        doc = parsed.doc
        is_leaf = index == size - 1
        self_issued = parsed.raw_subject == parsed.raw_issuer
        if doc["PolicyMappings"]:
            return False
        policies = doc["Policies"]
        if policies is None:
            valid = None
        elif valid is not None:
            mine = set(policies)
            may_any = "2.5.29.32.0" in mine and (inhibit_any > 0 or (self_issued and not is_leaf))
            if "2.5.29.32.0" in valid:
                valid = mine if not may_any else mine | {"2.5.29.32.0"}
            elif may_any:
                pass
            else:
                valid &= mine
            if not valid:
                valid = None
        if not self_issued or is_leaf:
            if explicit > 0:
                explicit -= 1
            if not is_leaf and inhibit_any > 0:
                inhibit_any -= 1
        if doc["RequireExplicitPolicy"] or doc["RequireExplicitPolicyZero"]:
            explicit = min(explicit, doc["RequireExplicitPolicy"])
        if doc["InhibitAnyPolicy"] or doc["InhibitAnyPolicyZero"]:
            inhibit_any = min(inhibit_any, doc["InhibitAnyPolicy"])
    return explicit > 0 or valid is not None


def _verify(certs: list[_Parsed], options: _Options) -> list[_Parsed] | None:
    """The first chain Go would return, or None when not sure it is valid."""
    if len(certs) < 2:
        return None
    root, intermediates, leaf = certs[0], certs[1:-1], certs[-1]
    now = options.now_ns if options.now_ns is not None else time.time_ns()

    def basic_ok(parsed: _Parsed) -> bool:
        return _time_ok(parsed, now) and parsed.doc["UnhandledCriticalExtensions"] is None

    if not basic_ok(leaf) or not _hostname_ok(leaf.doc, options.dns_name):
        return None
    if leaf.raw == root.raw:
        chain = [leaf]
        ok = _usages_ok(chain, options.key_usages)
        return chain if ok else None
    budget = [100]

    def parents(child: _Parsed) -> list[tuple[_Parsed, bool]]:
        found = []
        aki = child.doc["AuthorityKeyId"]
        for pool_root, pool in ((True, [root]), (False, intermediates)):
            ranked: list[tuple[int, _Parsed]] = []
            for candidate in pool:
                if candidate.raw_subject != child.raw_issuer:
                    continue
                ski = candidate.doc["SubjectKeyId"]
                rank = 0 if aki and ski and aki == ski else (2 if aki and ski else 1)
                ranked.append((rank, candidate))
            ranked.sort(key=lambda item: item[0])
            found += [(c, pool_root) for _, c in ranked]
        return found

    def search(chain: list[_Parsed]) -> list[_Parsed] | None:
        for candidate, is_root in parents(chain[-1]):
            if any(candidate.raw == c.raw for c in chain):
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if not basic_ok(candidate) or not _issuer_ok(candidate, chain):
                continue
            if not _verify_signature(chain[-1], candidate):
                continue
            extended = [*chain, candidate]
            if is_root:
                if _usages_ok(extended, options.key_usages) and _policies_ok(extended):
                    return extended
                continue
            deeper = search(extended)
            if deeper is not None:
                return deeper
        return None

    return search([leaf])


def _verified(text: str, options: _Options | None, extended: bool) -> list[Any]:
    try:
        certs = _certs_from_string(text)
    except X509BuiltinError:
        return [False, []]
    chain = _verify(certs, options or _Options())
    if chain is None:
        return [False, []]
    return [True, [_document(p.doc, extended) for p in chain]]


def _document(doc: Doc, extended: bool) -> Doc:
    if extended:
        return doc
    return {k: v for k, v in doc.items() if k != "URIStrings"}


def parse_and_verify_certificates(certs: Any) -> list[Any]:
    """crypto.x509.parse_and_verify_certificates: [valid, chain] of root, intermediates, leaf."""
    text = _string(certs, "crypto.x509.parse_and_verify_certificates")
    return _verified(text, None, extended=True)


def _verify_options(options: Any) -> _Options:
    if not isinstance(options, dict):
        raise X509BuiltinError("operand 2 must be an object")
    out = _Options()
    for key, value in options.items():
        if key == "DNSName":
            if not isinstance(value, str):
                raise X509BuiltinError("'DNSName' should be a string")
            out.dns_name = value.strip('"')
        elif key == "CurrentTime":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise X509BuiltinError("'CurrentTime' should be a valid int64 number")
            if not -(2**63) <= value < 2**63:
                raise X509BuiltinError("'CurrentTime' should be a valid int64 number")
            out.now_ns = value
        elif key == "MaxConstraintComparisons":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise X509BuiltinError("'MaxConstraintComparisons' should be a valid number")
        elif key == "KeyUsages":
            if not isinstance(value, list | set | tuple):
                raise X509BuiltinError("'KeyUsages' should be an Array or Set")
            usages = []
            for item in value:
                if isinstance(item, str):
                    if item.strip('"') not in _KEY_USAGE_OPTIONS:
                        raise X509BuiltinError("invalid entries for 'KeyUsages'")
                    usages.append(_KEY_USAGE_OPTIONS[item.strip('"')])
            out.key_usages = tuple(usages)
        elif isinstance(key, str):
            raise X509BuiltinError("invalid key option")
    return out


def parse_and_verify_certificates_with_options(certs: Any, options: Any) -> list[Any]:
    """crypto.x509.parse_and_verify_certificates_with_options (DNSName, CurrentTime in
    nanoseconds, KeyUsages, MaxConstraintComparisons)."""
    text = _string(certs, "crypto.x509.parse_and_verify_certificates_with_options")
    if not isinstance(options, dict):
        raise X509BuiltinError("operand 2 must be an object")
    try:
        certificates = _certs_from_string(text)
    except X509BuiltinError:
        return [False, []]
    parsed_options = _verify_options(options)
    chain = _verify(certificates, parsed_options)
    if chain is None:
        return [False, []]
    return [True, [_document(p.doc, extended=False) for p in chain]]


# --------------------------------------------------------------------------- requests


def _attribute_value(element: _Tlv) -> Any:
    if element.tag == 0x01:
        return element.body != b"\x00"
    if element.tag == 0x04:
        return _b64(element.body)
    if element.tag == 0x02:
        return _int_body(element.body)
    if element.tag == 0x06:
        return _oid_ints(_oid_text(element.body))
    if element.tag in (0x0C, 0x13, 0x16, 0x14):
        return element.body.decode("utf-8")
    raise X509BuiltinError("unsupported attribute value")


def _csr_attributes(attributes: list[_Tlv]) -> list[Doc] | None:
    out = []
    for attribute in attributes:
        try:
            oid_tlv, values = _children(attribute.body)
            sets = []
            for value in _children(values.body):
                if value.tag != 0x30:
                    raise X509BuiltinError("not a sequence")
                entries = []
                for pair in _children(value.body):
                    parts = _children(pair.body)
                    if pair.tag != 0x30 or len(parts) < 2 or parts[0].tag != 0x06:
                        raise X509BuiltinError("not a type and value")
                    entries.append(
                        {"Type": _oid_ints(_oid_text(parts[0].body)),
                         "Value": _attribute_value(parts[1])}
                    )  # fmt: skip
                sets.append(entries)
        except (X509BuiltinError, ValueError, UnicodeDecodeError):
            continue
        out.append({"Type": _oid_ints(_oid_text(oid_tlv.body)), "Value": sets})
    return out or None


def parse_certificate_request(csr: Any) -> Doc:
    """crypto.x509.parse_certificate_request: a CSR as PEM or base64 (of PEM or DER)."""
    text = _string(csr, "crypto.x509.parse_certificate_request")
    raw = text.encode("utf-8", "surrogatepass")
    if not text.startswith("-----BEGIN CERTIFICATE REQUEST-----"):
        raw = _go_b64decode(text)
    block, _ = _pem_decode(raw)
    if block is not None:
        if block[0] != "CERTIFICATE REQUEST":
            raise X509BuiltinError("invalid PEM-encoded certificate signing request")
        raw = block[1]
    try:
        request = x509.load_der_x509_csr(raw)
        extensions = request.extensions
    except ValueError as exc:
        raise X509BuiltinError(f"x509: {exc}") from None
    outer = _children(_one(raw).body)
    info = outer[0]
    version, subject, spki, *rest = _children(info.body)
    attributes = _children(rest[0].body) if rest and rest[0].tag == 0xA0 else []
    ext_docs = []
    for attribute in attributes:
        oid_tlv, values = _children(attribute.body)
        if _oid_text(oid_tlv.body) != "1.2.840.113549.1.9.14":
            continue
        for value in _children(values.body):
            for ext in _children(value.body):
                fields = _children(ext.body)
                critical = len(fields) == 3 and fields[1].body != b"\x00"
                ext_docs.append(
                    {"Id": _oid_ints(_oid_text(fields[0].body)), "Critical": critical,
                     "Value": _b64(fields[-1].body)}
                )  # fmt: skip
    san = None
    for extension in extensions:
        if extension.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            san = extension.value
    names, _, _ = _general_names(san)
    public_algorithm, public_key = _spki_key(spki.raw)
    return {
        "Raw": _b64(raw),
        "RawTBSCertificateRequest": _b64(info.raw),
        "RawSubjectPublicKeyInfo": _b64(spki.raw),
        "RawSubject": _b64(subject.raw),
        "Version": _int_body(version.body),
        "Signature": _b64(request.signature),
        "SignatureAlgorithm": _signature_algorithm(outer[1]),
        "PublicKeyAlgorithm": public_algorithm,
        "PublicKey": public_key,
        "Subject": _name(request.subject),
        "Attributes": _csr_attributes(attributes),
        "Extensions": ext_docs or None,
        "ExtraExtensions": None,
        **{k: v for k, v in names.items() if k != "URIStrings"},
    }


# --------------------------------------------------------------------------- private keys


def _der_kind(der: bytes) -> int:
    parts = _children(_one(der).body)
    if len(parts) < 2:
        raise X509BuiltinError("x509: malformed private key")
    return parts[1].tag


def _load_key(kind: str, der: bytes) -> Any:
    """A key of a PEM block type as Go's ParsePKCS1/PKCS8/ECPrivateKey reads it."""
    try:
        structure = _der_kind(der)
        wanted = {"RSA PRIVATE KEY": 0x02, "PRIVATE KEY": 0x30, "EC PRIVATE KEY": 0x04}[kind]
        if structure != wanted:
            raise X509BuiltinError(f"x509: not a {kind}")
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise X509BuiltinError("x509: failed to parse private key") from None
    if kind == "RSA PRIVATE KEY" and not isinstance(key, rsa.RSAPrivateKey):
        raise X509BuiltinError("x509: not an RSA key")
    if kind == "EC PRIVATE KEY" and not isinstance(key, ec.EllipticCurvePrivateKey):
        raise X509BuiltinError("x509: not an EC key")
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, _CURVES):
        raise X509BuiltinError("x509: unsupported elliptic curve")
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | x25519.X25519PrivateKey,
    ):
        raise X509BuiltinError("x509: unsupported private key algorithm")
    return key


def _private_key_doc(key: Any) -> Any:
    """A private key as Go's encoding/json writes it."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        return {
            "N": numbers.public_numbers.n,
            "E": numbers.public_numbers.e,
            "D": numbers.d,
            "Primes": [numbers.p, numbers.q],
            "Precomputed": {
                "Dp": numbers.dmp1,
                "Dq": numbers.dmq1,
                "Qinv": numbers.iqmp,
                "CRTValues": [],
            },
        }
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_numbers = key.private_numbers()
        point = ec_numbers.public_numbers
        return {"Curve": {}, "X": point.x, "Y": point.y, "D": ec_numbers.private_value}
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return _b64(seed + public)
    return {}


def _keys_from_pem_data(text: str) -> list[Any]:
    data = text.encode("utf-8", "surrogatepass")
    with contextlib.suppress(X509BuiltinError):
        data = _go_b64decode(text)
    keys = []
    for kind, body in _pem_blocks(data):
        if kind in ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"):
            keys.append(_load_key(kind, body))
    return keys


def parse_private_keys(keys: Any) -> list[Any] | None:
    """crypto.parse_private_keys: every private key in PEM (or base64 of PEM) text."""
    text = _string(keys, "crypto.parse_private_keys")
    if text == "":
        return None
    return [_private_key_doc(key) for key in _keys_from_pem_data(text)]


def _fixed(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _minimal(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _jwk(key: Any) -> Doc:
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return {
            "kty": "RSA",
            "n": _b64url(_minimal(n.public_numbers.n)),
            "e": _b64url(_minimal(n.public_numbers.e)),
            "d": _b64url(_minimal(n.d)),
            "p": _b64url(_minimal(n.p)),
            "q": _b64url(_minimal(n.q)),
            "dp": _b64url(_minimal(n.dmp1)),
            "dq": _b64url(_minimal(n.dmq1)),
            "qi": _b64url(_minimal(n.iqmp)),
        }
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        numbers = key.private_numbers()
        names = {"secp224r1": "P-224", "secp256r1": "P-256", "secp384r1": "P-384",
                 "secp521r1": "P-521"}  # fmt: skip
        return {
            "kty": "EC",
            "crv": names[key.curve.name],
            "x": _b64url(_fixed(numbers.public_numbers.x, size)),
            "y": _b64url(_fixed(numbers.public_numbers.y, size)),
            "d": _b64url(_fixed(numbers.private_value, size)),
        }
    raw = serialization.Encoding.Raw
    private = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    curve = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "X25519"
    return {"kty": "OKP", "crv": curve, "x": _b64url(public), "d": _b64url(private)}


def parse_rsa_private_key(pem: Any) -> Doc | None:
    """crypto.x509.parse_rsa_private_key: the first private key in the text, as a JWK."""
    text = _string(pem, "crypto.x509.parse_rsa_private_key")
    if text == "":
        raise X509BuiltinError("input PEM data was empty")
    if not text.startswith("-----BEGIN"):
        text = _go_b64decode(text).decode("utf-8", "surrogateescape")
    keys = _keys_from_pem_data(text)
    return _jwk(keys[0]) if keys else None


# --------------------------------------------------------------------------- key pairs


def _tls_key(data: bytes) -> Any:
    for kind, body in _pem_blocks(data):
        if kind == "PRIVATE KEY" or kind.endswith(" PRIVATE KEY"):
            for candidate in ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"):
                try:
                    return _load_key(candidate, body)
                except X509BuiltinError:
                    continue
            raise X509BuiltinError("tls: failed to parse private key")
    raise X509BuiltinError("tls: failed to find any PEM data in key input")


def _same_key(public: Any, private: Any) -> bool:
    if isinstance(private, x25519.X25519PrivateKey):
        return False
    mine = private.public_key()
    if type(mine).__mro__[1:2] != type(public).__mro__[1:2] and not isinstance(
        public, type(mine).__mro__[1]
    ):
        return False
    encoding, form = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(mine.public_bytes(encoding, form) == public.public_bytes(encoding, form))


def parse_keypair(cert: Any, pem: Any) -> Doc:
    """crypto.x509.parse_keypair: a tls.Certificate from a certificate and its private key."""
    cert_text = _string(cert, "crypto.x509.parse_keypair")
    key_text = _string(pem, "crypto.x509.parse_keypair")
    cert_data = cert_text.encode("utf-8", "surrogatepass")
    key_data = key_text.encode("utf-8", "surrogatepass")
    if not cert_data.startswith(b"-----BEGIN "):
        cert_data = _go_b64decode(cert_text)
    if not key_data.startswith(b"-----BEGIN "):
        key_data = _go_b64decode(key_text)
    if cert_data.startswith(b"-----BEGIN "):
        chain = [body for kind, body in _pem_blocks(cert_data) if kind == "CERTIFICATE"]
    else:
        chain = [cert_data]
    if not chain:
        raise X509BuiltinError("tls: failed to find any PEM data in certificate input")
    private = (
        _tls_key(key_data)
        if key_data.startswith(b"-----BEGIN")
        else _load_key("PRIVATE KEY", key_data)
    )
    leaf = _load_certificate(chain[0])
    public = leaf.cert.public_key()
    if not isinstance(
        public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    ):
        raise X509BuiltinError("tls: unknown public key algorithm")
    if not _same_key(public, private):
        raise X509BuiltinError("tls: private key does not match public key")
    return {
        "Certificate": [_b64(der) for der in chain],
        "PrivateKey": _private_key_doc(private),
        "SupportedSignatureAlgorithms": None,
        "OCSPStaple": None,
        "SignedCertificateTimestamps": None,
        "Leaf": _document(leaf.doc, extended=False),
    }


# --------------------------------------------------------------------------- the binding


_FLOAT_MAX = 2**1024  # beyond this an integer has no float, not even a rounded one


class _NoJson(EvaluationError):
    """A value holds a number the engine carries only as infinity."""


def _carried(value: Any) -> Any:
    """A builtin's value as handed to the binding: an integer past a float's range (an RSA
    modulus) becomes an infinity, which the binding carries (a Python int that large makes the
    whole call undefined); the others the binding turns into floats itself past 64 bits."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_FLOAT_MAX < value < _FLOAT_MAX:
            return value
        return float("inf") if value > 0 else float("-inf")
    if isinstance(value, list):
        return [_carried(v) for v in value]
    if isinstance(value, dict):
        return {k: _carried(v) for k, v in value.items()}
    return value


def _json_read(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return value
        if not -_FLOAT_MAX < value < _FLOAT_MAX:
            raise _NoJson
        return float(value)
    if isinstance(value, list):
        return [_json_read(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_read(v) for k, v in value.items()}
    return value


def for_regorus(value: Any) -> Any:
    """OPA's value as sbomgate's engine writes it as JSON (`json.marshal`, or a rule's value
    read as JSON): integers past 64 bits are floats, and a value holding one past a float's
    range has no JSON (infinity): None, as an undefined value reads."""
    try:
        return _json_read(value)
    except _NoJson:
        return None


def _for_binding(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return _carried(function(*args))

    call.__name__ = function.__name__
    call.__doc__ = function.__doc__
    return call


def extensions() -> tuple[tuple[str, int, Callable[..., Any]], ...]:
    """The builtins as (path, arity, callable) for regorus' `add_extension`."""
    return tuple((path, arity, _for_binding(fn)) for path, arity, fn in _BUILTINS)


_BUILTINS: tuple[tuple[str, int, Callable[..., Any]], ...] = (
    ("crypto.x509.parse_certificates", 1, parse_certificates),
    ("crypto.x509.parse_and_verify_certificates", 1, parse_and_verify_certificates),
    (
        "crypto.x509.parse_and_verify_certificates_with_options",
        2,
        parse_and_verify_certificates_with_options,
    ),
    ("crypto.x509.parse_certificate_request", 1, parse_certificate_request),
    ("crypto.x509.parse_keypair", 2, parse_keypair),
    ("crypto.x509.parse_rsa_private_key", 1, parse_rsa_private_key),
    ("crypto.parse_private_keys", 1, parse_private_keys),
)
