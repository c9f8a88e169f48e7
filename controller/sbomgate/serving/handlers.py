"""What each webhook does with a request body, on a review thread: parse it, hand it to the
admission controller (or the resource checks), and answer. Never a crashed webhook: a bug
denies, with its name."""

from __future__ import annotations

import logging
import threading

from fastapi.responses import Response

from sbomgate._internal.deadline import Deadline
from sbomgate.admission import AdmissionController
from sbomgate.errors import SbomgateError
from sbomgate.review import AdmissionFormatError, allow, deny, uid_of
from sbomgate.serving.body import parse_body
from sbomgate.serving.responses import answer, error

log = logging.getLogger(__name__)


def review(
    controller: AdmissionController | None,
    raw: bytes,
    ready: threading.Event,
    deadline: Deadline | None = None,
) -> Response:
    """POST /validate."""
    answered = _review(controller, raw, ready, deadline, cached_only=False)
    assert answered is not None  # only a cached-only review gives up
    return answered


def review_cached(
    controller: AdmissionController | None,
    raw: bytes,
    ready: threading.Event,
    deadline: Deadline | None = None,
) -> Response | None:
    """POST /validate from what is known (`AdmissionController.review_cached`): no I/O, no
    wait, so it runs on the event loop. None: `review` answers it on a review thread."""
    return _review(controller, raw, ready, deadline, cached_only=True)


def _review(
    controller: AdmissionController | None,
    raw: bytes,
    ready: threading.Event,
    deadline: Deadline | None,
    *,
    cached_only: bool,
) -> Response | None:
    body = parse_body(raw)
    if isinstance(body, Response):
        return body
    if controller is None or not ready.is_set():
        return error(503, "not ready: policies are not loaded yet")
    try:
        if cached_only:
            found = controller.review_cached(body, deadline=deadline)
            if found is None:
                return None
            reviewed = found
        else:
            reviewed = controller.review(body, deadline=deadline)
    except AdmissionFormatError as exc:
        return error(400, str(exc))
    except Exception as exc:  # never a crashed webhook: a bug denies, with its name
        log.exception("admission review failed")
        uid = uid_of(body)
        if uid is None:
            return error(500, f"internal error: {type(exc).__name__}")
        reviewed = deny(
            uid, code=500, message=f"sbomgate internal error ({type(exc).__name__}): denied"
        )
    return answer(reviewed)


def mutate(
    controller: AdmissionController | None,
    raw: bytes,
    ready: threading.Event,
    deadline: Deadline | None = None,
) -> Response:
    """POST /mutate. It never refuses and never fails a request it can answer: without a
    patch, the reference stays a tag and /validate refuses it (so nothing slips through a
    failure here)."""
    body = parse_body(raw)
    if isinstance(body, Response):
        return body
    uid = uid_of(body)
    if controller is None or not ready.is_set():
        # No patch: /validate answers "not ready", which failurePolicy Fail makes a refusal.
        if uid is None:
            return error(503, "not ready: policies are not loaded yet")
        return answer(allow(uid))
    try:
        mutated = controller.mutate(body, deadline=deadline)
    except AdmissionFormatError as exc:
        return error(400, str(exc))
    except Exception as exc:
        log.exception("mutation failed")
        if uid is None:
            return error(500, f"internal error: {type(exc).__name__}")
        mutated = allow(uid)  # unpatched
    return answer(mutated)


def review_policy(raw: bytes) -> Response:
    """POST /validate-policy: refuse a PackagePolicy whose Rego does not load, or a
    TrustPolicy that does not parse, at `kubectl apply` time, with the load error (line and
    column)."""
    from sbomgate.operator import resources

    body = parse_body(raw)
    if isinstance(body, Response):
        return body
    uid = uid_of(body)
    if not uid:
        return error(400, "the AdmissionReview request has no uid")
    request = body["request"]
    obj = request.get("object")
    kind_doc = request.get("kind")
    kind = kind_doc.get("kind") if isinstance(kind_doc, dict) else None
    reviewed = allow(uid)
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
            reviewed = deny(uid, code=422, reason="Invalid", message=str(exc))
        except Exception as exc:  # malformed beyond what the CRD schema lets through
            log.exception("policy review failed")
            message = f"{kind} is malformed ({type(exc).__name__})"
            reviewed = deny(uid, code=422, reason="Invalid", message=message)
    return answer(reviewed)
