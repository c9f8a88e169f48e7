"""Image references are attacker-controlled: no spelling of an internal address gets a packet.

Every case here is proven "refused before any connection is made" two ways: a real listener
on loopback (IPv4 and IPv6, same port) that counts the connections it accepted, and a recorder
on `socket.create_connection` (what httpcore's backend connects with) that sees every attempt;
addresses off this machine are never really dialled (the recorder refuses them itself). Each
group has a positive control that shows the listener and recorder do see a connection when one
is allowed, so a silent "0 connections" cannot come from a broken probe.

DNS cannot be controlled for real here, so names resolving to private addresses are made by
patching `socket.getaddrinfo` (what the transport resolves with); `localhost` is the real one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sbomgate.errors import InputError, RegistryError, RegistryNotAllowedError
from sbomgate.intel.sources import SourceConfig, TrustedSources
from sbomgate.registry import RegistryAccess, RegistryClient, RegistryLimits, parse_reference
from sbomgate.sbom.model import Component

GUARD = "private, loopback or link-local addresses are refused"
NOT_ALLOWED = "not in the allowed registries"


class Listener:
    """127.0.0.1:PORT and [::1]:PORT, counting accepted connections."""

    def __init__(self) -> None:
        for _attempt in range(20):
            v4 = socket.socket(socket.AF_INET)
            v4.bind(("127.0.0.1", 0))
            self.port = int(v4.getsockname()[1])
            v6 = socket.socket(socket.AF_INET6)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                v6.bind(("::1", self.port))
            except OSError:
                v4.close()
                v6.close()
                continue
            self.sockets = [v4, v6]
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        for s in self.sockets:
            s.listen(16)
            s.setblocking(False)

    def connections(self) -> int:
        count = 0
        for s in self.sockets:
            while True:
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
        return count

    def close(self) -> None:
        for s in self.sockets:
            s.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


@dataclass
class Dials:
    """Every address httpcore tried to connect to; only loopback ones are really dialled."""

    calls: list[tuple[str, int]] = field(default_factory=list)

    def to(self, port: int) -> list[tuple[str, int]]:
        return [c for c in self.calls if c[1] == port]


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> Dials:
    record = Dials()
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = str(address[0]), int(address[1])
        record.calls.append((host, port))
        if host in ("127.0.0.1", "::1"):
            return real(address, *args, **kwargs)
        raise ConnectionRefusedError(f"test: {host} is not dialled for real")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return record


def client(*allowed: str, insecure: tuple[str, ...] = (), timeout: float = 3.0) -> RegistryClient:
    access = RegistryAccess(allowed=allowed, insecure=frozenset(insecure))
    return RegistryClient(access, limits=RegistryLimits(connect_timeout=1.0), timeout=timeout)


def resolve(
    allowed: tuple[str, ...], ref: str, insecure: tuple[str, ...] = (), timeout: float = 3.0
) -> Exception:
    """Resolve `ref`; return the error it must end in (failing the test if it succeeds)."""
    made = client(*allowed, insecure=insecure, timeout=timeout)
    try:
        made.resolve(parse_reference(ref))
    except (RegistryError, InputError) as exc:
        return exc
    finally:
        made.close()
    raise AssertionError(f"{ref} was resolved")


# --------------------------------------------------------------------------- positive controls


def test_probe_sees_a_connection_that_is_allowed(listener: Listener, dials: Dials) -> None:
    """Named exactly, loopback is allowed (an in-cluster registry): the probes see it, on
    IPv4 and IPv6. The listener never answers, so this ends in a (short) timeout."""
    for host in (f"127.0.0.1:{listener.port}", f"[::1]:{listener.port}"):
        error = resolve((host,), f"{host}/acme/app:v1", insecure=(host,), timeout=0.5)
        assert "timed out" in str(error), error
    assert listener.connections() == 2
    assert set(dials.to(listener.port)) == {("127.0.0.1", listener.port), ("::1", listener.port)}


# --------------------------------------------------------------------------- loopback spellings

LOOPBACK = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "017700000001",
    "127.255.255.254",
    "localhost",
    "LocalHost",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::1]",
    "0.0.0.0",
    "0",
    "[::]",
]


@pytest.mark.parametrize("spelling", LOOPBACK)
@pytest.mark.parametrize("pattern", ["*", "{host}:*"], ids=["glob-all", "glob-this-host"])
def test_loopback_in_every_spelling_is_refused_before_connecting(
    spelling: str, pattern: str, listener: Listener, dials: Dials
) -> None:
    ref = f"{spelling}:{listener.port}/acme/app:v1"
    host = parse_reference(ref).registry
    allowed = pattern.format(host=host.split(":")[0] if not host.startswith("[") else "*")
    error = resolve((allowed,), ref, insecure=(host,))
    assert isinstance(error, RegistryNotAllowedError), error
    assert GUARD in str(error) and host in str(error), error
    assert listener.connections() == 0 and dials.calls == []


# --------------------------------------------------------------------------- private ranges

PRIVATE = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "100.64.0.1",  # CGNAT (RFC 6598)
    "100.127.255.254",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "192.0.0.8",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "[fc00::1]",
    "[fd00:ec2::254]",  # AWS metadata over IPv6
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254: an IPv6-only cluster's gateway
    "[64:ff9b::10.0.0.1]",
    "[64:ff9b:1::a00:1]",  # local-use NAT64 prefix
    "[2002:a00:1::1]",  # 6to4 of 10.0.0.1
    "[::a00:1]",  # IPv4-compatible 10.0.0.1
    "[ff02::1]",
]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_link_local_and_special_ranges_are_refused_before_connecting(
    address: str, dials: Dials
) -> None:
    ref = f"{address}:5000/acme/app:v1"
    try:
        host = parse_reference(ref).registry
    except InputError as exc:  # e.g. a zone index the reference grammar does not take
        assert "invalid image reference" in str(exc)
        return
    error = resolve(("*",), ref, insecure=(host,))
    assert isinstance(error, RegistryNotAllowedError), error
    assert GUARD in str(error), error
    assert dials.calls == []


def test_public_addresses_are_not_refused_by_the_guard(dials: Dials) -> None:
    """The other side: a public address under a glob is dialled (the recorder refuses it, so
    nothing leaves this machine); NAT64 and 6to4 forms of public addresses too."""
    for host in ("8.8.8.8:5000", "[64:ff9b::808:808]:5000", "[2002:808:808::1]:5000"):
        error = resolve(("*",), f"{host}/acme/app:v1", insecure=(host,))
        assert "unreachable" in str(error), error
    assert [port for _, port in dials.calls] == [5000, 5000, 5000]


# --------------------------------------------------------------------------- allow-list


def test_hosts_not_allowed_get_no_connection(listener: Listener, dials: Dials) -> None:
    port = listener.port
    cases = [
        ((), f"127.0.0.1:{port}/acme/app:v1"),
        (("registry.example",), f"127.0.0.1:{port}/acme/app:v1"),
        # Another port of an allowed host is another registry.
        ((f"127.0.0.1:{port + 1}",), f"127.0.0.1:{port}/acme/app:v1"),
        (("localhost",), f"localhost:{port}/acme/app:v1"),
        (("127.0.0.1",), f"127.0.0.1:{port}/acme/app:v1"),
        # Another spelling of an allowed address is not the allowed name.
        ((f"127.0.0.1:{port}",), f"127.1:{port}/acme/app:v1"),
        ((f"127.0.0.1:{port}",), f"localhost:{port}/acme/app:v1"),
        ((f"[::1]:{port}",), f"[::ffff:127.0.0.1]:{port}/acme/app:v1"),
        # A glob's brackets are a character class: `[::1]` matches one ':' or '1'.
        (("[::1]:*",), f"1:{port}/acme/app:v1"),
        (("*.example",), f"127.0.0.1:{port}/acme/app:v1"),
    ]
    for allowed, ref in cases:
        error = resolve(allowed, ref, insecure=(parse_reference(ref).registry,))
        assert isinstance(error, RegistryNotAllowedError), (allowed, ref, error)
        assert NOT_ALLOWED in str(error) or GUARD in str(error), (allowed, ref, error)
    assert listener.connections() == 0 and dials.calls == []


@pytest.mark.parametrize(
    "ref",
    [
        "user:pw@127.0.0.1:{port}/acme/app:v1",
        "user@127.0.0.1:{port}/acme/app:v1",
        "user:pw@127.0.0.1:{port}/acme/app@sha256:" + "a" * 64,
        "127.0.0.1:{port}@127.0.0.1:{port}/acme/app",
        "http://127.0.0.1:{port}/acme/app:v1",
        "//127.0.0.1:{port}/acme/app:v1",
        "127.0.0.1:{port}\\@evil/acme/app:v1",
        "127.0.0.1:{port}#@evil/acme/app:v1",
        "127.0.0.1:{port}?@evil/acme/app:v1",
        "127.0.0.1:{port} /acme/app:v1",
        "[::1%lo]:{port}/acme/app:v1",
    ],
)
def test_userinfo_schemes_and_junk_in_references_are_refused(
    ref: str, listener: Listener, dials: Dials
) -> None:
    text = ref.format(port=listener.port)
    host = f"127.0.0.1:{listener.port}"
    made = client(host, "*", insecure=(host,))
    try:
        with pytest.raises((InputError, RegistryNotAllowedError)) as caught:
            made.resolve(parse_reference(text))
    finally:
        made.close()
    assert "invalid image reference" in str(caught.value) or GUARD in str(caught.value)
    assert listener.connections() == 0 and dials.calls == []


# --------------------------------------------------------------------------- DNS


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], None]:
    """Make names resolve to the given addresses (other names resolve for real)."""

    def install(table: dict[str, list[str]]) -> None:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host.lower() in table:
                out = []
                for address in table[host.lower()]:
                    family = socket.AF_INET6 if ":" in address else socket.AF_INET
                    sockaddr: tuple[Any, ...] = (
                        (address, int(port), 0, 0) if ":" in address else (address, int(port))
                    )
                    out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
                return out
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    return install


def test_names_resolving_to_private_addresses_are_refused_after_resolution(
    dns: Callable[[dict[str, list[str]]], None], listener: Listener, dials: Dials
) -> None:
    dns(
        {
            "loop.corp.example": ["127.0.0.1"],
            "inside.corp.example": ["10.0.0.7"],
            "metadata.corp.example": ["169.254.169.254"],
            "six.corp.example": ["::1"],
            "mapped.corp.example": ["::ffff:127.0.0.1"],
            "mixed.corp.example": ["10.0.0.8", "127.0.0.1", "fd00::1"],
        }
    )
    for name in ("loop", "inside", "metadata", "six", "mapped", "mixed"):
        host = f"{name}.corp.example:{listener.port}"
        error = resolve(("*.corp.example:*",), f"{host}/acme/app:v1", insecure=(host,))
        assert isinstance(error, RegistryNotAllowedError), error
        assert f"{host} resolves to" in str(error) and GUARD in str(error), error
    assert listener.connections() == 0 and dials.calls == []


def test_only_the_checked_public_address_of_a_name_is_dialled(
    dns: Callable[[dict[str, list[str]]], None], dials: Dials
) -> None:
    """A name with a public and a private address: the connection goes to the address that
    was checked (the public one), never to the name again (no DNS rebinding in between)."""
    dns({"both.corp.example": ["127.0.0.1", "93.184.215.14", "10.0.0.9"]})
    error = resolve(("*.corp.example:*",), "both.corp.example:5000/acme/app:v1")
    assert "unreachable" in str(error), error
    assert dials.calls == [("93.184.215.14", 5000)]


def test_real_localhost_under_a_glob_is_refused(listener: Listener, dials: Dials) -> None:
    for pattern in ("*", "localhost:*", "local*"):
        error = resolve((pattern,), f"localhost:{listener.port}/acme/app:v1")
        assert isinstance(error, RegistryNotAllowedError) and GUARD in str(error), error
    assert listener.connections() == 0 and dials.calls == []


# --------------------------------------------------------------------------- redirects, realms


class Answering:
    """A registry on loopback (named exactly in the allow-list, plain HTTP) whose every
    answer is `self.respond(handler)` (switched between cases)."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.hits = 0
        self.respond = respond
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                outer.respond(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, respond: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.respond = respond
        self.hits = 0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def registry() -> Iterator[Answering]:
    made = Answering(lambda handler: handler.send_error(500))
    yield made
    made.close()


def _status(status: int, headers: dict[str, str]) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return respond


def _targets(port: int) -> list[str]:
    """Where a hostile registry may send us: loopback spellings on the listener's port,
    private and metadata addresses, credentials in the URL, other schemes."""
    return [
        *(
            f"https://{h}:{port}/x"
            for h in ("127.0.0.1", "127.1", "2130706433", "0x7f000001", "localhost", "[::1]")
        ),
        f"https://[::ffff:127.0.0.1]:{port}/x",
        f"http://127.0.0.1:{port}/x",
        f"http://localhost:{port}/x",
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://10.0.0.1/x",
        "https://172.16.0.1/x",
        "https://192.168.0.1/x",
        "https://100.64.0.1/x",
        "https://[fe80::1]/x",
        "https://[fc00::1]/x",
        "https://0.0.0.0/x",
        f"https://user:pw@127.0.0.1:{port}/x",
        "https://user:pw@registry.example/x",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{port}/x",
    ]


def _no_connection_but_the_registry(dials: Dials, listener: Listener, registry: Answering) -> None:
    assert listener.connections() == 0
    assert all(call == ("127.0.0.1", registry.port) for call in dials.calls), dials.calls
    dials.calls.clear()  # the next case has a registry of its own


def test_redirects_to_internal_targets_are_refused_before_connecting(
    listener: Listener, dials: Dials, registry: Answering
) -> None:
    for target in _targets(listener.port):
        registry.answer(_status(307, {"Location": target}))
        error = resolve((registry.host,), f"{registry.host}/acme/app:v1", insecure=(registry.host,))
        assert isinstance(error, RegistryNotAllowedError), (target, error)
        message = str(error)
        assert (
            GUARD in message
            or "refused plain HTTP" in message
            or "with credentials in it" in message
            or "refused to follow" in message
        ), (target, message)
        assert registry.hits == 1, target
        _no_connection_but_the_registry(dials, listener, registry)


def test_token_realms_to_internal_targets_are_refused_before_connecting(
    listener: Listener, dials: Dials, registry: Answering
) -> None:
    for target in _targets(listener.port):
        challenge = f'Bearer realm="{target}",service="registry",scope="repository:acme/app:pull"'
        registry.answer(_status(401, {"WWW-Authenticate": challenge}))
        error = resolve((registry.host,), f"{registry.host}/acme/app:v1", insecure=(registry.host,))
        assert isinstance(error, RegistryNotAllowedError), (target, error)
        assert registry.hits == 1, target
        _no_connection_but_the_registry(dials, listener, registry)


def test_redirect_to_another_port_of_the_same_host_is_another_host(
    listener: Listener, dials: Dials, registry: Answering
) -> None:
    """The registry is named exactly (so it may be private); another port on its address is
    not, whether the redirect says HTTP or HTTPS."""
    for scheme in ("http", "https"):
        registry.answer(_status(302, {"Location": f"{scheme}://127.0.0.1:{listener.port}/v2/"}))
        error = resolve((registry.host,), f"{registry.host}/acme/app:v1", insecure=(registry.host,))
        assert isinstance(error, RegistryNotAllowedError), error
        _no_connection_but_the_registry(dials, listener, registry)


def test_trusted_source_redirects_are_checked_too(
    listener: Listener, dials: Dials, registry: Answering
) -> None:
    """Source URLs come from the configuration, but what they answer does not."""
    component = Component("foo", "1.0", "pkg:pypi/foo@1.0", "pypi", format="python")
    for target in (
        f"https://127.0.0.1:{listener.port}/simple/foo/",
        f"http://127.0.0.1:{listener.port}/simple/foo/",
        "https://169.254.169.254/latest/meta-data/",
    ):
        registry.answer(_status(302, {"Location": target}))
        config = SourceConfig("internal", "pypi", f"http://{registry.host}/simple/")
        with TrustedSources([config], timeout=3) as sources:
            answer = sources.lookup(component)
        assert answer.error is not None and answer.repository is None, answer
        assert answer.error.startswith(f"internal ({registry.host}): "), answer.error
        assert GUARD in answer.error or "refused plain HTTP" in answer.error, answer.error
        _no_connection_but_the_registry(dials, listener, registry)


def test_the_guard_runs_for_every_connection_not_once(listener: Listener, dials: Dials) -> None:
    """Two checks in a row through one client: no pooled connection or cached answer lets the
    second one through."""
    made = client("*")
    try:
        for _ in range(2):
            with contextlib.suppress(RegistryNotAllowedError):
                made.resolve(parse_reference(f"localhost:{listener.port}/acme/app:v1"))
    finally:
        made.close()
    assert listener.connections() == 0 and dials.calls == []
