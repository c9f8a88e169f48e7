"""From an image reference to verified SBOMs, and on to a verdict.

    reference -> resolve (digest) -> discover (attestations) -> verify (trust policies)
              -> parse (SBOMs) -> evaluate (Rego)

The first four steps are per repository and digest and cached process-wide (`DigestCache`,
keyed as sbomgate/cache_keys.py says), so the webhook, the audit and the CLI share them;
evaluation runs each time (policies and facts change). Errors are sorted into refusals (the
image failed a check, including everything its own registry content causes: too big, too
many, junk, wrong digests) and faults (the registry could not be asked: unreachable, 5xx,
429): both deny, but they are reported differently.

Nothing is fetched for an image no trust policy covers, and unsigned content is not downloaded
when no covering policy accepts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from sbomgate._internal.cache import DigestCache, Expiry, Loaded
from sbomgate._internal.deadline import Deadline
from sbomgate._internal.gcpause import free_later, gc_paused
from sbomgate._internal.jsonpieces import PartlyDecoded
from sbomgate.attest import (
    AttestationCheck,
    AttestationVerifier,
    TrustPolicy,
    VerifiedDocument,
    parse_statement,
)
from sbomgate.cache_keys import ImageCheckKey, documents_fingerprint, image_check_key
from sbomgate.errors import (
    ColdPathError,
    InputError,
    ManifestNotFoundError,
    RegistryError,
    RegistryUnavailableError,
    SbomError,
    VerificationError,
)
from sbomgate.problems import Problem, ProblemKind
from sbomgate.registry import (
    DiscoveredImage,
    FetchedManifest,
    ImageReference,
    RegistryClient,
    discover,
    parse_reference,
)
from sbomgate.registry.budget import ImageBodies
from sbomgate.sbom import (
    JsonDocument,
    Sbom,
    parse_sbom,
    parse_sbom_decoded,
    parse_sbom_in_statement,
)
from sbomgate.verdict import AttestationReport, ImageReport, Verdict, merge_verdicts

Phase = str  # "resolve" | "discover" | "verify" | "parse" | "evaluate"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedSbom:
    """One verified SBOM of an image: parsed, with the manifest it speaks for and its
    input.v0.image."""

    sbom: Sbom
    image: str  # registry/repository@digest of the manifest this SBOM speaks for
    digest: str
    image_input: Mapping[str, Any]  # input.v0.image for this SBOM's packages


@dataclass(frozen=True, slots=True, kw_only=True)
class _KeptSbom:
    """A verified SBOM as the cache keeps it: its bytes, parsed again when needed. With
    `in_statement`, `data` is the verified in-toto statement and the SBOM its predicate."""

    data: bytes
    source: str
    image: str
    digest: str
    image_input: Mapping[str, Any]
    in_statement: bool = False

    def parse(self) -> CheckedSbom:
        if self.in_statement:
            with gc_paused():  # a statement holds a whole SBOM: see _internal/gcpause.py
                statement = parse_statement(self.data)
                sbom = parse_sbom_in_statement(
                    statement.predicate_source,
                    self.data,
                    source=self.source,
                    items=statement.items,
                )
                free_later(statement)
        else:
            sbom = parse_sbom(self.data, source=self.source)
        return CheckedSbom(
            sbom=sbom, image=self.image, digest=self.digest, image_input=self.image_input
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedImage:
    """The cached, per-digest result: what verification said, and the SBOMs as bytes.

    Not as parsed objects: hundreds of thousands of them per large SBOM, which every full
    collection of Python's cyclic GC walks while holding the GIL (about 0.5 s with 40 cached
    5,000-component SBOMs: a pause every review would wait out). Bytes are not walked, and
    parsing again costs about 2% of an evaluation, needed only when no verdict is cached."""

    digest: str
    checks: tuple[AttestationCheck, ...]
    kept: tuple[_KeptSbom, ...]
    components: int
    refusals: tuple[Problem, ...]
    seconds: Mapping[Phase, float]
    # Of the verified SBOMs and the image input each is evaluated with (cache_keys.py).
    documents: str = ""
    # A copy without the SBOMs, kept by the process that answers reviews when another process
    # checked the image (serving/coldpath.py): it answers cached reviews, never an evaluation.
    elsewhere: bool = False

    def without_sboms(self) -> VerifiedImage:
        """This result for a process that only answers cached reviews (`elsewhere`)."""
        return replace(self, kept=(), elsewhere=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageResult:
    """An image check: the report, what was verified, time per phase, whether it came from the
    cache."""

    report: ImageReport
    verified: VerifiedImage | None = None
    seconds: Mapping[Phase, float] = field(default_factory=dict)
    cached: bool = False
    parsed: tuple[CheckedSbom, ...] | None = None  # when just loaded: no need to parse again
    key: ImageCheckKey | None = None  # the image-check cache key (cache_keys.py)

    @property
    def sboms(self) -> tuple[CheckedSbom, ...]:
        """The verified SBOMs, parsed (again, when the result came from the cache)."""
        if self.parsed is not None:
            return self.parsed
        if self.verified is None:
            return ()
        if self.verified.elsewhere:
            # Evaluating it here would judge no packages at all: never an answer.
            raise ColdPathError("the SBOMs of this image check are kept by another process")
        return tuple(kept.parse() for kept in self.verified.kept)


class ImageChecker:
    """Resolve, discover, verify and parse, with a shared digest-keyed cache."""

    def __init__(
        self,
        client: RegistryClient,
        verifier: AttestationVerifier,
        cache: DigestCache[VerifiedImage] | None = None,
        *,
        timeout: float = 30.0,
        allow_empty_sbom: bool = False,
        read_ahead: Callable[[bytes], None] | None = None,
    ) -> None:
        self.client = client
        self.verifier = verifier
        self.cache = cache if cache is not None else DigestCache()
        self.timeout = timeout
        # An SBOM that lists nothing proves nothing: refused unless this says otherwise.
        self.allow_empty_sbom = allow_empty_sbom
        # Given each verified SBOM's JSON text before it is parsed (`IntelFacts.read_ahead`:
        # facts worked out on another core meanwhile).
        self.read_ahead = read_ahead
        self._settings = f"allow-empty-sbom={allow_empty_sbom}"

    def _covered(self, ref_text: str) -> tuple[ImageReference, list[TrustPolicy]] | ImageResult:
        """The reference and the trust policies covering it, or the refusal (before any
        request: whatever the registry holds could not make it pass)."""
        try:
            ref = parse_reference(ref_text)
        except InputError as exc:
            # No image to name: the message quotes the reference.
            return _refused(ref_text, None, Problem(message=str(exc)))
        covering = self.verifier.covering(ref.name)
        if not covering:
            return _refused(
                ref_text,
                ref.digest,
                Problem(
                    image=str(ref),
                    message=f"no trust policy covers {ref.name}: refused (nothing fetched)",
                ),
            )
        return ref, covering

    def check_cached(self, ref_text: str) -> ImageResult | None:
        """`check` without I/O: the refusal of a reference no trust policy covers, or the cached
        check of a reference by digest; None when it would need the registry (a tag, or a
        digest not checked yet)."""
        covered = self._covered(ref_text)
        if isinstance(covered, ImageResult):
            return covered
        ref, covering = covered
        if ref.digest is None:
            return None
        key = self._key(ref, ref.digest, covering)
        hit = self.cache.get(key)
        if hit is None:
            return None
        return self._result(ref_text, ref, hit, {}, cached=True, key=key)

    def keep(
        self, ref_text: str, verified: VerifiedImage, key: ImageCheckKey, expiry: Expiry
    ) -> ImageResult | None:
        """Keep a check another process made of `ref_text` (`key`: its key there, `expiry`: how
        it keeps it), so that `check_cached` answers from it here. The result as
        `check_cached` gives it; None when this checker keys it otherwise (other trust
        policies), and then nothing is kept."""
        covered = self._covered(ref_text)
        if isinstance(covered, ImageResult):
            return None
        ref, covering = covered
        mine = self._key(ref, key[1], covering)
        if mine != key:
            return None
        light = verified if verified.elsewhere else verified.without_sboms()
        size = 4096 * (1 + len(light.checks) + len(light.refusals))
        self.cache.put(mine, light, replace(expiry, size=size))
        return self._result(ref_text, ref, light, {}, cached=True, key=mine)

    def _key(self, ref: ImageReference, digest: str, covering: list[TrustPolicy]) -> ImageCheckKey:
        return image_check_key(
            repository=ref.name,
            digest=digest,
            trust=_trust_fingerprint(p.fingerprint for p in covering),
            settings=self._settings,
        )

    def check(self, ref_text: str, *, deadline: Deadline | None = None) -> ImageResult:
        """Resolve, discover, verify and parse one image, cached by repository and digest."""
        deadline = deadline or Deadline.after(self.timeout)
        seconds: dict[Phase, float] = {}
        covered = self._covered(ref_text)
        if isinstance(covered, ImageResult):
            return covered
        ref, covering = covered
        started = time.perf_counter()
        digest = ref.digest
        resolved = None
        try:
            if digest is None:
                resolved = self.client.resolve(ref, deadline=deadline)
                digest = resolved.digest
                seconds["resolve"] = time.perf_counter() - started
            key = self._key(ref, digest, covering)
            hit = self.cache.get(key)
            if hit is not None:
                return self._result(ref_text, ref, hit, seconds, cached=True, key=key)
            pinned = ref.with_digest(digest)
            want_unsigned = any(p.allow_unsigned for p in covering)

            fresh: list[tuple[CheckedSbom, ...]] = []

            def load() -> Loaded[VerifiedImage]:
                loaded, parsed = self._load(pinned, deadline, resolved, want_unsigned)
                fresh.append(parsed)
                return loaded

            value = self.cache.get_or_load(key, load)
        except ManifestNotFoundError as exc:
            problem = Problem(image=str(ref), message=f"not found ({exc.message})")
            return _refused(ref_text, digest, problem, seconds)
        except RegistryUnavailableError as exc:
            # Infrastructure: said as such, never as a policy failure; still a denial.
            problem = Problem(
                image=str(ref), message=f"{exc}: cannot verify", kind=ProblemKind.FAULT
            )
            return _refused(ref_text, digest, problem, seconds)
        except RegistryError as exc:
            # Refused access, auth, content over a limit or not matching its digest.
            return _refused(ref_text, digest, Problem(image=str(ref), message=str(exc)), seconds)
        return self._result(
            ref_text, ref, value, seconds, cached=False, parsed=fresh[0] if fresh else None, key=key
        )

    def _result(
        self,
        ref_text: str,
        ref: ImageReference,
        value: VerifiedImage,
        seconds: dict[Phase, float],
        *,
        cached: bool,
        parsed: tuple[CheckedSbom, ...] | None = None,
        key: ImageCheckKey | None = None,
    ) -> ImageResult:
        reports = tuple(
            AttestationReport(
                predicate_type=c.predicate_type,
                verified=c.verified,
                signer=c.signer,
                error=c.error,
                location=c.location,
                details={"layout": c.layout, "attachedTo": c.attached_to, "trustPolicy": c.policy},
            )
            for c in value.checks
        )
        if not cached:
            seconds.update(value.seconds)
        report = ImageReport(
            ref=ref_text,
            digest=value.digest,
            attestations=reports,
            problems=value.refusals,
            components=value.components,
        )
        return ImageResult(
            report=report, verified=value, seconds=seconds, cached=cached, parsed=parsed, key=key
        )

    def _load(
        self,
        pinned: ImageReference,
        deadline: Deadline,
        resolved: FetchedManifest | None,
        want_unsigned: bool,
    ) -> tuple[Loaded[VerifiedImage], tuple[CheckedSbom, ...]]:
        # The downloaded bodies count against the budgets until verification and parsing are
        # over (registry/budget.py); then only the kept SBOM bytes remain, in the cache.
        with ImageBodies(
            self.client.bodies,
            self.client.limits.max_attestation_bytes,
            image=str(pinned),
            registry=pinned.registry,
        ) as bodies:
            return self._load_within(pinned, deadline, resolved, want_unsigned, bodies)

    def _load_within(
        self,
        pinned: ImageReference,
        deadline: Deadline,
        resolved: FetchedManifest | None,
        want_unsigned: bool,
        bodies: ImageBodies,
    ) -> tuple[Loaded[VerifiedImage], tuple[CheckedSbom, ...]]:
        seconds: dict[Phase, float] = {}
        clock = time.perf_counter()
        found = discover(
            self.client,
            pinned,
            deadline=deadline,
            resolved=resolved,
            want_unsigned=want_unsigned,
            bodies=bodies,
        )
        seconds["discover"] = time.perf_counter() - clock
        # The cyclic GC is paused until _verify_and_parse has returned: the decoded statements
        # (some 100,000 dicts and lists for 5,000 components, acyclic) are freed by reference
        # counting as it returns, so no collection walks them. Walked, they cost a new build
        # about a tenth of its admission (twice each, and the full collections they bring on).
        # Not over the download: a slow registry would keep the GC off for every thread.
        with gc_paused():
            return self._verify_and_parse(pinned, found, seconds)

    def _verify_and_parse(
        self, pinned: ImageReference, found: DiscoveredImage, seconds: dict[Phase, float]
    ) -> tuple[Loaded[VerifiedImage], tuple[CheckedSbom, ...]]:
        clock = time.perf_counter()
        verification = self.verifier.verify(found)
        seconds["verify"] = time.perf_counter() - clock
        clock = time.perf_counter()
        refusals = list(verification.refusals)
        sboms: list[CheckedSbom] = []
        kept: list[_KeptSbom] = []
        if verification.ok:
            provenance = _provenance_summary(verification.provenance)
            if self.read_ahead is not None:
                for document in verification.sboms:
                    text = _text_of(document)
                    if text is not None:
                        self.read_ahead(text)
            for document in verification.sboms:
                source = f"{pinned.name}@{document.digest} ({document.location})"
                # The verified statement, when the predicate is a JSON object decoded from it
                # (or, a large CycloneDX one, decoded but for its components): kept and checked
                # rather than the predicate written out again.
                predicate = document.predicate_source
                statement = document.statement if type(predicate) in (dict, PartlyDecoded) else None
                try:
                    if statement is not None:
                        data = statement
                        sbom = parse_sbom_in_statement(
                            predicate, data, source=source, items=document.items
                        )
                    else:
                        data = _sbom_bytes(document, source)
                        sbom = parse_sbom_decoded(document.predicate, data, source=source)
                        if sbom.document is document.predicate:  # then `data` is its JSON
                            sbom = replace(sbom, document=JsonDocument(data))
                except SbomError as exc:
                    refusals.append(
                        Problem(image=verification.image, message=f"signed SBOM unusable: {exc}")
                    )
                    continue
                if not sbom.components and not self.allow_empty_sbom:
                    refusals.append(
                        Problem(
                            image=verification.image,
                            message=f"the verified SBOM {document.location} "
                            f"(for {document.digest}) lists no packages: an SBOM that lists "
                            "nothing proves nothing (allowEmptySbom admits such images)",
                        )
                    )
                    continue
                check = next(c for c in verification.checks if c.location == document.location)
                image_input = {
                    "ref": str(pinned),
                    "digest": document.digest,
                    "attestation": {
                        "verified": check.verified,
                        "signer": check.signer,
                        "issuer": check.issuer,
                        "predicate_type": check.predicate_type,
                    },
                    "provenance": provenance,
                }
                image = f"{pinned.name}@{document.digest}"
                sboms.append(
                    CheckedSbom(
                        sbom=sbom, image=image, digest=document.digest, image_input=image_input
                    )
                )
                kept.append(
                    _KeptSbom(
                        data=data,
                        source=source,
                        image=image,
                        digest=document.digest,
                        image_input=image_input,
                        in_statement=statement is not None,
                    )
                )
        seconds["parse"] = time.perf_counter() - clock
        value = VerifiedImage(
            digest=verification.digest,
            # Without the statements and raw SBOMs they carry (the kept bytes are enough).
            checks=tuple(replace(c, statement=None, raw_sbom=None) for c in verification.checks),
            kept=tuple(kept),
            components=sum(len(s.sbom.components) for s in sboms),
            refusals=tuple(refusals),
            seconds=seconds,
            documents=documents_fingerprint([(k.data, k.image_input) for k in kept]),
        )
        size = sum(len(k.data) for k in kept) + 4096 * (1 + len(verification.checks))
        # The decoded statements (a whole SBOM each) are freed after the answer, not before it.
        free_later(verification)
        return Loaded(value=value, size=size, negative=bool(refusals)), tuple(sboms)

    def check_many(
        self, refs: Sequence[str], *, deadline: Deadline | None = None, workers: int = 8
    ) -> list[ImageResult]:
        """Images in parallel, the same reference once."""
        unique = list(dict.fromkeys(refs))
        if len(unique) <= 1:
            return [self.check(r, deadline=deadline) for r in unique]
        with ThreadPoolExecutor(max_workers=min(workers, len(unique))) as pool:
            return list(pool.map(lambda r: self.check(r, deadline=deadline), unique))


def _refused(
    ref_text: str,
    digest: str | None,
    problem: Problem,
    seconds: Mapping[Phase, float] | None = None,
) -> ImageResult:
    """The result of a check that ended with one problem, before any attestation was read."""
    report = ImageReport(ref=ref_text, digest=digest, problems=(problem,))
    return ImageResult(report=report, seconds=seconds if seconds is not None else {})


def _trust_fingerprint(fingerprints: Iterable[str]) -> str:
    """The covering trust policies as one string: order does not matter, each one does."""
    return ",".join(sorted(fingerprints))


def _parse(document: VerifiedDocument, source: str) -> Sbom:
    return parse_sbom(_sbom_bytes(document, source), source=source)


def _text_of(document: VerifiedDocument) -> bytes | None:
    """The JSON text a verified SBOM was read from, when it is at hand (the statement's, or
    the SBOM's own), without writing anything out."""
    if document.statement is not None:
        return document.statement
    source = document.predicate_source
    return bytes(source) if isinstance(source, bytes | bytearray) else None


def _sbom_bytes(document: VerifiedDocument, source: str) -> bytes:
    try:
        predicate = document.predicate
    except VerificationError as exc:  # a deferred predicate's components that are not JSON
        raise SbomError(source, str(exc)) from None
    if isinstance(predicate, str):  # `cosign attest --type spdx` embeds the file as a string
        return predicate.encode()
    if isinstance(predicate, bytes | bytearray):
        return bytes(predicate)
    try:
        return orjson.dumps(predicate)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise SbomError(source, f"the SBOM predicate cannot be read as JSON: {exc}") from None


def _provenance_summary(documents: Iterable[VerifiedDocument]) -> Mapping[str, Any] | None:
    for document in documents:
        predicate = document.predicate if isinstance(document.predicate, dict) else {}
        # Signed is not well-formed: any field may be any JSON (SLSA v1 or v0.2 layout).
        run_details = predicate.get("runDetails")
        builder = (
            run_details.get("builder") if isinstance(run_details, dict) else None
        ) or predicate.get("builder")
        return {
            "predicate_type": document.predicate_type,
            "builder_id": builder.get("id") if isinstance(builder, dict) else None,
            "digest": document.digest,
        }
    return None


EvaluateSbom = Callable[[Sbom, Mapping[str, Any]], Verdict]


def judge_images(
    results: Sequence[ImageResult], evaluate: EvaluateSbom
) -> tuple[Verdict, dict[Phase, float]]:
    """Evaluate every verified SBOM of every image (on the calling thread: it owns the
    engines) and fold it all into one verdict. Returns it and the evaluation time."""
    verdicts: list[Verdict] = []
    reports: list[ImageReport] = []
    clock = time.perf_counter()
    for result in results:
        reports.append(result.report)
        if not result.report.ok:
            continue
        for checked in result.sboms:
            verdict = evaluate(checked.sbom, checked.image_input)
            label = checked.image
            verdicts.append(
                replace(
                    verdict,
                    violations=tuple(replace(f, image=label) for f in verdict.violations),
                    warnings=tuple(replace(f, image=label) for f in verdict.warnings),
                    audits=tuple(replace(f, image=label) for f in verdict.audits),
                    exemptions=tuple(replace(f, image=label) for f in verdict.exemptions),
                    errors=tuple(replace(e, image=label) for e in verdict.errors),
                )
            )
    return merge_verdicts(verdicts, reports), {"evaluate": time.perf_counter() - clock}
