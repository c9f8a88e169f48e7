"""Admission decisions: AdmissionReview in, AdmissionReview out. No HTTP here (serving/).

For each request: skip what is not ours (other operations, subresources, exempt namespaces),
read every image of the workload, check the images in parallel (the same reference once; the
registry work is cached by digest, the verdict by digest and policy set), and answer within
the admission deadline with what is known, saying which checks did not finish.

The answer, one line per problem and the most important first:
    image ghcr.io/acme/web@sha256:… (spec.template.spec.containers[0]): package
    pkg:pypi/reqeusts@2.31.0: not found in any trusted repository [policy unverified]
Infrastructure faults say so ("… unreachable …: cannot verify") and are never reported as a
policy failure; they deny unless the configuration allows them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sbomgate._internal.cache import DigestCache, Expiry, Loaded
from sbomgate._internal.deadline import Deadline
from sbomgate._internal.gcpause import gc_paused
from sbomgate._internal.logs import fields
from sbomgate.actions import Action
from sbomgate.cache_keys import (
    ImageCheckKey,
    VerdictKey,
    policy_set_fingerprint,
    reads_workload,
    verdict_key,
)
from sbomgate.config import ImageReferences, Mode, ServeConfig
from sbomgate.errors import ColdPathError, InputError, SbomgateError
from sbomgate.imagecheck import ImageChecker, ImageResult, VerifiedImage, judge_images
from sbomgate.intel.facts import prefetch
from sbomgate.mutation import Pin, encoded_patch, pin_targets
from sbomgate.policy import PolicyEngine
from sbomgate.policy.engine import FactSource
from sbomgate.policy.scope import in_scope
from sbomgate.problems import Problem, ProblemKind
from sbomgate.registry import parse_reference
from sbomgate.review import AdmissionRequest, AdmissionReviewResponse, allow, deny, request_of
from sbomgate.verdict import Finding, ImageReport, Verdict
from sbomgate.workload import (
    MAX_DISTINCT_IMAGES,
    ContainerImage,
    Workload,
    WorkloadError,
    is_gated_kind,
    read_workload,
)

log = logging.getLogger(__name__)

MAX_WARNING_LENGTH = 256  # the API server drops longer warnings
MAX_WARNINGS = 20
MAX_MESSAGE_CHARS = 8000
MAX_LOGGED = 50  # reasons in a decision's log line
# Metric label values come from the request: only these (and gated kinds) are kept as given,
# anything else is "other", so a client cannot mint time series (memory, /metrics size).
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
MAX_PATHS_SHOWN = 3  # container paths named per image in a line (then "and N more")

# A message line, or a finding to format into one when (and only if) it is shown.
Line = str | tuple[Callable[[Finding, str], str], Finding, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The admission answer before it is an AdmissionReview: allowed or not, the message, warnings,
    the images judged."""

    allowed: bool
    message: str
    warnings: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # the first MAX_LOGGED problems (logs)
    skipped: str | None = None  # why nothing was checked
    images: tuple[ImageReport, ...] = ()
    unfinished: tuple[str, ...] = ()
    # Findings of Quarantine-action policies: (purl, policy, image) to record.
    quarantined: tuple[tuple[str, str, str], ...] = ()


class SideEffects:
    """What happens after a decision, outside the answer (never on dry runs): quarantine
    records, Events. Runs off the request path; the default does nothing."""

    def after(self, request: Mapping[str, Any], decision: Decision) -> None:
        """Act on a decision for a request (called off the request path)."""
        return None


class Observer:
    """Where decisions are reported (metrics); the default does nothing."""

    def request(self, kind: str, operation: str, decision: str, seconds: float) -> None:
        """One request answered: its kind, operation, outcome and seconds taken."""
        return None

    def cache_hit(self, cache: str) -> None:
        """A verdict or image check answered from the named cache."""
        return None

    def evaluation(self, seconds: float) -> None:
        """One image's policy evaluation took `seconds`."""
        return None

    def pins(self, pinned: int, unresolved: int) -> None:
        """A /mutate answer pinned `pinned` references and left `unresolved` ones as tags."""
        return None


@dataclass(slots=True)
class ImageTask:
    """One image reference of a workload, with every container that runs it."""

    ref: str
    containers: list[ContainerImage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    """What checking one image gave: its report, and its verdict when it was evaluated."""

    report: ImageReport
    verdict: Verdict | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedImage:
    """One image checked and judged, with what the caches keep of it: how the process that
    does the cold work (serving/coldpath.py) tells the one answering reviews, which keeps the
    same entries and answers the next review of the image from its own caches."""

    outcome: ImageOutcome
    key: ImageCheckKey | None = None  # the image check's cache key
    verified: VerifiedImage | None = None  # without its SBOMs (`without_sboms`)
    check_expiry: Expiry | None = None
    verdict_expiry: Expiry | None = None


class ColdPath(Protocol):
    """Where one policy set's image checks and evaluations run when they are not cached: a
    process of its own in `serve` (serving/coldpath.py), so that their CPU work never holds
    the GIL of the process answering cached reviews."""

    def check_image(
        self,
        ref: str,
        seconds: float,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> CheckedImage:
        """`AdmissionController.check_image_here` there, within `seconds`."""

    def evaluate(
        self,
        ref: str,
        seconds: float,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> Loaded[Verdict]:
        """A new evaluation of a checked image (`ref` by digest) there, for a verdict about
        to expire."""

    def close(self) -> None:
        """The policy set is retired: drop it there."""


# Seconds between the end of registry work and the answer (see check_workload).
_ANSWER_MARGIN = 0.25


class _NotCached(SbomgateError):
    """A cached-only review (`review_cached`) met an image whose answer is not cached; it
    never leaves the controller (`review_cached` answers None)."""


def _tasks(workload: Workload) -> dict[str, ImageTask]:
    """A workload's containers by image reference."""
    tasks: dict[str, ImageTask] = {}
    for container in workload.images:
        tasks.setdefault(container.image, ImageTask(container.image)).containers.append(container)
    return tasks


class AdmissionController:
    """Judges admission requests: a workload's images checked, evaluated and answered within the
    deadline."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        engine: PolicyEngine,
        checker: ImageChecker,
        facts: FactSource | None = None,
        observer: Observer | None = None,
        side_effects: SideEffects | None = None,
        namespace_labels: Callable[[str], Mapping[str, str] | None] | None = None,
        workers: int = 16,
        evaluators: int = 2,
        cold: ColdPath | None = None,
    ) -> None:
        self.config = config
        # Set in `serve`: checks and evaluations that are not cached run there, not here.
        self.cold = cold
        self.side_effects = side_effects
        self.namespace_labels = namespace_labels
        self._scoped = any(p.scope for p in engine.policies)
        self.engine = engine
        self.checker = checker
        self.facts = facts
        self.observer = observer or Observer()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sbomgate-check")
        # Evaluation runs on a few threads of its own: each holds its own regorus engines (tens
        # of MB after a large SBOM) when evaluating in-process, or waits on one worker process
        # (`serve`: as many threads as workers are useful).
        self._evaluators = ThreadPoolExecutor(
            max_workers=evaluators, thread_name_prefix="sbomgate-evaluate"
        )
        self.verdicts: DigestCache[Verdict] = DigestCache(
            max_bytes=64 << 20,
            ttl=config.cache.verdict_ttl,
            # A verdict with evaluation failures (a policy error, an overrun budget) is kept
            # briefly: it may be the machine's load, not the policy.
            negative_ttl=config.cache.negative_ttl,
        )
        self._refresh_ahead = min(60.0, config.cache.verdict_ttl / 5)
        self._policy_set = policy_set_fingerprint(engine.policies, engine.data)
        # A verdict depends on the workload only if some policy may look at it.
        self._uses_workload = any(reads_workload(p.module.source) for p in engine.policies)

    def close(self) -> None:
        """Stop the check and evaluation threads, dropping queued work."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._evaluators.shutdown(wait=False, cancel_futures=True)
        if self.cold is not None:
            self.cold.close()

    # -- the AdmissionReview -----------------------------------------------------------

    def review(self, body: Any, *, deadline: Deadline | None = None) -> AdmissionReviewResponse:
        """The AdmissionReview response for a request body (parsed JSON). `deadline`: when the
        answer is due, counted from the request's arrival (default: admissionDeadline from now),
        so that time spent waiting to start counts against it."""
        answer = self._review(body, deadline, cached_only=False)
        assert answer is not None  # only a cached-only review gives up
        return answer

    def review_cached(
        self, body: Any, *, deadline: Deadline | None = None
    ) -> AdmissionReviewResponse | None:
        """`review`, when the answer needs nothing but what is known: skipped requests, and
        images whose check and verdict are cached (by digest). None when it would need the
        registry, an evaluation or a wait: nothing was counted or logged, and `review` answers.
        It never blocks on I/O, so the webhook answers it without a thread hop (serving/app.py).
        """
        return self._review(body, deadline, cached_only=True)

    def _review(
        self, body: Any, deadline: Deadline | None, *, cached_only: bool
    ) -> AdmissionReviewResponse | None:
        started = time.monotonic()
        request = request_of(body)
        uid = request["uid"]
        kind = _kind_of(request)
        operation = str(request.get("operation") or "")
        try:
            decision = self.decide(request, deadline=deadline, cached_only=cached_only)
        except _NotCached:
            return None
        digests = sorted({i.digest for i in decision.images if i.digest})
        annotations = {"images": ",".join(digests)[:2000]} if digests else None
        answer = (
            allow(uid, warnings=decision.warnings, audit_annotations=annotations)
            if decision.allowed
            else deny(
                uid,
                code=403,
                reason="Forbidden",
                message=decision.message,
                warnings=decision.warnings,
                audit_annotations=annotations,
            )
        )
        if self.side_effects is not None and not request.get("dryRun") and not decision.skipped:
            self._pool.submit(self._after, request, decision)
        seconds = time.monotonic() - started
        label = "skipped" if decision.skipped else ("allowed" if decision.allowed else "denied")
        self.observer.request(
            kind if not kind or is_gated_kind(kind) else "other",
            operation if not operation or operation in OPERATIONS else "other",
            label,
            seconds,
        )
        self._log(request, kind, decision, seconds)
        return answer

    def _after(self, request: AdmissionRequest, decision: Decision) -> None:
        assert self.side_effects is not None
        try:
            self.side_effects.after(request, decision)
        except Exception:  # a side effect must never take the webhook down
            log.exception("side effects of an admission failed")

    def decide(
        self,
        request: AdmissionRequest,
        *,
        deadline: Deadline | None = None,
        cached_only: bool = False,
    ) -> Decision:
        """A request's Decision: skipped, unreadable, or its images judged before `deadline`
        (`cached_only`: from the caches alone, else _NotCached)."""
        found = self.workload_of(request)
        if isinstance(found, Decision):
            return found
        return self._judge(
            found,
            request,
            deadline or Deadline.after(self.config.admission_deadline),
            cached_only=cached_only,
        )

    def workload_of(self, request: AdmissionRequest) -> Workload | Decision:
        """The workload a request asks to admit; or the Decision when there is nothing to judge
        (skipped) or it cannot be read. /mutate and /validate skip exactly the same requests."""
        skipped = _skipped(request, self.config.exempt_namespaces)
        if skipped is not None:
            return Decision(allowed=True, message="", skipped=skipped)
        kind = _kind_of(request)
        try:
            workload = read_workload(request.get("object"), kind=kind)
        except WorkloadError as exc:
            return self._deny([f"{kind} cannot be read: {exc}"])
        namespace = request.get("namespace")
        if not workload.namespace and isinstance(namespace, str) and namespace:
            workload = _with_namespace(workload, namespace)
        return workload

    # -- pinning tags to digests (POST /mutate) ------------------------------------------

    def mutate(self, body: Any, *, deadline: Deadline | None = None) -> AdmissionReviewResponse:
        """The AdmissionReview response of /mutate: allowed, with a JSONPatch rewriting each tag
        reference to the digest it resolves to now (imageReferences: Pin; see mutation.py).
        Never a refusal: a reference that cannot be pinned is left for /validate to refuse."""
        started = time.monotonic()
        request = request_of(body)
        pins, unresolved = self.pins(
            request, deadline or Deadline.after(self.config.admission_deadline)
        )
        answer = allow(request["uid"], patch=encoded_patch(pins) if pins else None)
        if pins or unresolved:
            self.observer.pins(len(pins), len(unresolved))
            self._log_pins(request, pins, unresolved, time.monotonic() - started)
        return answer

    def pins(
        self, request: AdmissionRequest, deadline: Deadline
    ) -> tuple[tuple[Pin, ...], dict[str, str]]:
        """The pins for a request's tag references, and why each one that could not be
        resolved in time was not (image -> error)."""
        if self.config.image_references is not ImageReferences.PIN:
            return (), {}
        found = self.workload_of(request)
        if (
            isinstance(found, Decision)
            or len({c.image for c in found.images}) > MAX_DISTINCT_IMAGES
        ):
            return (), {}  # /validate refuses it, or skips it
        targets = pin_targets(request, found)
        refs = list(dict.fromkeys(c.image for c in targets))
        if not refs:
            return (), {}
        if deadline.remaining() <= _ANSWER_MARGIN:  # waited too long to start: no patch
            return (), dict.fromkeys(refs, "not resolved: the review could not start in time")
        registry_deadline = Deadline.after(max(deadline.remaining() - _ANSWER_MARGIN, 0.0))
        futures = {ref: self._pool.submit(self._resolve, ref, registry_deadline) for ref in refs}
        wait_for(list(futures.values()), timeout=max(deadline.remaining(), 0.0))
        digests: dict[str, str] = {}
        unresolved: dict[str, str] = {}
        for ref, future in futures.items():
            error = future.exception() if future.done() else None
            if not future.done():
                unresolved[ref] = "not resolved in time"
            elif error is not None:
                unresolved[ref] = str(error)[:300] or type(error).__name__
            else:
                digests[ref] = future.result()
        pins = tuple(Pin(c, digests[c.image]) for c in targets if c.image in digests)
        return pins, unresolved

    def _resolve(self, ref: str, deadline: Deadline) -> str:
        """`registry/repository@sha256:…` for what the tag points to now."""
        image = parse_reference(ref)
        if not self.checker.verifier.covering(image.name):
            # Validation refuses it without a request; so does this (coverage comes first).
            raise InputError(f"no trust policy covers {image.name}: not resolved")
        return f"{image.name}@{self.checker.client.resolve(image, deadline=deadline).digest}"

    def _log_pins(
        self,
        request: AdmissionRequest,
        pins: Sequence[Pin],
        unresolved: Mapping[str, str],
        seconds: float,
    ) -> None:
        log.info(
            "mutation",
            extra=fields(
                uid=request.get("uid"),
                kind=_kind_of(request),
                namespace=request.get("namespace"),
                name=_name_of(request),
                operation=request.get("operation"),
                dryRun=bool(request.get("dryRun")),
                pinned=[
                    {"path": p.container.path, "image": p.container.image, "pinned": p.pinned}
                    for p in pins[:MAX_LOGGED]
                ],
                unresolved=[
                    {"image": i, "error": e} for i, e in list(unresolved.items())[:MAX_LOGGED]
                ],
                seconds=round(seconds, 4),
            ),
        )

    # -- judging the images ------------------------------------------------------------

    def _judge(
        self,
        workload: Workload,
        request: AdmissionRequest,
        deadline: Deadline,
        *,
        cached_only: bool = False,
    ) -> Decision:
        if not workload.images:
            return Decision(allowed=True, message="", skipped="no containers")
        distinct = len({c.image for c in workload.images})
        if distinct > MAX_DISTINCT_IMAGES:
            # Each distinct image costs registry round trips: one object must not buy thousands.
            return self._deny([f"{workload.display}: {_too_many_images(distinct)}"])
        if deadline.remaining() <= _ANSWER_MARGIN:
            return self._too_late(workload, deadline)
        workload_input = workload.to_input(
            operation=str(request.get("operation")), dry_run=bool(request.get("dryRun"))
        )
        unpinned: dict[str, list[ContainerImage]] = {}
        if self.config.image_references is not ImageReferences.RESOLVE:
            for container in pin_targets(request, workload):
                unpinned.setdefault(container.image, []).append(container)
        if cached_only:
            tasks, outcomes = self._cached_workload(workload, workload_input)
        else:
            tasks, outcomes = self.check_workload(workload, workload_input, deadline.remaining())
        return self._decide(tasks, outcomes, workload, unpinned)

    def _too_late(self, workload: Workload, deadline: Deadline) -> Decision:
        """The answer to a review that waited too long to start (more reviews at once than
        sbomgate works on): one the API server still receives, rather than its timeout."""
        line = (
            f"{workload.display} could not be checked in time: it waited "
            f"{deadline.elapsed():.1f} s of the {self.config.admission_deadline:g} s admission "
            "deadline for sbomgate to start on it (too many reviews at once): cannot verify "
            "(retry shortly)"
        )
        refs = tuple(dict.fromkeys(c.image for c in workload.images))
        if self.config.mode is Mode.ENFORCE:
            return Decision(allowed=False, message=line, reasons=(line,), unfinished=refs)
        return Decision(
            allowed=True, message="", warnings=(_short(line),), reasons=(line,), unfinished=refs
        )

    def _unpinned_line(
        self, ref: str, containers: Sequence[ContainerImage], outcome: ImageOutcome | None
    ) -> str | None:
        """Why a tag reference is refused (imageReferences: Pin or RefuseTags), naming the
        digest it points to now when the check found it."""
        digest = outcome.report.digest if outcome is not None else None
        pinned = f"{_image_name(ref)}@{digest}" if digest else None
        where = f"image {ref} ({_paths(containers)})"
        if self.config.image_references is ImageReferences.REFUSE_TAGS:
            now = f" (the tag points to {pinned} now)" if pinned else ""
            return (
                f"{where}: a tag reference, and only references by digest are admitted "
                f"(imageReferences: RefuseTags): write it as name@sha256:…{now}"
            )
        if pinned is None:
            return None  # not resolved: its own fault or refusal says why
        return (
            f"{where}: not pinned to its digest: sbomgate's mutating webhook did not rewrite it "
            "(imageReferences: Pin), and the tag may point elsewhere when it is pulled: install "
            f"sbomgate's MutatingWebhookConfiguration (the chart does), or write {pinned}"
        )

    def check_workload(
        self, workload: Workload, workload_input: Mapping[str, Any], seconds: float
    ) -> tuple[dict[str, ImageTask], dict[str, ImageOutcome | None]]:
        """Check and evaluate every image of a workload within `seconds` (admission, audit).
        An outcome of None means the check did not finish in time."""
        tasks = _tasks(workload)
        deadline = Deadline.after(seconds)
        # Registry work stops a little before the answer is due, so a registry that is too slow
        # is named with what it did (timed out, incomplete answer), not just "did not finish".
        registry_deadline = Deadline.after(max(seconds - _ANSWER_MARGIN, seconds * 0.8))
        refs = list(tasks)
        futures: dict[str, Future[ImageOutcome]] = {
            ref: self._pool.submit(self._check_image, ref, registry_deadline, workload_input)
            for ref in refs[:MAX_DISTINCT_IMAGES]
        }
        # Admission refuses such objects before this (see _judge); the audit reads them all.
        over = (
            f"not checked: the object names {len(refs)} distinct images, more than the "
            f"{MAX_DISTINCT_IMAGES} sbomgate checks in one"
        )
        unchecked: dict[str, ImageOutcome | None] = {
            ref: ImageOutcome(_reported(ref, Problem(image=ref, message=over)), None)
            for ref in refs[MAX_DISTINCT_IMAGES:]
        }
        # Leave a little time to answer: the API server's timeoutSeconds is above the deadline.
        wait_for(list(futures.values()), timeout=max(deadline.remaining(), 0.0))
        outcomes: dict[str, ImageOutcome | None] = {}
        for ref, future in futures.items():
            if future.done() and future.exception() is None:
                outcomes[ref] = future.result()
            elif future.done():
                error = future.exception()
                log.error("image check failed", extra=fields(image=ref, error=repr(error)))
                problem = Problem(
                    image=ref, message=f"internal error: {error}", kind=ProblemKind.INTERNAL
                )
                outcomes[ref] = ImageOutcome(_reported(ref, problem), None)
            else:
                outcomes[ref] = None  # still running: it finishes into the cache for next time
        outcomes.update(unchecked)
        return tasks, outcomes

    def _cached_workload(
        self, workload: Workload, workload_input: Mapping[str, Any]
    ) -> tuple[dict[str, ImageTask], dict[str, ImageOutcome | None]]:
        """`check_workload` from the caches alone (the workload names at most
        MAX_DISTINCT_IMAGES images: `_judge` refuses more); _NotCached when an image's check
        or verdict is not there. The hits are counted only once every image was found."""
        tasks = _tasks(workload)
        outcomes: dict[str, ImageOutcome | None] = {}
        hits: list[str] = []
        for ref in tasks:
            result = self.checker.check_cached(ref)
            if result is None:
                raise _NotCached(ref)
            if result.cached:
                hits.append("image")
            if not result.report.ok:
                outcomes[ref] = ImageOutcome(result.report, None)
                continue
            if result.key is None or result.verified is None:
                raise _NotCached(ref)
            only = self._applicable(workload_input, ref) if self._scoped else None
            key = self._verdict_key(result, workload_input, only)
            verdict = self._cached_verdict(key, result, workload_input, only)
            if verdict is None:
                raise _NotCached(ref)
            hits.append("verdict")
            outcomes[ref] = ImageOutcome(result.report, verdict)
        for kind in hits:
            self.observer.cache_hit(kind)
        return tasks, outcomes

    def _cached_verdict(
        self,
        key: VerdictKey,
        result: ImageResult,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> Verdict | None:
        """The cached verdict of a checked image, or None. One about to expire is evaluated
        again off the request path: otherwise every image in use would make one review wait a
        whole evaluation each verdict TTL."""
        hit = self.verdicts.get(key)
        if hit is not None and self.verdicts.claim_refresh(key, self._refresh_ahead):
            self._evaluators.submit(
                self.verdicts.refresh,
                key,
                lambda: self._evaluate_again(result, workload_input, only),
            )
        return hit

    def _evaluate_again(
        self, result: ImageResult, workload_input: Mapping[str, Any], only: frozenset[str] | None
    ) -> Loaded[Verdict]:
        if self.cold is None:
            return self._evaluate(result, workload_input, only)
        return self.cold.evaluate(
            result.report.ref, self.config.admission_deadline, workload_input, only
        )

    def _verdict_key(
        self, result: ImageResult, workload_input: Mapping[str, Any], only: frozenset[str] | None
    ) -> VerdictKey:
        assert result.key is not None and result.verified is not None
        return verdict_key(
            policies=self._policy_set,
            image=result.key,
            documents=result.verified.documents,
            workload=workload_input if self._uses_workload else None,
            scope=only,
        )

    def _check_image(
        self, ref: str, deadline: Deadline, workload_input: Mapping[str, Any]
    ) -> ImageOutcome:
        only = self._applicable(workload_input, ref) if self._scoped else None
        if self.cold is None:
            return self.check_image_here(ref, deadline, workload_input, only).outcome
        checked = self.cold.check_image(ref, deadline.remaining(), workload_input, only)
        self._keep(ref, checked, workload_input, only)
        return checked.outcome

    def check_image_here(
        self,
        ref: str,
        deadline: Deadline,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> CheckedImage:
        """Check and judge one image in this process, with what the caches keep of it."""
        result = self.checker.check(ref, deadline=deadline)
        if result.cached:
            self.observer.cache_hit("image")
        if not result.report.ok:
            return self._checked(result, None)
        if result.key is None or result.verified is None:
            # An image check that passed always has both; judge it afresh rather than guess.
            loaded = self._evaluators.submit(self._evaluate, result, workload_input, only).result()
            return CheckedImage(outcome=ImageOutcome(result.report, loaded.value))
        key = self._verdict_key(result, workload_input, only)
        verdict = self._cached_verdict(key, result, workload_input, only)
        if verdict is not None:
            self.observer.cache_hit("verdict")
        else:
            verdict = self.verdicts.get_or_load(
                key,
                lambda: self._evaluators.submit(
                    self._evaluate, result, workload_input, only
                ).result(),
            )
        return self._checked(result, verdict, self.verdicts.expiry(key))

    def evaluate_again_here(
        self,
        ref: str,
        deadline: Deadline,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> Loaded[Verdict]:
        """A new evaluation of a checked image (`ref` by digest), for a verdict about to expire
        in the process that answers reviews."""
        result = self.checker.check(ref, deadline=deadline)
        if not result.report.ok or result.key is None or result.verified is None:
            raise ColdPathError(f"{ref} no longer passes its check: its verdict is not renewed")
        return self._evaluate(result, workload_input, only)

    def _checked(
        self, result: ImageResult, verdict: Verdict | None, verdict_expiry: Expiry | None = None
    ) -> CheckedImage:
        """An image's outcome with the cache entries of its check and verdict (CheckedImage)."""
        outcome = ImageOutcome(result.report, verdict)
        expiry = self.checker.cache.expiry(result.key) if result.key is not None else None
        if expiry is None or result.verified is None:
            return CheckedImage(outcome=outcome)
        return CheckedImage(
            outcome=outcome,
            key=result.key,
            verified=result.verified.without_sboms(),
            check_expiry=expiry,
            verdict_expiry=verdict_expiry,
        )

    def _keep(
        self,
        ref: str,
        checked: CheckedImage,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None,
    ) -> None:
        """Keep the cache entries of an image checked elsewhere (see CheckedImage)."""
        if checked.key is None or checked.verified is None or checked.check_expiry is None:
            return
        result = self.checker.keep(ref, checked.verified, checked.key, checked.check_expiry)
        verdict = checked.outcome.verdict
        if (
            result is None
            or not result.report.ok
            or verdict is None
            or checked.verdict_expiry is None
        ):
            return
        key = self._verdict_key(result, workload_input, only)
        self.verdicts.put(key, verdict, checked.verdict_expiry)

    def _applicable(self, workload_input: Mapping[str, Any], ref: str) -> frozenset[str]:
        """The policies whose scope covers this workload's namespace and this image."""
        namespace = str(workload_input.get("namespace") or "")
        labels = self.namespace_labels(namespace) if self.namespace_labels else None
        return frozenset(
            p.name
            for p in self.engine.policies
            if not p.scope or in_scope(p.scope, namespace, labels, ref)
        )

    def _evaluate(
        self,
        result: ImageResult,
        workload_input: Mapping[str, Any],
        only: frozenset[str] | None = None,
    ) -> Loaded[Verdict]:
        started = time.perf_counter()

        def evaluate(sbom: Any, image: Mapping[str, Any]) -> Verdict:
            prefetch(self.facts, sbom.components)
            return self.engine.evaluate_sbom(
                sbom, facts=self.facts, image=image, workload=workload_input, only=only
            )

        # The cyclic GC paused (see _internal/gcpause.py): a never-seen 5,000-package image
        # makes some 250,000 acyclic objects (rows, keys, inputs), and the collections they
        # brought on cost it about 7 ms.
        with gc_paused():
            verdict, _ = judge_images([result], evaluate)
        self.observer.evaluation(time.perf_counter() - started)
        findings = verdict.violations + verdict.warnings + verdict.audits + verdict.exemptions
        size = 512 * (len(findings) + len(verdict.errors) + 1)
        return Loaded(value=verdict, size=size, negative=bool(verdict.errors))

    # -- the answer ------------------------------------------------------------------------

    def mode_of(self, finding: Finding) -> Mode:
        """The mode a finding's policy runs in: its policyModes entry, else the global mode."""
        return self.config.policy_modes.get(finding.policy, self.config.mode)

    def _decide(
        self,
        tasks: Mapping[str, ImageTask],
        outcomes: Mapping[str, ImageOutcome | None],
        workload: Workload,
        unpinned: Mapping[str, Sequence[ContainerImage]] | None = None,
    ) -> Decision:
        refusals: list[Line] = []  # the image failed verification
        violations: list[Line] = []  # a package failed a policy
        failures: list[Line] = []  # a policy failed to evaluate
        faults: list[Line] = []  # we could not find out
        warnings: list[Line] = []
        audits: list[Line] = []
        unfinished: list[str] = []
        reports: list[ImageReport] = []
        quarantined: list[tuple[str, str, str]] = []
        for ref, task in tasks.items():
            paths = _paths(task.containers)
            outcome = outcomes.get(ref)
            tagged = unpinned.get(ref) if unpinned else None
            line = self._unpinned_line(ref, tagged, outcome) if tagged else None
            if line is not None:
                refusals.append(line)
            if outcome is None:
                unfinished.append(ref)
                faults.append(
                    f"image {ref} ({paths}): verification did not finish within "
                    f"{self.config.admission_deadline:g} s: cannot verify (retry shortly: the "
                    "check goes on, and what it verifies is cached)"
                )
                continue
            reports.append(outcome.report)
            for problem in outcome.report.problems:
                # A fault is "cannot verify"; a refusal or sbomgate's own failure denies.
                (faults if problem.fault else refusals).append(_problem_line(problem, ref, paths))
            verdict = outcome.verdict
            if verdict is None:
                continue
            # Lines are formatted only if shown: a big SBOM can give thousands of findings.
            for finding in verdict.violations:
                if finding.action is Action.QUARANTINE and finding.purl:
                    quarantined.append((finding.purl, finding.policy, finding.image or ref))
                mode = self.mode_of(finding)
                if mode is Mode.ENFORCE:
                    violations.append((_finding_line, finding, paths))
                elif mode is Mode.WARN:
                    warnings.append((_finding_warning, finding, paths))
                else:
                    audits.append((_finding_line, finding, paths))
            for finding in verdict.warnings:
                warnings.append((_finding_warning, finding, paths))
            for finding in verdict.audits:
                audits.append((_finding_line, finding, paths))
            for failure in verdict.errors:
                package = f"image {failure.image} ({paths}): package {failure.purl or failure.name}"
                if failure.fault:
                    faults.append(f"{package}: {failure.message}")
                else:
                    failures.append(
                        f"{package}: policy {failure.policy} failed to evaluate: {failure.message}"
                    )
        mode = self.config.mode
        denying: list[Line] = []
        if mode is Mode.ENFORCE:
            denying = refusals + violations + failures
        else:
            target = warnings if mode is Mode.WARN else audits
            target[:0] = refusals + failures
            denying = violations
        if faults:
            if self.config.faults_allowed or mode is not Mode.ENFORCE:
                warnings[:0] = faults
            else:
                denying.extend(faults)
        reasons = tuple(_render(line) for line in (denying + warnings + audits)[:MAX_LOGGED])
        allowed = not denying
        return Decision(
            allowed=allowed,
            # The object first: a GitOps sync applies many, and its error may not name them.
            message=""
            if allowed
            else f"sbomgate refused {workload.display}:\n"
            + _cap(denying, self.config.max_message_lines),
            warnings=tuple(_short(_render(w)) for w in warnings[:MAX_WARNINGS]),
            reasons=reasons,
            images=tuple(reports),
            unfinished=tuple(unfinished),
            quarantined=tuple(dict.fromkeys(quarantined)),
        )

    def _deny(self, lines: Sequence[str]) -> Decision:
        return Decision(
            allowed=False,
            message=_cap(lines, self.config.max_message_lines),
            reasons=tuple(lines),
        )

    def _log(
        self, request: AdmissionRequest, kind: str, decision: Decision, seconds: float
    ) -> None:
        log.info(
            "admission",
            extra=fields(
                uid=request.get("uid"),
                kind=kind,
                namespace=request.get("namespace"),
                name=_name_of(request),
                operation=request.get("operation"),
                dryRun=bool(request.get("dryRun")),
                allowed=decision.allowed,
                skipped=decision.skipped,
                images=[{"ref": i.ref, "digest": i.digest} for i in decision.images],
                reasons=list(decision.reasons),
                unfinished=list(decision.unfinished),
                seconds=round(seconds, 4),
            ),
        )


def _skipped(request: AdmissionRequest, exempt_namespaces: Sequence[str]) -> str | None:
    """Why a request is not judged, or None: checked before anything is read."""
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE"):
        return f"operation {operation}"
    kind = _kind_of(request)
    sub = request.get("subResource") or ""
    if sub and not (kind == "Pod" and sub == "ephemeralcontainers"):
        return f"subresource {sub}"
    namespace = request.get("namespace")
    if not isinstance(namespace, str):
        namespace = ""  # cluster-scoped, or a malformed request: never an exemption
    if namespace in exempt_namespaces:
        return f"namespace {namespace} is exempt"
    if not is_gated_kind(kind):
        return f"kind {kind} runs no containers"
    obj = request.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and meta.get("deletionTimestamp"):
        # Being deleted (e.g. a finalizer removed): refusing would only block deletion.
        return "object is being deleted"
    return None


def _image_name(ref: str) -> str:
    """`registry/repository` of a reference (as the kubelet will resolve it)."""
    try:
        return parse_reference(ref).name
    except InputError:
        return ref


def _name_of(request: AdmissionRequest) -> str | None:
    obj = request.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict):
        name = meta.get("name") or meta.get("generateName")
        if isinstance(name, str):
            return name
    name = request.get("name")
    return name if isinstance(name, str) else None


def _kind_of(request: AdmissionRequest) -> str:
    kind = request.get("kind")
    if isinstance(kind, dict) and isinstance(kind.get("kind"), str):
        return str(kind["kind"])
    return ""


def _with_namespace(workload: Workload, namespace: str) -> Workload:
    return replace(workload, namespace=namespace)


def _too_many_images(count: int) -> str:
    return (
        f"names {count} distinct images, more than the {MAX_DISTINCT_IMAGES} sbomgate checks "
        "in one object: nothing was checked (split it, or use fewer distinct images)"
    )


def _paths(containers: Sequence[ContainerImage]) -> str:
    """Where an image is used; a long list (the same image in thousands of containers) cut."""
    shown = ", ".join(c.path for c in containers[:MAX_PATHS_SHOWN])
    rest = len(containers) - MAX_PATHS_SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


def _reported(ref: str, problem: Problem) -> ImageReport:
    """The report of an image that was not checked (or whose check failed), saying why."""
    return ImageReport(ref=ref, digest=None, problems=(problem,))


def _problem_line(problem: Problem, ref: str, paths: str) -> str:
    """`image X@sha256:… (spec…containers[0]): problem`: the image the problem names (else the
    reference as written), then where it is used."""
    return f"image {problem.image or ref} ({paths}): {problem.message}"


def _reasons(finding: Finding, package: str) -> str:
    """The policy's reasons, without the package name most of them start with (the line
    already names it)."""
    out = []
    for reason in finding.reasons:
        for prefix in (f"{package}: ", f"{package} "):
            if reason.startswith(prefix) and len(reason) > len(prefix):
                reason = reason[len(prefix) :]
                break
        out.append(reason)
    return "; ".join(out) or finding.title


def _finding_line(finding: Finding, paths: str) -> str:
    package = finding.purl or (
        f"{finding.name}@{finding.version}" if finding.version else str(finding.name)
    )
    reasons = _reasons(finding, package)
    what = "image" if finding.subject else f"package {package}"
    return f"image {finding.image} ({paths}): {what}: {reasons} [policy {finding.policy}]"


def _finding_warning(finding: Finding, paths: str) -> str:
    """Warnings are cut at 256 characters: policy and package first, the image last."""
    package = finding.purl or (
        f"{finding.name}@{finding.version}" if finding.version else str(finding.name)
    )
    reasons = _reasons(finding, package)
    return f"[policy {finding.policy}] {package}: {reasons} (image {finding.image}, {paths})"


def _render(line: Line) -> str:
    if isinstance(line, str):
        return line
    format_line, finding, paths = line
    return format_line(finding, paths)


def _cap(lines: Sequence[Line], max_lines: int) -> str:
    shown = [_render(line) for line in lines[:max_lines]]
    rest = len(lines) - len(shown)
    while shown and sum(len(s) + 1 for s in shown) > MAX_MESSAGE_CHARS:
        shown.pop()
        rest += 1
    if rest:
        shown.append(f"and {rest} more")
    return "\n".join(shown)


def _short(text: str) -> str:
    return text if len(text) <= MAX_WARNING_LENGTH else text[: MAX_WARNING_LENGTH - 1] + "…"
