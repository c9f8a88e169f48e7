"""Toxiproxy (v2.5.0, built by `make tools` into .cache/bin) for fault-injection tests.

``toxiproxy_server`` starts one ``toxiproxy-server`` per session on a free loopback port and
waits until its API answers; ``toxiproxy`` hands a test a client for it and, afterwards, deletes
the proxies the test made and resets the server (every toxic removed, every proxy enabled), so
one test's faults never reach the next.

A proxy listens on a loopback port of its own (``127.0.0.1:0``: toxiproxy picks one and says
which) and forwards to its upstream; toxics are added per direction (``downstream`` = what the
upstream sends back to us).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
TOXIPROXY_BIN = ROOT / ".cache" / "bin" / "toxiproxy-server"
START_TIMEOUT = 15.0

Stream = Literal["upstream", "downstream"]
TOXICS = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")

__all__ = ["Proxy", "Toxiproxy", "ToxiproxyError", "toxiproxy", "toxiproxy_server"]


class ToxiproxyError(Exception):
    """The toxiproxy API refused a call (the status and its answer are in the message)."""


@dataclass
class Toxiproxy:
    """A typed client for toxiproxy's HTTP API (stdlib only)."""

    api: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path | None = None
    created: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.api}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ToxiproxyError(
                f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}"
            ) from None
        return json.loads(raw) if raw.strip() else None

    def version(self) -> str:
        request = urllib.request.Request(f"{self.api}/version")
        with urllib.request.urlopen(request, timeout=2) as response:
            return str(response.read().decode().strip())

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Proxy:
        """A proxy to `upstream` (host:port) on `listen` (port 0: one toxiproxy chooses)."""
        answer = self.call(
            "POST",
            "/proxies",
            {"name": name, "listen": listen, "upstream": upstream, "enabled": True},
        )
        self.created.append(name)
        return Proxy(self, name, str(answer["listen"]), upstream)

    def delete(self, name: str) -> None:
        self.call("DELETE", f"/proxies/{name}")

    def reset(self) -> None:
        """Every toxic removed and every proxy enabled."""
        self.call("POST", "/reset")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass
class Proxy:
    client: Toxiproxy
    name: str
    listen: str  # "127.0.0.1:PORT": what goes into image references and source URLs
    upstream: str

    def add_toxic(
        self,
        kind: str,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: Any,
    ) -> str:
        """Add a toxic (`TOXICS`); returns its name (for `remove_toxic`)."""
        if kind not in TOXICS:
            raise ToxiproxyError(f"unknown toxic {kind!r}: one of {', '.join(TOXICS)}")
        toxic_name = name or f"{kind}_{stream}"
        self.client.call(
            "POST",
            f"/proxies/{self.name}/toxics",
            {
                "name": toxic_name,
                "type": kind,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return toxic_name

    def remove_toxic(self, name: str) -> None:
        self.client.call("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def toxics(self) -> list[dict[str, Any]]:
        return list(self.client.call("GET", f"/proxies/{self.name}/toxics"))

    def heal(self) -> None:
        """Every toxic gone and live connections cut: the proxy is deleted and made again on
        the same address (removing a toxic can block while a connection is held in it)."""
        self.client.delete(self.name)
        self.client.call(
            "POST",
            "/proxies",
            {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": True},
        )

    def set_enabled(self, enabled: bool) -> None:
        """Disabled: the listener is closed and live connections are cut (refused, not hung)."""
        self.client.call(
            "POST",
            f"/proxies/{self.name}",
            {"enabled": enabled, "listen": self.listen, "upstream": self.upstream},
        )


def start_toxiproxy(directory: Path) -> Toxiproxy:
    if not TOXIPROXY_BIN.exists():
        pytest.fail(f"{TOXIPROXY_BIN} is not built: run `make tools` (make test does it for you)")
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "toxiproxy.log"
    last: Exception | None = None
    for _attempt in range(3):  # the free port can be taken between probing and binding
        port = free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(TOXIPROXY_BIN), "-host", "127.0.0.1", "-port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"LOG_LEVEL": "warn", "PATH": "/usr/bin:/bin"},
                start_new_session=True,
            )
        server = Toxiproxy(f"http://127.0.0.1:{port}", process, log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                server.version()
                return server
            except OSError as exc:
                last = exc
                time.sleep(0.05)
        server.stop()
    tail = log.read_text(errors="replace")[-3000:]
    pytest.fail(f"toxiproxy-server did not start ({last}); its log:\n{tail}")


@pytest.fixture(scope="session")
def toxiproxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toxiproxy]:
    server = start_toxiproxy(tmp_path_factory.mktemp("toxiproxy"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def toxiproxy(toxiproxy_server: Toxiproxy) -> Iterator[Toxiproxy]:
    """The session's server, clean; the proxies this test creates are deleted after it."""
    toxiproxy_server.reset()
    toxiproxy_server.created.clear()
    try:
        yield toxiproxy_server
    finally:
        for name in toxiproxy_server.created:
            with contextlib.suppress(ToxiproxyError):
                toxiproxy_server.delete(name)
        toxiproxy_server.created.clear()
        toxiproxy_server.reset()
