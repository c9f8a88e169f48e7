"""Running the webhooks: HTTPS only (there is no plaintext listener), a certificate reloaded
from its files, worker processes for evaluation, and a drain on SIGTERM before stopping."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from fastapi import FastAPI

from sbomgate._internal import logs
from sbomgate._internal.allocator import tune_allocator
from sbomgate._internal.gcpause import settle_long_lived
from sbomgate._internal.logs import fields
from sbomgate.config import ServeConfig
from sbomgate.errors import InputError
from sbomgate.runtime import build_controller
from sbomgate.serving.app import create_app
from sbomgate.serving.coldpath import ColdProcess
from sbomgate.serving.metrics import Metrics
from sbomgate.serving.tls import ReloadingCertificate

log = logging.getLogger(__name__)
DRAIN_QUIET_SECONDS = 1.0  # no review for this long: the balancers have stopped sending
DRAIN_MAX_SECONDS = 10.0


def serve(config: ServeConfig) -> None:
    """Run the webhooks until stopped (SIGTERM drains first; see `_draining_server`)."""
    import uvicorn

    if config.tls_cert is None or config.tls_key is None:
        raise InputError("a TLS certificate and key are required (tls.certFile / --tls-cert)")
    certificate = ReloadingCertificate(config.tls_cert, config.tls_key)  # before anything starts
    logs.configure(config.log_level)
    # Two malloc arenas and a fixed mmap threshold, before any thread starts: freed cold-image
    # buffers go back to the system (see _internal/allocator.py for the measurement).
    tune_allocator()
    # Threads parsing and verifying large SBOMs hold the GIL in long stretches (evaluation
    # runs in worker processes); a 1 ms switch interval (5 ms by default) lets cached reviews
    # on other threads through meanwhile.
    sys.setswitchinterval(0.001)
    metrics = Metrics()
    ready = threading.Event()
    stop = threading.Event()
    # Checks and evaluations that are not cached run in a process of their own (which has the
    # evaluation workers): see serving/coldpath.py.
    cold = ColdProcess(config, metrics)
    cold.start()
    if config.watch_resources:
        from sbomgate.operator.startup import start_live_policy_set

        app = create_app(None, metrics, ready=ready)
        slot = app.state.slot
        live = start_live_policy_set(
            config,
            metrics,
            install=slot.install,
            current=lambda: slot.current,
            ready=ready,
            stop=stop,
            cold=cold,
        )
    else:
        app = create_app(build_controller(config, metrics, cold=cold), metrics, ready=ready)
        ready.set()
    uvicorn_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        ssl_certfile=str(config.tls_cert),
        ssl_keyfile=str(config.tls_key),
        # Named rather than "auto", so that a missing one is an error, not a slower server.
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # The API server keeps idle connections to webhooks for 90 s; closing them sooner
        # races its next request (an EOF, which failurePolicy: Fail turns into a refusal).
        timeout_keep_alive=120,
    )
    uvicorn_config.load()
    uvicorn_config.ssl = certificate.listener  # ours: TLS 1.2+, reloaded (see the class)
    threading.Thread(target=certificate.run, name="sbomgate-cert-reload", daemon=True).start()
    server = _draining_server(uvicorn_config, app)
    settle_long_lived()
    log.info("serving", extra=fields(host=config.host, port=config.port, mode=config.mode))
    try:
        server.run()
    finally:
        stop.set()
        certificate.stop()
        if config.watch_resources:
            live.stop()
        controller = app.state.slot.current
        if controller is not None:
            controller.close()
        cold.close()


def _draining_server(uvicorn_config: Any, app: FastAPI) -> Any:
    """A uvicorn server that drains on SIGTERM (or SIGINT) before its own graceful shutdown.

    uvicorn alone closes its listener at once: a balancer or Service that has not noticed yet
    sends new connections to a closed port, and an idle keep-alive connection closed under a
    client that is just sending on it loses that review (failurePolicy Fail: a refusal). So
    first /readyz turns 503 while the listener stays open and every answer closes its
    connection; once no review came for DRAIN_QUIET_SECONDS (at most DRAIN_MAX_SECONDS),
    uvicorn stops listening and finishes the reviews in flight. A second signal stops at once.
    """
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if app.state.draining.is_set():
                super().handle_exit(sig, frame)
                return
            app.state.draining.set()
            log.info("draining", extra=fields(signal=sig))
            threading.Thread(target=self._drain, args=(sig,), daemon=True).start()

        def _drain(self, sig: int) -> None:
            started = time.monotonic()
            while time.monotonic() - started < DRAIN_MAX_SECONDS:
                if time.monotonic() - max(started, app.state.last_review) >= DRAIN_QUIET_SECONDS:
                    break
                time.sleep(0.05)
            super().handle_exit(sig, None)

    return DrainingServer(uvicorn_config)
