"""`serve`'s cold path: image checks and policy evaluations that are not cached, in a process of
their own (`python -m sbomgate.serving._cold`).

Why a process: a check of a new build downloads, verifies and parses thousands of packages
and builds their policy inputs, holding the GIL in long stretches. On the server's own threads
a cached review that arrived meanwhile waited for the GIL at each of its socket reads and
writes: 20-40 ms behind one cold check (bench/bench_soak.py: warm p99 53-91 ms at 106
reviews/s of mixed load, where a cached review takes 0.5 ms of CPU). In a process of its own
the cold work only competes for the cores, which the kernel shares out in far finer slices.

The server keeps answering cached reviews itself, from its own caches: each answer from here
carries the entries the cold process's caches keep for the image (its check, without the
SBOM bytes, and its verdict), with the time they have left, and the server keeps the same
(`AdmissionController._keep`). A verdict about to expire is evaluated again here too.

One process serves every policy set of the server: a set is installed with its policies, trust
policies and quarantine entries when the server builds its controller, and dropped when that
controller retires. If the process dies, what was waiting on it fails (the images are refused
as an internal error, never allowed), and the next call starts a new one with every live set.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from typing import Any

from sbomgate._internal.cache import Loaded
from sbomgate._internal.logs import fields
from sbomgate.admission import CheckedImage, ColdPath, Observer
from sbomgate.attest.trust import TrustPolicy
from sbomgate.config import ServeConfig
from sbomgate.errors import ColdPathError
from sbomgate.policy.loader import Policy
from sbomgate.runtime import RegistryObserver
from sbomgate.verdict import Verdict

log = logging.getLogger(__name__)

# Seconds a caller waits beyond its own time for an answer: the cold process bounds registry
# work by the time it is given, but an evaluation may run up to its budget's wall-time limit.
_GRACE = 5.0
# Seconds the process may take to start (imports, facts, evaluation workers).
_STARTUP_SECONDS = 60.0


class ColdProcess:
    """The cold-path process of one server: started on first use, started again if it died."""

    def __init__(self, config: ServeConfig, observer: Observer) -> None:
        self.config = config
        self.observer = observer
        self._lock = threading.Lock()  # the process, its connection, the sets
        self._send_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        # Requests waiting for an answer, with the connection each was sent on.
        self._pending: dict[int, tuple[Connection, Future[Any]]] = {}
        self._ids = itertools.count()
        self._sets: dict[str, tuple[Sequence[Policy], Sequence[TrustPolicy], tuple[Any, ...]]] = {}
        # The longest an evaluation may take (its CPU budget, then at most 3x in wall time).
        self._longest = config.evaluation_budget * 3 + _GRACE
        self._closed = False

    def start(self) -> None:
        """Start the process now rather than at the first cold review."""
        with self._lock:
            self._ensure_started()

    def policy_set(
        self,
        policies: Sequence[Policy],
        trust_policies: Sequence[TrustPolicy],
        quarantine: Sequence[Mapping[str, Any]],
    ) -> ColdPath:
        """Install a policy set there; what its controller calls for cold work."""
        set_id = uuid.uuid4().hex
        payload = (tuple(policies), tuple(trust_policies), tuple(quarantine))
        with self._lock:
            self._sets[set_id] = payload
            if self._connection is not None:
                self._send(("install", set_id, payload))
        return _PolicySet(self, set_id)

    def drop(self, set_id: str) -> None:
        """Drop a retired policy set there."""
        with self._lock:
            if self._sets.pop(set_id, None) is not None and self._connection is not None:
                self._send(("drop", set_id))

    def call(self, kind: str, set_id: str, arguments: tuple[Any, ...], seconds: float) -> Any:
        """Ask the process (`kind`: check or evaluate) and wait for its answer; a
        ColdPathError when it stopped, failed or did not answer in time."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise ColdPathError("the server is stopping")
            self._ensure_started()
            assert self._connection is not None
            request = next(self._ids)
            self._pending[request] = (self._connection, future)
            self._send((kind, request, set_id, arguments))
        try:
            return future.result(timeout=seconds + self._longest)
        except FutureTimeout:
            raise ColdPathError(
                f"the cold-path process did not answer within {seconds + self._longest:g} s"
            ) from None
        finally:
            with self._lock:
                self._pending.pop(request, None)

    def close(self) -> None:
        """Stop the process (what waits on it fails)."""
        with self._lock:
            self._closed = True
            process, connection = self._process, self._connection
            self._process = self._connection = None
        if connection is not None:
            # Shut down, not only closed: the thread reading answers is blocked on this socket,
            # and a close alone would leave it open under that read. The process exits when
            # its end reads as closed.
            with (
                contextlib.suppress(OSError),
                socket.socket(fileno=os.dup(connection.fileno())) as s,
            ):
                s.shutdown(socket.SHUT_RDWR)
            connection.close()
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    # -- the process ------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        alive = self._process is not None and self._process.poll() is None
        if self._connection is not None and alive:
            return
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "sbomgate.serving._cold", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        connection = Connection(ours.detach())
        try:
            connection.send(("config", self.config))
            # It builds its registry client, facts and evaluation workers first: what cannot
            # be built (a facts file that cannot be read) is said here, as the server starts.
            if not connection.poll(_STARTUP_SECONDS):
                raise ColdPathError(f"it did not start within {_STARTUP_SECONDS:g} s")
            started = connection.recv()
        except (EOFError, OSError, ColdPathError) as exc:
            started = ("failed", str(exc) or "it stopped while starting")
        if started[0] != "ready":
            connection.close()
            if process.poll() is None:
                process.kill()
            process.wait(timeout=5)
            raise ColdPathError(f"the cold-path process could not start: {started[1]}")
        self._process, self._connection = process, connection
        for set_id, payload in self._sets.items():
            self._send(("install", set_id, payload))
        threading.Thread(
            target=self._read,
            args=(process, connection),
            name="sbomgate-cold-answers",
            daemon=True,
        ).start()
        log.info("cold-path process started", extra=fields(pid=process.pid))

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._connection is not None
        try:
            with self._send_lock:
                self._connection.send(message)
        except OSError as exc:
            # It died: _read fails what waits, and the next call starts another.
            log.warning("cold-path process unreachable", extra=fields(error=str(exc)))

    def _read(self, process: subprocess.Popen[bytes], connection: Connection) -> None:
        """Hand each answer to its caller; when the process ends, fail whoever still waits."""
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                break
            _, request, ok, value, events = message
            self._replay(events)
            with self._lock:
                _, future = self._pending.get(request, (None, None))
            if future is None or future.done():
                continue  # its caller gave up waiting
            if ok:
                future.set_result(value)
            else:
                future.set_exception(ColdPathError(value))
        code = process.poll()
        with self._lock:
            if self._connection is connection:
                self._process = self._connection = None
            waiting = [f for c, f in self._pending.values() if c is connection]
        stopped = ColdPathError(
            "the cold-path process stopped"
            + (f" (exit code {code})" if code is not None else "")
            + " before answering"
        )
        for future in waiting:
            if not future.done():
                future.set_exception(stopped)
        if not self._closed:
            log.error("cold-path process stopped", extra=fields(pid=process.pid, code=code))

    def _replay(self, events: Sequence[tuple[Any, ...]]) -> None:
        """Count here what the cold process observed (the metrics are served from here)."""
        for event in events:
            if event[0] == "cache_hit":
                self.observer.cache_hit(event[1])
            elif event[0] == "evaluation":
                self.observer.evaluation(event[1])
            elif event[0] == "registry" and isinstance(self.observer, RegistryObserver):
                self.observer.registry_response(event[1], event[2])


class _PolicySet:
    """One policy set's cold path (admission.ColdPath) in the cold process."""

    def __init__(self, host: ColdProcess, set_id: str) -> None:
        self._host = host
        self._set_id = set_id

    def check_image(
        self,
        ref: str,
        seconds: float,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> CheckedImage:
        """The image checked and judged there (AdmissionController.check_image_here)."""
        answer: CheckedImage = self._host.call(
            "check", self._set_id, (ref, seconds, dict(workload_input), only), seconds
        )
        return answer

    def evaluate(
        self,
        ref: str,
        seconds: float,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> Loaded[Verdict]:
        """A new evaluation there (AdmissionController.evaluate_again_here)."""
        answer: Loaded[Verdict] = self._host.call(
            "evaluate", self._set_id, (ref, seconds, dict(workload_input), only), seconds
        )
        return answer

    def close(self) -> None:
        """Drop the set there."""
        self._host.drop(self._set_id)
