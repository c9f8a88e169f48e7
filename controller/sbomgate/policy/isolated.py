"""Policy evaluation in worker processes, each evaluation within a time budget.

regorus holds the GIL for a whole rule evaluation and cannot be interrupted, so a policy that
runs long would freeze every thread of the webhook (health checks included) and could not be
stopped. A worker process can: the caller waits on a pipe (without the GIL) for at most the
budget, and on overrun the worker is killed and replaced, and the policy that was running is
named. Workers also take evaluation off the webhook's own core.

The parent builds the serialised `input` documents; a worker compiles each policy set once
(sent with its first request) and answers, per document, what each policy said.
"""

from __future__ import annotations

import mmap
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sbomgate.errors import EvaluationError
from sbomgate.policy._worker import PROGRESS_BYTES, RawOutcome, Request
from sbomgate.policy.engine import PolicyEngine, PolicyOutcome
from sbomgate.policy.loader import Policy

# Policy sets a worker keeps compiled: the current one and the one being replaced.
_KEPT_SETS = 2
# How long a caller waits for a free worker before giving up (every worker busy).
_QUEUE_WAIT = 30.0
# The budget is CPU time, so a busy machine does not stop a policy that is merely waiting for
# a core; a worker is stopped anyway after this many budgets of wall time.
_WALL_FACTOR = 3.0
_CHECK_EVERY = 0.2  # seconds between looks at a worker's CPU time while it evaluates
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class EvaluationBudgetExceeded(EvaluationError):
    """A policy ran past the evaluation budget and was stopped."""

    def __init__(self, policy: str, document: int, budget: float, *, starved: bool) -> None:
        self.policy = policy
        self.document = document
        self.budget = budget
        if starved:
            what = (
                f"was stopped after {budget * _WALL_FACTOR:g} s without finishing (the machine "
                f"is too busy to give it its {budget:g} s evaluation budget of CPU time)"
            )
        else:
            what = (
                f"used up its {budget:g} s evaluation budget (CPU time) and was stopped; "
                "simplify the policy or raise evaluationBudget"
            )
        super().__init__(what)


class _Worker:
    """One worker process (`python -m sbomgate.policy._worker`), not a multiprocessing child:
    spawn and forkserver re-run the parent's main module, which a server must not depend on."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        progress = os.memfd_create("sbomgate-evaluation-progress")
        try:
            os.ftruncate(progress, PROGRESS_BYTES)
            self.progress = mmap.mmap(progress, PROGRESS_BYTES)
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sbomgate.policy._worker",
                    str(theirs.fileno()),
                    str(progress),
                    str(_KEPT_SETS),
                ],
                pass_fds=(theirs.fileno(), progress),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
            os.close(progress)
        self.connection = Connection(ours.detach())
        self.known_sets: set[str] = set()

    def cpu_seconds(self) -> float:
        """CPU time the worker has used (Linux /proc, like memfd_create above); 0 once it is
        gone (its connection then reads as closed)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_bytes()
        except OSError:
            return 0.0
        fields = stat.rsplit(b")", 1)[-1].split()  # after "(comm)", which may hold spaces
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime

    def read_progress(self) -> int:
        value: int = struct.unpack_from("<q", self.progress, 0)[0]
        return value

    def reset_progress(self) -> None:
        struct.pack_into("<q", self.progress, 0, -1)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.connection.close()
        self.process.kill()
        self.process.wait(timeout=5)
        self.progress.close()


class EvaluatorPool:
    """A fixed number of evaluation worker processes; a call takes one, or waits for one."""

    def __init__(self, processes: int = 2, budget: float = 10.0) -> None:
        if processes < 1:
            raise ValueError("at least one evaluation process is needed")
        self.budget = budget
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.stopped = 0  # evaluations stopped for overrunning the budget
        for _ in range(processes):
            self._idle.put(None)  # started on first use, on the caller's thread

    def start(self) -> None:
        """Start every worker now (a server does this before it is ready)."""
        started: list[_Worker | None] = []
        while True:
            try:
                slot = self._idle.get_nowait()
            except queue.Empty:
                break
            started.append(slot if slot is not None else self._spawn())
        for worker in started:
            self._idle.put(worker)

    def _spawn(self) -> _Worker:
        worker = _Worker()
        with self._lock:
            self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.stop()

    def close(self) -> None:
        """Stop every worker process; later evaluations fail."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def evaluate(
        self,
        engine: IsolatedPolicyEngine,
        documents: Sequence[str],
        only: frozenset[str] | None,
    ) -> list[list[RawOutcome]]:
        """Evaluate the documents on a free worker within the budget; EvaluationError naming the
        policy that overran."""
        try:
            slot = self._idle.get(timeout=_QUEUE_WAIT)
        except queue.Empty:
            raise EvaluationError(
                f"no policy evaluator was free for {_QUEUE_WAIT:g} s (all busy)"
            ) from None
        worker = slot
        try:
            if worker is None or not worker.alive():
                if worker is not None:
                    self._retire(worker)
                worker = self._spawn()
            answers = self._ask(worker, engine, documents, only)
        except BaseException:
            # A worker that overran, died or was interrupted mid-answer is not reused; its
            # replacement starts now, so it is warm by the next call.
            if worker is not None:
                self._retire(worker)
            worker = None if self._closed else self._spawn()
            raise
        finally:
            self._idle.put(None if self._closed else worker)
        return answers

    def _ask(
        self,
        worker: _Worker,
        engine: IsolatedPolicyEngine,
        documents: Sequence[str],
        only: frozenset[str] | None,
    ) -> list[list[RawOutcome]]:
        first = engine.set_id not in worker.known_sets
        request = Request(
            set_id=engine.set_id,
            policies=engine.policies if first else None,
            data=engine.data if first else None,
            documents=documents,
            only=only,
        )
        worker.reset_progress()
        worker.connection.send(request)
        worker.known_sets.add(engine.set_id)
        self._wait(worker, engine)
        try:
            kind, payload = worker.connection.recv()
        except (EOFError, OSError):
            raise EvaluationError(
                "the policy evaluation process died (see the server log)"
            ) from None
        if kind == "unknown-set":  # it was replaced since: send the policies again
            worker.known_sets.discard(engine.set_id)
            return self._ask(worker, engine, documents, only)
        if kind == "error":
            raise EvaluationError(f"policy evaluation failed: {payload}")
        answers: list[list[RawOutcome]] = payload
        return answers

    def _wait(self, worker: _Worker, engine: IsolatedPolicyEngine) -> None:
        """Until the worker answers; stop it once it has used the budget in CPU time, or
        after _WALL_FACTOR budgets of wall time."""
        started = time.monotonic()
        cpu_before = worker.cpu_seconds()
        while not worker.connection.poll(_CHECK_EVERY):
            over = worker.cpu_seconds() - cpu_before > self.budget
            starved = not over and time.monotonic() - started > self.budget * _WALL_FACTOR
            if over or starved:
                self.stopped += 1
                raise self._overrun(worker, engine, starved=starved)

    def _overrun(
        self, worker: _Worker, engine: IsolatedPolicyEngine, *, starved: bool
    ) -> EvaluationBudgetExceeded:
        progress = worker.read_progress()
        worker.process.kill()  # read progress first: it is the worker's last word
        if progress < 0:
            return EvaluationBudgetExceeded(
                "(compiling the policies)", -1, self.budget, starved=starved
            )
        document, index = progress >> 16, progress & 0xFFFF
        policy = engine.policies[index].name if index < len(engine.policies) else "?"
        return EvaluationBudgetExceeded(policy, document, self.budget, starved=starved)


class IsolatedPolicyEngine(PolicyEngine):
    """A PolicyEngine whose evaluation runs in the pool's worker processes."""

    def __init__(
        self,
        policies: Sequence[Policy],
        data: Mapping[str, Any] | None = None,
        *,
        pool: EvaluatorPool,
    ) -> None:
        super().__init__(policies, data)
        self.pool = pool
        self.set_id = uuid.uuid4().hex  # policies and data never change after this

    def evaluate_documents(
        self, documents: Sequence[str], only: frozenset[str] | None = None
    ) -> list[list[PolicyOutcome]]:
        """Each document's outcomes per policy, evaluated in a worker process."""
        by_name = {p.name: p for p in self.policies}
        return [
            [
                PolicyOutcome(policy=by_name[name], matched=hit, reasons=why, error=error)
                for name, hit, why, error in row
            ]
            for row in self.pool.evaluate(self, documents, only)
        ]
