"""The front doors, driven from outside: the `sbomgate` command and `sbomgate serve` over TLS.

Nothing here imports sbomgate: commands run as subprocesses of the venv's console script, and
the webhook is spoken to as the API server does (AdmissionReview JSON over HTTPS).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hostile.corpus import SAYS, Case, Outcome
from support.index_servers import free_port
from support.registry_servers import make_test_ca

SBOMGATE = Path(sys.executable).with_name("sbomgate")
# CLI runs at a time: the corpus runs on 2 cores, and each run is mostly Python start-up.
JOBS = int(os.environ.get("SBOMGATE_HOSTILE_JOBS", "3"))

T = TypeVar("T")


# --------------------------------------------------------------------------- the CLI


@dataclass(frozen=True)
class CliRun:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    max_rss_kb: int  # the peak resident set of this one process (wait4's rusage)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBOMGATE_")}
    env["NO_COLOR"] = "1"
    return env


def run_cli(args: Sequence[str], *, timeout: float = 180.0) -> CliRun:
    """Run `sbomgate ARGS`; its own peak RSS comes from wait4 (not the children's maximum)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [str(SBOMGATE), *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_env()
        )
        timer = threading.Timer(timeout, process.kill)  # a hang fails the case, not the run
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return CliRun(
            tuple(args),
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss,
        )


def _name_of(ref: str) -> str:
    """registry/repository of a reference (tag and digest dropped)."""
    name = ref.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else name


def cli_outcome(run: CliRun, *, subject: str | None = None) -> Outcome:
    """The verdict of a `--format json` run: of the whole run, or of one image (`subject`)."""
    detail = f"$ sbomgate {' '.join(run.args)}\nexit {run.code}\n{run.stdout}\n{run.stderr}"
    figures: dict[str, float] = {}
    if run.code not in (0, 1, 3):  # 3: refused for faults only (`sbomgate.cli.exit_code`)
        return Outcome("error", run.stderr, detail, figures)
    try:
        doc = json.loads(run.stdout)
    except json.JSONDecodeError:
        return Outcome("error", run.stdout + run.stderr, detail, figures)
    wanted = _name_of(subject) if subject else None

    def mine(image: str | None) -> bool:
        return wanted is None or (image is not None and _name_of(image) == wanted)

    lines: list[str] = []
    fault = False
    problem = False
    for image in doc.get("images") or []:
        if subject is not None and image.get("ref") != subject:
            continue
        for error in image.get("errors") or []:
            lines.append(str(error))
            problem = True
        fault = fault or bool(image.get("fault"))
        for att in image.get("attestations") or []:
            if att.get("error"):
                lines.append(f"attestation {att.get('location')}: {att['error']}")
    for finding in doc.get("violations") or []:
        if not mine(finding.get("image")):
            continue
        problem = True
        package = finding.get("purl") or finding.get("name")
        reasons = "; ".join(finding.get("reasons") or [])
        lines.append(
            f"image {finding.get('image')}: package {package}: {reasons} "
            f"[policy {finding.get('policy')}]"
        )
    for failure in doc.get("errors") or []:
        if not mine(failure.get("image")):
            continue
        problem = True
        fault = fault or bool(failure.get("fault"))
        package = failure.get("purl") or failure.get("name")
        lines.append(
            f"image {failure.get('image')}: package {package}: policy {failure.get('policy')} "
            f"failed to evaluate: {failure.get('message')}"
        )
    allowed = run.code == 0 if subject is None else not problem
    verdict = "allowed" if allowed else ("fault" if fault else "denied")
    if run.code == 3 and verdict != "fault":  # the exit code says "only faults": it must be so
        return Outcome("error", f"exit 3 but the answer is {verdict}", detail, figures)
    return Outcome(verdict, "\n".join(lines), detail, figures)


# --------------------------------------------------------------------------- running in parallel


def selected(request: pytest.FixtureRequest) -> list[Case]:
    """The cases of the requesting module that this run collected (after -k and friends)."""
    out = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None:
            case = callspec.params.get("case")
            if isinstance(case, Case):
                out.append(case)
    return out


def in_parallel(jobs: Mapping[str, Callable[[], T]], workers: int = JOBS) -> dict[str, Future[T]]:
    """Run independent jobs a few at a time; each test takes its own result (or exception)."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hostile")
    futures = {key: pool.submit(job) for key, job in jobs.items()}
    pool.shutdown(wait=True)
    return futures


# --------------------------------------------------------------------------- the webhook


def review(
    containers: Sequence[str],
    *,
    kind: str = "Pod",
    namespace: str = "team",
    name: str = "web",
    init: Sequence[str] = (),
    ephemeral: Sequence[str] = (),
    dry_run: bool = False,
    sub_resource: str | None = None,
    old_object: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview as the API server sends it (an UPDATE of
    `old_object` when given, else a CREATE)."""
    pod_spec: dict[str, Any] = {
        "containers": [{"name": f"app-{i}", "image": image} for i, image in enumerate(containers)]
    }
    if init:
        pod_spec["initContainers"] = [
            {"name": f"init-{i}", "image": image} for i, image in enumerate(init)
        ]
    if ephemeral:
        pod_spec["ephemeralContainers"] = [
            {"name": f"debug-{i}", "image": image} for i, image in enumerate(ephemeral)
        ]
    meta = {"name": name, "namespace": namespace}
    template = {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
    group, resource = {
        "Pod": ("", "pods"),
        "Deployment": ("apps", "deployments"),
        "CronJob": ("batch", "cronjobs"),
    }[kind]
    if kind == "Pod":
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": pod_spec,
        }
    elif kind == "Deployment":
        obj = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template},
        }
    else:
        obj = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": template}}},
        }
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "operation": "UPDATE" if old_object is not None else "CREATE",
        "namespace": namespace,
        "name": name,
        "object": obj,
        "dryRun": dry_run,
        "userInfo": {"username": "hostile"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    if old_object is not None:
        request["oldObject"] = dict(old_object)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def webhook_outcome(response: Mapping[str, Any], seconds: float) -> Outcome:
    detail = json.dumps(response, indent=1)[-6000:]
    figures = {"answer (s)": round(seconds, 2)}
    if response.get("allowed") is True:
        return Outcome("allowed", "\n".join(response.get("warnings") or []), detail, figures)
    message = str((response.get("status") or {}).get("message") or "")
    lines = message.splitlines()[1:] or [message]
    fault = any(SAYS["fault"] in line for line in lines)
    return Outcome("fault" if fault else "denied", message, detail, figures)


def json_patch(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSONPatch of a /mutate answer ([] when it has none)."""
    raw = response.get("patch")
    if not raw:
        return []
    assert response.get("patchType") == "JSONPatch", response
    return list(json.loads(base64.b64decode(raw)))


class Webhook:
    """`sbomgate serve --config FILE` on a loopback port over TLS (its own throw-away CA)."""

    def __init__(self, work: Path, settings: Mapping[str, Any], name: str = "serve") -> None:
        self.work = work / f"{name}-{uuid.uuid4().hex[:6]}"
        self.work.mkdir(parents=True)
        ca = make_test_ca(self.work / "ca")
        self.port = free_port()
        self.config = self.work / "sbomgate.yaml"
        self.config.write_text(
            json.dumps(
                {
                    **settings,
                    "tls": {"certFile": str(ca.cert_file), "keyFile": str(ca.key_file)},
                    "listen": {"host": "127.0.0.1", "port": self.port},
                },
                indent=1,
            )
        )
        self.context = ssl.create_default_context(cafile=str(ca.ca_file))
        self.log = self.work / "serve.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(SBOMGATE), "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_env(),
            )
        until = time.monotonic() + 60
        while True:
            try:
                status, _, _ = self.request("GET", "/readyz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > until or self.process.poll() is not None:
                self.stop()
                pytest.fail(
                    f"sbomgate serve ({name}) did not become ready:\n{self.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.2)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 60.0
    ) -> tuple[int, bytes, float]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=self.context
        )
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        started = time.monotonic()
        try:
            connection.request(method, path, body=data, headers=headers)
            answer = connection.getresponse()
            raw = answer.read()
            return answer.status, raw, time.monotonic() - started
        finally:
            connection.close()

    def post(self, path: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        status, raw, seconds = self.request("POST", path, body)
        assert status == 200, f"POST {path}: {status} {raw[:2000]!r}\n{self.log_tail()}"
        answer = json.loads(raw)
        response = dict(answer["response"])
        assert response["uid"] == body["request"]["uid"], response
        return response, seconds

    def validate(self, body: Mapping[str, Any]) -> Outcome:
        return webhook_outcome(*self.post("/validate", body))

    def mutate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.post("/mutate", body)[0]

    def healthz_seconds(self) -> float:
        status, _, seconds = self.request("GET", "/healthz", timeout=30)
        assert status == 200
        return seconds

    def memory_kb(self, field: str = "VmHWM") -> int:
        """VmHWM (peak) or VmRSS of the server process, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.process.pid}/status")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
