"""HTTP to registries, with the guards that attacker-controlled image references need.

- A registry host must be allowed before anything is sent (`RegistryAccess.check_host`).
- Every TCP connection goes through `_GuardedBackend`: the name is resolved once, the
  addresses are checked, and the connection is made to the checked address (no DNS rebinding
  between check and use). A host named exactly in the allow-list may be private (an in-cluster
  registry); a host matched only by a glob, a redirect target or a token realm on another host
  must resolve to public addresses, so no wildcard or redirect reaches internal services.
- TLS 1.2+ always, verified against certifi's roots plus configured CA files; plain HTTP only
  to hosts listed as insecure.
- Redirects are followed by hand (bounded, each hop checked, credentials never follow a hop to
  another host); bodies are size-capped while streaming; every call has a deadline.

httpcore is used directly (not httpx or oras-py/requests) because it lets us own the network
backend, which is where the address check has to live.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore

from sbomgate.errors import RegistryError, RegistryNotAllowedError, RegistryUnavailableError

MiB = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    """Caps on what one registry conversation may cost us."""

    max_manifest_bytes: int = 4 * MiB
    max_blob_bytes: int = 64 * MiB
    max_referrers: int = 1000
    max_attestations: int = 64
    max_redirects: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class RegistryAccess:
    """Which registries may be contacted, and how.

    `allowed` are host[:port] patterns (`*` globs, case-insensitive); `insecure` hosts are
    spoken to over plain HTTP; `ca_files` are extra PEM bundles trusted for TLS.
    """

    allowed: tuple[str, ...] = ()
    insecure: frozenset[str] = frozenset()
    ca_files: tuple[str, ...] = ()

    def is_allowed(self, host: str) -> bool:
        host = host.lower()
        return any(fnmatchcase(host, pattern.lower()) for pattern in self.allowed)

    def is_named(self, host: str) -> bool:
        """Named exactly (no glob) in the allow-list: trusted to be a private address."""
        host = host.lower()
        return any(pattern.lower() == host for pattern in self.allowed)

    def check_host(self, host: str) -> None:
        if not self.is_allowed(host):
            raise RegistryNotAllowedError(
                host,
                "not in the allowed registries; nothing was sent to it "
                "(add it to allowedRegistries, or use --allow-registry, if it is trusted)",
            )

    def scheme_for(self, host: str) -> str:
        return "http" if host.lower() in self.insecure else "https"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolve, check, then connect to the checked address."""

    def __init__(self, private_ok: Iterable[str]) -> None:
        self._private_ok = {h.lower() for h in private_ok}
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bare = host.strip("[]")
        try:
            infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {bare}: {exc}") from None
        private_ok = _host_port(host, port) in self._private_ok
        addresses = [str(info[4][0]) for info in infos]
        usable = [a for a in addresses if private_ok or _is_public(a)]
        if not usable:
            raise _BlockedAddress(_host_port(host, port), addresses)
        last: Exception | None = None
        for address in usable:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options or []
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _BlockedAddress(httpcore.ConnectError):
    def __init__(self, host: str, addresses: list[str]) -> None:
        super().__init__(
            f"{host} resolves to {', '.join(sorted(set(addresses)))}: private, loopback or "
            "link-local addresses are refused unless the registry is named exactly in the "
            "allowed registries"
        )
        self.host = host


def _host_port(host: str, port: int | None) -> str:
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port in (None, 80, 443) else f"{host}:{port}"


def _url_host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return _host_port(host, parts.port)


@dataclass(slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class Deadline:
    """When an operation must have finished (monotonic clock)."""

    expires: float
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        now = time.monotonic()
        return cls(now + seconds, now)

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Transport:
    """One connection pool, guarded; thread-safe (httpcore's pool is)."""

    def __init__(self, access: RegistryAccess, limits: RegistryLimits) -> None:
        self.access = access
        self.limits = limits
        context = ssl.create_default_context(cafile=certifi.where())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        for ca_file in access.ca_files:
            context.load_verify_locations(cafile=ca_file)
        named = [p for p in access.allowed if not any(c in p for c in "*?[")]
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=32,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(named),
        )

    def close(self) -> None:
        self._pool.close()

    def check_url(self, url: str, registry: str) -> None:
        """May we send a request to `url` while talking to `registry`?"""
        parts = urlsplit(url)
        host = _url_host(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryNotAllowedError(registry, f"refused to follow {url[:200]!r}")
        if parts.username or parts.password:
            raise RegistryNotAllowedError(registry, "refused a URL with credentials in it")
        if parts.scheme == "http" and host not in self.access.insecure:
            raise RegistryNotAllowedError(
                registry, f"refused plain HTTP to {host} (not listed as an insecure registry)"
            )
        # Other hosts (blob CDNs, token services) are allowed over HTTPS, but the guarded
        # backend only lets them reach public addresses unless they are named exactly.

    def send(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str],
        max_body: int,
        deadline: Deadline,
        send_credentials_to: str | None = None,
    ) -> Response:
        """One request, following redirects; returns the final response with its body."""
        target = url
        for _hop in range(self.limits.max_redirects + 1):
            self.check_url(target, registry)
            request_headers = dict(headers)
            if send_credentials_to is not None and _url_host(target) != send_credentials_to:
                request_headers.pop("Authorization", None)
            response = self._once(method, target, registry, request_headers, max_body, deadline)
            if response.status not in _REDIRECTS:
                return response
            location = response.header("location")
            if not location:
                raise RegistryError(registry, f"redirect {response.status} without a Location")
            target = urljoin(target, location)
            if response.status == 303:
                method = "GET"
        raise RegistryError(registry, f"more than {self.limits.max_redirects} redirects")

    def _once(
        self,
        method: str,
        url: str,
        registry: str,
        headers: Mapping[str, str],
        max_body: int,
        deadline: Deadline,
    ) -> Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise RegistryUnavailableError(
                registry, f"no answer within the {deadline.expires - deadline.started:.1f} s limit"
            )
        connect = min(self.limits.connect_timeout, remaining)
        read = min(self.limits.read_timeout, remaining)
        timeouts = {"connect": connect, "read": read, "write": read, "pool": connect}
        wire_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        try:
            with self._pool.stream(
                method, url, headers=wire_headers, extensions={"timeout": timeouts}
            ) as raw:
                response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw.headers
                }
                body = b""
                if raw.status not in _REDIRECTS and method != "HEAD":
                    body = self._read_capped(raw, response_headers, max_body, registry, deadline)
                return Response(raw.status, response_headers, body, url)
        except _BlockedAddress as exc:
            raise RegistryNotAllowedError(registry, str(exc)) from None
        except httpcore.ConnectTimeout:
            raise RegistryUnavailableError(
                registry, f"unreachable: no connection to {_url_host(url)} after {connect:.1f} s"
            ) from None
        except httpcore.ConnectError as exc:
            raise RegistryUnavailableError(
                registry, f"unreachable: {_describe_connect_error(exc)}"
            ) from None
        except httpcore.ReadTimeout:
            raise RegistryUnavailableError(
                registry, f"no answer from {_url_host(url)} within {read:.1f} s"
            ) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            raise RegistryUnavailableError(
                registry, f"connection to {_url_host(url)} failed: {exc or type(exc).__name__}"
            ) from None
        except httpcore.UnsupportedProtocol as exc:
            raise RegistryNotAllowedError(registry, f"unsupported URL: {exc}") from None

    def _read_capped(
        self,
        raw: httpcore.Response,
        headers: Mapping[str, str],
        max_body: int,
        registry: str,
        deadline: Deadline,
    ) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise RegistryError(
                registry, f"response of {int(declared)} bytes is over the {max_body} byte limit"
            )
        chunks: list[bytes] = []
        total = 0
        for chunk in raw.iter_stream():
            total += len(chunk)
            if total > max_body:
                raise RegistryError(registry, f"response is over the {max_body} byte limit")
            if deadline.remaining() <= 0:
                raise RegistryUnavailableError(
                    registry, "response still arriving when the time limit was reached"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _describe_connect_error(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS certificate not trusted ({text}); add its CA with --registry-ca"
    if "WRONG_VERSION_NUMBER" in text:
        return f"TLS handshake failed ({text}); is it a plain-HTTP registry?"
    return text
