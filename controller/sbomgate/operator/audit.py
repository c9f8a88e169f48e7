"""Background audit: re-check what already runs, and write PolicyReports.

One replica audits (a coordination.k8s.io Lease elects it; kopf's peering would freeze
equal-priority replicas). It runs on a schedule and soon after the policy set changes:
every Pod and pod controller (objects owned by another controller are skipped: the owner is
checked, so a Deployment's ReplicaSets and Pods do not multiply the results) goes through the
same check as admission, and the results are written as one `wgpolicyk8s.io/v1alpha2`
PolicyReport per namespace, named `sbomgate`, with at most MAX_RESULTS results (problems
first; the summary counts them all).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sbomgate._internal.logs import fields
from sbomgate.admission import AdmissionController, ImageOutcome
from sbomgate.config import Mode
from sbomgate.output import Report, policyreport
from sbomgate.output.policyreport import GROUP as REPORT_GROUP
from sbomgate.output.policyreport import NAME as REPORT_NAME
from sbomgate.output.policyreport import VERSION as REPORT_VERSION
from sbomgate.verdict import Verdict
from sbomgate.workload import WorkloadError, read_workload

log = logging.getLogger(__name__)
LEASE_NAME = "sbomgate-audit"
LEASE_SECONDS = 30
AUDIT_DEADLINE = 60.0
# Connect and read (between bytes) timeouts of each call to the API server (the client's default
# is to wait forever): a call that never returns would hold the audit thread.
API_TIMEOUT = (5.0, 30.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRun:
    """What one audit pass covered: workloads, results written, namespaces, and its duration."""

    workloads: int
    results: int
    namespaces: int
    seconds: float


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaseElection:
    """Leader election on a Lease, with optimistic concurrency (resourceVersion)."""

    def __init__(self, api: Any, namespace: str, identity: str) -> None:
        from kubernetes import client as k8s

        self.coordination: Any = k8s.CoordinationV1Api(api)
        self.namespace = namespace
        self.identity = identity
        # The Lease's owner (see Auditor.owner_reference), so that it goes with the
        # installation; None: a Lease without one.
        self.owner_reference: Callable[[], dict[str, Any] | None] = lambda: None
        # Whether that owner still exists (asked before a Lease is created), and whether it
        # was found gone: the installation is being removed, and nothing is written again
        # that nothing would delete.
        self.owner_alive: Callable[[], bool] = lambda: True
        self.owner_gone: Callable[[], bool] = lambda: False

    def _metadata(self, **fields_: Any) -> dict[str, Any]:
        owner = self.owner_reference()
        metadata = {"name": LEASE_NAME, **fields_}
        return {**metadata, "ownerReferences": [owner]} if owner is not None else metadata

    def acquire(self) -> bool:
        """Take or renew the Lease; True while this replica holds it."""
        from kubernetes.client.exceptions import ApiException

        now = _now()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            lease = self.coordination.read_namespaced_lease(
                LEASE_NAME, self.namespace, _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            if not self.owner_alive():
                return False
            body = {
                "metadata": self._metadata(namespace=self.namespace),
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": LEASE_SECONDS,
                    "acquireTime": stamp,
                    "renewTime": stamp,
                },
            }
            try:
                self.coordination.create_namespaced_lease(
                    self.namespace, body, _request_timeout=API_TIMEOUT
                )
                return True
            except ApiException as again:
                if again.status == 409:
                    return False  # another replica was faster
                raise
        spec = lease.spec
        holder = spec.holder_identity
        renewed = spec.renew_time
        expired = renewed is None or (
            renewed + dt.timedelta(seconds=spec.lease_duration_seconds or LEASE_SECONDS) < now
        )
        if holder != self.identity and not expired:
            return False
        # A replace: a field left out is erased, so a renewal carries acquireTime over.
        taken = holder != self.identity or spec.acquire_time is None
        acquired = stamp if taken else spec.acquire_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        transitions = (spec.lease_transitions or 0) + (holder != self.identity and bool(holder))
        body = {
            # A replace erases what it leaves out: the owner goes in again too.
            "metadata": self._metadata(resourceVersion=lease.metadata.resource_version),
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": acquired,
                "renewTime": stamp,
                "leaseTransitions": transitions,
            },
        }
        if self.owner_gone():
            return False  # the installation is being removed: its Lease goes with it
        try:
            self.coordination.replace_namespaced_lease(
                LEASE_NAME, self.namespace, body, _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True


class Auditor:
    """The background audit: every running workload checked as admission would, written as
    PolicyReports."""

    def __init__(
        self,
        api: Any,
        controller: Callable[[], AdmissionController | None],
        *,
        interval: float,
        election: LeaseElection,
        owner: str | None = None,
    ) -> None:
        """`owner`: a ValidatingWebhookConfiguration the reports are owned by (the
        installation's), so that the garbage collector deletes them when it goes."""
        from kubernetes import client as k8s

        self.api = api
        self.owner = owner
        self._owner_reference: dict[str, Any] | None = None
        self.owner_gone = False
        self.controller = controller
        self.interval = interval
        self.election = election
        self.core: Any = k8s.CoreV1Api(api)
        self.apps: Any = k8s.AppsV1Api(api)
        self.batch: Any = k8s.BatchV1Api(api)
        self.custom: Any = k8s.CustomObjectsApi(api)
        self._trigger = threading.Event()
        self.last: AuditRun | None = None
        # Chores for the elected replica, run at each lease renewal (certificate rotation).
        self.leader_chores: list[Callable[[], object]] = []

    def trigger(self) -> None:
        """The policy set changed: audit soon (if this replica leads)."""
        self._trigger.set()

    def run(self, stop: threading.Event) -> None:
        """Audit on schedule and when triggered, while this replica leads, until `stop`."""
        next_run = time.monotonic() + 5.0
        while not stop.is_set():
            triggered = self._trigger.wait(
                min(LEASE_SECONDS / 3, max(next_run - time.monotonic(), 0.1))
            )
            try:
                leader = self.election.acquire()
            except Exception:
                log.exception("audit lease")
                leader = False
            if not leader:
                continue
            for chore in self.leader_chores:
                try:
                    chore()
                except Exception:
                    log.exception("leader chore failed")
            if triggered:
                stop.wait(1.0)  # let a burst of policy changes settle
                self._trigger.clear()
            elif time.monotonic() < next_run:
                continue
            try:
                self.last = self.audit_once()
            except Exception:
                log.exception("audit failed")
            next_run = time.monotonic() + self.interval

    # -- one audit ----------------------------------------------------------------------

    def workloads(self) -> Iterator[dict[str, Any]]:
        """Every Pod and pod controller in the cluster that no other controller owns, as JSON."""
        serialize = self.api.sanitize_for_serialization
        listings = (
            ("Pod", "v1", self.core.list_pod_for_all_namespaces),
            (
                "ReplicationController",
                "v1",
                self.core.list_replication_controller_for_all_namespaces,
            ),
            ("Deployment", "apps/v1", self.apps.list_deployment_for_all_namespaces),
            ("ReplicaSet", "apps/v1", self.apps.list_replica_set_for_all_namespaces),
            ("StatefulSet", "apps/v1", self.apps.list_stateful_set_for_all_namespaces),
            ("DaemonSet", "apps/v1", self.apps.list_daemon_set_for_all_namespaces),
            ("Job", "batch/v1", self.batch.list_job_for_all_namespaces),
            ("CronJob", "batch/v1", self.batch.list_cron_job_for_all_namespaces),
        )
        for kind, api_version, list_all in listings:
            for item in list_all(_request_timeout=API_TIMEOUT).items:
                obj = serialize(item)
                owners = obj.get("metadata", {}).get("ownerReferences") or []
                if any(o.get("controller") for o in owners):
                    continue  # its owner is audited instead
                obj["kind"], obj["apiVersion"] = kind, api_version
                yield obj

    def audit_once(self) -> AuditRun:
        """Check every workload outside the exempt namespaces and write one PolicyReport per
        namespace."""
        controller = self.controller()
        if controller is None:
            raise RuntimeError("no policy set loaded yet")
        started = time.monotonic()
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        count = 0
        exempt = set(controller.config.exempt_namespaces)
        for obj in self.workloads():
            namespace = obj["metadata"].get("namespace") or ""
            if namespace in exempt:
                continue
            try:
                workload = read_workload(obj)
            except WorkloadError:
                continue
            if not workload.images:
                continue
            count += 1
            workload_input = workload.to_input(operation="AUDIT", dry_run=True)
            tasks, outcomes = controller.check_workload(workload, workload_input, AUDIT_DEADLINE)
            resource = {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": workload.name,
                "namespace": namespace,
                "uid": obj["metadata"].get("uid"),
            }
            for ref in tasks:
                by_namespace[namespace].extend(
                    _results(controller, outcomes.get(ref), ref, resource)
                )
        stamp = {"seconds": int(time.time()), "nanos": 0}
        for namespace, results in by_namespace.items():
            self._write(namespace, results, stamp)
        seconds = time.monotonic() - started
        run = AuditRun(
            workloads=count,
            results=sum(map(len, by_namespace.values())),
            namespaces=len(by_namespace),
            seconds=seconds,
        )
        log.info(
            "audit finished",
            extra=fields(
                workloads=run.workloads,
                results=run.results,
                namespaces=run.namespaces,
                seconds=round(seconds, 3),
            ),
        )
        return run

    def _write(
        self, namespace: str, results: list[dict[str, Any]], stamp: Mapping[str, int]
    ) -> None:
        from kubernetes.client.exceptions import ApiException

        body = policyreport.policy_report(namespace=namespace, results=results, stamp=stamp)
        owner = self.owner_reference()
        if self.owner_gone:
            return  # the installation is being removed: its reports with it
        if owner is not None:
            body["metadata"]["ownerReferences"] = [owner]
        args = (REPORT_GROUP, REPORT_VERSION, namespace, "policyreports")
        try:
            existing = self.custom.get_namespaced_custom_object(
                *args, REPORT_NAME, _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.custom.create_namespaced_custom_object(*args, body, _request_timeout=API_TIMEOUT)
            return
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        self.custom.replace_namespaced_custom_object(
            *args, REPORT_NAME, body, _request_timeout=API_TIMEOUT
        )

    def owner_reference(self) -> dict[str, Any] | None:
        """The owner reference to the installation's webhook configuration (a cluster-scoped
        owner may own namespaced objects in any namespace), read once."""
        if self.owner is None or self._owner_reference is not None:
            return self._owner_reference
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException

        try:
            found = k8s.AdmissionregistrationV1Api(self.api).read_validating_webhook_configuration(
                self.owner, _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                self.owner_gone = True
                return None
            log.warning(
                "the reports' owner cannot be read: they will outlive the installation",
                extra=fields(owner=self.owner, status=exc.status),
            )
            self.owner = None  # asked once: the reports are written without one
            return None
        uid = found.metadata.uid if found.metadata is not None else None
        if not uid:
            return None
        self._owner_reference = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "name": self.owner,
            "uid": uid,
        }
        return self._owner_reference

    def owner_alive(self) -> bool:
        """Whether the owner still exists (True when there is none to ask about, or the
        answer is not a clear "not found")."""
        if self.owner is None:
            return True
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException

        try:
            k8s.AdmissionregistrationV1Api(self.api).read_validating_webhook_configuration(
                self.owner, _request_timeout=API_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                self.owner_gone = True
                return False
        return True


def _results(
    controller: AdmissionController,
    outcome: ImageOutcome | None,
    ref: str,
    resource: Mapping[str, Any],
) -> list[dict[str, Any]]:
    if outcome is None:
        return [policyreport.unfinished(source=ref, resource=resource)]
    # The findings of the verdict, the errors of this image's own report.
    judged = outcome.verdict if outcome.verdict is not None else Verdict(components=0, subject=None)
    report = Report(
        verdict=replace(judged, images=(outcome.report,)),
        source=ref,
        resource=resource,
        enforced=lambda f: controller.mode_of(f) is Mode.ENFORCE,
    )
    return policyreport.results(report)
