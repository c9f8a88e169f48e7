"""The cold-path process of `serve` (serving/coldpath.py): `python -m sbomgate.serving._cold FD`.

It reads the server's settings, then policy sets to install or drop and requests to check an
image or evaluate one again, from the socket FD; it answers each request (on a thread of its
own) with the result and what it observed for the server's metrics. It has its own registry
client, caches, facts and evaluation worker processes, built from the same settings as the
server's. It exits when the server's end of the socket closes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from sbomgate._internal import logs
from sbomgate._internal.allocator import tune_allocator
from sbomgate._internal.deadline import Deadline
from sbomgate._internal.gcpause import settle_long_lived
from sbomgate.admission import AdmissionController, Observer
from sbomgate.attest.trust import TrustPolicy
from sbomgate.config import ServeConfig
from sbomgate.errors import SbomgateError
from sbomgate.policy.isolated import EvaluatorPool
from sbomgate.policy.loader import Policy
from sbomgate.runtime import SharedParts, make_controller, shared_parts

log = logging.getLogger("sbomgate.serving.cold")

# Checks at once: as many as the server's own check threads (AdmissionController's pool).
_THREADS = 16


class _Recorder(Observer):
    """What the server's metrics would have counted here, sent with the next answer."""

    def __init__(self) -> None:
        self._events: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def cache_hit(self, cache: str) -> None:
        """A cache hit, counted by the server."""
        with self._lock:
            self._events.append(("cache_hit", cache))

    def evaluation(self, seconds: float) -> None:
        """An evaluation's time, recorded by the server."""
        with self._lock:
            self._events.append(("evaluation", seconds))

    def registry_response(self, host: str, code: str) -> None:
        """A registry response, counted by the server (runtime.RegistryObserver)."""
        with self._lock:
            self._events.append(("registry", host, code))

    def drain(self) -> list[tuple[Any, ...]]:
        """The events since the last drain."""
        with self._lock:
            events, self._events = self._events, []
        return events


class _ColdServer:
    def __init__(self, connection: Connection, config: ServeConfig) -> None:
        self.connection = connection
        self.recorder = _Recorder()
        self.evaluators = EvaluatorPool(config.evaluation_processes, config.evaluation_budget)
        # First what may fail on the settings (the facts), then the workers.
        self.shared: SharedParts = shared_parts(config, self.recorder, self.evaluators)
        self.evaluators.start()
        self.sets: dict[str, AdmissionController | SbomgateError] = {}
        self.threads = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="sbomgate-cold")
        self._send_lock = threading.Lock()

    def install(
        self,
        set_id: str,
        payload: tuple[Sequence[Policy], Sequence[TrustPolicy], Sequence[Mapping[str, Any]]],
    ) -> None:
        policies, trust_policies, quarantine = payload
        try:
            self.sets[set_id] = make_controller(
                self.shared, policies, trust_policies, quarantine=quarantine
            )
        except SbomgateError as exc:  # the server built the same: said with each request
            log.error("policy set not installed", extra=logs.fields(error=str(exc)))
            self.sets[set_id] = exc

    def drop(self, set_id: str) -> None:
        found = self.sets.pop(set_id, None)
        if isinstance(found, AdmissionController):
            found.close()

    def answer(self, kind: str, request: int, set_id: str, arguments: tuple[Any, ...]) -> None:
        ref, seconds, workload_input, only = arguments
        try:
            controller = self.sets.get(set_id)
            if controller is None:
                raise SbomgateError(f"policy set {set_id} is not installed in the cold path")
            if isinstance(controller, SbomgateError):
                raise controller
            deadline = Deadline.after(seconds)
            if kind == "check":
                value: Any = controller.check_image_here(ref, deadline, workload_input, only)
            else:
                value = controller.evaluate_again_here(ref, deadline, workload_input, only)
            message: tuple[Any, ...] = ("answer", request, True, value, self.recorder.drain())
        except Exception as exc:  # said to the caller, who refuses the image with it
            if not isinstance(exc, SbomgateError):
                log.exception("cold-path request failed", extra=logs.fields(image=ref))
            text = str(exc) or type(exc).__name__
            message = ("answer", request, False, text, self.recorder.drain())
        # OSError: the server is gone, and the main loop ends too.
        with self._send_lock, contextlib.suppress(OSError):
            self.connection.send(message)

    def run(self) -> None:
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "install":
                self.install(message[1], message[2])
            elif kind == "drop":
                self.drop(message[1])
            else:
                self.threads.submit(self.answer, kind, *message[1:])


def main(argv: list[str]) -> int:
    """Serve the server's requests on the socket named by argv[1] until it closes."""
    # Ctrl-C reaches the whole process group: the server decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(int(argv[1]))
    try:
        first = connection.recv()
    except (EOFError, OSError):
        return 0
    config: ServeConfig = first[1]
    logs.configure(config.log_level)
    tune_allocator()  # as in serving/server.py: freed cold-image buffers go back to the system
    # Threads parsing large SBOMs hold the GIL in long stretches; a short switch interval
    # lets the thread reading requests and the other checks through meanwhile.
    sys.setswitchinterval(0.001)
    try:
        server = _ColdServer(connection, config)
    except SbomgateError as exc:  # e.g. a facts file that cannot be read: the server says it
        connection.send(("failed", str(exc)))
        return 1
    connection.send(("ready",))
    settle_long_lived()
    try:
        server.run()
    finally:
        server.evaluators.close()
    return 0


if __name__ == "__main__":
    # Not sys.exit: the check threads may still be waiting on registries; nothing of theirs
    # is worth waiting for once the server has gone.
    code = main(sys.argv)
    logging.shutdown()
    os._exit(code)
