"""A small HTTP front for a real registry: relays, counts, and (for a few cases) lies.

Real registries cannot be made to lie by User-Agent or to paginate forever, so for those cases
(sections 4 and 8) this front stands between sbomgate and the real registry: it relays every
request upstream and records it, unless the case's `answer` hook answers in its place. The
counting alone (sections 3 and 8: how many blobs, how many referrers pages) is also done here,
since the OCI referrers registry keeps no request log.

The front listens on plain HTTP (sbomgate is told it is an insecure registry) and speaks to
its upstream as the registry requires (HTTP, or HTTPS verified against the test CA).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support.registry_servers import RegistryServer

CHUNK = 1 << 20
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query
    user_agent: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""


# A hook gets the request and the front; it returns an Answer, or None to relay upstream.
Hook = Callable[["RegistryFront", Seen], Answer | None]


class RegistryFront:
    def __init__(self, upstream: RegistryServer, answer: Hook | None = None) -> None:
        self.upstream = upstream
        self.answer = answer
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                front.handle(self)

            def do_HEAD(self) -> None:
                front.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self, method: str, contains: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.method == method and contains in s.path)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        seen = Seen(handler.command, handler.path, handler.headers.get("User-Agent") or "")
        with self._lock:
            self.seen.append(seen)
        made = self.answer(self, seen) if self.answer is not None else None
        if made is not None:
            handler.send_response(made.status)
            for name, value in made.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(made.body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(made.body)
            return
        self.relay(handler)

    def connect(self) -> http.client.HTTPConnection:
        host, port = self.upstream.host.rsplit(":", 1)
        if self.upstream.scheme == "https":
            return http.client.HTTPSConnection(
                host, int(port), timeout=30, context=self.upstream.ssl_context()
            )
        return http.client.HTTPConnection(host, int(port), timeout=30)

    def fetch(self, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        """GET from the real registry (for hooks that answer with real content)."""
        connection = self.connect()
        connection.request("GET", path, headers=headers)
        return connection.getresponse()

    def relay(self, handler: BaseHTTPRequestHandler) -> None:
        connection = self.connect()
        try:
            headers = {
                k: v for k, v in handler.headers.items() if k.lower() not in {"host", *HOP_BY_HOP}
            }
            connection.request(handler.command, handler.path, headers=headers)
            upstream = connection.getresponse()
            length = upstream.getheader("Content-Length")
            body = b"" if length is not None or handler.command == "HEAD" else upstream.read()
            handler.send_response(upstream.status)
            for name, value in upstream.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            handler.send_header("Content-Length", length if length is not None else str(len(body)))
            handler.end_headers()
            if handler.command == "HEAD":
                return
            if body:
                handler.wfile.write(body)
                return
            # Streamed: big blobs pass through without being held here.
            while chunk := upstream.read(CHUNK):
                handler.wfile.write(chunk)
        except (ConnectionError, TimeoutError):
            pass  # sbomgate gave up on this answer (a bound it keeps): nothing to relay to
        finally:
            connection.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
