"""Soak: `sbomgate serve` under a realistic admission mix, first at rising rates to find the
highest sustainable one, then for --minutes at half of it.

Real components: Debian's distribution 2.8 registry on loopback, `sbomgate serve --config FILE`
as a child process over TLS (bench_webhook.Webhook) with the bundled policies, and the
asyncio open-loop HTTP/1.1 load generator of bench_webhook (latency counts from when each
request was due, so queueing in the server is not hidden). The mix:

    warm    (1 - --cold-fraction) of requests: Deployments and Pods of 1-3 images that were
            admitted before (digests cached): small images attested by the real `cosign attest`
            and one image per SBOM of the pool below; --warm-denied of them carry a refused one
    cold    --cold-fraction of requests: an image never seen before, one per request, whose
            SBOM has 1,000-5,000 components (uniformly random sizes): registry fetch, DSSE
            signature and subject check, parse, evaluation
    dry run --dry-run-fraction of all requests have request.dryRun true

Cold images are signed here, in Python, in exactly the layout `cosign attest --key
--new-bundle-format` writes (see tests/support/oci_builder.py): a Sigstore bundle v0.3 referrer
with a DSSE envelope over an in-toto statement naming that image's own digest, ECDSA P-256 over the
DSSE PAE with the same key the real cosign signs the warm images with, and the fallback tag
index distribution 2.8 needs. `cosign attest` takes ~0.7 s an image, too slow for thousands;
the real `cosign verify-attestation` checks one Python-signed image before the run. SBOM
contents come from a pool of POOL_SIZE pre-generated documents drawn from one universe of
packages (the facts snapshot lists the universe as found in a trusted repository; a share of
the pool carries a few packages that must be denied: unverified names and a GPL licence).

Phases:
    search  open-loop steps of --step-seconds at rising rates (x RATE_FACTOR, then one step
            between the last good and the first bad) until a request fails or p99 exceeds
            its limit: --p99-limit (1 s) for warm requests, --cold-p99-limit (4 s, half the
            admission deadline) for cold ones. One limit for the whole mix would not do: its
            p99 is made of cold requests (10 % of them), and evaluating thousands of
            components alone takes a second or more. Prints the maximum sustainable rate and
            what limited it: CPU of the server's main process, its cold-path process and each
            evaluation worker process (cores, from /proc/<pid>/stat), evaluations in flight
            (from the server's metrics), the registry's CPU, the load generator's and the
            whole machine's.
    soak    --minutes at half that rate (or --rate): per window (--window-seconds) request
            counts, latency p50/p95/p99/max, failures by class (HTTP errors, timeouts,
            invalid AdmissionReviews, wrong verdicts), RSS of the server's process tree (the
            main process, its cold-path process and evaluation workers) and CPU; RSS growth
            after --warmup-minutes; p99 stability (max window p99 / median window p99).

Writes bench/out/soak.json. Exit status 1 if any soak request failed or the RSS grew 10 % or
more after warm-up. Run with `make soak` (the search takes a few minutes, then the 10-minute
soak) on a machine nothing else is using, or, e.g.:

    .venv/bin/python bench/bench_soak.py --minutes 1 --rate 2 --window-seconds 15
    .venv/bin/python bench/bench_soak.py --search-only --step-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_verify import trust_policy  # noqa: E402
from bench_webhook import (  # noqa: E402
    BAD_SBOM,
    CLK_TCK,
    FACTS,
    GOOD_SBOM,
    UID_PLACEHOLDER,
    Connection,
    Template,
    Webhook,
    admission_review,
    loadavg,
    machine_busy_seconds,
    scrape,
)
from sbomgen import make_cyclonedx  # noqa: E402
from support.oci_builder import (  # noqa: E402
    COSIGN_BIN,
    CYCLONEDX_PREDICATE,
    IN_TOTO_MEDIA_TYPE,
    IN_TOTO_STATEMENT_V01,
    OCI_EMPTY,
    OCI_EMPTY_BLOB,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE_V03,
    CosignKey,
    OciClient,
    add_to_fallback_index,
    canonical_json,
    cosign_attest,
    cosign_env,
    cosign_registry_flags,
    push_image,
    sha256_digest,
)
from support.registry_servers import RegistryServer, start_distribution  # noqa: E402

OUT = ROOT / "bench" / "out" / "soak.json"
REQUEST_TIMEOUT = 10.0  # seconds: the webhook's default timeoutSeconds (the API server's limit)
RSS_GROWTH_LIMIT = 0.10  # after warm-up
SAMPLE_SECONDS = 5.0  # /proc sampling interval during a run
RATE_FACTOR = 1.5  # search: each step's rate over the last
MIN_COMPONENTS, MAX_COMPONENTS = 1_000, 5_000
POOL_SIZE = 32  # pre-generated SBOMs the cold images draw from
POOL_DENIED = 0.2  # share of the pool with packages the policies deny
UNIVERSE = 6_000  # packages the pool SBOMs are drawn from (all in the facts snapshot)
SMALL_ALLOWED = 4  # warm images attested by `cosign attest` with examples/good-app.cdx.json
SMALL_DENIED = 1  # ... with examples/bad-app.spdx.json
PUSH_THREADS = 6
# Keep-alive connections of the load generator. The API server's HTTP client has no limit per
# host: a request that finds every connection busy opens another, so there are plenty here.
CONNECTIONS = 64
PERMISSIVE: tuple[dict[str, Any], ...] = (
    {"license": {"id": "MIT"}},
    {"license": {"id": "Apache-2.0"}},
    {"license": {"id": "BSD-3-Clause"}},
    {"license": {"id": "ISC"}},
    {"expression": "MIT OR Apache-2.0"},
)
# Packages no trusted repository has (hallucinated or typo'd names): the unverified policy.
UNVERIFIED = (
    ("pkg:pypi/reqeusts@2.31.0", "reqeusts", "2.31.0"),
    ("pkg:npm/expresss@4.19.2", "expresss", "4.19.2"),
    ("pkg:pypi/python-dateutils@2.9.0", "python-dateutils", "2.9.0"),
    ("pkg:npm/lodahs@4.17.21", "lodahs", "4.17.21"),
)
OS_PURLS = ("pkg:deb/", "pkg:rpm/", "pkg:apk/")
REPOSITORY = {"name": "trusted", "url": "https://repo.acme.example/", "hosting": "hosted"}


# -- /proc: the server's process tree -----------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(root: int) -> list[int]:
    """Every descendant of `root` (evaluation workers are replaced when they overrun)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass(frozen=True)
class TreeSample:
    """One look at the server's process tree, the registry and the machine."""

    at: float
    main_rss_kb: int
    children_rss_kb: dict[int, int]
    main_cpu: float  # utime + stime of the main process, seconds
    children_cpu: dict[int, float]  # of each live child
    cold_pids: frozenset[int]  # the cold-path process (serving/coldpath.py) among the children
    reaped_cpu: float  # cutime + cstime of the main process: children that have exited
    registry_cpu: float
    loadgen_cpu: float
    machine_busy: float

    @property
    def rss_mb(self) -> float:
        return (self.main_rss_kb + sum(self.children_rss_kb.values())) / 1024


def _cpu(fields: list[str] | None) -> float:
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / CLK_TCK


def sample_tree(root: int, registry_pid: int) -> TreeSample:
    main = _stat(root)
    children = children_of(root)
    busy, _ = machine_busy_seconds()
    return TreeSample(
        at=time.monotonic(),
        main_rss_kb=_rss_kb(root),
        children_rss_kb={pid: _rss_kb(pid) for pid in children},
        main_cpu=_cpu(main),
        children_cpu={pid: _cpu(_stat(pid)) for pid in children},
        cold_pids=frozenset(pid for pid in children if _is_cold_path(pid)),
        reaped_cpu=0.0 if main is None else (int(main[13]) + int(main[14])) / CLK_TCK,
        registry_cpu=_cpu(_stat(registry_pid)),
        loadgen_cpu=time.process_time(),
        machine_busy=busy,
    )


def _is_cold_path(pid: int) -> bool:
    try:
        return b"sbomgate.serving._cold" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@dataclass
class Cpu:
    """CPU used between two samples, in cores (1.0 = one core busy all the time)."""

    main: float
    cold: float  # the cold-path process (its own CPU, not its evaluation workers')
    workers: list[float]  # each evaluation worker alive at the end
    workers_total: float  # the workers, exited ones included
    registry: float
    loadgen: float
    machine: float

    @property
    def server(self) -> float:
        return self.main + self.cold + self.workers_total

    @property
    def others(self) -> float:
        return max(self.machine - self.server - self.registry - self.loadgen, 0.0)


def cpu_between(a: TreeSample, b: TreeSample) -> Cpu:
    wall = max(b.at - a.at, 1e-9)
    workers = {pid: cpu - a.children_cpu.get(pid, 0.0) for pid, cpu in b.children_cpu.items()}
    cold = sum(workers.pop(pid) for pid in b.cold_pids if pid in workers)
    gone = sum(cpu for pid, cpu in a.children_cpu.items() if pid not in b.children_cpu)
    # An exited child's whole CPU moves to the parent's cutime; what was seen of it is in `a`.
    # (Workers that exit under the cold-path process move to its cutime: a rare loss here.)
    total = sum(workers.values()) + (b.reaped_cpu - a.reaped_cpu) - gone
    return Cpu(
        main=(b.main_cpu - a.main_cpu) / wall,
        cold=cold / wall,
        workers=[v / wall for v in workers.values()],
        workers_total=max(total, 0.0) / wall,
        registry=(b.registry_cpu - a.registry_cpu) / wall,
        loadgen=(b.loadgen_cpu - a.loadgen_cpu) / wall,
        machine=(b.machine_busy - a.machine_busy) / wall,
    )


# -- SBOMs: a universe of packages, a pool of documents, a facts snapshot ---------------------


@dataclass(frozen=True)
class PoolSbom:
    index: int
    components: int
    allowed: bool
    predicate: bytes  # the CycloneDX document, JSON


def make_universe() -> list[dict[str, Any]]:
    """UNIVERSE distinct components (flat), with permissive licences."""
    rng = random.Random(41)
    flat: list[dict[str, Any]] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for comp in components:
            children = comp.pop("components", None)
            comp["licenses"] = [rng.choice(PERMISSIVE)]
            flat.append(comp)
            if children:
                walk(children)

    walk(make_cyclonedx(UNIVERSE, seed=41)["components"])
    return flat


def make_pool(universe: Sequence[dict[str, Any]]) -> list[PoolSbom]:
    """POOL_SIZE documents of 1,000-5,000 components (one per stratum of the range, so sizes
    are spread evenly), about one in ten nesting 1-4 children; POOL_DENIED of them have 1-4 of
    their components replaced by unverified packages or a GPL-licensed one."""
    rng = random.Random(42)
    denied = set(rng.sample(range(POOL_SIZE), round(POOL_SIZE * POOL_DENIED)))
    pool = []
    span = MAX_COMPONENTS - MIN_COMPONENTS
    for i in range(POOL_SIZE):
        n = MIN_COMPONENTS + int(span * (i + rng.random()) / POOL_SIZE)
        picked = [dict(c) for c in rng.sample(list(universe), n)]
        if i in denied:
            # The GPL goes to a language package: the licence policy leaves the operating
            # system's own packages (deb, rpm, apk) alone unless told to judge them.
            libraries = [p for p in range(n) if not picked[p]["purl"].startswith(OS_PURLS)]
            for position in rng.sample(range(n), rng.randint(1, 4)):
                if rng.random() < 0.7 or not libraries:
                    purl, name, version = rng.choice(UNVERIFIED)
                    picked[position] = {
                        "type": "library",
                        "bom-ref": f"{purl}#bad{position}",
                        "name": name,
                        "version": version,
                        "purl": purl,
                        "licenses": [{"license": {"id": "MIT"}}],
                    }
                else:
                    position = rng.choice(libraries)
                    picked[position]["licenses"] = [{"license": {"id": "GPL-3.0-only"}}]
        top: list[dict[str, Any]] = []
        j = 0
        while j < n:
            comp = picked[j]
            j += 1
            if rng.random() < 0.1 and j < n:
                k = min(rng.randint(1, 4), n - j)
                comp["components"] = picked[j : j + k]
                j += k
            top.append(comp)
        doc = make_cyclonedx(1, seed=1000 + i)
        doc["components"] = top
        pool.append(PoolSbom(i, n, i not in denied, orjson.dumps(doc)))
    return pool


def write_facts(universe: Sequence[dict[str, Any]], path: Path) -> int:
    """examples/trusted-facts.yaml plus every universe package, found, old, no advisories."""
    from sbomgate._internal.documents import load_json_or_yaml
    from sbomgate.sbom.purl import parse_purl

    base = load_json_or_yaml(FACTS, what="facts snapshot", max_bytes=1 << 20)
    packages = dict(base["packages"])
    for comp in universe:
        # The snapshot is looked up by the canonical purl (a deb version's `+` as %2B).
        packages[parse_purl(comp["purl"]).canonical] = {
            "repository": REPOSITORY,
            "published_at": "2023-03-01T12:00:00Z",
            "osv": [],
        }
    path.write_bytes(orjson.dumps({"packages": packages}))
    return len(packages)


# -- signing: what `cosign attest --key K --new-bundle-format` writes, in Python ------------


class Signer:
    """ECDSA P-256 over the DSSE PAE, in a Sigstore bundle v0.3 attached as a referrer (and to
    the fallback tag index on registries without the referrers API), as cosign v3 does."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def attest(
        self, client: OciClient, server: RegistryServer, repo: str, image: str, predicate: bytes
    ) -> None:
        """Sign `predicate` (CycloneDX JSON) for image digest `image` in `repo`."""
        statement = (
            b'{"_type":"'
            + IN_TOTO_STATEMENT_V01.encode()
            + b'","predicateType":"'
            + CYCLONEDX_PREDICATE.encode()
            + b'","subject":[{"name":"'
            + f"{server.host}/{repo}".encode()
            + b'","digest":{"sha256":"'
            + image.split(":", 1)[1].encode()
            + b'"}}],"predicate":'
            + predicate
            + b"}"
        )
        pae = b"DSSEv1 %d %b %d %b" % (
            len(IN_TOTO_MEDIA_TYPE),
            IN_TOTO_MEDIA_TYPE.encode(),
            len(statement),
            statement,
        )
        signature = self.key.sign(pae, ec.ECDSA(hashes.SHA256()))
        bundle = orjson.dumps(
            {
                "mediaType": SIGSTORE_BUNDLE_V03,
                "verificationMaterial": {"publicKey": {"hint": self.hint}},
                "dsseEnvelope": {
                    "payload": base64.b64encode(statement).decode(),
                    "payloadType": IN_TOTO_MEDIA_TYPE,
                    "signatures": [{"sig": base64.b64encode(signature).decode()}],
                },
            }
        )
        subject, subject_type, _ = client.get_manifest(repo, image)
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SIGSTORE_BUNDLE_V03,
                "config": client.push_blob(repo, OCI_EMPTY_BLOB, OCI_EMPTY),
                "layers": [client.push_blob(repo, bundle, SIGSTORE_BUNDLE_V03)],
                "subject": {"mediaType": subject_type, "digest": image, "size": len(subject)},
                "annotations": {
                    "dev.sigstore.bundle.content": "dsse-envelope",
                    "dev.sigstore.bundle.predicateType": CYCLONEDX_PREDICATE,
                    "org.opencontainers.image.created": "2025-01-01T00:00:00Z",
                },
            }
        )
        digest = sha256_digest(manifest)
        client.put_manifest(repo, digest, manifest, OCI_MANIFEST)
        if not server.referrers_api:  # ggcr's fallback-tag descriptors carry no annotations
            descriptor = {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "artifactType": SIGSTORE_BUNDLE_V03,
            }
            add_to_fallback_index(client, repo, image, descriptor)


def cosign_key(work: Path) -> tuple[ec.EllipticCurvePrivateKey, CosignKey]:
    """A P-256 key made here and imported into cosign: both signers use the same key."""
    work.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = work / "plain.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    prefix = work / "cosign"
    password = "soak"
    subprocess.run(
        [
            *(str(COSIGN_BIN), "import-key-pair", "--yes"),
            *("--key", str(pem), "--output-key-prefix", str(prefix)),
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": str(work), "COSIGN_PASSWORD": password},
        check=True,
        capture_output=True,
        timeout=60,
    )
    pem.unlink()
    return key, CosignKey(Path(f"{prefix}.key"), Path(f"{prefix}.pub"), password, "ecdsa")


def cosign_verifies(server: RegistryServer, ref: str, key: CosignKey, home: Path) -> str:
    """'' when the real `cosign verify-attestation` accepts the image, else its error."""
    args = [
        str(COSIGN_BIN),
        "verify-attestation",
        "--key",
        str(key.public_key_path),
        "--type",
        "cyclonedx",
        "--new-bundle-format",
        "--insecure-ignore-tlog=true",
        "--insecure-ignore-sct=true",
        "--use-signed-timestamps=false",
        *cosign_registry_flags(server),
        ref,
    ]
    env = {**cosign_env(server, None, home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return ""
    return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]


# -- images ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    ref: str  # by digest
    allowed: bool
    components: int  # 0: a small example SBOM


@dataclass
class Prepared:
    """Images pushed so far, and what it cost."""

    seconds: float = 0.0
    images: int = 0
    bytes: int = 0


class ColdImages:
    """Pushes never-seen images, each attested with a pool SBOM drawn at random."""

    def __init__(self, registry: RegistryServer, signer: Signer, pool: Sequence[PoolSbom]):
        self.registry, self.signer, self.pool = registry, signer, pool
        self.client = OciClient(registry)
        self.rng = random.Random(43)
        self.made = 0
        self.cost = Prepared()

    def push(self, count: int) -> list[Image]:
        started = time.monotonic()
        drawn = [(self.made + i, self.rng.choice(self.pool)) for i in range(count)]
        self.made += count

        def one(item: tuple[int, PoolSbom]) -> Image:
            n, sbom = item
            repo = f"soak/service-{n % 24}"
            image = push_image(
                self.registry, repo, f"build-{n}", seed=f"soak-cold-{n}", client=self.client
            )
            self.signer.attest(self.client, self.registry, repo, image.digest, sbom.predicate)
            return Image(image.digest_ref, sbom.allowed, sbom.components)

        with ThreadPoolExecutor(PUSH_THREADS) as executor:
            images = list(executor.map(one, drawn))
        self.cost.seconds += time.monotonic() - started
        self.cost.images += count
        self.cost.bytes += sum(len(s.predicate) for _, s in drawn)
        return images


# -- the mix of AdmissionReviews ------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    template: Template
    cold: bool
    dry: bool


def _dry(template: Template) -> Template:
    body = template.body.replace(b'"dryRun":false', b'"dryRun":true', 1)
    assert body != template.body
    return Template(body, template.allowed, template.label + ", dry run")


def _review(kind: str, images: Sequence[Image], rng: random.Random, label: str) -> Template:
    name = f"{rng.choice(('web', 'api', 'worker', 'cart', 'search', 'auth'))}-{rng.randrange(999)}"
    namespace = rng.choice(("shop", "payments", "search"))
    review = admission_review(kind, name, namespace, [i.ref for i in images], rng)
    return Template(orjson.dumps(review), all(i.allowed for i in images), label)


class Mix:
    """Picks the next request: warm shapes reused, each cold image used once."""

    def __init__(
        self,
        warm_allowed: Sequence[Image],
        warm_denied: Sequence[Image],
        args: argparse.Namespace,
        seed: int,
    ) -> None:
        self.args = args
        self.rng = random.Random(seed)
        self.allowed, self.denied = list(warm_allowed), list(warm_denied)
        self.warm: list[tuple[Template, Template]] = []
        for i in range(512):
            kind = "Deployment" if i % 5 < 2 else "Pod"
            images = self.rng.sample(self.allowed, self.rng.choice((1, 1, 2, 2, 3)))
            if self.rng.random() < args.warm_denied:
                images[-1] = self.rng.choice(self.denied)
            template = _review(kind, images, self.rng, f"warm {kind}")
            self.warm.append((template, _dry(template)))
        self.cold: list[Image] = []
        self.cold_short = 0  # cold picks that found no image left (a warm one was sent)

    def add_cold(self, images: Sequence[Image]) -> None:
        self.cold.extend(images)

    def __call__(self) -> Item:
        rng = self.rng
        dry = rng.random() < self.args.dry_run_fraction
        if rng.random() < self.args.cold_fraction:
            if self.cold:
                image = self.cold.pop()
                images = [image]
                if rng.random() < 0.3:  # a sidecar that was admitted before
                    images.append(rng.choice(self.allowed))
                kind = rng.choice(("Deployment", "Pod"))
                template = _review(kind, images, rng, f"cold {kind}")
                return Item(_dry(template) if dry else template, True, dry)
            self.cold_short += 1
        pair = rng.choice(self.warm)
        return Item(pair[1] if dry else pair[0], False, dry)


# -- sending and judging ----------------------------------------------------------------------

FAILURES = ("HTTP error", "timeout", "invalid review", "wrong verdict")


@dataclass
class Result:
    due: float
    latency: float | None  # None: no answer
    cold: bool
    dry: bool
    expected: bool  # allowed
    allowed: bool | None = None  # the answer, if one came
    failure: str | None = None  # one of FAILURES
    detail: str = ""


def judge(payload: bytes, uid: str, result: Result) -> None:
    """Sets the answer and any failure of a 200 answer."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        result.failure, result.detail = "invalid review", "not JSON"
        return
    response: Any = doc.get("response") if isinstance(doc, dict) else None
    problem = ""
    if not isinstance(response, dict):
        problem = "no response"
    elif doc.get("apiVersion") != "admission.k8s.io/v1" or doc.get("kind") != "AdmissionReview":
        problem = "not an admission.k8s.io/v1 AdmissionReview"
    elif response.get("uid") != uid:
        problem = "uid is not the request's"
    elif not isinstance(response.get("allowed"), bool):
        problem = "allowed is not a boolean"
    if problem:
        result.failure, result.detail = "invalid review", problem
        return
    allowed = result.allowed = response["allowed"]
    message: Any = ""
    if not allowed:
        status = response.get("status")
        message = status.get("message") if isinstance(status, dict) else None
        if not isinstance(message, str) or not message:
            result.failure, result.detail = "invalid review", "a denial without a message"
            return
    if allowed is result.expected:
        return
    result.failure = "wrong verdict"
    if allowed:
        result.detail = "allowed, a denial was expected"
    elif "failed to evaluate" in message:
        # "policy P failed to evaluate: <why>" (an overrun evaluation budget is one): the
        # why, without the image and package, so that counts add up.
        why = message.partition("failed to evaluate: ")[2].splitlines()[0]
        result.detail = f"denied: a policy failed to evaluate: {why[:100]}"
    elif "did not finish" in message:
        result.detail = "denied: verification did not finish (admission deadline)"
    elif "internal error" in message:
        result.detail = "denied: internal error"
    else:
        lines = message.splitlines()
        result.detail = "denied: " + (lines[1] if len(lines) > 1 else lines[0])[:160]


async def send(conn: Connection, item: Item, due: float) -> Result:
    """One review; like the API server, give up REQUEST_TIMEOUT after it was due."""
    result = Result(due, None, item.cold, item.dry, item.template.allowed)
    left = due + REQUEST_TIMEOUT - time.monotonic()
    if left <= 0:
        result.failure, result.detail = "timeout", "queued in the load generator past the timeout"
        return result
    uid = str(uuid.uuid4())
    body = item.template.body.replace(UID_PLACEHOLDER, uid.encode())
    try:
        status, payload = await asyncio.wait_for(
            conn.request("POST", "/validate?timeout=10s", body), left
        )
    except TimeoutError:
        conn.close()
        result.failure, result.detail = "timeout", f"no answer within {REQUEST_TIMEOUT:g} s"
        return result
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError) as exc:
        conn.close()
        result.failure, result.detail = "HTTP error", f"connection: {type(exc).__name__}"
        return result
    result.latency = time.monotonic() - due
    if status != 200:
        result.failure, result.detail = "HTTP error", f"HTTP {status}"
        return result
    judge(payload, uid, result)
    return result


@dataclass
class Run:
    started: float
    seconds: float
    rate: float
    results: list[Result] = field(default_factory=list)
    samples: list[TreeSample] = field(default_factory=list)
    metrics: list[tuple[float, dict[str, float]]] = field(default_factory=list)


async def open_loop(
    webhook: Webhook,
    pool: Sequence[Connection],
    rate: float,
    seconds: float,
    pick: Callable[[], Item],
    registry_pid: int,
) -> Run:
    """Requests due every 1/rate s, each on the first free connection; the process tree and
    the server's metrics sampled every SAMPLE_SECONDS (and at the start and the end)."""
    queue: asyncio.Queue[tuple[float, Item] | None] = asyncio.Queue()
    start = time.monotonic() + 0.05
    run = Run(start, seconds, rate)
    meter = Connection(webhook.port, webhook.context)

    async def look() -> None:
        run.samples.append(sample_tree(webhook.pid, registry_pid))
        try:
            run.metrics.append((time.monotonic(), await scrape(meter)))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            meter.close()

    async def sampler() -> None:
        k = 1
        while True:
            await asyncio.sleep(max(start + k * SAMPLE_SECONDS - time.monotonic(), 0))
            await look()
            k += 1

    async def worker(conn: Connection) -> None:
        while (entry := await queue.get()) is not None:
            run.results.append(await send(conn, entry[1], entry[0]))

    await look()
    ticking = asyncio.create_task(sampler())
    workers = [asyncio.create_task(worker(c)) for c in pool]
    for i in range(max(1, round(rate * seconds))):
        due = start + i / rate
        item = pick()
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, item))
    for _ in pool:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    ticking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticking
    meter.close()  # it may have been cancelled in the middle of a scrape
    await look()
    meter.close()
    return run


# -- figures ------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Window:
    """The requests due in [start, end) seconds of a run, and the server meanwhile."""

    start: float
    end: float
    requests: int
    cold: int
    dry: int
    allowed: int  # answers
    denied: int
    answered: int
    p50: float
    p95: float
    p99: float
    max: float
    warm_p99: float
    cold_p50: float
    cold_p99: float
    failures: dict[str, int]
    rss_mb: float  # the server's process tree at the end of the window
    rss_main_mb: float
    rss_workers_mb: float
    workers: int  # evaluation worker processes at the end of the window
    workers_started: int  # new ones seen during the window (a worker is replaced on overrun)
    cpu: Cpu
    evaluations_in_flight: float  # mean evaluations running (from the metrics)
    registry_requests_per_s: float

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def _metric_delta(run: Run, a: float, b: float, name: str) -> float:
    """Rate per second of a counter between run-relative times a and b."""
    points = [(t - run.started, m) for t, m in run.metrics]
    before = [p for p in points if p[0] <= a + 1.0] or points[:1]
    after = [p for p in points if p[0] >= b - 1.0] or points[-1:]
    if not before or not after:
        return float("nan")
    (t0, m0), (t1, m1) = before[-1], after[0]
    return (m1.get(name, 0.0) - m0.get(name, 0.0)) / max(t1 - t0, 1e-9)


def window(run: Run, a: float, b: float) -> Window:
    results = [r for r in run.results if a <= r.due - run.started < b]
    lats = [r.latency for r in results if r.latency is not None]
    cold = [r.latency for r in results if r.latency is not None and r.cold]
    samples = [s for s in run.samples if s.at - run.started <= b + 1.0]
    first = [s for s in run.samples if s.at - run.started <= a + 1.0][-1:] or run.samples[:1]
    last = samples[-1] if samples else run.samples[-1]
    return Window(
        start=a,
        end=b,
        requests=len(results),
        cold=sum(r.cold for r in results),
        dry=sum(r.dry for r in results),
        allowed=sum(r.allowed is True for r in results),
        denied=sum(r.allowed is False for r in results),
        answered=len(lats),
        p50=pct(lats, 0.5),
        p95=pct(lats, 0.95),
        p99=pct(lats, 0.99),
        max=max(lats, default=float("nan")),
        warm_p99=pct([r.latency for r in results if r.latency is not None and not r.cold], 0.99),
        cold_p50=pct(cold, 0.5),
        cold_p99=pct(cold, 0.99),
        failures=dict(Counter(r.failure for r in results if r.failure)),
        rss_mb=last.rss_mb,
        rss_main_mb=last.main_rss_kb / 1024,
        rss_workers_mb=sum(last.children_rss_kb.values()) / 1024,
        workers=len(set(last.children_rss_kb) - last.cold_pids),
        workers_started=len(
            {pid for s in samples if s.at >= first[0].at for pid in s.children_rss_kb}
            - set(first[0].children_rss_kb)
        ),
        cpu=cpu_between(first[0], last),
        evaluations_in_flight=_metric_delta(run, a, b, "sbomgate_policy_evaluation_seconds_sum"),
        registry_requests_per_s=_metric_delta(run, a, b, "sbomgate_registry_requests_total"),
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def failure_details(results: Sequence[Result]) -> list[str]:
    counts = Counter((r.failure, r.detail) for r in results if r.failure)
    return [f"{n} x {kind}: {detail}" for (kind, detail), n in counts.most_common()]


# -- phases ---------------------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    window: Window
    sustainable: bool
    why: str
    failures: list[str]


@dataclass
class Bench:
    args: argparse.Namespace
    webhook: Webhook
    registry: RegistryServer
    mix: Mix
    cold: ColdImages

    def pool(self) -> list[Connection]:
        return [Connection(self.webhook.port, self.webhook.context) for _ in range(CONNECTIONS)]

    def prepare_cold(self, rate: float, seconds: float) -> None:
        mean = rate * seconds * self.args.cold_fraction
        # Requests are cold at random: room for 5 standard deviations of a binomial count.
        wanted = math.ceil(mean + 5 * math.sqrt(mean) + 5) if mean else 0
        missing = wanted - len(self.mix.cold)
        if missing > 0:
            self.mix.add_cold(self.cold.push(missing))

    async def run(self, rate: float, seconds: float, pool: Sequence[Connection]) -> Run:
        assert self.registry.process is not None
        return await open_loop(
            self.webhook, pool, rate, seconds, self.mix, self.registry.process.pid
        )

    async def quiet(self, limit: float = 60.0) -> float:
        """Wait until the server is idle (it finishes overdue evaluations into its caches)."""
        started = time.monotonic()
        assert self.registry.process is not None
        while time.monotonic() - started < limit:
            a = sample_tree(self.webhook.pid, self.registry.process.pid)
            await asyncio.sleep(1.0)
            b = sample_tree(self.webhook.pid, self.registry.process.pid)
            if cpu_between(a, b).server < 0.1:
                break
        return time.monotonic() - started

    async def step(self, rate: float, pool: Sequence[Connection]) -> Step:
        seconds = self.args.step_seconds
        self.prepare_cold(rate, seconds)
        await self.quiet()
        run = await self.run(rate, seconds, pool)
        w = window(run, 0.0, seconds)
        why = []
        if w.failed:
            why.append("failures")
        if not w.warm_p99 <= self.args.p99_limit:
            why.append(f"warm p99 over {self.args.p99_limit:g} s")
        if w.cold and not w.cold_p99 <= self.args.cold_p99_limit:
            why.append(f"cold p99 over {self.args.cold_p99_limit:g} s")
        return Step(rate, w, not why, ", ".join(why), failure_details(run.results))


def limit_text(w: Window, cores: int) -> str:
    c = w.cpu
    workers = " + ".join(f"{v:.2f}" for v in c.workers) or "none"
    share = (
        f"server main process {c.main:.2f} cores, cold-path process {c.cold:.2f}, "
        f"evaluation workers and typosquat helper {workers} "
        f"({c.workers_total:.2f}), registry {c.registry:.2f}, load generator {c.loadgen:.2f}, "
        f"other processes {c.others:.2f}; machine {c.machine:.2f} of {cores} cores; "
        f"evaluations in flight {w.evaluations_in_flight:.2f} (of {max(w.workers, 1)} worker "
        f"and helper processes, {w.workers_started} started meanwhile); registry requests "
        f"{w.registry_requests_per_s:.0f}/s"
    )
    if c.machine >= 0.9 * cores:
        biggest = max(
            (c.main, "the server's main process"),
            (c.cold, "the server's cold-path process"),
            (c.workers_total, "the evaluation workers"),
            (c.registry, "the registry"),
            (c.loadgen, "the load generator"),
            (c.others, "other processes"),
        )[1]
        return f"the machine's CPU: all {cores} cores busy, most of it {biggest} ({share})"
    if c.main >= 0.85:
        return (
            "the server's main process: one core, all one Python process gets for Python "
            f"code (the GIL): HTTP, TLS, registry fetch, verification, parsing ({share})"
        )
    if c.cold >= 0.85:
        return (
            "the server's cold-path process: one core, all one Python process gets for Python "
            f"code (the GIL): registry fetch, verification, parsing, policy inputs ({share})"
        )
    if w.workers and w.evaluations_in_flight >= 0.85 * w.workers:
        return f"evaluation: every evaluation worker busy ({share})"
    if c.registry >= 0.8:
        return f"the registry ({share})"
    if c.others >= 0.5:
        return f"the machine, shared: other processes took {c.others:.2f} cores ({share})"
    return f"no CPU saturated: queueing in the server (threads, locks, deadlines) ({share})"


def print_step_header() -> None:
    print(
        f"  {'rate/s':>7}{'sent':>6}{'cold':>5}{'dry':>5}{'p50':>7}{'p95':>7}{'p99':>7}"
        f"{'max':>7}{'warm99':>7}{'cold50':>7}{'cold99':>7}{'fail':>6}{'main':>6}{'cold':>6}"
        f"{'wrk':>6}"
        f"{'reg':>6}{'gen':>6}{'mach':>6}"
        f"{'eval':>6}{'RSS MB':>8}  sustainable"
    )


def print_step(s: Step) -> None:
    w = s.window
    print(
        f"  {s.rate:>7.1f}{w.requests:>6}{w.cold:>5}{w.dry:>5}{ms(w.p50):>7}{ms(w.p95):>7}"
        f"{ms(w.p99):>7}{ms(w.max):>7}{ms(w.warm_p99):>7}{ms(w.cold_p50):>7}{ms(w.cold_p99):>7}"
        f"{w.failed:>6}{w.cpu.main:>6.2f}{w.cpu.cold:>6.2f}"
        f"{w.cpu.workers_total:>6.2f}{w.cpu.registry:>6.2f}{w.cpu.loadgen:>6.2f}"
        f"{w.cpu.machine:>6.2f}{w.evaluations_in_flight:>6.2f}{w.rss_mb:>8.0f}  "
        f"{'yes' if s.sustainable else 'no: ' + s.why}"
    )
    for line in s.failures[:6]:
        print(f"          {line}")


async def search(bench: Bench, quiet_cold_max: float) -> tuple[float | None, list[Step], str]:
    """`quiet_cold_max`: the slowest first admission of a pool image, one at a time."""
    args = bench.args
    cores = os.cpu_count() or 1
    print()
    print(
        f"search: open loop, {args.step_seconds:g} s per step, rates x{RATE_FACTOR:g} from "
        f"{args.start_rate:g}/s, then one step between; sustainable = no failure, warm p99 <= "
        f"{args.p99_limit * 1000:.0f} ms and cold p99 <= {args.cold_p99_limit * 1000:.0f} ms; "
        "latency in ms from when each request was due (all, warm, cold); CPU in "
        f"cores (main = server's main process, cold = its cold-path process, wrk = the "
        "evaluation workers and the typosquat helper, reg = registry, "
        f"gen = load generator, mach = whole machine of {cores}); eval = evaluations in flight"
    )
    if quiet_cold_max > args.cold_p99_limit:
        print(
            f"  (the slowest first admission of a pool image, alone, took {ms(quiet_cold_max)} ms: "
            "over the cold limit before any load; raise --cold-p99-limit if the machine is "
            "not shared)"
        )
    print_step_header()
    pool = bench.pool()
    steps: list[Step] = []
    rate = args.start_rate
    good: Step | None = None
    bad: Step | None = None
    while rate <= args.max_rate:
        s = await bench.step(rate, pool)
        steps.append(s)
        print_step(s)
        if not s.sustainable:
            bad = s
            break
        good = s
        rate *= RATE_FACTOR
    if good is not None and bad is not None and bad.rate / good.rate > 1.2:
        s = await bench.step(round((good.rate * bad.rate) ** 0.5, 1), pool)
        steps.append(s)
        print_step(s)
        if s.sustainable:
            good = s
        else:
            bad = s
    for conn in pool:
        conn.close()
    limit = ""
    if good is None:
        print(f"  no rate was sustainable (from {args.start_rate:g}/s)")
    else:
        print(
            f"  maximum sustainable rate: {good.rate:g}/s (p99 {ms(good.window.p99)} ms, warm "
            f"p99 {ms(good.window.warm_p99)} ms, cold p99 {ms(good.window.cold_p99)} ms, "
            f"{good.window.requests} requests, {good.window.cold} cold, no failure)"
        )
    if bad is not None:
        limit = limit_text(bad.window, cores)
        print(f"  at {bad.rate:g}/s ({bad.why}) the limit was {limit}")
    elif good is not None:
        limit = f"not reached up to --max-rate {args.max_rate:g}/s"
        print(f"  the limit was {limit}")
    return (good.rate if good else None), steps, limit


@dataclass
class SoakSummary:
    rate: float
    minutes: float
    window_seconds: float
    requests: int
    cold: int
    dry: int
    allowed: int
    denied: int
    failures: dict[str, int]
    failure_details: list[str]
    p50: float
    p95: float
    p99: float
    max: float
    warm_p99: float
    cold_p50: float
    cold_p99: float
    warmup_minutes: float
    rss_after_warmup_mb: float
    rss_end_mb: float
    rss_max_mb: float
    rss_growth: float
    p99_stability: float
    warm_p99_stability: float
    cold_shortfall: int
    windows: list[Window]


async def soak(bench: Bench, rate: float) -> SoakSummary:
    args = bench.args
    seconds = args.minutes * 60.0
    width = args.window_seconds
    warmup = args.warmup_minutes
    if warmup * 60 >= seconds:
        warmup = args.minutes / 2
        print(f"(the run is not longer than the warm-up: warm-up taken as {warmup:g} min)")
    bench.prepare_cold(rate, seconds)
    await bench.quiet()
    pool = bench.pool()
    print()
    print(
        f"soak: open loop at {rate:g}/s for {args.minutes:g} min, {args.cold_fraction:.0%} cold, "
        f"{args.dry_run_fraction:.0%} dry runs; per {width:g} s window: latency in ms from "
        "when due, failures, RSS of the server's process tree (main; rest: its cold-path process "
        "and evaluation workers), CPU "
        "in cores"
    )
    run = await bench.run(rate, seconds, pool)
    for conn in pool:
        conn.close()
    windows = []
    a = 0.0
    while a < seconds - 1e-6:
        windows.append(window(run, a, min(a + width, seconds)))
        a += width
    print(
        f"  {'minute' if width == 60 else 'from s':>7}{'sent':>6}{'cold':>5}{'dry':>5}"
        f"{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}{'warm99':>7}{'cold99':>7}"
        f"{'HTTP':>5}{'tmo':>5}{'inv':>5}{'wrong':>6}"
        f"{'RSS MB':>8}{'main':>7}{'rest':>6}{'n':>3}{'new':>4}{'CPU main':>9}{'cold':>6}"
        f"{'wrk':>6}{'mach':>6}"
    )
    for w in windows:
        label = f"{w.start / 60 + 1:.0f}" if width == 60 else f"{w.start:.0f}"
        f = w.failures
        print(
            f"  {label:>7}{w.requests:>6}{w.cold:>5}{w.dry:>5}{ms(w.p50):>7}{ms(w.p95):>7}"
            f"{ms(w.p99):>7}{ms(w.max):>7}{ms(w.warm_p99):>7}{ms(w.cold_p99):>7}"
            f"{f.get('HTTP error', 0):>5}{f.get('timeout', 0):>5}"
            f"{f.get('invalid review', 0):>5}{f.get('wrong verdict', 0):>6}{w.rss_mb:>8.0f}"
            f"{w.rss_main_mb:>7.0f}{w.rss_workers_mb:>6.0f}{w.workers:>3}{w.workers_started:>4}"
            f"{w.cpu.main:>9.2f}{w.cpu.cold:>6.2f}"
            f"{w.cpu.workers_total:>6.2f}{w.cpu.machine:>6.2f}"
        )
    lats = [r.latency for r in run.results if r.latency is not None]
    # RSS after warm-up: the last sample at or before the warm-up's end.
    after_warmup = [s for s in run.samples if s.at - run.started <= warmup * 60 + 1.0]
    base = after_warmup[-1].rss_mb
    end = run.samples[-1].rss_mb
    p99s = [w.p99 for w in windows if w.answered]
    warm_p99s = [w.warm_p99 for w in windows if w.warm_p99 == w.warm_p99]

    def stability(values: Sequence[float]) -> float:
        return max(values) / statistics.median(values) if values else float("nan")

    warm_lats = [r.latency for r in run.results if r.latency is not None and not r.cold]
    cold_lats = [r.latency for r in run.results if r.latency is not None and r.cold]
    summary = SoakSummary(
        rate=rate,
        minutes=args.minutes,
        window_seconds=width,
        requests=len(run.results),
        cold=sum(r.cold for r in run.results),
        dry=sum(r.dry for r in run.results),
        allowed=sum(r.allowed is True for r in run.results),
        denied=sum(r.allowed is False for r in run.results),
        failures={k: sum(1 for r in run.results if r.failure == k) for k in FAILURES},
        failure_details=failure_details(run.results),
        p50=pct(lats, 0.5),
        p95=pct(lats, 0.95),
        p99=pct(lats, 0.99),
        max=max(lats, default=float("nan")),
        warm_p99=pct(warm_lats, 0.99),
        cold_p50=pct(cold_lats, 0.5),
        cold_p99=pct(cold_lats, 0.99),
        warmup_minutes=warmup,
        rss_after_warmup_mb=base,
        rss_end_mb=end,
        rss_max_mb=max(s.rss_mb for s in run.samples),
        rss_growth=(end - base) / base if base else float("nan"),
        p99_stability=stability(p99s),
        warm_p99_stability=stability(warm_p99s),
        cold_shortfall=bench.mix.cold_short,
        windows=windows,
    )
    failed = sum(summary.failures.values())
    print(
        f"  all: {summary.requests} requests ({summary.cold} cold, {summary.dry} dry runs; "
        f"answers: {summary.allowed} allowed, {summary.denied} denied), "
        f"p50 {ms(summary.p50)} ms, p95 {ms(summary.p95)} ms, p99 {ms(summary.p99)} ms, max "
        f"{ms(summary.max)} ms; warm p99 {ms(summary.warm_p99)} ms; cold p50 "
        f"{ms(summary.cold_p50)} ms, p99 {ms(summary.cold_p99)} ms"
    )
    print(
        "  failed: "
        + ", ".join(f"{k} {v}" for k, v in summary.failures.items())
        + (" (expected: none)" if failed else " (none)")
    )
    for line in summary.failure_details[:10]:
        print(f"    {line}")
    tracebacks = bench.webhook.log_file.read_text(errors="replace").count("Traceback")
    print(f"  server log: {tracebacks} tracebacks")
    verdict = "ok" if summary.rss_growth < RSS_GROWTH_LIMIT else "OVER the target"
    print(
        f"  RSS of the server's process tree: {base:.0f} MB after the {warmup:g}-minute warm-up, "
        f"{end:.0f} MB at the end (max {summary.rss_max_mb:.0f} MB): growth "
        f"{summary.rss_growth:+.1%} ({verdict}: < {RSS_GROWTH_LIMIT:.0%})"
    )
    print(
        f"  p99 stability: max window p99 / median window p99 = {summary.p99_stability:.2f} "
        f"(warm requests only: {summary.warm_p99_stability:.2f}; {len(p99s)} windows of "
        f"{width:g} s)"
    )
    if summary.cold_shortfall:
        print(f"  ({summary.cold_shortfall} cold picks found no image left and sent a warm one)")
    return summary


# -- setup ------------------------------------------------------------------------------------


async def calibrate(
    webhook: Webhook, images: Sequence[tuple[Image, str]]
) -> list[tuple[Image, float]]:
    """Admit every warm image once, one at a time: each answer must be the expected one."""
    conn = Connection(webhook.port, webhook.context)
    await conn.request("GET", "/healthz")
    rng = random.Random(44)
    out = []
    wrong = []
    for image, label in images:
        template = _review("Pod", [image], rng, label)
        result = await send(conn, Item(template, False, False), time.monotonic())
        out.append((image, result.latency or float("nan")))
        for _ in range(5):
            # Past the admission deadline the check goes on into the cache: ask again.
            if "did not finish" not in result.detail:
                break
            await asyncio.sleep(2.0)
            result = await send(conn, Item(template, False, False), time.monotonic())
        if result.failure:
            wrong.append(f"{label} ({image.components} components): {result.detail}")
    conn.close()
    if wrong:
        raise SystemExit("first admissions did not answer as expected:\n  " + "\n  ".join(wrong))
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--rate", type=float, help="soak at this rate/s; skips the search")
    p.add_argument("--search-only", action="store_true", help="find the maximum rate only")
    p.add_argument("--cold-fraction", type=float, default=0.10)
    p.add_argument("--dry-run-fraction", type=float, default=0.05)
    p.add_argument("--warm-denied", type=float, default=0.10, help="share of warm reviews denied")
    p.add_argument("--step-seconds", type=float, default=30.0, help="search step length")
    p.add_argument("--start-rate", type=float, default=1.0, help="first search step, per s")
    p.add_argument("--max-rate", type=float, default=2000.0, help="last search step, per s")
    p.add_argument(
        "--p99-limit", type=float, default=1.0, help="search: warm requests, s (default 1)"
    )
    p.add_argument(
        "--cold-p99-limit", type=float, default=4.0, help="search: cold requests, s (default 4)"
    )
    p.add_argument("--window-seconds", type=float, default=60.0, help="soak table rows")
    p.add_argument("--warmup-minutes", type=float, default=2.0)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="a top-level setting of the server's configuration file, e.g. "
        "evaluationProcesses=2 (repeatable)",
    )
    p.add_argument("--out", type=Path, default=OUT, help=f"JSON report (default {OUT})")
    p.add_argument(
        "--work", type=Path, help="keep the registry, keys and serve.log here (default: a temp dir)"
    )
    args = p.parse_args(argv)
    if args.rate is not None and args.search_only:
        p.error("--rate skips the search that --search-only asks for")
    if args.window_seconds < SAMPLE_SECONDS:
        p.error(f"--window-seconds must be at least {SAMPLE_SECONDS:g}")
    if not 0 <= args.cold_fraction <= 1 or not 0 <= args.dry_run_fraction <= 1:
        p.error("fractions are between 0 and 1")
    return args


def extra_settings(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=JSON")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _window_json(w: Window) -> dict[str, Any]:
    out = asdict(w)
    out["cpu"]["server"] = w.cpu.server
    out["cpu"]["others"] = w.cpu.others
    return out


async def main_async(args: argparse.Namespace, work: Path) -> int:
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    setup: dict[str, Any] = {}
    t0 = time.monotonic()
    registry = start_distribution(work / "registry", ca=None)
    webhook: Webhook | None = None
    try:
        key, ckey = cosign_key(work / "keys")
        signer = Signer(key)
        setup["registry_and_key_s"] = time.monotonic() - t0

        t = time.monotonic()
        universe = make_universe()
        pool = make_pool(universe)
        facts = work / "facts.json"
        setup["facts_packages"] = write_facts(universe, facts)
        setup["pool_s"] = time.monotonic() - t

        # Warm images: small ones by the real cosign, and one per pool SBOM signed here.
        t = time.monotonic()
        small: list[tuple[Image, str]] = []
        for i in range(SMALL_ALLOWED + SMALL_DENIED):
            ok = i < SMALL_ALLOWED
            repo = f"soak/app-{i}" if ok else f"soak/legacy-{i}"
            pushed = push_image(registry, repo, "v1", seed=f"soak-small-{i}")
            cosign_attest(
                registry,
                pushed.digest_ref,
                GOOD_SBOM if ok else BAD_SBOM,
                "cyclonedx" if ok else "spdxjson",
                ckey,
                new_bundle_format=True,
                workdir=work / "cosign-home",
            )
            label = "small " + ("allowed" if ok else "denied")
            small.append((Image(pushed.digest_ref, ok, 0), label))
        setup["cosign_small_images_s"] = time.monotonic() - t

        t = time.monotonic()
        client = OciClient(registry)
        pooled: list[tuple[Image, str]] = []
        for sbom in pool:
            repo = f"soak/pool-{sbom.index}"
            pushed = push_image(registry, repo, "v1", seed=f"soak-pool-{sbom.index}", client=client)
            signer.attest(client, registry, repo, pushed.digest, sbom.predicate)
            label = f"pool #{sbom.index} " + ("allowed" if sbom.allowed else "denied")
            pooled.append((Image(pushed.digest_ref, sbom.allowed, sbom.components), label))
        setup["pool_images_s"] = time.monotonic() - t
        t = time.monotonic()
        error = cosign_verifies(registry, pooled[0][0].ref, ckey, work / "cosign-home")
        if error:
            raise SystemExit(f"cosign verify-attestation refused a Python-signed image: {error}")
        setup["cosign_verify_s"] = time.monotonic() - t

        cold = ColdImages(registry, signer, pool)
        first_cold = cold.push(20)  # what a cold image costs, before the server runs
        first = Prepared(cold.cost.seconds, cold.cost.images, cold.cost.bytes)

        webhook = Webhook(
            work, registry, trust_policy(work, ckey), facts=facts, extra=extra_settings(args.set)
        )
        ready = webhook.start()
        setup["server_ready_s"] = ready
        warm = small + pooled
        firsts = await calibrate(webhook, warm)
        mix = Mix(
            [i for i, _ in warm if i.allowed], [i for i, _ in warm if not i.allowed], args, 45
        )
        mix.add_cold(first_cold)
        bench = Bench(args, webhook, registry, mix, cold)
        sizes = [s.components for s in pool]
        print(
            f"sbomgate serve over TLS, bundled policies, a facts snapshot of "
            f"{setup['facts_packages']:,} packages; {os.cpu_count()} CPUs, load average "
            f"{loadavg()}"
        )
        print(
            f"setup: registry + key {setup['registry_and_key_s']:.1f} s; universe of "
            f"{len(universe):,} packages and {POOL_SIZE} pool SBOMs ({min(sizes):,}-"
            f"{max(sizes):,} components, {sum(not s.allowed for s in pool)} to be denied) "
            f"{setup['pool_s']:.1f} s; {len(small)} small images by `cosign attest` "
            f"{setup['cosign_small_images_s']:.1f} s; {len(pooled)} pool images signed here "
            f"{setup['pool_images_s']:.1f} s; `cosign verify-attestation` of one "
            f"{setup['cosign_verify_s']:.1f} s; cold images "
            f"{first.seconds / first.images * 1000:.0f} ms each ({PUSH_THREADS} threads); "
            f"server ready {ready:.1f} s after start"
        )
        small_lat = [lat for image, lat in firsts if not image.components]
        pool_lat = [lat for image, lat in firsts if image.components]
        print(
            f"first admissions, one at a time: small images "
            f"{', '.join(ms(lat) for lat in small_lat)} ms; {len(pool_lat)} pool images "
            f"({min(sizes):,}-{max(sizes):,} components) p50 {ms(pct(pool_lat, 0.5))} ms, "
            f"max {ms(max(pool_lat))} ms"
        )
        setup["first_admission_ms"] = {
            label: lat * 1000 for (_, label), (_, lat) in zip(warm, firsts, strict=True)
        }
        report["setup"] = setup

        rate = args.rate
        if rate is None:
            best, steps, limit = await search(bench, max(pool_lat))
            report["search"] = {
                "max_sustainable_rate": best,
                "limit": limit,
                "steps": [{**asdict(s), "window": _window_json(s.window)} for s in steps],
            }
            if best is None or args.search_only:
                report["cold_preparation"] = asdict(cold.cost)
                write_report(args.out, report)
                return 0 if best is not None else 1
            rate = round(best / 2, 1)
        summary = await soak(bench, rate)
        report["cold_preparation"] = asdict(cold.cost)
        report["soak"] = {
            **{k: v for k, v in asdict(summary).items() if k != "windows"},
            "windows": [_window_json(w) for w in summary.windows],
        }
        cost = cold.cost
        print(
            f"cold images pushed: {cost.images} in {cost.seconds:.1f} s "
            f"({cost.seconds / max(cost.images, 1) * 1000:.0f} ms each, "
            f"{cost.bytes / 1e6:.0f} MB of SBOMs)"
        )
        write_report(args.out, report)
        failed = sum(summary.failures.values())
        return 0 if not failed and summary.rss_growth < RSS_GROWTH_LIMIT else 1
    finally:
        if webhook is not None:
            webhook.stop()
        registry.stop()


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        code = asyncio.run(main_async(args, args.work))
    else:
        with tempfile.TemporaryDirectory(prefix="sbomgate-soak-") as tmp:
            code = asyncio.run(main_async(args, Path(tmp)))
    print(f"(wall time {time.monotonic() - started:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
