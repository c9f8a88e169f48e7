"""One exception root, problems as data, one Deadline, AdmissionReview answers built in one
place: the guard rails of sbomgate's edges."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import sbomgate
from sbomgate._internal.deadline import Deadline
from sbomgate.attest.envelope import FormatError
from sbomgate.attest.keys import KeyMaterialError
from sbomgate.errors import (
    InputError,
    RegistryError,
    RegistryUnavailableError,
    RemoteError,
    SbomgateError,
    VerificationError,
)
from sbomgate.intel.ecosystems import UncomparableVersion
from sbomgate.intel.osv import OsvLoadError
from sbomgate.intel.sources import SourceFault
from sbomgate.policy._semver import InvalidSemver
from sbomgate.problems import Problem, ProblemKind
from sbomgate.registry.oci import ManifestFormatError
from sbomgate.review import AdmissionFormatError, allow, deny, request_of, uid_of
from sbomgate.sbom._common import Invalid
from sbomgate.sbom.licenses import LicenseLibraryError, LicenseSyntaxError
from sbomgate.verdict import ImageReport

# Subclasses of a library's exceptions that never leave the module that raises them: the
# transport's network backend signals httpcore with them and turns them into RegistryErrors.
LIBRARY_SIGNALS = {"sbomgate.registry.transport._BlockedAddress", "sbomgate.registry.transport._ResolveTimeout"}  # fmt: skip
# Control flow inside the Go template interpreter ({{break}}, {{continue}}), caught where the
# loop is: never an error.
LIBRARY_SIGNALS |= {"sbomgate.policy._gotemplate._Break", "sbomgate.policy._gotemplate._Continue"}  # fmt: skip


def _exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(sbomgate.__path__, "sbomgate."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__.startswith("sbomgate."):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [cls for name, cls in sorted(found.items()) if name not in LIBRARY_SIGNALS]


def test_every_exception_derives_from_sbomgate_error() -> None:
    exceptions = _exceptions()
    assert len(exceptions) > 20
    strays = [f"{c.__module__}.{c.__qualname__}" for c in exceptions if not issubclass(c, SbomgateError)]  # fmt: skip
    assert strays == []


@pytest.mark.parametrize(
    ("cls", "users_mistake"),
    [
        (OsvLoadError, True),  # --osv names a file that is missing or not an export
        (KeyMaterialError, True),  # a trust policy's key
        (LicenseSyntaxError, True),  # the SBOM document's expression
        (Invalid, True),  # the SBOM document
        (AdmissionFormatError, True),  # the request's sender
        (SourceFault, False),  # a trusted repository could not be asked
        (FormatError, False),  # an attestation: the image is refused
        (ManifestFormatError, False),  # the registry's content
        (InvalidSemver, False),  # undefined in Rego, as OPA's builtin errors are
        (UncomparableVersion, False),  # an uncertain advisory match
        (LicenseLibraryError, False),  # the license library failed
    ],
)
def test_users_mistakes_are_input_errors(cls: type[Exception], users_mistake: bool) -> None:
    assert issubclass(cls, SbomgateError)
    assert issubclass(cls, InputError) is users_mistake
    assert not issubclass(cls, ValueError)  # caught by name, not as a ValueError


def test_remote_errors_keep_host_and_message_apart() -> None:
    registry = RegistryUnavailableError("ghcr.io", "timed out")
    source = SourceFault("pypi.internal:8080", "HTTP 500 for https://pypi.internal:8080/simple/x/")
    assert str(registry) == "registry ghcr.io: timed out"
    assert (registry.host, registry.message) == ("ghcr.io", "timed out")
    assert isinstance(registry, RemoteError) and isinstance(source, RemoteError)
    assert not isinstance(source, RegistryError)
    assert source.message == "HTTP 500 for https://pypi.internal:8080/simple/x/"
    assert issubclass(FormatError, VerificationError)


# --------------------------------------------------------------------------- problems


def test_problem_text_is_what_users_read() -> None:
    pinned = "ghcr.io/acme/web@sha256:" + "a" * 64
    refused = Problem(image=pinned, message="no trust policy covers ghcr.io/acme/web: refused")
    assert str(refused) == f"image {pinned}: no trust policy covers ghcr.io/acme/web: refused"
    unparsed = Problem(message="invalid image reference 'A B': spaces")
    assert str(unparsed) == "invalid image reference 'A B': spaces"
    assert refused.kind is ProblemKind.REFUSAL and not refused.fault


def test_image_report_errors_and_fault_follow_its_problems() -> None:
    fault = Problem(
        image="ghcr.io/acme/web:1", message="registry ghcr.io: timed out", kind=ProblemKind.FAULT
    )
    report = ImageReport(ref="ghcr.io/acme/web:1", digest=None, problems=(fault,))
    assert report.errors == ("image ghcr.io/acme/web:1: registry ghcr.io: timed out",)
    assert report.fault and not report.ok
    clean = ImageReport(ref="ghcr.io/acme/web:1", digest="sha256:" + "b" * 64)
    assert clean.ok and not clean.fault and clean.errors == ()


# --------------------------------------------------------------------------- deadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_reads_its_clock() -> None:
    clock = FakeClock()
    deadline = Deadline.after(8.0, clock=clock)
    assert deadline.remaining() == 8.0 and deadline.limit() == 8.0
    clock.now += 3.0
    assert deadline.remaining() == 5.0 and deadline.elapsed() == 3.0
    late = deadline.exhausted()
    assert late.remaining() == 0.0 and late.elapsed() == 3.0 and late.started == deadline.started
    clock.now += 10.0
    assert deadline.remaining() == -5.0


# --------------------------------------------------------------------------- AdmissionReview


def test_answers_are_admission_reviews() -> None:
    admitted = allow("u1")
    assert admitted == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u1", "allowed": True},
    }
    patched = allow("u2", patch="W10=")
    assert patched["response"] == {
        "uid": "u2",
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": "W10=",
    }
    refused = deny(
        "u3",
        code=403,
        reason="Forbidden",
        message="sbomgate refused Pod/x",
        warnings=["w"],
        audit_annotations={"images": "sha256:1"},
    )
    assert list(refused["response"]) == ["uid", "allowed", "status", "warnings", "auditAnnotations"]
    assert refused["response"]["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "message": "sbomgate refused Pod/x",
    }
    assert deny("u4", code=500, message="bug")["response"]["status"] == {
        "code": 500,
        "message": "bug",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the body is not a JSON object"),
        ({"kind": "AdmissionReview"}, "expected an admission.k8s.io/v1 AdmissionReview"),
        (
            {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"},
            "the AdmissionReview has no request",
        ),
        (
            {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}},
            "the AdmissionReview request has no uid",
        ),
    ],
)
def test_request_of_says_what_is_missing(body: Any, message: str) -> None:
    with pytest.raises(AdmissionFormatError, match=f"^{message}$"):
        request_of(body)
    assert uid_of(body) is None


def test_request_of_returns_the_request() -> None:
    request = {"uid": "u", "operation": "CREATE"}
    body = {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}
    assert request_of(body) == request and uid_of(body) == "u"
