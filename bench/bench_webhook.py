"""Benchmark: `sbomgate serve` as a subprocess over real TLS, under load from loopback.

Real components: Debian's distribution 2.8 registry on loopback (plain HTTP), images pushed
with real `cosign attest --key` attestations (a few small SBOMs for the warm path, and images
whose SBOM has 5,000 components for the cold path), a trust policy, the bundled policies, the
facts snapshot examples/trusted-facts.yaml, and `sbomgate serve --config FILE` started as a
child process with a throw-away CA. The load generator is an asyncio HTTP/1.1 client over TLS
with keep-alive connections, in this process, sending AdmissionReviews like the API server's
(Deployments and Pods, images by digest, a unique uid per request).

    unloaded   one connection, sequential: the latency of one review with nothing queued
    cold       the first admission of a 5,000-component image (registry fetch, signature and
               subject checks, parse, evaluate); a fresh image digest each run, so nothing is
               cached; quiet, then with warm traffic running beside it; and new builds of
               real SBOMs (syft's, trivy's and cdxgen's of the Debian root that `make tools`
               scans), each admitted once, then released again with 2% of its packages bumped
    warm       open loop at fixed rates (requests are due on a schedule and latency counts
               from when each was due, so queueing is not hidden by a slow server), rising
               until p99 or errors break the target; then a closed-loop soak up to
               WARM_TOTAL warm requests
    memory     the server's VmRSS (main and cold-path processes) at start, after warm-up,
               after the cold runs, during the soak and after WARM_TOTAL warm requests

CPU is read from /proc: the server's utime + stime with its evaluation workers', this
process's own CPU (the load generator shares the machine) and the whole machine's busy time
(other work included); per cold admission, the server's and its workers' too (a figure that,
unlike latency, does not grow when another tenant of the host is busy).

Figures only: nothing here asserts a timing. Run with `make bench`; `--cold` stops after the
cold path, `--warm` runs the unloaded table and the warm rate sweep only; `--osv` configures
an OSV export too (an advisory for about one package in 16), as a cluster that follows OSV.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_verify import trust_policy  # noqa: E402
from sbomgen import make_cyclonedx  # noqa: E402
from support.oci_builder import CosignKey, PushedImage, cosign_attest, cosign_keypair, push_image  # noqa: E402
from support.registry_servers import RegistryServer, make_test_ca, start_distribution  # noqa: E402

# -- what is run (the whole run stays under ~10 minutes on 2 cores) ---------------------------

CONNECTIONS = 32  # keep-alive TLS connections of the load generator (the API server's pool)
SWEEP_RATES = (
    50,
    100,
    200,
    400,
    600,
    800,
    1000,
    1100,
    1200,
    1300,
    1500,
    1800,
    2000,
    2200,
    2500,
)  # requests/s, open loop
STEP_SECONDS = 10.0  # per rate
P99_TARGET = 0.100  # seconds: a rate is sustainable when p99 is below this and nothing failed
MIN_ACHIEVED = 0.95  # ...and at least this share of the target rate was answered
WARMUP_REQUESTS = 2_000  # warm mix, before the measurements
UNLOADED_REQUESTS = 200  # per row of the unloaded table
WARM_TOTAL = 100_000  # warm requests in all (warm-up, sweep, soak) before the last RSS
SOAK_RSS_EVERY = 25_000  # warm requests between RSS samples during the soak
BIG_COMPONENTS = 5_000
# `--osv`: the server also follows an OSV export (advisories for about 1 package in 16), as a
# cluster that watches OSV does (write_osv).
WITH_OSV = "--osv" in sys.argv[1:]
COLD_RUNS = 5  # quiet cold runs, each an image of packages never seen (its own SBOM)
NEW_BUILDS = 5  # quiet cold runs, each a new build (2% of packages bumped) of the one before
BUMPED = 0.02
# Real SBOMs for release streams (what the tests' producers write, .cache/real-sboms).
REAL_STREAMS = (
    "syft-*/debian-bookworm.cyclonedx-json",
    "trivy-*/debian-bookworm.cyclonedx-json",
    "cdxgen-*/debian-bookworm.cyclonedx-json",
)
REAL_BUILDS = 3  # new builds of each, after its first admission
COLD_UNDER_LOAD = 2  # cold runs (never seen) with warm traffic beside them
COLD_BACKGROUND_RATE = 100  # requests/s of that warm traffic
COLD_BACKGROUND_SECONDS = 8.0  # its length (the cold request starts 1 s into it)
KEEPALIVE_PROBES = (2.0, 4.0, 6.0, 12.0)  # idle seconds before a second request
REQUEST_TIMEOUT = 10.0  # seconds: the webhook's default timeoutSeconds
SMALL_ALLOWED = 4  # images attested with examples/good-app.cdx.json (admitted)
SMALL_DENIED = 1  # images attested with examples/bad-app.spdx.json (refused)
DENIED_SHARE = 0.1  # share of warm requests that carry the refused image

GOOD_SBOM = ROOT / "examples" / "good-app.cdx.json"
BAD_SBOM = ROOT / "examples" / "bad-app.spdx.json"
FACTS = ROOT / "examples" / "trusted-facts.yaml"
UID_PLACEHOLDER = b"00000000-0000-4000-8000-000000000000"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc ------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and of every process under it (the server's evaluation
    workers): CPU, unlike latency, does not grow when another tenant of the host is busy."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            parents[int(entry.name)] = int(fields[1])
    tree, grown = {pid}, True
    while grown:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    total = 0.0
    for member in tree:
        with contextlib.suppress(OSError):  # gone meanwhile
            total += proc_cpu_seconds(member)
    return total


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Usage:
    """CPU used over an interval, in cores (1.0 = one core busy all the time)."""

    server: float
    client: float
    machine: float

    @property
    def others(self) -> float:
        return max(self.machine - self.server - self.client, 0.0)


class UsageMeter:
    """CPU over an interval: the server's process tree, this process, the machine."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = time.monotonic()
        self.server = tree_cpu_seconds(pid)
        self.client = time.process_time()
        self.busy, _ = machine_busy_seconds()

    def read(self) -> Usage:
        wall = time.monotonic() - self.wall
        busy, _ = machine_busy_seconds()
        return Usage(
            server=(tree_cpu_seconds(self.pid) - self.server) / wall,
            client=(time.process_time() - self.client) / wall,
            machine=(busy - self.busy) / wall,
        )


# -- AdmissionReviews -------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """An AdmissionReview body with a placeholder uid, and the answer it must get."""

    body: bytes
    allowed: bool
    label: str


def _container(name: str, image: str, rng: random.Random) -> dict[str, Any]:
    port = rng.choice((8080, 8443, 9090, 3000))
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": rng.choice(("info", "debug", "warn"))},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
        ],
        "resources": {
            "requests": {"cpu": f"{rng.choice((50, 100, 250))}m", "memory": "128Mi"},
            "limits": {"memory": f"{rng.choice((256, 512))}Mi"},
        },
    }


def _pod_spec(images: Sequence[str], rng: random.Random, *, defaulted: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [_container(f"c{i}", image, rng) for i, image in enumerate(images)],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "securityContext": {"runAsNonRoot": True},
        "schedulerName": "default-scheduler",
    }
    if defaulted:  # what the API server has added by the time a Pod is admitted
        spec["tolerations"] = [
            {
                "key": f"node.kubernetes.io/{what}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
            for what in ("not-ready", "unreachable")
        ]
        spec["volumes"] = [
            {
                "name": "kube-api-access-x7k2p",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt"}]}},
                    ],
                },
            }
        ]
        spec["enableServiceLinks"] = True
        spec["preemptionPolicy"] = "PreemptLowerPriority"
        spec["priority"] = 0
    return spec


def admission_review(
    kind: str, name: str, namespace: str, images: Sequence[str], rng: random.Random
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"}
    meta: dict[str, Any] = {
        "namespace": namespace,
        "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "creationTimestamp": None,
        "labels": labels,
        "annotations": {"team.example.com/owner": "payments"},
    }
    if kind == "Deployment":
        group, version, resource = "apps", "v1", "deployments"
        obj: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "name": name, "generation": 1},
            "spec": {
                "replicas": rng.choice((1, 2, 3)),
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod_spec(images, rng, defaulted=False),
                },
            },
        }
        user = {"username": "system:serviceaccount:ci:deployer", "groups": ["system:authenticated"]}
        object_name: str | None = name
    else:
        group, version, resource = "", "v1", "pods"
        hash_ = f"{rng.getrandbits(40):010x}"[:10]
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                **meta,
                "generateName": f"{name}-{hash_}-",
                "labels": {**labels, "pod-template-hash": hash_},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": f"{name}-{hash_}",
                        "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": _pod_spec(images, rng, defaulted=True),
        }
        user = {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        }
        object_name = None
    request: dict[str, Any] = {
        "uid": UID_PLACEHOLDER.decode(),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": user,
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if object_name:
        request["name"] = object_name
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def warm_templates(allowed: Sequence[str], denied: Sequence[str], count: int) -> list[Template]:
    """Deployments and Pods of 1-3 containers; DENIED_SHARE of them carry a refused image."""
    rng = random.Random(20251120)
    out = []
    for i in range(count):
        kind = "Deployment" if i % 5 < 2 else "Pod"
        images = rng.sample(list(allowed), rng.choice((1, 1, 2, 2, 3)))
        refused = rng.random() < DENIED_SHARE
        if refused:
            images[-1] = rng.choice(list(denied))
        name = f"{rng.choice(('web', 'api', 'worker', 'cart', 'search'))}-{i}"
        namespace = rng.choice(("shop", "payments", "search"))
        review = admission_review(kind, name, namespace, images, rng)
        body = orjson.dumps(review)
        out.append(Template(body, not refused, f"{kind}, {len(images)} images"))
    return out


def single_template(kind: str, image: str, *, allowed: bool | None, label: str) -> Template:
    review = admission_review(kind, "one", "shop", [image], random.Random(label))
    return Template(orjson.dumps(review), bool(allowed), label)


# -- the load generator: HTTP/1.1 over TLS, keep-alive ------------------------------------------


class Connection:
    """One keep-alive connection. Like Go's HTTP client in the API server, a request that
    finds its idle connection closed by the server (nothing answered) is sent again once on a
    new connection; those are counted in `stale`, with how long the connection had been idle."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opened = 0
        self.stale: list[float] = []  # idle seconds of each connection found closed
        self.last_used = 0.0

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        reused = self.writer is not None
        try:
            return await self._exchange(method, path, body)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            partial = exc.partial if isinstance(exc, asyncio.IncompleteReadError) else b""
            self.close()
            if not reused or partial:
                raise
            self.stale.append(time.monotonic() - self.last_used)
            return await self._exchange(method, path, body)

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port, ssl=self.context, server_hostname="127.0.0.1"
            )
            self.opened += 1
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Accept: application/json, */*\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nUser-Agent: kube-apiserver-admission\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length)
        self.last_used = time.monotonic()
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Run:
    """What one load run saw: (due, latency) of each good answer, and failures by kind."""

    started: float
    ended: float = 0.0
    samples: list[tuple[float, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    usage: Usage | None = None

    @property
    def latencies(self) -> list[float]:
        return [s[1] for s in self.samples]

    @property
    def sent(self) -> int:
        return len(self.samples) + sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return len(self.samples) / max(self.ended - self.started, 1e-9)


async def review_once(conn: Connection, template: Template, run: Run, due: float) -> None:
    """One review; like the API server, give up REQUEST_TIMEOUT after it was due."""
    left = due + REQUEST_TIMEOUT - time.monotonic()
    if left <= 0:
        run.errors["timed out queued"] += 1
        return
    uid = str(uuid.uuid4())
    body = template.body.replace(UID_PLACEHOLDER, uid.encode())
    try:
        status, payload = await asyncio.wait_for(
            conn.request("POST", "/validate?timeout=10s", body), left
        )
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        conn.close()
        run.errors[type(exc).__name__] += 1
        return
    done = time.monotonic()
    if status != 200:
        run.errors[f"HTTP {status}"] += 1
        return
    response = orjson.loads(payload).get("response") or {}
    if response.get("uid") != uid:
        run.errors["uid mismatch"] += 1
    elif response.get("allowed") is not template.allowed:
        run.errors["unexpected decision"] += 1
    else:
        run.samples.append((due, done - due))


async def open_loop(
    pool: Sequence[Connection], rate: float, seconds: float, pick: Callable[[], Template]
) -> Run:
    """Requests due every 1/rate s; each waits for a free connection, latency from when due."""
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    start = time.monotonic() + 0.02
    run = Run(started=start)

    async def worker(conn: Connection) -> None:
        while (due := await queue.get()) is not None:
            await review_once(conn, pick(), run, due)

    workers = [asyncio.create_task(worker(c)) for c in pool]
    for i in range(max(1, round(rate * seconds))):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in pool:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    run.ended = time.monotonic()
    return run


async def closed_loop(
    pool: Sequence[Connection],
    total: int,
    pick: Callable[[], Template],
    on_count: Callable[[int], None] | None = None,
) -> Run:
    """Each connection sends its next request as soon as the last one is answered."""
    run = Run(started=time.monotonic())
    remaining = [total]

    async def worker(conn: Connection) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await review_once(conn, pick(), run, time.monotonic())
            if on_count is not None:
                on_count(run.sent)

    await asyncio.gather(*(worker(c) for c in pool))
    run.ended = time.monotonic()
    return run


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def cpu_per_request(run: Run, cores: float) -> float:
    """CPU-seconds per answered request, from cores used over the run."""
    return cores * (run.ended - run.started) / max(len(run.samples), 1)


def errors_text(run: Run) -> str:
    return ", ".join(f"{k} x{v}" for k, v in run.errors.most_common()) or "0"


# -- the server ---------------------------------------------------------------------------


class Webhook:
    """`sbomgate serve --config FILE` in a child process, over TLS with a test CA."""

    def __init__(
        self,
        work: Path,
        registry: RegistryServer,
        trust: Path,
        *,
        facts: Path = FACTS,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """`extra`: more top-level settings of the configuration file (bench_soak.py)."""
        ca = make_test_ca(work / "tls")
        self.ca_file = ca.ca_file
        self.log_file = work / "serve.log"
        self.config = work / "sbomgate.yaml"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.config.write_text(
            json.dumps(
                {
                    "trustPolicies": [str(trust)],
                    "facts": str(facts),
                    "allowedRegistries": [registry.host],
                    "insecureRegistries": [registry.host],
                    "exemptNamespaces": ["kube-system", "sbomgate"],
                    "tls": {"certFile": str(ca.cert_file), "keyFile": str(ca.key_file)},
                    "listen": {"host": "127.0.0.1", "port": self.port},
                    **(extra or {}),
                },
                indent=2,
            )
        )
        self.context = ssl.create_default_context(cafile=str(self.ca_file))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.monotonic()
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sbomgate.cli", "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = started + 60
        while True:
            try:
                url = f"https://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(url, context=self.context, timeout=2) as r:
                    if r.read() == b"ready":
                        return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-3000:]
                raise SystemExit(f"sbomgate serve did not become ready:\n{tail}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        """The server's main process and its cold-path process (serving/coldpath.py), which
        keeps the checked SBOMs; not the evaluation workers."""
        kb = proc_status(self.pid, "VmRSS")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, KeyError):  # gone meanwhile
                child = int(entry.name)
                if proc_status(child, "PPid") != self.pid:
                    continue
                if b"sbomgate.serving._cold" in (entry / "cmdline").read_bytes():
                    kb += proc_status(child, "VmRSS")
        return kb / 1024

    def threads(self) -> int:
        return proc_status(self.pid, "Threads")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


async def scrape(conn: Connection) -> dict[str, float]:
    """The Prometheus metrics, summed over labels: name -> value."""
    status, payload = await conn.request("GET", "/metrics")
    if status != 200:
        raise SystemExit(f"/metrics answered {status}")
    out: dict[str, float] = {}
    for line in payload.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        labels = name_labels[len(name) :]
        if 'cache="' in labels:
            name += "{" + re.findall(r'cache="([^"]*)"', labels)[0] + "}"
        out[name] = out.get(name, 0.0) + float(value)
    return out


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class Images:
    allowed: list[str]
    denied: list[str]
    big_warm: str
    cold: list[str]
    builds: list[str]
    # Per real SBOM: its name, its first build and the new builds of it.
    real: list[tuple[str, str, list[str]]] = field(default_factory=list)


def bumped(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A new build: BUMPED of the components at their next patch version (purl and version;
    the file hash changes with the purl), as a release bumps them."""
    new = json.loads(json.dumps(document))
    components = new["components"]
    for index in rng.sample(range(len(components)), int(len(components) * BUMPED)):
        component = components[index]
        old, version = component["version"], f"{component['version']}.1"
        component["version"] = version
        component["purl"] = component["purl"].replace(f"@{old}", f"@{version}")
        component["hashes"] = [
            {"alg": "SHA-256", "content": hashlib.sha256(component["purl"].encode()).hexdigest()}
        ]
    return new


def bumped_real(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A new build of a real SBOM: BUMPED of its packages (a version and a purl that names
    it) at a new version; files, which have neither, are as they were."""
    new = json.loads(json.dumps(document))
    packages = [
        c
        for c in new["components"]
        if isinstance(c.get("version"), str)
        and isinstance(c.get("purl"), str)
        and f"@{c['version']}" in c["purl"]
    ]
    for component in rng.sample(packages, max(1, int(len(packages) * BUMPED))):
        old, version = component["version"], f"{component['version']}.1"
        component["version"] = version
        component["purl"] = component["purl"].replace(f"@{old}", f"@{version}", 1)
    return new


def real_documents() -> list[tuple[str, dict[str, Any]]]:
    """The real SBOMs of REAL_STREAMS, by their path under the corpus."""
    from bench_cold_path import CORPUS, find

    return [
        (str(find(p).relative_to(CORPUS)), json.loads(find(p).read_bytes())) for p in REAL_STREAMS
    ]


def prepare_images(registry: RegistryServer, key: CosignKey, work: Path) -> Images:
    big_document = make_cyclonedx(BIG_COMPONENTS, seed=7)
    documents = [big_document]
    big_sbom = work / "big.cdx.json"
    big_sbom.write_text(json.dumps(big_document))

    def attested(repo: str, tag: str, sbom: Path, kind: str) -> PushedImage:
        image = push_image(registry, repo, tag, seed=f"bench-webhook-{repo}-{tag}")
        cosign_attest(
            registry,
            image.digest_ref,
            sbom,
            kind,
            key,
            new_bundle_format=True,
            workdir=work / "cosign-home",
        )
        return image

    def attested_document(tag: str, document: dict[str, Any]) -> str:
        documents.append(document)
        path = work / f"{tag}.cdx.json"
        path.write_text(json.dumps(document))
        return attested("shop/big", tag, path, "cyclonedx").digest_ref

    allowed = [
        attested(f"shop/app-{i}", "v1", GOOD_SBOM, "cyclonedx").digest_ref
        for i in range(SMALL_ALLOWED)
    ]
    denied = [
        attested(f"shop/legacy-{i}", "v1", BAD_SBOM, "spdxjson").digest_ref
        for i in range(SMALL_DENIED)
    ]
    big_warm = attested("shop/big", "warm", big_sbom, "cyclonedx").digest_ref
    # Never seen: each its own packages (another seed).
    cold = [
        attested_document(f"cold-{i}", make_cyclonedx(BIG_COMPONENTS, seed=100 + i))
        for i in range(COLD_RUNS + COLD_UNDER_LOAD)
    ]
    # New builds of the warm image, each of the one before.
    rng = random.Random(3)
    builds, document = [], big_document
    for i in range(NEW_BUILDS):
        document = bumped(document, rng)
        builds.append(attested_document(f"build-{i + 1}", document))
    real = []
    for number, (name, document) in enumerate(real_documents()):
        first = attested_document(f"real-{number}-0", document)
        versions = []
        for i in range(REAL_BUILDS):
            document = bumped_real(document, rng)
            versions.append(attested_document(f"real-{number}-{i + 1}", document))
        real.append((name, first, versions))
    write_facts(work / "facts.json", documents)
    if WITH_OSV:
        print(f"OSV export: {write_osv(work / 'osv', documents):,} advisories", flush=True)
    return Images(allowed, denied, big_warm, cold, builds, real)


def write_facts(path: Path, documents: Sequence[dict[str, Any]]) -> None:
    """The example facts snapshot, and every package of the big images vouched for by a hosted
    repository (published long ago; an advisory for some), so that every policy evaluates every
    package, as in a cluster whose repositories know its images' packages."""
    snapshot = yaml.safe_load(FACTS.read_text())
    packages = snapshot.setdefault("packages", {})
    stack = [c for document in documents for c in document["components"]]
    while stack:
        component = stack.pop()
        stack.extend(component.get("components", []))  # sbomgen nests some, as tools do
        purl = component.get("purl")
        if not purl or purl in packages:
            continue
        digest = hashlib.sha256(purl.encode()).digest()
        entry: dict[str, Any] = {
            "repository": {"name": "internal", "url": "https://repo.internal/",
                           "kind": purl[4:].split("/", 1)[0], "hosting": "hosted"},
            "published_at": "2024-01-01T00:00:00Z",
            "first_published_at": "2019-01-01T00:00:00Z",
        }  # fmt: skip
        if digest[0] % 16 == 0:
            entry["osv"] = [{"id": f"GHSA-bench-{digest.hex()[:8]}", "summary": "x",
                             "affected": [], "aliases": []}]  # fmt: skip
        packages[purl] = entry
    path.write_text(json.dumps(snapshot))


def write_osv(directory: Path, documents: Sequence[dict[str, Any]]) -> int:
    """An OSV export (a directory of records, as `osv:` reads it) with an advisory for about one
    package in 16 of the big images (others than the snapshot's), by the package's OSV
    ecosystem, name and exact version: a cluster that follows the OSV exports (`--osv`).
    Returns how many records it wrote."""
    from sbomgate.identity import identity_from_purl
    from sbomgate.intel.ecosystems import identity_ecosystem, osv_name, osv_version

    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    stack = [c for document in documents for c in document["components"]]
    seen: set[str] = set()
    while stack:
        component = stack.pop()
        stack.extend(component.get("components", []))
        purl = component.get("purl")
        if not purl or purl in seen:
            continue
        seen.add(purl)
        digest = hashlib.sha256(purl.encode()).digest()
        if digest[0] % 16 != 1:
            continue
        identity = identity_from_purl(purl)
        ecosystem, version = identity_ecosystem(identity), osv_version(identity)
        if ecosystem is None or version is None:
            continue
        record = {
            "id": f"GHSA-osv-{digest.hex()[:12]}",
            "modified": "2024-01-01T00:00:00Z",
            "summary": "bench advisory",
            "severity": [{"type": "CVSS_V3",
                          "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": ecosystem, "name": osv_name(identity)},
                          "versions": [version]}],
        }  # fmt: skip
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
        written += 1
    return written


async def unloaded(conn: Connection, template: Template) -> tuple[Run, int]:
    run = Run(started=time.monotonic())
    for _ in range(UNLOADED_REQUESTS):
        await review_once(conn, template, run, time.monotonic())
    run.ended = time.monotonic()
    uid = str(uuid.uuid4())
    _, payload = await conn.request(
        "POST", "/validate", template.body.replace(UID_PLACEHOLDER, uid.encode())
    )
    return run, len(payload)


@dataclass
class Cold:
    latency: float
    server: float  # the server's own time for the review (its duration histogram), seconds
    evaluation: float
    registry_requests: float
    answer: str
    cpu: float = 0.0  # the server's and its evaluation workers' CPU, seconds
    background: Run | None = None
    during: list[float] = field(default_factory=list)


async def cold_once(
    webhook: Webhook,
    ref: str,
    pool: Sequence[Connection] | None = None,
    pick: Callable[[], Template] | None = None,
) -> Cold:
    conn, meter = (
        Connection(webhook.port, webhook.context),
        Connection(webhook.port, webhook.context),
    )
    await conn.request("GET", "/healthz")  # the handshake is not part of the figure
    before = await scrape(meter)
    background: asyncio.Task[Run] | None = None
    if pool is not None and pick is not None:
        background = asyncio.create_task(
            open_loop(pool, COLD_BACKGROUND_RATE, COLD_BACKGROUND_SECONDS, pick)
        )
        await asyncio.sleep(1.0)
    template = single_template("Deployment", ref, allowed=None, label="cold")
    uid = str(uuid.uuid4())
    cpu_before = tree_cpu_seconds(webhook.pid)
    started = time.monotonic()
    status, payload = await conn.request(
        "POST", "/validate?timeout=10s", template.body.replace(UID_PLACEHOLDER, uid.encode())
    )
    ended = time.monotonic()
    cpu = tree_cpu_seconds(webhook.pid) - cpu_before
    after = await scrape(meter)
    conn.close()
    meter.close()
    response = orjson.loads(payload)["response"] if status == 200 else {}
    if status != 200:
        answer = f"HTTP {status}"
    elif response.get("allowed"):
        answer = "allowed"
    else:
        message = response.get("status", {}).get("message", "")
        more = re.search(r"and (\d+) more$", message)
        lines = message.count("\n") + 1 + (int(more.group(1)) - 1 if more else 0)
        answer = f"denied, {lines} reasons"
        if "did not finish" in message:
            answer = "denied: deadline passed"
    cold = Cold(
        latency=ended - started,
        server=after.get("sbomgate_admission_duration_seconds_sum", 0.0)
        - before.get("sbomgate_admission_duration_seconds_sum", 0.0),
        evaluation=after.get("sbomgate_policy_evaluation_seconds_sum", 0.0)
        - before.get("sbomgate_policy_evaluation_seconds_sum", 0.0),
        registry_requests=after.get("sbomgate_registry_requests_total", 0.0)
        - before.get("sbomgate_registry_requests_total", 0.0),
        answer=answer,
        cpu=cpu,
    )
    if background is not None:
        cold.background = await background
        cold.during = [lat for due, lat in cold.background.samples if started <= due <= ended]
    return cold


async def bench(
    webhook: Webhook,
    images: Images,
    setup_seconds: float,
    *,
    cold_only: bool = False,
    warm_only: bool = False,
) -> None:
    ready_seconds = webhook.start()
    rss: list[tuple[str, float, int]] = [("at start (ready)", webhook.rss_mb(), webhook.threads())]
    templates = warm_templates(images.allowed, images.denied, 256)
    sizes = [len(t.body) for t in templates]
    rng = random.Random(1)

    def pick() -> Template:
        return templates[rng.randrange(len(templates))]

    print(
        f"sbomgate serve: 1 process (uvicorn), TLS on loopback, bundled policies, "
        f"examples/trusted-facts.yaml and every big image's package vouched for"
        f"{', an OSV index (--osv)' if WITH_OSV else ''}; "
        f"{os.cpu_count()} CPUs, load average at start {loadavg()}"
    )
    pushed = len(images.allowed) + len(images.denied) + 1 + len(images.cold) + len(images.builds)
    print(
        f"setup: registry, {pushed} "
        f"cosign-attested images in {setup_seconds:.1f} s; server ready {ready_seconds:.1f} s "
        f"after start; warm bodies {min(sizes)}-{max(sizes)} bytes (mean "
        f"{statistics.mean(sizes):.0f}), {len(templates)} shapes, {DENIED_SHARE:.0%} refused"
    )
    total_meter = UsageMeter(webhook.pid)
    warm_count = 0

    # First admissions of the small images (registry fetch, verify, evaluate), then warm-up.
    conn = Connection(webhook.port, webhook.context)
    first = Run(started=time.monotonic())
    for ref in images.allowed + images.denied:
        template = single_template("Pod", ref, allowed=ref in images.allowed, label=ref)
        await review_once(conn, template, first, time.monotonic())
    pool = [Connection(webhook.port, webhook.context) for _ in range(CONNECTIONS)]
    warmup = await closed_loop(pool, WARMUP_REQUESTS, pick)
    warm_count += warmup.sent
    rss.append(("after warm-up", webhook.rss_mb(), webhook.threads()))

    print()
    print(f"unloaded latency: 1 connection, sequential, {UNLOADED_REQUESTS} requests each, ms")
    print(f"  {'request':<52}{'p50':>8}{'p99':>8}{'max':>8}{'answer B':>10}  errors")
    first_lats = first.latencies
    print(
        f"  {'first admission of a small image (cold, 1 each)':<52}"
        f"{ms(pct(first_lats, 0.5)):>8}{'':>8}{ms(max(first_lats, default=float('nan'))):>8}"
        f"{'':>10}  {errors_text(first)}"
    )
    rows = [
        single_template(
            "Pod", images.allowed[0], allowed=True, label="Pod, 1 small image, allowed"
        ),
        single_template(
            "Deployment",
            images.allowed[1],
            allowed=True,
            label="Deployment, 1 small image, allowed",
        ),
        single_template(
            "Deployment", images.denied[0], allowed=False, label="Deployment, 1 small image, denied"
        ),
    ]
    # The 5,000-component image: its first admission is a cold run (below); this one is warm.
    big = single_template("Deployment", images.big_warm, allowed=False, label="big")
    first_big = Run(started=time.monotonic())
    await review_once(conn, big, first_big, time.monotonic())
    rows.append(
        Template(big.body, False, f"Deployment, {BIG_COMPONENTS:,}-component image (cached)")
    )
    for template in rows:
        run, size = await unloaded(conn, template)
        lats = run.latencies
        print(
            f"  {template.label:<52}{ms(pct(lats, 0.5)):>8}{ms(pct(lats, 0.99)):>8}"
            f"{ms(max(lats, default=float('nan'))):>8}{size:>10}  {errors_text(run)}"
        )
    conn.close()

    if not warm_only:  # `--warm`: no cold runs
        # Cold path: a fresh digest each run, so nothing is in the digest or verdict caches.
        print()
        print(
            f"cold path: first admission of a {BIG_COMPONENTS:,}-component image (a fresh digest "
            "each run: registry fetch, verify, parse, evaluate), ms; never seen (packages no "
            "image had), then new builds of the warm image"
        )
        print(
            f"  {'run':<22}{'latency':>10}{'server':>8}{'evaluate':>10}{'CPU':>8}"
            f"{'registry req':>14}{'RSS MB':>8}  answer (latency: the client's, from request to "
            "answer; server: the server's own, from the review read to its answer written; CPU: "
            "the server's and its evaluation workers', ms)"
        )
        print(
            f"  {'first after start':<22}{ms(max(first_big.latencies, default=float('nan'))):>10}"
            f"{'':>8}{'':>10}{'':>8}{'':>14}{webhook.rss_mb():>8.0f}"
            f"  (errors {errors_text(first_big)}; the evaluating thread builds its policy engines)"
        )
        colds = []
        for i, ref in enumerate(images.cold[:COLD_RUNS]):
            cold = await cold_once(webhook, ref)
            colds.append(cold)
            print(
                f"  {'quiet ' + str(i + 1):<22}{ms(cold.latency):>10}{ms(cold.server):>8}"
                f"{ms(cold.evaluation):>10}"
                f"{ms(cold.cpu):>8}{cold.registry_requests:>14.0f}{webhook.rss_mb():>8.0f}"
                f"  {cold.answer}"
            )
        print(
            f"  {'median (quiet)':<22}{ms(statistics.median(c.latency for c in colds)):>10}"
            f"{ms(statistics.median(c.server for c in colds)):>8}"
            f"{ms(statistics.median(c.evaluation for c in colds)):>10}"
            f"{ms(statistics.median(c.cpu for c in colds)):>8}"
        )
        builds = []
        for i, ref in enumerate(images.builds):
            cold = await cold_once(webhook, ref)
            builds.append(cold)
            print(
                f"  {f'new build {i + 1} ({BUMPED:.0%})':<22}{ms(cold.latency):>10}"
                f"{ms(cold.server):>8}"
                f"{ms(cold.evaluation):>10}{ms(cold.cpu):>8}{cold.registry_requests:>14.0f}"
                f"{webhook.rss_mb():>8.0f}  {cold.answer}"
            )
        print(
            f"  {'median (new builds)':<22}{ms(statistics.median(c.latency for c in builds)):>10}"
            f"{ms(statistics.median(c.server for c in builds)):>8}"
            f"{ms(statistics.median(c.evaluation for c in builds)):>10}"
            f"{ms(statistics.median(c.cpu for c in builds)):>8}"
        )
        for name, first_build, versions in images.real:
            first_real = await cold_once(webhook, first_build)
            news = [await cold_once(webhook, ref) for ref in versions]
            print(
                f"  {name} (first build {ms(first_real.latency)} ms, {first_real.answer}); "
                f"new builds ({BUMPED:.0%}): "
                + ", ".join(
                    f"{ms(c.latency)} (evaluate {ms(c.evaluation)}, CPU {ms(c.cpu)})" for c in news
                )
                + f"; median {ms(statistics.median(c.latency for c in news))} ms"
            )
        for i, ref in enumerate(images.cold[COLD_RUNS:]):
            cold = await cold_once(webhook, ref, pool, pick)
            assert cold.background is not None
            warm_count += cold.background.sent
            during = cold.during
            print(
                f"  {f'beside {COLD_BACKGROUND_RATE}/s warm ' + str(i + 1):<22}"
                f"{ms(cold.latency):>10}{ms(cold.server):>8}{ms(cold.evaluation):>10}{ms(cold.cpu):>8}"
                f"{cold.registry_requests:>14.0f}{webhook.rss_mb():>8.0f}  {cold.answer}; warm "
                f"requests due meanwhile: {len(during)}, p50 {ms(pct(during, 0.5))} ms, p99 "
                f"{ms(pct(during, 0.99))} ms, max {ms(max(during, default=float('nan')))} ms, "
                f"errors {errors_text(cold.background)}"
            )
        cold_count = len(images.cold) + len(images.builds) + 1
        cold_count += sum(1 + len(versions) for _, _, versions in images.real)
        label = f"after {cold_count} cold {BIG_COMPONENTS:,}-comp. images"
        rss.append((label, webhook.rss_mb(), webhook.threads()))
    if cold_only:  # `--cold`: the unloaded and cold tables only
        print(f"  RSS {webhook.rss_mb():.0f} MB after the cold runs")
        return

    # Warm path, open loop, rising rates.
    print()
    print(
        f"warm path: open loop, {CONNECTIONS} keep-alive connections, {STEP_SECONDS:g} s per "
        "rate; latency from when each request was due, ms; CPU in cores (of "
        f"{os.cpu_count()})"
    )
    print(
        f"  {'rate/s':>7}{'answered/s':>11}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
        f"{'errors':>8}{'server':>8}{'loadgen':>8}{'others':>8}{'machine':>8}"
        f"{'srv CPU/req':>12}  sustainable"
    )
    sustainable: list[tuple[int, Run]] = []
    limit: tuple[int, Run] | None = None
    for rate in SWEEP_RATES:
        meter = UsageMeter(webhook.pid)
        run = await open_loop(pool, rate, STEP_SECONDS, pick)
        run.usage = meter.read()
        warm_count += run.sent
        lats = run.latencies
        ok = (
            not run.errors
            and pct(lats, 0.99) < P99_TARGET
            and run.throughput >= MIN_ACHIEVED * rate
        )
        u = run.usage
        print(
            f"  {rate:>7}{run.throughput:>11.0f}{ms(pct(lats, 0.5)):>8}{ms(pct(lats, 0.95)):>8}"
            f"{ms(pct(lats, 0.99)):>8}{ms(max(lats, default=float('nan'))):>8}"
            f"{sum(run.errors.values()):>8}{u.server:>8.2f}{u.client:>8.2f}{u.others:>8.2f}"
            f"{u.machine:>8.2f}{ms(cpu_per_request(run, u.server)):>9} ms  {'yes' if ok else 'no'}"
        )
        if run.errors:
            print(f"          errors: {errors_text(run)}")
        if not ok:
            limit = (rate, run)
            break
        sustainable.append((rate, run))
    if sustainable:
        best_rate, best = sustainable[-1]
        print(
            f"  max sustainable rate: {best_rate}/s (p99 {ms(pct(best.latencies, 0.99))} ms < "
            f"{P99_TARGET * 1000:.0f} ms, no errors)"
        )
    else:
        print(f"  no rate in {SWEEP_RATES} was sustainable")
    if limit is not None:
        assert limit[1].usage is not None
        u = limit[1].usage
        cores = os.cpu_count() or 1
        share = (
            f"server {u.server:.2f}, load generator {u.client:.2f}, other processes "
            f"{u.others:.2f}; machine {u.machine:.2f} of {cores} cores"
        )
        if u.server >= 0.8:
            what = (
                "the server's CPU: about one core, which is all one Python process gets for "
                f"Python code (the GIL) ({share})"
            )
        elif u.machine >= 0.85 * cores:
            what = f"the machine's CPU, shared with other processes ({share})"
        else:
            what = f"not CPU: queueing in the server (threads, locks) ({share})"
        print(f"  at {limit[0]}/s it broke; the limit is {what}")

    rss.append((f"after the rate sweep ({warm_count:,} warm)", webhook.rss_mb(), webhook.threads()))

    if not warm_only:  # `--warm`: the rate sweep only
        # Soak: closed loop up to WARM_TOTAL warm requests.
        remaining = max(WARM_TOTAL - warm_count, 0)
        marks: list[tuple[int, float]] = []
        base = warm_count

        def on_count(sent: int) -> None:
            if (base + sent) // SOAK_RSS_EVERY > (base + sent - 1) // SOAK_RSS_EVERY:
                marks.append((base + sent, webhook.rss_mb()))

        meter = UsageMeter(webhook.pid)
        soak = await closed_loop(pool, remaining, pick, on_count)
        soak.usage = meter.read()
        warm_count += soak.sent
        lats = soak.latencies
        print()
        print(
            f"soak: closed loop, {CONNECTIONS} connections, {soak.sent:,} requests "
            f"({warm_count:,} warm requests in all) in {soak.ended - soak.started:.0f} s"
        )
        print(
            f"  throughput {soak.throughput:.0f}/s; latency p50 {ms(pct(lats, 0.5))} ms, p99 "
            f"{ms(pct(lats, 0.99))} ms, max {ms(max(lats, default=float('nan')))} ms; errors "
            f"{errors_text(soak)}; CPU server {soak.usage.server:.2f}, load generator "
            f"{soak.usage.client:.2f}, others {soak.usage.others:.2f} cores; CPU per request: "
            f"server {ms(cpu_per_request(soak, soak.usage.server))} ms, load generator "
            f"{ms(cpu_per_request(soak, soak.usage.client))} ms"
        )
        for count, value in marks:
            rss.append((f"after {count:,} warm requests", value, 0))
        rss.append((f"end ({warm_count:,} warm requests)", webhook.rss_mb(), webhook.threads()))

    probes = await keepalive_probe(webhook)
    meter_conn = Connection(webhook.port, webhook.context)
    metrics = await scrape(meter_conn)
    meter_conn.close()
    for conn in pool:
        conn.close()
    print()
    print("server memory (VmRSS: main and cold-path processes)")
    for label, value, threads in rss:
        extra = f"   {threads} threads" if threads else ""
        print(f"  {label:<42}{value:>8.0f} MB{extra}")
    usage = total_meter.read()
    stale = [idle for c in pool for idle in c.stale]
    log_size = webhook.log_file.stat().st_size
    answered = metrics.get("sbomgate_admission_requests_total", 0.0)
    print()
    print(
        f"whole run: server {usage.server:.2f} cores on average, load generator "
        f"{usage.client:.2f}, other processes {usage.others:.2f}; load average now {loadavg()}"
    )
    print(
        f"server counters: {answered:.0f} reviews answered, cache hits image "
        f"{metrics.get('sbomgate_cache_hits_total{image}', 0):.0f} / verdict "
        f"{metrics.get('sbomgate_cache_hits_total{verdict}', 0):.0f}, registry requests "
        f"{metrics.get('sbomgate_registry_requests_total', 0):.0f}; log "
        f"{log_size / 1e6:.1f} MB ({log_size / max(answered, 1):.0f} B per review)"
    )
    print(
        "keep-alive: idle connections found closed by the server (request sent again on a new "
        f"one): {len(stale)}"
        + (f", after {min(stale):.1f}-{max(stale):.1f} s idle" if stale else "")
        + "; probe: "
        + ", ".join(f"idle {idle:g} s {'closed' if closed else 'kept'}" for idle, closed in probes)
    )


async def keepalive_probe(webhook: Webhook) -> list[tuple[float, bool]]:
    """Whether a keep-alive connection left idle so long is still open (the API server keeps
    its idle connections to a webhook for 90 s)."""

    async def probe(idle: float) -> tuple[float, bool]:
        conn = Connection(webhook.port, webhook.context)
        await conn.request("GET", "/healthz")
        await asyncio.sleep(idle)
        await conn.request("GET", "/healthz")
        conn.close()
        return idle, bool(conn.stale)

    return list(await asyncio.gather(*(probe(idle) for idle in KEEPALIVE_PROBES)))


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sbomgate-bench-webhook-") as tmp:
        work = Path(tmp)
        registry = start_distribution(work / "registry", ca=None)
        webhook: Webhook | None = None
        try:
            key = cosign_keypair(work / "keys", "ecdsa")
            images = prepare_images(registry, key, work)
            webhook = Webhook(
                work,
                registry,
                trust_policy(work, key),
                facts=work / "facts.json",
                extra={"osv": [str(work / "osv")]} if WITH_OSV else None,
            )
            cold_only, warm_only = "--cold" in sys.argv[1:], "--warm" in sys.argv[1:]
            asyncio.run(
                bench(
                    webhook,
                    images,
                    time.monotonic() - started,
                    cold_only=cold_only,
                    warm_only=warm_only,
                )
            )
        finally:
            if webhook is not None:
                webhook.stop()
            registry.stop()
    print(f"\n(benchmark wall time {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
