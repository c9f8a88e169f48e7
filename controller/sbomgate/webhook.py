"""The admission webhooks: FastAPI over `AdmissionController`, served over TLS only.

    POST /mutate     AdmissionReview in; allowed, with a JSONPatch pinning tags to digests
    POST /validate   admission.k8s.io/v1 AdmissionReview in, AdmissionReview out (same uid)
    GET  /healthz    the process answers
    GET  /readyz     ready once policies and trust policies are loaded
    GET  /metrics    Prometheus

Reviews run on threads of their own (they block on registries and wait for image checks), at
most REVIEW_SLOTS at once; the health endpoints and /metrics run on the event loop and never
wait for a thread, however many reviews are in hand. A review's deadline starts when it
arrives: reading its body and waiting for a thread count against `admissionDeadline`, and one
that cannot start in time is answered "could not be checked in time" (by a thread kept for
that), before the API server's timeoutSeconds rather than after. Policies are evaluated in
worker processes (policy/isolated.py), each image's evaluation within `evaluationBudget`.

Request bodies are read as a stream with a cap (MAX_BODY_BYTES) and a deadline (BODY_SECONDS),
never whole into memory first. The API server never sends more than the cap (an UPDATE carries
two objects of at most 3 MiB), so an oversized body comes from something else that reached the
port. It is answered, without reading the rest, with an AdmissionReview denial when the review's
uid is in the first few KiB (the API server writes `"request":{"uid":...` first: the user then
reads why), else with a 413; the API server treats any non-200 as a webhook failure, which
`failurePolicy: Fail` turns into a refusal too. A compressed body (Content-Encoding) is refused
unread (415): the API server never compresses, and nothing is ever decompressed here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import os
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as prometheus_text
from starlette.requests import ClientDisconnect

from sbomgate._internal.cache import DigestCache
from sbomgate._internal.deadline import Deadline
from sbomgate._internal.documents import load_data_files
from sbomgate.admission import AdmissionController, Observer, SideEffects
from sbomgate.attest.trust import TrustPolicy
from sbomgate.config import ServeConfig
from sbomgate.errors import InputError, SbomgateError
from sbomgate.policy.engine import FactSource
from sbomgate.policy.isolated import EvaluatorPool, IsolatedPolicyEngine
from sbomgate.policy.loader import Policy
from sbomgate.registry import RegistryClient
from sbomgate.review import AdmissionFormatError, AdmissionReviewResponse, allow, deny, uid_of

if TYPE_CHECKING:
    from sbomgate.operator.live import LivePolicySet

log = logging.getLogger("sbomgate.webhook")
MAX_BODY_BYTES = 8 << 20  # the API server sends at most 3 MiB objects (two on an UPDATE)
BODY_SECONDS = 10.0  # to receive a whole body: the API server waits at most timeoutSeconds
_HEAD_BYTES = 4096  # where an oversized review's uid is looked for
# Objects and arrays a body may hold, counted before parsing: 8 MiB of `[[],[],...]` would
# parse to 2.8 million lists (250 MB). Dense real objects (a Pod of 3 MiB of env entries, twice
# on an UPDATE) hold about 300,000.
MAX_BODY_VALUES = 1_000_000
# Reviews worked on at once. Each mostly waits (on the image-check pool, on registries), so
# threads are cheap; the bodies they hold are already in memory by then.
REVIEW_SLOTS = 64
# Threads answering reviews that could not start in time (they only read the request).
LATE_THREADS = 2
# A review still waiting for a thread this close to its deadline is answered as too late.
START_MARGIN = 0.5
# The API server serialises AdmissionRequest's fields in order: uid comes first.
_REVIEW_UID = re.compile(rb'"request"\s*:\s*\{\s*"uid"\s*:\s*"([0-9A-Za-z._:-]{1,128})"')


class Metrics(Observer):
    """The Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sbomgate_admission_requests",
            "Admission reviews answered",
            ["kind", "operation", "decision"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "sbomgate_admission_duration_seconds",
            "Time to answer an admission review",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 10),
            registry=self.registry,
        )
        self.registry_requests = Counter(
            "sbomgate_registry_requests",
            "Requests to OCI registries",
            ["host", "code"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "sbomgate_cache_hits", "Cache hits", ["cache"], registry=self.registry
        )
        self.pins_total = Counter(
            "sbomgate_image_pins",
            "Tag references /mutate pinned to a digest, or could not resolve",
            ["outcome"],
            registry=self.registry,
        )
        self.evaluation_seconds = Histogram(
            "sbomgate_policy_evaluation_seconds",
            "Time to evaluate the policies over one image's SBOMs",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=self.registry,
        )

    def request(self, kind: str, operation: str, decision: str, seconds: float) -> None:
        self.requests.labels(kind or "unknown", operation or "unknown", decision).inc()
        self.duration.observe(seconds)

    def cache_hit(self, cache: str) -> None:
        self.cache_hits.labels(cache).inc()

    def evaluation(self, seconds: float) -> None:
        self.evaluation_seconds.observe(seconds)

    def pins(self, pinned: int, unresolved: int) -> None:
        self.pins_total.labels("pinned").inc(pinned)
        self.pins_total.labels("unresolved").inc(unresolved)

    def registry_response(self, host: str, code: str) -> None:
        self.registry_requests.labels(host, code).inc()


def create_app(
    controller: AdmissionController | None,
    metrics: Metrics,
    *,
    ready: threading.Event,
    review_slots: int = REVIEW_SLOTS,
) -> FastAPI:
    app = FastAPI(title="sbomgate", docs_url=None, redoc_url=None, openapi_url=None)
    holder: dict[str, AdmissionController | None] = {"controller": controller}
    app.state.holder = holder
    # Not anyio's default thread limiter: whatever else uses it never delays a review.
    slots = anyio.Semaphore(review_slots)
    threads = anyio.CapacityLimiter(review_slots)
    late_threads = anyio.CapacityLimiter(LATE_THREADS)
    # Set on SIGTERM (see `_draining_server`): /readyz answers 503 and every answer closes
    # its connection, so balancers and keep-alive clients move to the other replicas.
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
        current = holder["controller"]
        seconds = (current.config if current else ServeConfig()).admission_deadline
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

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        deadline = arrived()
        app.state.last_review = time.monotonic()
        raw = await receive_body(request)
        if isinstance(raw, Response):
            return answered(raw)
        current = holder["controller"]
        return answered(await on_thread(deadline, lambda due: _review(current, raw, ready, due)))

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        deadline = arrived()
        app.state.last_review = time.monotonic()
        raw = await receive_body(request)
        if isinstance(raw, Response):
            return answered(raw)
        current = holder["controller"]
        return answered(await on_thread(deadline, lambda due: _mutate(current, raw, ready, due)))

    @app.post("/validate-policy")
    async def validate_policy(request: Request) -> Response:
        deadline = arrived()
        app.state.last_review = time.monotonic()
        raw = await receive_body(request)
        if isinstance(raw, Response):
            return answered(raw)
        return answered(await on_thread(deadline, lambda due: _review_policy(raw)))

    # On the event loop (async, and no blocking call): never behind a review's thread.
    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        if draining.is_set():
            return PlainTextResponse("shutting down", status_code=503)
        if ready.is_set() and holder["controller"] is not None:
            return PlainTextResponse("ready")
        return PlainTextResponse("policies not loaded", status_code=503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(prometheus_text(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def receive_body(request: Request) -> bytes | Response:
    """The request body, streamed with a cap and a deadline; or the Response refusing it.

    At most MAX_BODY_BYTES (plus one chunk) are ever held: a body declared larger is refused
    after its first chunk, one that turns out larger (no or a lying Content-Length, chunked)
    as soon as it passes the cap. What is left unread is discarded by the server, not kept.
    """
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        return _error(415, f"Content-Encoding {encoding[:40]!r} is not accepted: send plain JSON")
    declared = request.headers.get("content-length", "").strip()
    too_big = declared.isdigit() and int(declared) > MAX_BODY_BYTES
    seconds = BODY_SECONDS
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                if not chunk:
                    continue
                total += len(chunk)
                if too_big or total > MAX_BODY_BYTES:
                    head = (chunks[0] if chunks else chunk)[:_HEAD_BYTES]
                    return _too_large(head, int(declared) if too_big else None)
                chunks.append(chunk)
    except TimeoutError:
        return _error(408, f"the request body did not arrive within {seconds:g} s")
    except ClientDisconnect:
        return _error(400, "the client went away before sending the whole body")
    if too_big:  # declared, but nothing came
        return _too_large(b"", int(declared))
    return b"".join(chunks)


def _too_large(head: bytes, declared: int | None) -> Response:
    size = f"{declared} bytes, over" if declared is not None else "over"
    return _refused_unread(
        head,
        f"sbomgate refused the request: its body is {size} the {MAX_BODY_BYTES >> 20} MiB "
        "limit (the API server never sends a review this large)",
    )


def _refused_unread(head: bytes, message: str) -> Response:
    """A body refused without parsing it: a denial to the review's uid if the head names it
    (see the module docstring), else a 413."""
    found = _REVIEW_UID.search(head[:_HEAD_BYTES])
    if found is None:
        return _error(413, message)
    uid = found.group(1).decode()
    return _answer(deny(uid, code=413, reason="RequestEntityTooLarge", message=message))


def _read_body(raw: bytes) -> Any:
    """The parsed body, or the error Response for one that is not JSON."""
    if raw.count(b"{") + raw.count(b"[") > MAX_BODY_VALUES:
        return _refused_unread(
            raw,
            f"sbomgate refused the request: its body holds over {MAX_BODY_VALUES} objects and "
            "arrays (real objects hold far fewer)",
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg:
            return _error(400, "not JSON sbomgate reads: nested deeper than 1024 levels")
        return _error(400, f"not JSON: {exc.msg} at line {exc.lineno}")


def _review(
    controller: AdmissionController | None,
    raw: bytes,
    ready: threading.Event,
    deadline: Deadline | None = None,
) -> Response:
    body = _read_body(raw)
    if isinstance(body, Response):
        return body
    if controller is None or not ready.is_set():
        return _error(503, "not ready: policies are not loaded yet")
    try:
        answer = controller.review(body, deadline=deadline)
    except AdmissionFormatError as exc:
        return _error(400, str(exc))
    except Exception as exc:  # never a crashed webhook: a bug denies, with its name
        log.exception("admission review failed")
        uid = uid_of(body)
        if uid is None:
            return _error(500, f"internal error: {type(exc).__name__}")
        answer = deny(
            uid, code=500, message=f"sbomgate internal error ({type(exc).__name__}): denied"
        )
    return _answer(answer)


def _mutate(
    controller: AdmissionController | None,
    raw: bytes,
    ready: threading.Event,
    deadline: Deadline | None = None,
) -> Response:
    """/mutate never refuses and never fails a request it can answer: without a patch, the
    reference stays a tag and /validate refuses it (so nothing slips through a failure here)."""
    body = _read_body(raw)
    if isinstance(body, Response):
        return body
    uid = uid_of(body)
    if controller is None or not ready.is_set():
        # No patch: /validate answers "not ready", which failurePolicy Fail makes a refusal.
        if uid is None:
            return _error(503, "not ready: policies are not loaded yet")
        return _answer(allow(uid))
    try:
        answer = controller.mutate(body, deadline=deadline)
    except AdmissionFormatError as exc:
        return _error(400, str(exc))
    except Exception as exc:
        log.exception("mutation failed")
        if uid is None:
            return _error(500, f"internal error: {type(exc).__name__}")
        answer = allow(uid)  # unpatched
    return _answer(answer)


def _review_policy(raw: bytes) -> Response:
    """Refuse a PackagePolicy whose Rego does not load, or a TrustPolicy that does not parse,
    at `kubectl apply` time, with the load error (line and column)."""
    from sbomgate.operator import resources

    body = _read_body(raw)
    if isinstance(body, Response):
        return body
    uid = uid_of(body)
    if not uid:
        return _error(400, "the AdmissionReview request has no uid")
    request = body["request"]
    obj = request.get("object")
    kind_doc = request.get("kind")
    kind = kind_doc.get("kind") if isinstance(kind_doc, dict) else None
    answer = allow(uid)
    if request.get("operation") in ("CREATE", "UPDATE") and isinstance(obj, dict):
        spec = obj.get("spec")
        try:
            if kind == "PackagePolicy" and not (
                isinstance(spec, dict) and spec.get("rego") is None
            ):
                resources.package_policy(obj)  # a configMapRef is read when loaded
            elif kind == "TrustPolicy":
                resources.trust_policy(obj, check_only=True)
        except SbomgateError as exc:
            answer = deny(uid, code=422, reason="Invalid", message=str(exc))
        except Exception as exc:  # malformed beyond what the CRD schema lets through
            log.exception("policy review failed")
            message = f"{kind} is malformed ({type(exc).__name__})"
            answer = deny(uid, code=422, reason="Invalid", message=message)
    return _answer(answer)


def _answer(review: AdmissionReviewResponse) -> Response:
    return Response(orjson.dumps(review), media_type="application/json")


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


# -- building and serving ----------------------------------------------------------------


@dataclass(frozen=True)
class SharedParts:
    """What every policy set of the process shares: the registry client, the digest cache
    (its keys carry the trust policies' generation), the facts, the data files."""

    config: ServeConfig
    client: RegistryClient
    cache: DigestCache[Any]
    facts: FactSource | None
    data: Mapping[str, Any]
    metrics: Metrics
    # The evaluation worker processes (`serve`); None evaluates on the calling thread.
    evaluators: EvaluatorPool | None = None


def shared_parts(
    config: ServeConfig, metrics: Metrics, evaluators: EvaluatorPool | None = None
) -> SharedParts:
    from sbomgate.intel.facts import build_facts
    from sbomgate.registry import CredentialStore, RegistryAccess, RegistryLimits

    credentials = CredentialStore()
    if config.docker_config is not None:
        credentials.add_docker_config_file(config.docker_config)
    access = RegistryAccess(
        allowed=config.allowed_registries,
        insecure=frozenset(h.lower() for h in config.insecure_registries),
        ca_files=tuple(str(p) for p in config.registry_ca),
    )
    client = RegistryClient(
        access,
        credentials,
        RegistryLimits(connect_timeout=config.registry_timeout),
        timeout=config.admission_deadline,
        on_response=metrics.registry_response,
    )
    cache = DigestCache[Any](
        max_bytes=config.cache.max_bytes,
        ttl=config.cache.ttl,
        negative_ttl=config.cache.negative_ttl,
    )
    own = own_namespace()
    if own and own not in config.exempt_namespaces:
        # Our own Pods must never wait on ourselves (a deadlock at the first rollout).
        config = replace(config, exempt_namespaces=(*config.exempt_namespaces, own))
    facts = build_facts(
        snapshot=config.facts,
        osv=config.osv,
        sources=config.trusted_sources,
        typosquat=config.typosquat,
        reload_osv=True,  # a long-running server follows the OSV export as it changes
    )
    return SharedParts(
        config, client, cache, facts, load_data_files(config.data), metrics, evaluators
    )


def make_controller(
    shared: SharedParts,
    policies: Sequence[Policy],
    trust_policies: Sequence[TrustPolicy],
    *,
    quarantine: Sequence[Mapping[str, Any]] = (),
    side_effects: SideEffects | None = None,
    namespace_labels: Callable[[str], Mapping[str, str] | None] | None = None,
) -> AdmissionController:
    from sbomgate.attest import AttestationVerifier
    from sbomgate.imagecheck import ImageChecker
    from sbomgate.policy import PolicyEngine

    data: dict[str, Any] = dict(shared.data)
    if quarantine:
        sbomgate_data = dict(data.get("sbomgate") or {})
        sbomgate_data["quarantine"] = [*(sbomgate_data.get("quarantine") or []), *quarantine]
        data["sbomgate"] = sbomgate_data
    engine = (
        PolicyEngine(policies, data)
        if shared.evaluators is None
        else IsolatedPolicyEngine(policies, data, pool=shared.evaluators)
    )
    verifier = AttestationVerifier(trust_policies)
    config = shared.config
    checker = ImageChecker(
        shared.client,
        verifier,
        shared.cache,
        timeout=config.admission_deadline,
        allow_empty_sbom=config.allow_empty_sbom,
    )
    return AdmissionController(
        config,
        engine=engine,
        checker=checker,
        facts=shared.facts,
        observer=shared.metrics,
        side_effects=side_effects,
        namespace_labels=namespace_labels,
        evaluators=config.evaluation_processes if shared.evaluators is not None else 2,
    )


def file_policies(config: ServeConfig) -> list[Policy]:
    from sbomgate.policy import load_policy_dir

    if config.policies is not None:
        return load_policy_dir(config.policies)
    if config.watch_resources:
        return []  # PackagePolicy resources are the policies
    from sbomgate.cli import bundled_policies_dir

    return load_policy_dir(bundled_policies_dir())


def file_trust_policies(config: ServeConfig) -> list[TrustPolicy]:
    from sbomgate.attest import load_trust_policies

    if config.trust_policies:
        return load_trust_policies(list(config.trust_policies))
    if config.watch_resources:
        return []  # TrustPolicy resources
    raise InputError("no trust policies configured (trustPolicies / --trust)")


def build_controller(
    config: ServeConfig, metrics: Metrics, evaluators: EvaluatorPool | None = None
) -> AdmissionController:
    """Policies, data, facts and trust policies from files; a SbomgateError when one is bad."""
    shared = shared_parts(config, metrics, evaluators)
    return make_controller(shared, file_policies(config), file_trust_policies(config))


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def own_namespace() -> str | None:
    """The namespace this process runs in: $POD_NAMESPACE, else the service account's."""
    value = os.environ.get("POD_NAMESPACE")
    if value:
        return value
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


class _ReloadingCertificate:
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
                orjson.dumps(
                    {
                        "event": "certificate reload failed",
                        "error": str(exc),
                        "serving": f"the previous certificate (serial {self.serial:x})",
                    }
                ).decode()
            )
            return False
        self.current, self.serial, self._stamp, self._failed = context, serial, stamp, None
        log.info(orjson.dumps({"event": "certificate reloaded", "serial": f"{serial:x}"}).decode())
        return True

    def stop(self) -> None:
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


DRAIN_QUIET_SECONDS = 1.0  # no review for this long: the balancers have stopped sending
DRAIN_MAX_SECONDS = 10.0


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
            log.info(orjson.dumps({"event": "draining", "signal": sig}).decode())
            threading.Thread(target=self._drain, args=(sig,), daemon=True).start()

        def _drain(self, sig: int) -> None:
            started = time.monotonic()
            while time.monotonic() - started < DRAIN_MAX_SECONDS:
                if time.monotonic() - max(started, app.state.last_review) >= DRAIN_QUIET_SECONDS:
                    break
                time.sleep(0.05)
            super().handle_exit(sig, None)

    return DrainingServer(uvicorn_config)


def serve(config: ServeConfig) -> None:
    """Run the webhook until stopped. HTTPS only: there is no plaintext listener."""
    import uvicorn

    if config.tls_cert is None or config.tls_key is None:
        raise InputError("a TLS certificate and key are required (tls.certFile / --tls-cert)")
    certificate = _ReloadingCertificate(config.tls_cert, config.tls_key)  # before anything starts
    _configure_logging()
    # Threads parsing and verifying large SBOMs hold the GIL in long stretches (evaluation
    # runs in worker processes); a 1 ms switch interval (5 ms by default) lets cached reviews
    # on other threads through meanwhile.
    sys.setswitchinterval(0.001)
    metrics = Metrics()
    ready = threading.Event()
    stop = threading.Event()
    evaluators = EvaluatorPool(config.evaluation_processes, config.evaluation_budget)
    evaluators.start()
    if config.watch_resources:
        app = create_app(None, metrics, ready=ready)
        live = start_live_policy_set(config, metrics, app, ready, stop, evaluators)
    else:
        app = create_app(build_controller(config, metrics, evaluators), metrics, ready=ready)
        ready.set()
    uvicorn_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        ssl_certfile=str(config.tls_cert),
        ssl_keyfile=str(config.tls_key),
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
    # What exists now (modules, policies, clients) lives as long as the process: out of the
    # cyclic GC's sight, so its full collections (which hold the GIL) have less to walk.
    gc.collect()
    gc.freeze()
    log.info(
        orjson.dumps(
            {"event": "serving", "host": config.host, "port": config.port, "mode": config.mode}
        ).decode()
    )
    try:
        server.run()
    finally:
        stop.set()
        certificate.stop()
        if config.watch_resources:
            live.stop()
        controller = app.state.holder["controller"]
        if controller is not None:
            controller.close()
        evaluators.close()


def start_live_policy_set(
    config: ServeConfig,
    metrics: Metrics,
    app: FastAPI,
    ready: threading.Event,
    stop: threading.Event,
    evaluators: EvaluatorPool | None = None,
) -> LivePolicySet:
    """Policies, trust and quarantine from custom resources, reloaded live (operator mode)."""
    import socket

    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from sbomgate.operator.audit import Auditor, LeaseElection
    from sbomgate.operator.certs import CertificateRotator, RotationSettings
    from sbomgate.operator.live import ClusterSideEffects, Compiled, LivePolicySet, run_kopf

    if config.kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(config.kubeconfig)  # kopf's login reads it too
        k8s_config.load_kube_config(config_file=str(config.kubeconfig))
    else:
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()
    api = k8s.ApiClient()
    shared = shared_parts(config, metrics, evaluators)
    base_policies = file_policies(config)
    base_trust = file_trust_policies(config)
    identity = f"{socket.gethostname()}-{os.getpid()}"
    effects = ClusterSideEffects(api, identity)

    def factory(compiled: Compiled) -> AdmissionController:
        return make_controller(
            shared,
            [*base_policies, *compiled.policies],
            [*base_trust, *compiled.trust_policies],
            quarantine=compiled.quarantine,
            side_effects=effects,
            namespace_labels=compiled.namespace_labels,
        )

    def install(controller: AdmissionController) -> None:
        app.state.holder["controller"] = controller  # one assignment: never half a set

    live = LivePolicySet(factory, install, api)
    live.load_initial()  # raises (and the process exits) when the API cannot be read
    ready.set()
    kopf_ready = threading.Event()
    threading.Thread(
        target=run_kopf, args=(live, stop, kopf_ready), name="sbomgate-kopf", daemon=True
    ).start()
    threading.Thread(target=live.run_rebuilds, name="sbomgate-rebuild", daemon=True).start()
    election = LeaseElection(api, own_namespace() or "default", identity)
    auditor = Auditor(
        api,
        lambda: app.state.holder["controller"],
        interval=config.audit_interval,
        election=election,
    )
    live.on_rebuilt.append(auditor.trigger)
    if config.certificate_secret and config.webhook_configuration:
        rotator = CertificateRotator(
            api,
            RotationSettings(
                namespace=own_namespace() or "default",
                secret=config.certificate_secret,
                webhook_configuration=config.webhook_configuration,
                renew_before=dt.timedelta(days=config.renew_before_days),
            ),
        )
        auditor.leader_chores.append(rotator.rotate_if_due)
    threading.Thread(target=auditor.run, args=(stop,), name="sbomgate-audit", daemon=True).start()
    return live


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("sbomgate")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
