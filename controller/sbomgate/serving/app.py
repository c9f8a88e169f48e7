"""The admission webhooks: FastAPI over `AdmissionController` (handlers.py), served over TLS
only (server.py).

    POST /mutate           AdmissionReview in; allowed, with a JSONPatch pinning tags to digests
    POST /validate         admission.k8s.io/v1 AdmissionReview in, AdmissionReview out (same uid)
    POST /validate-policy  PackagePolicy / TrustPolicy resources checked at `kubectl apply`
    GET  /healthz          the process answers
    GET  /readyz           ready once policies and trust policies are loaded
    GET  /metrics          Prometheus

A review whose answer is known (a skipped request, or images whose checks and verdicts are
cached) is answered on the event loop: handing it to a thread and back cost more than the
answer itself. Other reviews run on threads of their own (they block on registries and wait
for image checks), at most REVIEW_SLOTS at once; the health endpoints and /metrics run on the
event loop and never wait for a thread, however many reviews are in hand. A review's deadline
starts when it arrives: reading its body (body.py) and waiting for a thread count against
`admissionDeadline`, and one that cannot start in time is answered "could not be checked in
time" (by a thread kept for that), before the API server's timeoutSeconds rather than after.
Policies are evaluated in worker processes (policy/isolated.py), each image's evaluation within
`evaluationBudget`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest as prometheus_text
from starlette.types import ASGIApp, Receive, Scope, Send

from sbomgate._internal.deadline import Deadline
from sbomgate.admission import AdmissionController
from sbomgate.config import ServeConfig
from sbomgate.serving import handlers
from sbomgate.serving.body import receive_body
from sbomgate.serving.metrics import Metrics

# Reviews worked on at once. Each mostly waits (on the image-check pool, on registries), so
# threads are cheap; the bodies they hold are already in memory by then.
REVIEW_SLOTS = 64
# Threads answering reviews that could not start in time (they only read the request).
LATE_THREADS = 2
# A review still waiting for a thread this close to its deadline is answered as too late.
START_MARGIN = 0.5
# Bodies above this are not tried on the event loop: parsing them would hold it too long.
INLINE_MAX_BYTES = 64 * 1024

_DEFAULTS = ServeConfig()  # before a policy set is loaded
# What a route does on its review thread: (controller in force, body, deadline) -> answer.
_Work = Callable[[AdmissionController | None, bytes, Deadline], Response]
# The same from what is known, on the event loop; None when it needs a thread (`_Work`).
_Inline = Callable[[AdmissionController | None, bytes, Deadline], Response | None]


class ControllerSlot:
    """The controller reviews are answered with. The operator swaps in a new one when the
    policy set changes: one assignment, so a review never sees half a set."""

    def __init__(self, controller: AdmissionController | None) -> None:
        self.current = controller

    def install(self, controller: AdmissionController) -> None:
        """Put `controller` in force for the next reviews."""
        self.current = controller


def create_app(
    controller: AdmissionController | None,
    metrics: Metrics,
    *,
    ready: threading.Event,
    review_slots: int = REVIEW_SLOTS,
) -> FastAPI:
    """The webhooks over `controller` (None until the operator has loaded a policy set)."""
    app = FastAPI(title="sbomgate", docs_url=None, redoc_url=None, openapi_url=None)
    slot = ControllerSlot(controller)
    app.state.slot = slot
    # Not anyio's default thread limiter: whatever else uses it never delays a review.
    slots = anyio.Semaphore(review_slots)
    threads = anyio.CapacityLimiter(review_slots)
    late_threads = anyio.CapacityLimiter(LATE_THREADS)
    # Set on SIGTERM (see server.py): /readyz answers 503 and every answer closes its
    # connection, so balancers and keep-alive clients move to the other replicas.
    draining = threading.Event()
    app.state.draining = draining
    app.state.last_review = 0.0

    def answered(response: Response) -> Response:
        app.state.last_review = time.monotonic()
        if draining.is_set():
            response.headers["Connection"] = "close"
        return response

    def arrived() -> Deadline:
        """When the answer to a request that arrives now is due."""
        current = slot.current
        seconds = (current.config if current else _DEFAULTS).admission_deadline
        return Deadline.after(seconds)

    async def on_thread(deadline: Deadline, work: Callable[[Deadline], Response]) -> Response:
        """`work` on a review thread if one frees up in time; else on a late thread, with no
        time left (it answers "could not be checked in time" or, from /mutate, no patch)."""
        started = False
        with anyio.move_on_after(max(deadline.remaining() - START_MARGIN, 0.0)):
            await slots.acquire()
            started = True
        if not started:
            late = deadline.exhausted()
            return await anyio.to_thread.run_sync(work, late, limiter=late_threads)
        try:
            return await anyio.to_thread.run_sync(work, deadline, limiter=threads)
        finally:
            slots.release()

    async def handle(request: Request, work: _Work, inline: _Inline | None = None) -> Response:
        """Receive the body, then `inline` on the event loop if it can answer, else `work` on
        a review thread, with the controller in force."""
        deadline = arrived()
        app.state.last_review = time.monotonic()
        raw = await receive_body(request)
        if isinstance(raw, Response):
            return answered(raw)
        current = slot.current  # the policy set in force once the review is in hand
        if inline is not None and len(raw) <= INLINE_MAX_BYTES:
            known = inline(current, raw, deadline)
            if known is not None:
                return answered(known)
        return answered(await on_thread(deadline, lambda due: work(current, raw, due)))

    # The reviews go straight from the middleware stack to `handle` (see _ReviewRoutes).
    app.add_middleware(
        _ReviewRoutes,
        routes={
            # POST /validate: the admission review
            "/validate": lambda request: handle(
                request,
                lambda c, raw, due: handlers.review(c, raw, ready, due),
                lambda c, raw, due: handlers.review_cached(c, raw, ready, due),
            ),
            # POST /mutate: tags pinned to digests
            "/mutate": lambda request: handle(
                request, lambda c, raw, due: handlers.mutate(c, raw, ready, due)
            ),
            # POST /validate-policy: PackagePolicy and TrustPolicy resources checked
            "/validate-policy": lambda request: handle(
                request, lambda _, raw, due: handlers.review_policy(raw)
            ),
        },
    )

    # On the event loop (async, and no blocking call): never behind a review's thread.
    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        """GET /healthz: the process answers."""
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        """GET /readyz: 200 once a policy set is in force, 503 before it and while draining."""
        if draining.is_set():
            return PlainTextResponse("shutting down", status_code=503)
        if ready.is_set() and slot.current is not None:
            return PlainTextResponse("ready")
        return PlainTextResponse("policies not loaded", status_code=503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        """GET /metrics in Prometheus' text format."""
        return Response(prometheus_text(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class _ReviewRoutes:
    """POST to a review route goes straight to its handler; everything else through FastAPI's
    routing. The reviews are the hot path: a cached review costs the server about 0.5 ms of
    CPU, of which FastAPI's routing, dependency solving and exception layers took a fifth
    (py-spy at 1,000 reviews/s). What they do for a route (parsing parameters, converting
    the endpoint's answer) the review routes never needed: they read their body themselves
    and answer a Response. The outermost layers stay: an exception still becomes a 500."""

    def __init__(
        self, app: ASGIApp, routes: Mapping[str, Callable[[Request], Awaitable[Response]]]
    ) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            response: Response = PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": "POST"}
            )
        else:
            response = await route(Request(scope, receive))
        await response(scope, receive, send)
