"""The live policy set: custom resources in, a ready AdmissionController out, kept current.

Startup lists every PackagePolicy, TrustPolicy and PackageQuarantine (so the webhook is ready
only with the complete set), then kopf watches them. When a watch cannot resume where it broke
off (410 Gone: e.g. the API server restarted meanwhile), kopf lists again, and a listing names
what exists, never what was deleted: so each listing (and, as a backstop, every RESYNC_SECONDS)
is followed by a listing of our own, and what it no longer has is dropped. Each change marks
the set dirty; a rebuild thread coalesces changes (100 ms) and swaps in a new controller in one
assignment, so no request ever sees a half-loaded set. A resource that does not load never
replaces its last good version: enforcement continues with what it had, and its `status` says
why.

Writes to the API server (status, quarantine records, Events) never stand between a change and
its enforcement, nor take the threads that check images: statuses are written after the new
set is installed, side effects by a thread of their own, each call with a timeout, so an API
server that stops answering (a partition, an overload) delays only the writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from sbomgate._internal.logs import fields
from sbomgate.admission import AdmissionController, Decision, SideEffects
from sbomgate.attest.trust import TrustPolicy
from sbomgate.errors import SbomgateError
from sbomgate.operator import resources
from sbomgate.operator.resources import (
    GROUP,
    PACKAGE_POLICIES,
    PACKAGE_QUARANTINES,
    TRUST_POLICIES,
    VERSION,
)
from sbomgate.policy.loader import Policy

log = logging.getLogger(__name__)
KINDS = (PACKAGE_POLICIES, TRUST_POLICIES, PACKAGE_QUARANTINES)
DEBOUNCE_SECONDS = 0.1
RETIRE_AFTER_SECONDS = 30.0  # an old controller finishes its in-flight reviews meanwhile
RESYNC_SECONDS = 60.0  # at most this long for a deletion no watch event announced
RESYNC_RETRY_SECONDS = 5.0  # after a resync the API server did not answer
# Connect and read (between bytes) timeouts of each call to the API server (the client's
# default is to wait forever).
API_TIMEOUT = (5.0, 10.0)
SIDE_EFFECT_BACKLOG = 1000  # quarantine records and Events waiting; more are dropped, logged


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339, to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Compiled:
    """What a rebuild hands to the controller factory."""

    policies: tuple[Policy, ...]
    trust_policies: tuple[TrustPolicy, ...]
    quarantine: tuple[Mapping[str, Any], ...]
    namespace_labels: Callable[[str], Mapping[str, str] | None]


Factory = Callable[[Compiled], AdmissionController]


class LivePolicySet:
    """The custom resources as a policy set: watched, compiled, and installed as a new controller on
    change."""

    def __init__(
        self,
        factory: Factory,
        install: Callable[[AdmissionController], None],
        api: Any,  # kubernetes.client.ApiClient
    ) -> None:
        from kubernetes import client as k8s

        self.factory = factory
        self.install = install
        # Any: the client's generated types are not worth mirroring for a handful of calls.
        self.custom: Any = k8s.CustomObjectsApi(api)
        self.core: Any = k8s.CoreV1Api(api)
        self.objects: dict[str, dict[str, Mapping[str, Any]]] = {k: {} for k in KINDS}
        self.namespaces: dict[str, Mapping[str, str]] = {}
        self._good_policies: dict[str, tuple[str, Policy]] = {}  # name -> (hash, policy)
        self._good_trust: dict[str, tuple[str, TrustPolicy]] = {}
        self._reported: dict[tuple[str, str], str] = {}  # (plural, name) -> status written
        # (plural, name) -> (state, status) still to write; retried when the API server failed
        self._unwritten: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._write_again_at = 0.0
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._resync = threading.Event()
        self._next_resync = time.monotonic() + RESYNC_SECONDS
        self._stop = threading.Event()
        self.generation = 0
        self._next_expiry: str | None = None  # the soonest quarantine expiry (RFC 3339)
        self.current: AdmissionController | None = None
        self.on_rebuilt: list[Callable[[], None]] = []

    # -- feeding -------------------------------------------------------------------

    def load_initial(self) -> None:
        """List everything once; raises when the API cannot be read (we are not ready)."""
        for plural in KINDS:
            listing = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
            with self._lock:
                self.objects[plural] = {o["metadata"]["name"]: o for o in listing["items"]}
        for namespace in self.core.list_namespace().items:
            self.namespaces[namespace.metadata.name] = dict(namespace.metadata.labels or {})
        self.rebuild()

    def observe(self, plural: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Record a watch event (or a listed object, `event_type` None) and ask for a rebuild."""
        name = body.get("metadata", {}).get("name")
        if not name:
            return
        with self._lock:
            if event_type == "DELETED":
                self.objects[plural].pop(name, None)
            else:
                self.objects[plural][name] = body
        if event_type is None:  # from a listing (kopf's first, or after a watch was lost)
            self._resync.set()
        self._dirty.set()

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Record a namespace's labels; rebuild when a policy selects namespaces by label."""
        meta = body.get("metadata", {})
        if event_type == "DELETED":
            self.namespaces.pop(meta.get("name"), None)
        else:
            self.namespaces[meta.get("name")] = dict(meta.get("labels") or {})
        if any(
            p.scope and p.scope.get("namespaceSelector") for _, p in self._good_policies.values()
        ):
            self._dirty.set()  # selectors may now match differently: drop cached verdicts

    def run_rebuilds(self) -> None:
        """Rebuild after changes (debounced), resync and retry status writes, until stopped."""
        while not self._stop.is_set():
            if self._resync.is_set() or time.monotonic() >= self._next_resync:
                self._resync.clear()
                self._next_resync = time.monotonic() + RESYNC_SECONDS
                try:
                    self.resync()
                except Exception as exc:  # the API server is away: enforce what we have
                    self._next_resync = time.monotonic() + RESYNC_RETRY_SECONDS
                    log.warning("resync failed", extra=fields(error=str(exc)[:200]))
            if self._unwritten and time.monotonic() >= self._write_again_at:
                self._write_statuses()
            expiry = self._next_expiry
            if expiry is not None and now_rfc3339() >= expiry:
                self._dirty.set()  # a quarantine entry ran out: rebuild without it
            if not self._dirty.wait(0.5):
                continue
            self._stop.wait(DEBOUNCE_SECONDS)  # let a burst of changes arrive
            self._dirty.clear()
            try:
                self.rebuild()
            except Exception:
                log.exception("rebuilding the policy set failed; keeping the current one")

    def resync(self) -> None:
        """Drop what the API server no longer has: deletions no watch event announced."""
        changed = False
        for plural in KINDS:
            with self._lock:
                known = {name: _version(obj) for name, obj in self.objects[plural].items()}
            # Bounded: this thread also applies every change, it must not hang on a listing.
            listing = self.custom.list_cluster_custom_object(
                GROUP, VERSION, plural, _request_timeout=API_TIMEOUT
            )
            present = {o["metadata"]["name"] for o in listing["items"]}
            with self._lock:
                for name, version in known.items():
                    current = self.objects[plural].get(name)
                    # Not listed, and no event about it since we asked: it was deleted.
                    if name not in present and current is not None and _version(current) == version:
                        del self.objects[plural][name]
                        changed = True
                        log.info("missed deletion", extra=fields(kind=plural, name=name))
        if changed:
            self._dirty.set()

    def stop(self) -> None:
        """End `run_rebuilds`."""
        self._stop.set()

    # -- compiling -------------------------------------------------------------------

    def rebuild(self) -> None:
        """Compile the resources seen, install a controller over them and write their statuses."""
        with self._lock:
            snapshot = {k: dict(v) for k, v in self.objects.items()}
        policies = self._compile(
            PACKAGE_POLICIES, snapshot[PACKAGE_POLICIES], self._good_policies, self._policy
        )
        trust = self._compile(
            TRUST_POLICIES, snapshot[TRUST_POLICIES], self._good_trust, resources.trust_policy
        )
        quarantine: list[Mapping[str, Any]] = []
        stamp = now_rfc3339()
        expiries = [
            entry["expiresAt"]
            for obj in snapshot[PACKAGE_QUARANTINES].values()
            for entry in (obj.get("spec") or {}).get("entries") or []
            if isinstance(entry, Mapping)
            and isinstance(entry.get("expiresAt"), str)
            and entry["expiresAt"] > stamp
        ]
        self._next_expiry = min(expiries) if expiries else None
        for name, obj in snapshot[PACKAGE_QUARANTINES].items():
            try:
                quarantine.extend(resources.quarantine_entries(obj, stamp))
                self._status(PACKAGE_QUARANTINES, obj, None)
            except SbomgateError as exc:
                self._status(PACKAGE_QUARANTINES, obj, str(exc))
                log.warning("quarantine unusable", extra=fields(name=name))
        labels = dict(self.namespaces)
        compiled = Compiled(
            policies=tuple(policies),
            trust_policies=tuple(trust),
            quarantine=tuple(quarantine),
            namespace_labels=lambda ns: labels.get(ns),
        )
        controller = self.factory(compiled)
        previous, self.current = self.current, controller
        self.generation += 1
        self.install(controller)
        if previous is not None:
            timer = threading.Timer(RETIRE_AFTER_SECONDS, previous.close)
            timer.daemon = True
            timer.start()
        log.info(
            "policy set loaded",
            extra=fields(
                generation=self.generation,
                policies=[p.name for p in policies],
                trustPolicies=[t.name for t in trust],
                quarantined=len(quarantine),
            ),
        )
        for callback in self.on_rebuilt:
            callback()
        self._write_statuses()  # after the install: enforcement never waits on the API server

    def _compile(
        self,
        plural: str,
        objects: Mapping[str, Mapping[str, Any]],
        good: dict[str, tuple[str, Any]],
        load: Callable[[Mapping[str, Any]], Any],
    ) -> list[Any]:
        for name in list(good):
            if name not in objects:
                del good[name]
        for name, obj in objects.items():
            digest = _spec_hash(obj)
            if name in good and good[name][0] == digest:
                self._status(plural, obj, None, digest)
                continue
            try:
                loaded = load(obj)
            except SbomgateError as exc:
                kept = " (still enforcing its last good version)" if name in good else ""
                self._status(plural, obj, f"{exc}{kept}", digest)
                continue
            good[name] = (digest, loaded)
            self._status(plural, obj, None, digest)
        return [loaded for _, loaded in good.values()]

    def _policy(self, obj: Mapping[str, Any]) -> Policy:
        ref = (obj.get("spec") or {}).get("configMapRef")
        if not isinstance(ref, Mapping):
            return resources.package_policy(obj)
        from kubernetes.client.exceptions import ApiException

        where = f"ConfigMap {ref.get('namespace')}/{ref.get('name')}"
        try:
            configmap = self.core.read_namespaced_config_map(
                ref.get("name"), ref.get("namespace"), _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            raise SbomgateError(f"{where}: cannot be read ({exc.status} {exc.reason})") from None
        except Exception as exc:  # no answer (timed out, refused): keep the last good version
            raise SbomgateError(f"{where}: cannot be read ({type(exc).__name__})") from None
        text = (configmap.data or {}).get(ref.get("key") or "policy.rego")
        if not isinstance(text, str):
            raise SbomgateError(f"{where}: has no key {ref.get('key')!r}")
        return resources.package_policy(obj, text)

    def _status(
        self, plural: str, obj: Mapping[str, Any], error: str | None, digest: str = ""
    ) -> None:
        name = obj["metadata"]["name"]
        generation = obj["metadata"].get("generation")
        state = f"{generation}:{error}:{digest}"
        if self._reported.get((plural, name)) == state:
            return
        condition = {
            "type": "Ready",
            "status": "False" if error else "True",
            "reason": "LoadFailed" if error else "Loaded",
            "message": (error or "in force")[:2000],
            "lastTransitionTime": now_rfc3339(),
            "observedGeneration": generation,
        }
        status: dict[str, Any] = {"conditions": [condition], "observedGeneration": generation}
        if digest and plural != PACKAGE_QUARANTINES:
            status["engineHash"] = digest
        self._unwritten[(plural, name)] = (state, status)

    def _write_statuses(self) -> None:
        """Write the statuses not written yet; at the first the API server does not take, stop
        and try again RESYNC_RETRY_SECONDS later (status is best effort; enforcement does not
        depend on it)."""
        from kubernetes.client.exceptions import ApiException

        for key, (state, status) in list(self._unwritten.items()):
            plural, name = key
            try:
                self.custom.patch_cluster_custom_object_status(
                    GROUP, VERSION, plural, name, {"status": status}, _request_timeout=API_TIMEOUT
                )
            except Exception as exc:
                log.warning("status not written", extra=fields(name=name, error=str(exc)[:200]))
                if isinstance(exc, ApiException) and exc.status in (404, 409, 422):
                    del self._unwritten[key]  # gone, or refused as written: no use retrying
                    continue
                self._write_again_at = time.monotonic() + RESYNC_RETRY_SECONDS
                return
            self._reported[key] = state
            del self._unwritten[key]


def _version(obj: Mapping[str, Any]) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return version if isinstance(version, str) else None


def _spec_hash(obj: Mapping[str, Any]) -> str:
    spec = orjson.dumps(obj.get("spec"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(spec).hexdigest()[:16]


class ClusterSideEffects(SideEffects):
    """Quarantine records and Events, written with the kubernetes client by a thread of its
    own: `after` only queues them (the caller's thread checks images, and must never wait on
    the API server)."""

    def __init__(self, api: Any, reporter: str) -> None:
        from kubernetes import client as k8s

        # Any: the client's generated types are not worth mirroring for a handful of calls.
        self.custom: Any = k8s.CustomObjectsApi(api)
        self.core: Any = k8s.CoreV1Api(api)
        self.reporter = reporter
        self._recorded: set[str] = set()
        self._queue: queue.Queue[tuple[Mapping[str, Any], Decision]] = queue.Queue(
            SIDE_EFFECT_BACKLOG
        )
        threading.Thread(target=self._run, name="sbomgate-side-effects", daemon=True).start()

    def after(self, request: Mapping[str, Any], decision: Decision) -> None:
        """Queue a decision's quarantine records and Event; dropped (logged) when it is full."""
        try:
            self._queue.put_nowait((request, decision))
        except queue.Full:  # the API server has not taken the last SIDE_EFFECT_BACKLOG
            log.warning("side effects dropped", extra=fields(uid=request.get("uid")))

    def _run(self) -> None:
        while True:
            request, decision = self._queue.get()
            try:
                self.write(request, decision)
            except Exception:  # a side effect must never take the webhook down
                log.exception("side effects of an admission failed")

    def write(self, request: Mapping[str, Any], decision: Decision) -> None:
        """Write a decision's quarantine records, and an Event when it refused."""
        for purl, policy, image in decision.quarantined:
            self.quarantine(purl, policy, image)
        if not decision.allowed:
            self.event(request, decision)

    def quarantine(self, purl: str, policy: str, image: str) -> None:
        """Record a quarantined package as a PackageQuarantine resource (once per process)."""
        from kubernetes.client.exceptions import ApiException

        name = resources.quarantine_name(purl)
        if name in self._recorded:
            return
        body = {
            "apiVersion": resources.API_VERSION,
            "kind": "PackageQuarantine",
            "metadata": {"name": name, "labels": {"sbomgate.dev/source": "policy"}},
            "spec": {
                "entries": [
                    {
                        "purl": purl,
                        "reason": f"matched Quarantine policy {policy} in image {image}",
                        "source": {
                            "kind": "Policy",
                            "policy": policy,
                            "image": image.split("@")[0],
                            "digest": image.split("@")[1] if "@" in image else "",
                        },
                        "addedAt": now_rfc3339(),
                    }
                ]
            },
        }
        try:
            self.custom.create_cluster_custom_object(
                GROUP, VERSION, PACKAGE_QUARANTINES, body, _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 409:  # 409: already recorded (by us or another replica)
                raise
        self._recorded.add(name)
        log.info("quarantined", extra=fields(purl=purl, policy=policy))

    def event(self, request: Mapping[str, Any], decision: Decision) -> None:
        """A Warning Event on the refused object, with the refusal's message."""
        namespace = request.get("namespace") or "default"
        kind = request.get("kind") or {}
        obj = request.get("object") or {}
        meta = obj.get("metadata") or {} if isinstance(obj, dict) else {}
        name = request.get("name") or meta.get("name") or meta.get("generateName") or "unknown"
        stamp = now_rfc3339()
        group = kind.get("group") or ""
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "sbomgate-", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{group}/{kind.get('version')}" if group else kind.get("version"),
                "kind": kind.get("kind"),
                "name": name,
                "namespace": namespace,
            },
            "reason": "AdmissionRefused",
            "message": decision.message[:1000],
            "type": "Warning",
            "source": {"component": "sbomgate"},
            "reportingComponent": "sbomgate.dev/webhook",
            "reportingInstance": self.reporter,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self.core.create_namespaced_event(namespace, body, _request_timeout=API_TIMEOUT)


def run_kopf(
    live: LivePolicySet, stop: threading.Event, ready: threading.Event, identity: str
) -> None:
    """kopf in a thread of its own (its own event loop), feeding the live set. Should it stop
    with an error, the process is asked to stop (SIGTERM) so that it is restarted: a webhook
    whose policy watch is dead would judge by stale policies without a word."""
    import kopf
    from kopf._core.engines.peering import Identity  # kopf exports only the NewType's use

    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> Any:
        # The credentials the kubernetes client was configured with (kubeconfig file or
        # in-cluster service account), so kopf and the client always act as the same user.
        from kubernetes.client import Configuration

        cfg = Configuration.get_default_copy()
        keys = cfg.api_key or {}
        token = keys.get("authorization") or keys.get("BearerToken")
        if token and token.lower().startswith("bearer "):
            token = token[7:]
        return kopf.ConnectionInfo(
            server=cfg.host,
            ca_path=cfg.ssl_ca_cert,
            insecure=not cfg.verify_ssl,
            certificate_path=cfg.cert_file,
            private_key_path=cfg.key_file,
            token=token or None,
        )

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # kopf's own Events about handlers: noise here
        settings.watching.server_timeout = 300
        # The resources watched are known: no scan of every CRD in the cluster (which would
        # need list/watch on customresourcedefinitions, a privilege sbomgate has no use for).
        settings.scanning.disabled = True

    for plural in KINDS:

        def handler(
            event: Mapping[str, Any], body: Mapping[str, Any], _p: str = plural, **_: Any
        ) -> None:
            live.observe(_p, event.get("type"), dict(body))

        kopf.on.event(GROUP, VERSION, plural, registry=registry)(handler)

    def namespace_handler(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
        live.observe_namespace(event.get("type"), dict(body))

    kopf.on.event("", "v1", "namespaces", registry=registry)(namespace_handler)

    async def main() -> None:
        """Run kopf's operator until `stop` is set."""
        stop_flag: asyncio.Event = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(stop_flag.set)), daemon=True
        ).start()
        await kopf.operator(
            registry=registry,
            clusterwide=True,
            standalone=True,  # every replica watches; the audit elects its own leader
            stop_flag=stop_flag,
            ready_flag=ready,
            # kopf names itself after the login user by default (getpass), which fails for a
            # uid without a passwd entry, as in many images: name it as the leases do.
            identity=Identity(identity),
        )

    try:
        asyncio.run(main())
    except Exception as exc:
        if stop.is_set():
            return
        log.error(
            "the policy watch stopped; stopping the server so that it is restarted",
            extra=fields(error=f"{type(exc).__name__}: {exc}"),
        )
        os.kill(os.getpid(), signal.SIGTERM)
