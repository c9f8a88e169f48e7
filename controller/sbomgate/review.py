"""admission.k8s.io/v1 AdmissionReview: the request and response as types, and the one place
answers are built (as kopf types them: TypedDicts, since they are JSON on the wire).

The request comes from the API server, or from anything else that reached the port: only its
uid is checked here (`request_of`), and every other field is read defensively where it is
used. The types say what a well-formed one holds, not what a given body does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, NotRequired, TypedDict

from sbomgate.errors import InputError

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"


class AdmissionFormatError(InputError):
    """The body is not an AdmissionReview we can answer (no uid to answer to)."""


# -- the request ------------------------------------------------------------------------


class GroupVersionKind(TypedDict):
    """metav1.GroupVersionKind: the kind of the object under review."""

    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    """metav1.GroupVersionResource: the resource the request is for."""

    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    """authenticationv1.UserInfo: who sent the request to the API server."""

    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict, total=False):
    """admissionv1.AdmissionRequest, as the API server sends it."""

    uid: str  # the only field `request_of` guarantees
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    userInfo: UserInfo
    object: dict[str, Any] | None
    oldObject: dict[str, Any] | None
    dryRun: bool
    options: dict[str, Any] | None


class AdmissionReview(TypedDict):
    """An AdmissionReview as received: its `request` is what is judged."""

    apiVersion: str
    kind: str
    request: AdmissionRequest


# -- the response -----------------------------------------------------------------------


class Status(TypedDict):
    """metav1.Status, as much of it as an admission response uses."""

    code: int
    reason: NotRequired[str]
    message: str


class AdmissionResponse(TypedDict):
    """admissionv1.AdmissionResponse: the answer to one request, by uid."""

    uid: str
    allowed: bool
    status: NotRequired[Status]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]  # base64 of the JSONPatch


class AdmissionReviewResponse(TypedDict):
    """The AdmissionReview sent back, carrying the response."""

    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


def request_of(body: Any) -> AdmissionRequest:
    """The request of an AdmissionReview body (parsed JSON), with a uid to answer to; else
    AdmissionFormatError saying what is missing."""
    if not isinstance(body, dict):
        raise AdmissionFormatError("the body is not a JSON object")
    if body.get("kind") != KIND or body.get("apiVersion") != API_VERSION:
        raise AdmissionFormatError(f"expected an {API_VERSION} AdmissionReview")
    request = body.get("request")
    if not isinstance(request, dict):
        raise AdmissionFormatError("the AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise AdmissionFormatError("the AdmissionReview request has no uid")
    return request  # type: ignore[return-value]  # the uid is checked; the rest is read warily


def uid_of(body: Any) -> str | None:
    """The uid of whatever body this is, if it has one (to answer even a body that is not a
    well-formed review, or could not be judged)."""
    request = body.get("request") if isinstance(body, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) else None


def allow(
    uid: str,
    *,
    warnings: Sequence[str] = (),
    audit_annotations: Mapping[str, str] | None = None,
    patch: str | None = None,
) -> AdmissionReviewResponse:
    """Admit; with `patch` (base64 JSONPatch), admit the object as patched."""
    return _answer(
        uid,
        allowed=True,
        warnings=warnings,
        audit_annotations=audit_annotations,
        patch=patch,
    )


def deny(
    uid: str,
    *,
    code: int,
    message: str,
    reason: str | None = None,
    warnings: Sequence[str] = (),
    audit_annotations: Mapping[str, str] | None = None,
) -> AdmissionReviewResponse:
    """Refuse, with the HTTP-like `code` (and `reason`) and the message kubectl shows."""
    status: Status = {"code": code, "message": message}
    if reason is not None:
        status = {"code": code, "reason": reason, "message": message}
    return _answer(
        uid,
        allowed=False,
        status=status,
        warnings=warnings,
        audit_annotations=audit_annotations,
    )


def _answer(
    uid: str,
    *,
    allowed: bool,
    status: Status | None = None,
    warnings: Sequence[str] = (),
    audit_annotations: Mapping[str, str] | None = None,
    patch: str | None = None,
) -> AdmissionReviewResponse:
    response: AdmissionResponse = {"uid": uid, "allowed": allowed}
    if status is not None:
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings)
    if audit_annotations:
        response["auditAnnotations"] = dict(audit_annotations)
    if patch is not None:
        response["patchType"] = "JSONPatch"
        response["patch"] = patch
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
