"""OpenPGP signatures on repository metadata (apt's `InRelease` / `Release.gpg`, RPM's
`repomd.xml.asc`), verified with Sequoia (pysequoia) against a keyring the source names.

Sequoia is what apt itself verifies with from Debian 13 on (`sqv`), under its standard policy:
a signature counts only when made by a key of the keyring that was valid (not expired, not
revoked, allowed to sign) when it signed, with an algorithm and hash the policy accepts (no
SHA-1). One good signature suffices, as for apt; others (a second archive key the keyring does
not hold) are ignored. Only the text a signature covers is returned, so nothing outside a
cleartext signature is ever read. Why an answer does not verify is told apart: the key is not
in the keyring, or the signature does not verify.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysequoia
from pysequoia.packet import PacketPile, Tag

from sbomgate.errors import SbomgateError

# Files of a keyring directory (apt's trusted.gpg.d): binary keyrings and armored keys.
_KEY_SUFFIXES = (".gpg", ".asc", ".pgp", ".key")
# Tags are not hashable: a tuple, compared with ==.
_KEY_PACKETS = (Tag.PublicKey, Tag.PublicSubkey, Tag.SecretKey, Tag.SecretSubkey)


class SignatureError(SbomgateError):
    """Metadata whose signature does not verify against the keyring (or that has none)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Keyring:
    """The OpenPGP certificates of one keyring file or directory (`origin`)."""

    origin: str
    certs: tuple[pysequoia.Cert, ...]
    # Every key and subkey by fingerprint and by key ID (lower-case hex), to its certificate.
    by_id: Mapping[str, pysequoia.Cert] = field(repr=False)

    @classmethod
    def from_certs(cls, origin: str, certs: Sequence[pysequoia.Cert]) -> Keyring:
        """A keyring of `certs`, indexed by the fingerprints and key IDs of their keys."""
        by_id: dict[str, pysequoia.Cert] = {}
        for cert in certs:
            for packet in PacketPile.from_bytes(bytes(cert)):
                if packet.tag not in _KEY_PACKETS:
                    continue
                for value in (packet.fingerprint, packet.key_id):
                    if value:
                        by_id[value.lower()] = cert
        return cls(origin, tuple(certs), by_id)

    def _store(self, asked: list[str]) -> object:
        def store(ids: Sequence[str]) -> list[pysequoia.Cert]:
            asked.extend(i.lower() for i in ids)
            found: list[pysequoia.Cert] = []
            for key in ids:
                cert = self.by_id.get(key.lower())
                if cert is not None and all(cert is not c for c in found):
                    found.append(cert)
            return found

        return store

    def verify_cleartext(self, document: bytes, what: str) -> bytes:
        """The text a cleartext-signed `document` (`InRelease`) signs; `SignatureError` unless
        a key of this keyring made a good signature over it."""
        asked: list[str] = []
        try:
            result = pysequoia.verify(bytes=document, store=self._store(asked))
        except (RuntimeError, ValueError) as exc:
            raise self._failure(what, asked, exc) from None
        if not result.valid_sigs or result.bytes is None:
            raise self._failure(what, asked, None)
        return result.bytes

    def verify_detached(self, data: bytes, signature: bytes, what: str) -> None:
        """`SignatureError` unless one of the signatures in `signature` (`Release.gpg`,
        `repomd.xml.asc`: one or more, armored or not) is a good one over `data` by a key of
        this keyring."""
        try:
            packets = [p for p in PacketPile.from_bytes(signature) if p.tag == Tag.Signature]
        except (RuntimeError, ValueError) as exc:
            raise SignatureError(
                f"{what}: the signature file is not OpenPGP ({_first(exc)})"
            ) from None
        if not packets:
            raise SignatureError(f"{what}: the signature file holds no signature")
        asked: list[str] = []
        last: Exception | None = None
        for packet in packets:
            try:
                sig = pysequoia.Sig.from_bytes(bytes(packet))
                result = pysequoia.verify(bytes=data, store=self._store(asked), signature=sig)
            except (RuntimeError, ValueError) as exc:
                last = exc
                continue
            if result.valid_sigs:
                return
        raise self._failure(what, asked, last)

    def _failure(self, what: str, asked: Sequence[str], exc: Exception | None) -> SignatureError:
        known = [i for i in dict.fromkeys(asked) if i in self.by_id]
        detail = f" ({_first(exc)})" if exc is not None else ""
        if not asked:
            return SignatureError(f"{what} is not signed (no OpenPGP signature found){detail}")
        if not known:
            return SignatureError(
                f"{what} is signed by {', '.join(dict.fromkeys(asked))}, which the keyring "
                f"{self.origin} does not hold"
            )
        return SignatureError(
            f"the signature on {what} by {', '.join(known)} does not verify against the keyring "
            f"{self.origin}: the signed text was changed, or the key had expired or was revoked, "
            f"or its algorithm is refused{detail}"
        )


def _first(exc: BaseException | None) -> str:
    """The first line of an error (Sequoia's carry a backtrace when RUST_BACKTRACE is set)."""
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


_KEYRINGS: dict[str, tuple[tuple[int, int], Keyring]] = {}
_KEYRINGS_LOCK = threading.Lock()


def load_keyring(path: str) -> Keyring:
    """The keyring at `path`: a file of certificates (a binary keyring as apt's `.gpg`, or
    ASCII-armored keys) or a directory of such files. Re-read when a file changes; OSError or
    `SignatureError` when it cannot be read or holds no key."""
    target = Path(path)
    files = (
        sorted(p for p in target.iterdir() if p.suffix in _KEY_SUFFIXES and p.is_file())
        if target.is_dir()
        else [target]
    )
    stamps = [os.stat(f) for f in files]
    stamp = (
        max((s.st_mtime_ns for s in stamps), default=0),
        sum(s.st_size for s in stamps) + len(files),
    )
    with _KEYRINGS_LOCK:
        cached = _KEYRINGS.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    certs: list[pysequoia.Cert] = []
    for file in files:
        try:
            certs.extend(pysequoia.Cert.split_bytes(file.read_bytes()))
        except (RuntimeError, ValueError) as exc:
            raise SignatureError(
                f"keyring {file} holds no OpenPGP certificates ({_first(exc)}); a keybox "
                "(pubring.kbx) is not read: export it with `gpg --export`"
            ) from None
    if not certs:
        raise SignatureError(f"keyring {path} holds no OpenPGP certificates")
    keyring = Keyring.from_certs(path, certs)
    with _KEYRINGS_LOCK:
        _KEYRINGS[path] = (stamp, keyring)
    return keyring
