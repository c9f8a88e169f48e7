"""Find every attestation attached to an image, in the four layouts in use today.

1. cosign's legacy tag `sha256-<hex>.att`: an image manifest whose layers are DSSE envelopes
   (`application/vnd.dsse.envelope.v1+json`), with the certificate, chain and Rekor bundle in
   layer annotations.
2. OCI 1.1 referrers (the API, else the `sha256-<hex>` fallback tag index): artifact manifests
   whose `subject` is the image, carrying DSSE envelopes, unsigned in-toto statements or raw
   SBOMs (`oras attach`).
3. Sigstore bundles as referrers (`application/vnd.dev.sigstore.bundle.v0.3+json`), what
   cosign v3 writes by default.
4. BuildKit attestation manifests inside the image index (platform `unknown/unknown` and
   `vnd.docker.reference.type: attestation-manifest`), whose layers are unsigned in-toto
   statements. Every other index entry is runnable (a runtime picks by platform alone) and is
   judged as a platform manifest.

Each manifest and blob is fetched once per image however often it is listed, attestations are
counted after removing repeats, and the bytes downloaded count against the image's and the
process's budgets (registry/budget.py).

Everything here is untrusted raw material for `sbomgate.attest`: discovery only fetches (with
digest checks and size caps) and labels where each piece came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from sbomgate._internal.deadline import Deadline
from sbomgate.errors import ManifestNotFoundError, RegistryError
from sbomgate.registry.budget import ImageBodies
from sbomgate.registry.client import FetchedManifest, RegistryClient
from sbomgate.registry.oci import (
    BUILDKIT_ATTESTATION,
    BUILDKIT_REFERENCE_DIGEST,
    BUILDKIT_REFERENCE_TYPE,
    DSSE_ENVELOPE,
    IN_TOTO,
    IN_TOTO_PREDICATE_ANNOTATION,
    INDEX_TYPES,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE_PREFIX,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
)
from sbomgate.registry.reference import ImageReference

# Raw SBOM documents attached without an envelope (oras attach, some CI tools).
RAW_SBOM_TYPES = frozenset(
    {
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.cyclonedx",
        "application/spdx+json",
        "application/vnd.spdx+json",
        "text/spdx+json",
    }
)


# Each platform manifest of an index costs a cosign-tag and a referrers lookup, each BuildKit
# attestation manifest a fetch: an index may list 1,000 entries, real ones list a few dozen.
MAX_PLATFORMS = 64
MAX_BUILDKIT_ATTESTATIONS = 64

# The in-toto predicate types an unenveloped SBOM stands for.
CYCLONEDX_BOM = "https://cyclonedx.org/bom"
SPDX_DOCUMENT = "https://spdx.dev/Document"


class Layout(StrEnum):
    """Where an attestation was found (the four layouts of the module docstring)."""

    COSIGN_TAG = "cosign-tag"  # sha256-<hex>.att
    REFERRER = "referrer"  # OCI 1.1 referrer with a DSSE envelope, statement or raw SBOM
    SIGSTORE_BUNDLE = "sigstore-bundle"  # referrer carrying a Sigstore bundle
    BUILDKIT = "buildkit"  # attestation manifest inside the index


class Content(StrEnum):
    """What an attestation's body is: signed or not, enveloped or not."""

    DSSE = "dsse"  # a DSSE envelope (signed)
    BUNDLE = "bundle"  # a Sigstore bundle (signed)
    STATEMENT = "statement"  # an in-toto statement with no signature
    RAW_SBOM = "raw-sbom"  # an SBOM document with no envelope and no signature


@dataclass(frozen=True, slots=True)
class FoundAttestation:
    """One attestation as found in the registry, not yet verified."""

    layout: Layout
    content_type: Content
    attached_to: str  # the digest the registry links it to
    location: str  # where it was found, for messages
    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)
    predicate_type_hint: str | None = None  # from annotations/artifactType; untrusted

    @property
    def signed(self) -> bool:
        """True when the body carries a signature (a DSSE envelope or a Sigstore bundle)."""
        return self.content_type in (Content.DSSE, Content.BUNDLE)


@dataclass(frozen=True, slots=True)
class PlatformImage:
    """One runnable manifest of an index, with its platform."""

    digest: str
    platform: Platform | None


@dataclass(frozen=True, slots=True)
class DiscoveredImage:
    """An image resolved to a digest, with its platform manifests and every attestation found."""

    ref: ImageReference
    digest: str  # what the reference resolved to (manifest or index)
    is_index: bool
    platforms: tuple[PlatformImage, ...]  # the runnable manifests of an index
    attestations: tuple[FoundAttestation, ...]
    problems: tuple[str, ...] = ()  # attestations that could not be read (not fatal alone)

    @property
    def pinned(self) -> ImageReference:
        """The reference pinned to the digest it resolved to."""
        return self.ref.with_digest(self.digest)


def is_attestation_entry(entry: Descriptor) -> bool:
    """A BuildKit attestation manifest: an OCI image manifest (BuildKit writes attestations
    with OCI media types only) on platform `unknown/unknown`, marked
    `vnd.docker.reference.type: attestation-manifest`. Runtimes pick an index entry by platform
    alone (containerd: the first match wins), so an entry with any other platform, media type
    or annotation may run whatever it claims, and is judged as runnable."""
    platform = entry.platform
    return (
        platform is not None
        and platform.os == "unknown"
        and platform.architecture == "unknown"
        and entry.media_type == OCI_MANIFEST
        and entry.annotations.get(BUILDKIT_REFERENCE_TYPE) == BUILDKIT_ATTESTATION
    )


def discover(
    client: RegistryClient,
    ref: ImageReference,
    *,
    deadline: Deadline | None = None,
    resolved: FetchedManifest | None = None,
    want_unsigned: bool = True,
    bodies: ImageBodies | None = None,
) -> DiscoveredImage:
    """Resolve `ref` and collect the attestations of its digest (and, for an index, of every
    platform manifest in it).

    `want_unsigned=False` (no trust policy that covers the image accepts unsigned content):
    unsigned statements and raw SBOMs are listed, so refusals can name them, but not
    downloaded. `bodies` counts what is downloaded against the image's and the process's byte
    budgets; the caller releases it when it no longer holds the data (by default, on return).
    """
    deadline = deadline or Deadline.after(client.timeout)
    top = resolved or client.resolve(ref, deadline=deadline)
    image = ref.with_digest(top.digest)
    own_budget = bodies is None
    if bodies is None:
        bodies = ImageBodies(
            client.bodies,
            client.limits.max_attestation_bytes,
            image=str(image),
            registry=image.registry,
        )
    try:
        return _discover(client, ref, top, image, deadline, want_unsigned, bodies)
    finally:
        if own_budget:
            bodies.close()


def _discover(
    client: RegistryClient,
    ref: ImageReference,
    top: FetchedManifest,
    image: ImageReference,
    deadline: Deadline,
    want_unsigned: bool,
    bodies: ImageBodies,
) -> DiscoveredImage:
    collector = _Collector(client, image, deadline, want_unsigned, bodies)
    platforms = _platforms(top, image)
    subjects = list(dict.fromkeys([top.digest] + [p.digest for p in platforms]))
    # Every subject's cosign tag and referrers listing are asked for at once (a round trip
    # each: against a remote registry, most of a multi-platform image's discovery), then read
    # in the order a sequential discovery reads them, so what is found, in what order, and
    # which error stops it, are the same.
    with _Lookups(client, image, subjects, deadline) as lookups:
        if isinstance(top.manifest, ImageIndex):
            for position, entry in enumerate(top.manifest.manifests):
                if is_attestation_entry(entry):
                    collector.buildkit(entry, position)
        for digest in subjects:
            collector.cosign_tag(digest, lookups.cosign_tag(digest))
            collector.referrers(digest, lookups.referrers(digest))
    return DiscoveredImage(
        ref=ref,
        digest=top.digest,
        is_index=isinstance(top.manifest, ImageIndex),
        platforms=tuple(platforms),
        attestations=tuple(collector.found),
        problems=tuple(collector.problems),
    )


def _platforms(top: FetchedManifest, image: ImageReference) -> list[PlatformImage]:
    """The runnable manifests of an index (none for an image manifest), its entries within the
    limits; RegistryError for a nested index or too many entries."""
    platforms: list[PlatformImage] = []
    if isinstance(top.manifest, ImageIndex):
        buildkit = 0
        for position, entry in enumerate(top.manifest.manifests):
            if is_attestation_entry(entry):
                buildkit += 1
            elif entry.media_type in INDEX_TYPES:
                # A runtime may pick its image from a nested index, whose manifests would be
                # neither listed nor verified here; so no recursion, and no loop, either.
                raise RegistryError(
                    image.registry,
                    f"index {image} lists another index at manifests[{position}] "
                    f"({entry.digest}): nested indexes are not supported (flatten it)",
                )
            else:
                # Runnable, whatever its media type: some runtimes go by the platform and the
                # content they fetch, not by the descriptor's media type.
                platforms.append(PlatformImage(entry.digest, entry.platform))
        for count, limit, what in (
            (len({p.digest for p in platforms}), MAX_PLATFORMS, "platform manifests"),
            (buildkit, MAX_BUILDKIT_ATTESTATIONS, "attestation manifests"),
        ):
            if count > limit:
                raise RegistryError(
                    image.registry,
                    f"index {image} lists {count} {what}, more than the {limit} sbomgate reads",
                )
    return platforms


# Lookups in flight at once for one image (each subject has two): within the registry
# client's requests per host.
_LOOKUP_THREADS = 8


class _Lookups:
    """The cosign tag manifest and the referrers listing of each subject digest, fetched on
    threads of their own; each answer (or the error asking raised) is handed out when asked
    for. On leaving, lookups not yet started are cancelled; those under way end by the
    deadline, as every request does."""

    def __init__(
        self,
        client: RegistryClient,
        image: ImageReference,
        subjects: list[str],
        deadline: Deadline,
    ) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=min(_LOOKUP_THREADS, 2 * len(subjects)),
            thread_name_prefix="sbomgate-discover",
        )
        self._tags: dict[str, Future[FetchedManifest | None]] = {}
        self._referrers: dict[str, Future[tuple[tuple[Descriptor, ...], str]]] = {}
        for digest in subjects:
            tag = digest.replace(":", "-", 1) + ".att"
            self._tags[digest] = self._pool.submit(
                client.get_manifest, image, tag, deadline=deadline, missing_ok=True
            )
            self._referrers[digest] = self._pool.submit(
                client.referrers, image, digest, deadline=deadline
            )

    def __enter__(self) -> _Lookups:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cosign_tag(self, digest: str) -> FetchedManifest | None:
        """The manifest of `digest`'s cosign tag (`sha256-<hex>.att`), None when absent."""
        return self._tags[digest].result()

    def referrers(self, digest: str) -> tuple[tuple[Descriptor, ...], str]:
        """`RegistryClient.referrers` of `digest`."""
        return self._referrers[digest].result()


# Referrer manifests read per image: artifact types filter most referrers before they are
# fetched, but an untyped listing (fallback tags often are) may name 1,000 of them.
MAX_REFERRER_MANIFESTS = 128


class _Collector:
    def __init__(
        self,
        client: RegistryClient,
        image: ImageReference,
        deadline: Deadline,
        want_unsigned: bool,
        bodies: ImageBodies,
    ) -> None:
        self.client = client
        self.image = image
        self.deadline = deadline
        self.want_unsigned = want_unsigned
        self.bodies = bodies
        self.found: list[FoundAttestation] = []
        self.problems: list[str] = []
        # Each digest is fetched once per image, however often it is listed: a blob named 24
        # times was downloaded and held 24 times.
        self._blobs: dict[str, bytes | None] = {}
        self._manifests: dict[str, FetchedManifest | None] = {}
        self._seen: set[tuple[str, str, Content]] = set()

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def _add(self, found: FoundAttestation, layer: Descriptor) -> bool:
        """Keep `found` unless the same content for the same subject is already kept; False when
        there is no room for another one."""
        key = (layer.digest, found.attached_to, found.content_type)
        if key in self._seen:
            return True
        if len(self.found) >= self.client.limits.max_attestations:
            limit = self.client.limits.max_attestations
            self._problem(f"more than {limit} attestations: the rest were not read")
            return False
        self._seen.add(key)
        self.found.append(found)
        return True

    def _room(self, layer: Descriptor, attached_to: str, content: Content) -> bool:
        """Whether a layer still needs reading: not a repeat, and within the count limit."""
        if (layer.digest, attached_to, content) in self._seen:
            return False
        if len(self.found) >= self.client.limits.max_attestations:
            limit = self.client.limits.max_attestations
            self._problem(f"more than {limit} attestations: the rest were not read")
            return False
        return True

    def _blob(self, layer: Descriptor, where: str) -> bytes | None:
        if layer.digest in self._blobs:
            return self._blobs[layer.digest]
        data: bytes | None = None
        try:
            if layer.size <= self.client.limits.max_blob_bytes:  # else refused by get_blob
                self.bodies.reserve(layer.size, f"blob {layer.digest}", self.deadline.remaining())
            data = self.client.get_blob(self.image, layer, deadline=self.deadline)
        except RegistryError as exc:
            if exc.__class__ not in (RegistryError, ManifestNotFoundError):
                raise  # the registry could not be asked (a fault), or the process is full
            # Too big, over the image's budget, not matching its digest, listed but absent:
            # the image's own content, and this piece only.
            self._problem(f"{where}: {exc.message}")
        self._blobs[layer.digest] = data
        return data

    def _manifest(self, descriptor: Descriptor | None, reference: str) -> FetchedManifest | None:
        """A manifest by digest (or the cosign tag), once per image. A referrer's or attestation
        manifest's declared size counts against the image's budget before it is fetched."""
        if reference in self._manifests:
            return self._manifests[reference]
        if descriptor is not None:
            self.bodies.reserve(
                min(descriptor.size, self.client.limits.max_manifest_bytes),
                f"manifest {reference}",
                self.deadline.remaining(),
            )
        fetched = self.client.get_manifest(
            self.image, reference, deadline=self.deadline, missing_ok=True
        )
        self._manifests[reference] = fetched
        return fetched

    def cosign_tag(self, digest: str, fetched: FetchedManifest | None) -> None:
        """Read the attestations of `digest`'s cosign tag, whose manifest is `fetched`."""
        tag = digest.replace(":", "-", 1) + ".att"
        self._manifests[tag] = fetched
        if fetched is None:
            return
        manifest = fetched.manifest
        if not isinstance(manifest, ImageManifest):
            self._problem(f"tag {tag}: not an image manifest")
            return
        for position, layer in enumerate(manifest.layers):
            if layer.media_type != DSSE_ENVELOPE or not self._room(layer, digest, Content.DSSE):
                continue
            where = f"tag {tag} layer {position}"
            data = self._blob(layer, where)
            if data is not None:
                self._add(
                    FoundAttestation(
                        layout=Layout.COSIGN_TAG,
                        content_type=Content.DSSE,
                        attached_to=digest,
                        location=where,
                        media_type=layer.media_type,
                        data=data,
                        annotations=layer.annotations,
                        predicate_type_hint=layer.annotations.get("predicateType"),
                    ),
                    layer,
                )

    def referrers(self, digest: str, listing: tuple[tuple[Descriptor, ...], str]) -> None:
        """Read the attestations among `digest`'s referrers, as `RegistryClient.referrers`
        listed them."""
        descriptors, how = listing
        for entry in descriptors:
            if len(self.found) >= self.client.limits.max_attestations:
                self._problem(
                    f"more than {self.client.limits.max_attestations} attestations: "
                    "the rest were not read"
                )
                return
            kind = entry.artifact_type or ""
            if not _interesting(kind) and kind:
                continue  # signatures, scan reports, …: not ours to read
            if entry.digest not in self._manifests and (
                len(self._manifests) >= MAX_REFERRER_MANIFESTS
            ):
                self._problem(
                    f"more than {MAX_REFERRER_MANIFESTS} referrer manifests to read: "
                    "the rest were not read"
                )
                return
            where = f"referrer {entry.digest} ({'referrers API' if how == 'api' else 'tag'})"
            fetched = self._manifest(entry, entry.digest)
            if fetched is None:
                self._problem(f"{where}: listed but not found")
                continue
            manifest = fetched.manifest
            if not isinstance(manifest, ImageManifest):
                continue
            if manifest.subject is not None and manifest.subject.digest != digest:
                self._problem(f"{where}: its subject is {manifest.subject.digest}")
                continue
            self._read_referrer(digest, where, manifest)

    def _read_referrer(self, digest: str, where: str, manifest: ImageManifest) -> None:
        artifact_type = manifest.effective_artifact_type
        for position, layer in enumerate(manifest.layers):
            content = _content_of(layer.media_type, artifact_type)
            if content is None or not self._room(layer, digest, content):
                continue
            data = self._body(layer, f"{where} layer {position}", content)
            if data is None:
                continue
            hint = (
                manifest.annotations.get("dev.sigstore.bundle.predicateType")
                or layer.annotations.get(IN_TOTO_PREDICATE_ANNOTATION)
                or layer.annotations.get("predicateType")
            )
            if content is Content.RAW_SBOM and hint is None:
                kind = f"{layer.media_type} {artifact_type}"
                hint = SPDX_DOCUMENT if "spdx" in kind else CYCLONEDX_BOM
            self._add(
                FoundAttestation(
                    layout=Layout.SIGSTORE_BUNDLE if content is Content.BUNDLE else Layout.REFERRER,
                    content_type=content,
                    attached_to=digest,
                    location=f"{where} layer {position}",
                    media_type=layer.media_type,
                    data=data,
                    annotations={**manifest.annotations, **layer.annotations},
                    predicate_type_hint=hint,
                ),
                layer,
            )

    def _body(self, layer: Descriptor, where: str, content: Content) -> bytes | None:
        """The layer's bytes; nothing is downloaded for unsigned content no covering trust policy
        accepts (it is listed, empty, so the refusal can name it)."""
        if content in (Content.STATEMENT, Content.RAW_SBOM) and not self.want_unsigned:
            return b""
        return self._blob(layer, where)

    def buildkit(self, entry: Descriptor, position: int) -> None:
        target = entry.annotations.get(BUILDKIT_REFERENCE_DIGEST, "")
        where = f"attestation manifest {entry.digest} (index entry {position})"
        fetched = self._manifest(entry, entry.digest)
        if fetched is None or not isinstance(fetched.manifest, ImageManifest):
            self._problem(f"{where}: missing or not an image manifest")
            return
        for layer_position, layer in enumerate(fetched.manifest.layers):
            if layer.media_type != IN_TOTO or not self._room(layer, target, Content.STATEMENT):
                continue
            data = self._body(layer, f"{where} layer {layer_position}", Content.STATEMENT)
            if data is not None:
                self._add(
                    FoundAttestation(
                        layout=Layout.BUILDKIT,
                        content_type=Content.STATEMENT,
                        attached_to=target,
                        location=f"{where} layer {layer_position}",
                        media_type=layer.media_type,
                        data=data,
                        annotations=layer.annotations,
                        predicate_type_hint=layer.annotations.get(IN_TOTO_PREDICATE_ANNOTATION),
                    ),
                    layer,
                )


def _interesting(artifact_type: str) -> bool:
    return (
        artifact_type.startswith(SIGSTORE_BUNDLE_PREFIX)
        or artifact_type in (DSSE_ENVELOPE, IN_TOTO)
        or artifact_type in RAW_SBOM_TYPES
        or artifact_type.startswith("application/vnd.in-toto")
    )


def _content_of(layer_type: str, artifact_type: str) -> Content | None:
    if layer_type.startswith(SIGSTORE_BUNDLE_PREFIX):
        return Content.BUNDLE
    if layer_type == DSSE_ENVELOPE:
        return Content.DSSE
    if layer_type == IN_TOTO or layer_type.startswith("application/vnd.in-toto"):
        return Content.STATEMENT
    if layer_type in RAW_SBOM_TYPES or (
        artifact_type in RAW_SBOM_TYPES and layer_type in ("application/json", artifact_type)
    ):
        return Content.RAW_SBOM
    return None
