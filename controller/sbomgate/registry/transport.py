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
  another host); bodies are size-capped while streaming; every call has a deadline, and every
  socket read and write (headers and TLS handshakes included) is cut off when it passes, so a
  server trickling one byte at a time cannot hold a request past it.
- 429 and 503 answers may carry Retry-After: `send(retry=True)` waits once when the wait fits
  the deadline (`retry_wait`), and `retry_refusal` says why an answer is final. This is the
  one retry policy: the registry client and the trusted sources both send through it.

httpcore is used directly (not httpx or oras-py/requests) because it lets us own the network
backend, which is where the address check has to live.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import errno
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore

from sbomgate._internal.deadline import Deadline
from sbomgate.errors import (
    InputError,
    RegistryError,
    RegistryNotAllowedError,
    RegistryUnavailableError,
)

__all__ = [
    "MAX_RETRY_WAIT",
    "RETRYABLE",
    "Attempt",
    "MiB",
    "RegistryAccess",
    "RegistryLimits",
    "Response",
    "Transport",
    "is_literal",
    "retry_after",
    "retry_refusal",
    "retry_wait",
    "status_text",
    "url_host",
]

MiB = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryLimits:
    """Caps on what one registry conversation may cost us."""

    max_manifest_bytes: int = 4 * MiB
    # An attestation of syft's default SPDX for a Debian image is about 95 MB (70 MB before base64).
    max_blob_bytes: int = 128 * MiB
    max_referrers: int = 1000
    # Pages of one referrers listing: a registry whose `Link: rel=next` never ends must not hold
    # a check until its deadline (and then look like a fault).
    max_referrer_pages: int = 32
    max_attestations: int = 64  # distinct ones: the same blob listed again counts once
    # Attestation bodies one image may make us download and hold (its own content: over it is
    # the image's failure), and all checks in progress together (see registry/budget.py).
    max_attestation_bytes: int = 128 * MiB
    max_bytes_in_flight: int = 256 * MiB
    # Requests in flight to one registry host: a burst of reviews against a slow registry
    # queues here (each wait bounded by its deadline) instead of opening ever more connections.
    max_requests_per_host: int = 8
    max_redirects: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryAccess:
    """Which registries may be contacted, and how.

    `allowed` are host[:port] patterns (`*` globs, case-insensitive); `insecure` hosts are
    spoken to over plain HTTP; `ca_files` are extra PEM bundles trusted for TLS.
    """

    allowed: tuple[str, ...] = ()
    insecure: frozenset[str] = frozenset()
    ca_files: tuple[str, ...] = ()

    def is_allowed(self, host: str) -> bool:
        """True when `host` is named or matched by a glob in the allowed registries."""
        host = host.lower()
        return any(
            pattern.lower() == host if is_literal(pattern) else fnmatchcase(host, pattern.lower())
            for pattern in self.allowed
        )

    def is_named(self, host: str) -> bool:
        """Named exactly (no glob) in the allow-list: trusted to be a private address."""
        host = host.lower()
        return any(pattern.lower() == host for pattern in self.allowed if is_literal(pattern))

    def check_host(self, host: str) -> None:
        """RegistryNotAllowedError unless `host` is allowed."""
        if not self.is_allowed(host):
            raise RegistryNotAllowedError(
                host,
                "not in the allowed registries; nothing was sent to it "
                "(add it to allowedRegistries, or use --allow-registry, if it is trusted)",
            )

    def scheme_for(self, host: str) -> str:
        """`http` for the insecure registries, else `https`."""
        return "http" if host.lower() in self.insecure else "https"


# IANA's special-purpose ranges that are not globally reachable, spelled out rather than left
# to `is_global` alone: Python's own table has changed between patch releases (CVE-2024-4032),
# and this one must not depend on which Python runs us.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local-use translation
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


_IPV6_LITERAL = re.compile(r"\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def is_literal(pattern: str) -> bool:
    """An allow-list entry naming one host, not a glob. `[::1]:5000` is an IPv6 literal: to
    fnmatch its brackets would be a character class, which never matches the host itself."""
    return not any(c in pattern for c in "*?[") or _IPV6_LITERAL.fullmatch(pattern) is not None


def _is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address are judged by it: a NAT64 gateway (IPv6-only
        # clusters) or a 6to4 relay would otherwise carry us to 10.0.0.1 or 127.0.0.1.
        if ip in _NAT64_LOCAL or ip in _IPV4_COMPATIBLE:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None and not _is_public(str(ip.sixtofour)):
            return False
    if any(ip in network for network in _NOT_PUBLIC if network.version == ip.version):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


class _Budget(threading.local):
    """The deadline of the request this thread is sending, and how much of the answer came."""

    deadline: Deadline | None = None
    received: int = 0


_budget = _Budget()


def _bounded(
    timeout: float | None, error: type[httpcore.TimeoutException] = httpcore.ReadTimeout
) -> float | None:
    """`timeout`, shortened to what is left of the current request's deadline."""
    deadline = _budget.deadline
    if deadline is None:
        return timeout
    remaining = deadline.remaining()
    if remaining <= 0:
        raise error("the time limit was reached")
    return remaining if timeout is None else min(timeout, remaining)


class _ResolveTimeout(httpcore.ConnectTimeout):
    pass


def _resolve(name: str, port: int, timeout: float | None) -> list[Any]:
    """getaddrinfo, given up on after `timeout`: the resolver's own timeouts (5 s a try, a
    Kubernetes search list of five domains) are far longer than an admission deadline. The
    lookup finishes on a daemon thread of its own, which nothing waits for."""
    if timeout is None:
        return list(socket.getaddrinfo(name, port, type=socket.SOCK_STREAM))
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(socket.getaddrinfo(name, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            box.append(exc)

    thread = threading.Thread(target=run, name="sbomgate-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if not box:
        raise _ResolveTimeout(f"{name} could not be resolved within {timeout:.1f} s (DNS)")
    if isinstance(box[0], BaseException):
        raise box[0]
    return list(box[0])


# What a socket read asks for at least (see _DeadlineStream.read).
_READ_BYTES = 256 * 1024


class _DeadlineStream(httpcore.NetworkStream):
    """Every read, write and TLS handshake ends by the current request's deadline: httpcore
    applies its timeouts per socket operation, which a slow trickle never trips."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # At least _READ_BYTES: httpcore asks for 64 KiB at a time, and each read is a round
        # through h11's buffers in Python; a 2.5 MB attestation took 5-9 ms of CPU that way
        # over plain HTTP and 14 ms over TLS, in reads of 256 KiB 3-4 and 9 ms.
        data = self._inner.read(max(max_bytes, _READ_BYTES), _bounded(timeout))
        _budget.received += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


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
        private_ok = _host_port(host, port) in self._private_ok
        try:
            literal = ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None and not private_ok and not _is_public(str(literal)):
            # An address literal is judged as written, before the resolver sees it (a zone
            # index such as fe80::1%eth9 might not even resolve, and must not be a mere fault).
            raise _BlockedAddress(_host_port(host, port), [bare])
        try:
            bound = None if literal is not None else _bounded(timeout, httpcore.ConnectTimeout)
            infos = _resolve(bare, port, bound)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {bare}: {exc}") from None
        addresses = [str(info[4][0]) for info in infos]
        usable = [a for a in addresses if private_ok or _is_public(a)]
        if not usable:
            raise _BlockedAddress(_host_port(host, port), addresses)
        last: Exception | None = None
        for address in usable:
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    _bounded(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options or [],
                )
                return _DeadlineStream(stream)
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


def url_host(url: str) -> str:
    """`host[:port]` of a URL as the allow-list and credentials compare it: lower case, IPv6
    in brackets, the default ports 80 and 443 left out."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return _host_port(host, parts.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """An HTTP response as read: status, lower-cased headers, body and URL."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    # With send(retry=True): the Retry-After wait honoured before this answer, if any.
    waited: float | None = None

    def header(self, name: str) -> str | None:
        """A header's value by name (any case), if present."""
        return self.headers.get(name.lower())


Attempt = Callable[[Callable[[], Response]], Response]
"""How a caller runs each request of a send: given the request, it makes it (in its per-host
slot, counting it, observing the answer) and returns the answer."""


def _directly(request: Callable[[], Response]) -> Response:
    return request()


class Transport:
    """One connection pool, guarded; thread-safe (httpcore's pool is)."""

    def __init__(self, access: RegistryAccess, limits: RegistryLimits) -> None:
        self.access = access
        self.limits = limits
        context = ssl.create_default_context(cafile=certifi.where())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        for ca_file in access.ca_files:
            _load_ca_file(context, ca_file)
        named = [p for p in access.allowed if is_literal(p)]
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=32,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(named),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()

    def check_url(self, url: str, registry: str) -> None:
        """May we send a request to `url` while talking to `registry`?"""
        parts = urlsplit(url)
        host = url_host(url)
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
        retry: bool = False,
        attempt: Attempt = _directly,
    ) -> Response:
        """A request, following redirects; returns the final response with its body.

        `registry` is the host errors name (RegistryError's `host`). With `retry`, a 429 or
        503 whose Retry-After fits the deadline (`retry_wait`) is asked once more after that
        wait, and the answer says how long was waited (`Response.waited`); a second refusal
        is final. Each request is made through `attempt`; the wait happens outside it (a
        caller's per-host slot is not held while sleeping)."""
        waited: float | None = None
        while True:
            response = attempt(
                lambda: self._send(
                    method, url, registry, headers, max_body, deadline, send_credentials_to
                )
            )
            if waited is not None:
                return replace(response, waited=waited)
            wait = retry_wait(response, deadline) if retry else None
            if wait is None:
                return response
            waited = wait
            time.sleep(wait)

    def _send(
        self,
        method: str,
        url: str,
        registry: str,
        headers: Mapping[str, str],
        max_body: int,
        deadline: Deadline,
        send_credentials_to: str | None,
    ) -> Response:
        """One request, following redirects."""
        target = url
        for _hop in range(self.limits.max_redirects + 1):
            self.check_url(target, registry)
            request_headers = dict(headers)
            if send_credentials_to is not None and url_host(target) != send_credentials_to:
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
        host = url_host(url)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise RegistryUnavailableError(
                registry,
                f"timed out: the {deadline.limit():.1f} s time limit was reached before "
                f"{host} could be asked",
            )
        connect = min(self.limits.connect_timeout, remaining)
        read = min(self.limits.read_timeout, remaining)
        timeouts = {"connect": connect, "read": read, "write": read, "pool": connect}
        wire_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        _budget.deadline, _budget.received = deadline, 0
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
                return Response(status=raw.status, headers=response_headers, body=body, url=url)
        except _BlockedAddress as exc:
            raise RegistryNotAllowedError(registry, str(exc)) from None
        except _ResolveTimeout as exc:
            raise RegistryUnavailableError(registry, f"unreachable: {exc}") from None
        except httpcore.ConnectTimeout:
            raise RegistryUnavailableError(
                registry, f"unreachable: no connection to {host} after {connect:.1f} s"
            ) from None
        except httpcore.ConnectError as exc:
            raise RegistryUnavailableError(
                registry, f"unreachable: {_describe_connect_error(exc, host)}"
            ) from None
        except (httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.PoolTimeout):
            raise RegistryUnavailableError(
                registry, _describe_timeout(host, deadline, read, _budget.received)
            ) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            raise RegistryUnavailableError(
                registry, _describe_network_error(exc, host, _budget.received)
            ) from None
        except httpcore.UnsupportedProtocol as exc:
            raise RegistryNotAllowedError(registry, f"unsupported URL: {exc}") from None
        finally:
            _budget.deadline = None

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
            chunks.append(chunk)
        return b"".join(chunks)


def _describe_timeout(host: str, deadline: Deadline, read: float, received: int) -> str:
    if deadline.remaining() <= 0.05:  # the deadline, not one slow read, ended it
        if received:
            return (
                f"timed out: the answer from {host} was incomplete when the "
                f"{deadline.limit():.1f} s time limit was reached ({received} bytes received)"
            )
        return f"timed out: no answer from {host} within the {deadline.limit():.1f} s time limit"
    if received:
        return (
            f"timed out: {host} sent nothing for {read:.1f} s in the middle of its answer "
            f"({received} bytes received)"
        )
    return f"timed out: no answer from {host} within {read:.1f} s"


def _describe_network_error(exc: Exception, host: str, received: int) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__context__
    reset = isinstance(cause, ConnectionResetError) or (
        isinstance(cause, OSError) and cause.errno == errno.ECONNRESET
    )
    if reset or "reset by peer" in text:
        if received:
            return (
                f"connection to {host} was reset in the middle of its answer ({received} bytes in)"
            )
        return f"connection to {host} was reset before any answer"
    if isinstance(exc, httpcore.RemoteProtocolError) and (
        "disconnected" in text or "closed" in text
    ):
        if received:
            return f"connection to {host} was closed in the middle of its answer ({text})"
        return f"connection to {host} was closed before any answer ({text})"
    return f"connection to {host} failed: {text}"


def _describe_connect_error(exc: Exception, host: str) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS certificate of {host} not trusted ({text}); add its CA with --registry-ca"
    if "WRONG_VERSION_NUMBER" in text:
        return f"TLS handshake with {host} failed ({text}); is it a plain-HTTP registry?"
    if "refused" in text.lower():
        return f"{host} refused the connection ({text})"
    if "reset" in text.lower():
        return f"connection to {host} was reset ({text})"
    if text.startswith("cannot resolve"):
        return text
    return f"cannot connect to {host} ({text})"


def _load_ca_file(context: ssl.SSLContext, ca_file: str) -> None:
    """Trust the CAs of a configured bundle; a file that is missing or holds no certificate
    is the user's to fix, said as such (not an SSL traceback)."""
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise InputError(
            f"{ca_file}: not a PEM CA bundle ({exc.reason or exc}); give the registry's CA "
            "certificate(s) in PEM"
        ) from None
    except OSError as exc:
        raise InputError(f"{ca_file}: cannot read CA bundle: {exc.strerror or exc}") from None


# -- Retry-After -------------------------------------------------------------------------

RETRYABLE = frozenset({429, 503})
# The longest Retry-After honoured: an admission review cannot wait longer than this anyway.
MAX_RETRY_WAIT = 5.0


def status_text(status: int) -> str:
    """`answered 429 (rate limited)` and the like: what a refusal names."""
    if status == 429:
        return "answered 429 (rate limited)"
    if status == 503:
        return "answered 503 (unavailable)"
    if status >= 500:
        return f"answered {status} (server error)"
    return f"answered {status}"


def retry_after(response: Response, now: float | None = None) -> float | None:
    """The wait Retry-After asks for (delta-seconds or an HTTP date), in seconds; None when
    absent or unreadable."""
    value = (response.header("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value[:10]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _longest_wait(deadline: Deadline) -> float:
    """At most MAX_RETRY_WAIT, and at most half of what is left: the retry and everything after
    it need the other half."""
    return max(0.0, min(MAX_RETRY_WAIT, deadline.remaining() / 2))


def retry_wait(response: Response, deadline: Deadline) -> float | None:
    """How long to wait before asking once more, or None to refuse now.

    Only a 429 or 503 with a readable Retry-After is retried, once, and only when the wait is
    short (`_longest_wait`): a registry asking for more is refused at once, saying so, instead
    of holding an admission review until its deadline.
    """
    if response.status not in RETRYABLE:
        return None
    wait = retry_after(response)
    if wait is None or wait > _longest_wait(deadline):
        return None
    return wait


def _seconds(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def retry_refusal(response: Response, deadline: Deadline, waited: float | None) -> tuple[str, str]:
    """Why a 429/503 (or other 5xx) is final, as (head, tail): the message is
    `{head} for <what was asked>{tail}`."""
    head = status_text(response.status)
    if waited is not None:
        again = " again" if response.status in RETRYABLE else ""
        return head, f"{again} after waiting {_seconds(waited)} s (Retry-After)"
    raw = (response.header("retry-after") or "").strip()
    if response.status not in RETRYABLE or not raw:
        return head, ""
    wait = retry_after(response)
    if wait is None:
        return head, f"; Retry-After {raw[:60]!r} is not a delay sbomgate can read"
    longest = _seconds(_longest_wait(deadline))
    return head, (
        f"; Retry-After {_seconds(wait)} s is longer than the {longest} s sbomgate waits "
        "within its time limit"
    )
