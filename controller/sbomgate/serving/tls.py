"""The serving certificate: a TLS 1.2+ context, reloaded when its files change."""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Any

from sbomgate._internal.logs import fields
from sbomgate.errors import InputError

log = logging.getLogger(__name__)


class ReloadingCertificate:
    """The serving certificate, reloaded when its files change, without dropping connections.

    uvicorn's listener keeps the context it started with (`listener`); its SNI callback, which
    OpenSSL calls on every handshake, with or without SNI (the API server connects by IP), hands
    the connection the newest context. A changed pair is loaded into a fresh context, checked,
    and swapped in whole: connections already open keep their certificate, new handshakes get
    the new one, and a broken or half-written pair is logged and the previous one keeps
    serving. (Loading into the live context instead leaves it without a usable key when the
    pair does not match, so every new handshake fails: measured. And a context changed in
    place while the event loop starts a handshake on it is a race inside OpenSSL.)
    """

    def __init__(self, cert: Path, key: Path, interval: float = 2.0) -> None:
        self.cert, self.key, self.interval = cert, key, interval
        try:
            self._stamp: object = self._files()  # before reading: a change meanwhile is seen
        except OSError:
            self._stamp = None  # tls_context says what is wrong
        self.current, self.serial = tls_context(cert, key)
        self.listener = self.current
        self.listener.sni_callback = self._hand_over
        self._failed: object = None
        self._stop = threading.Event()

    def _hand_over(self, connection: Any, server_name: str | None, listener: Any) -> None:
        connection.context = self.current

    def _files(self) -> tuple[tuple[int, int, int], ...]:
        stats = [os.stat(path) for path in (self.cert, self.key)]
        return tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in stats)

    def run(self) -> None:
        """Look for changed files every `interval` seconds until stopped (a thread's body)."""
        while not self._stop.wait(self.interval):
            self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Swap in the pair on disk if it changed and is usable; log (once) if it is not."""
        try:
            stamp: object = self._files()
        except OSError as exc:
            stamp = f"unreadable: {exc}"
        if stamp == self._stamp or stamp == self._failed:
            return False
        try:
            if isinstance(stamp, str):
                raise InputError(f"the certificate or key file is {stamp}")
            context, serial = tls_context(self.cert, self.key)
        except InputError as exc:
            self._failed = stamp  # retried when the files change again
            log.error(
                "certificate reload failed",
                extra=fields(
                    error=str(exc),
                    serving=f"the previous certificate (serial {self.serial:x})",
                ),
            )
            return False
        self.current, self.serial, self._stamp, self._failed = context, serial, stamp, None
        log.info("certificate reloaded", extra=fields(serial=f"{serial:x}"))
        return True

    def stop(self) -> None:
        """End the reload loop (`run`)."""
        self._stop.set()


def tls_context(cert: Path, key: Path) -> tuple[ssl.SSLContext, int]:
    """A TLS 1.2+ server context for the pair, and the certificate's serial; InputError saying
    what is wrong with the files (unreadable, not a whole PEM, a key of another certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the TLS certificate or key: {exc}") from None
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise InputError(f"{cert}: no complete PEM certificate in it") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise InputError(f"{key}: no complete, unencrypted PEM private key in it") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(
        der, public
    ):
        raise InputError(
            f"{key} is not the key of the certificate in {cert} (serial {leaf.serial_number:x})"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:  # e.g. changed again since read above
        raise InputError(f"{cert}, {key}: not a usable TLS certificate and key ({exc})") from None
    return context, leaf.serial_number
