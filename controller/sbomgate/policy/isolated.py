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
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from sbomgate.errors import EvaluationError
from sbomgate.policy._worker import PROGRESS_BYTES, RawOutcome, Request
from sbomgate.policy.engine import DEFAULT_OUTCOME_CACHE_BYTES, PolicyEngine, PolicyOutcome
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
# Documents per worker below which an evaluation is not shared out: a request's round trip
# costs about what a dozen documents' evaluation does (each policy tens of microseconds).
_SHARE_FROM = 16


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
        scopes: Sequence[frozenset[str] | None],
    ) -> list[list[RawOutcome]]:
        """Evaluate the documents (each with its scope) within one budget of CPU time, split
        across the workers that are free when there are enough documents to share (a cold image
        then uses every core the pool has); EvaluationError naming the policy that overran."""
        try:
            first = self._idle.get(timeout=_QUEUE_WAIT)
        except queue.Empty:
            raise EvaluationError(
                f"no policy evaluator was free for {_QUEUE_WAIT:g} s (all busy)"
            ) from None
        slots = [first]
        while len(slots) < len(documents) // _SHARE_FROM:
            try:
                slots.append(self._idle.get_nowait())
            except queue.Empty:
                break
        workers: list[_Worker] = []
        finished: set[_Worker] = set()
        try:
            for slot in slots:
                if slot is not None and not slot.alive():
                    self._retire(slot)
                    slot = None
                workers.append(slot if slot is not None else self._spawn())
            return self._ask(workers, engine, documents, scopes, finished)
        except BaseException:
            # A worker that overran, died or was interrupted mid-answer is not reused.
            for worker in workers:
                if worker not in finished:
                    self._retire(worker)
            workers = [worker for worker in workers if worker in finished]
            raise
        finally:
            # Every slot taken goes back; a retired worker's replacement starts now, so that it
            # is warm by the next call (or on first use, if it cannot start now).
            for index in range(len(slots)):
                back: _Worker | None = workers[index] if index < len(workers) else None
                if back is None and not self._closed:
                    try:
                        back = self._spawn()
                    except OSError:
                        back = None
                self._idle.put(None if self._closed else back)

    def _ask(
        self,
        workers: Sequence[_Worker],
        engine: IsolatedPolicyEngine,
        documents: Sequence[str],
        scopes: Sequence[frozenset[str] | None],
        finished: set[_Worker],
    ) -> list[list[RawOutcome]]:
        """Send each worker its share (contiguous, in order), then wait for every answer while
        the CPU time they use together stays within the budget."""
        size = -(-len(documents) // len(workers))  # ceiling: the last share may be smaller
        shares = {
            worker: index * size
            for index, worker in enumerate(workers)
            if index * size < len(documents)
        }
        cpu_before = {worker: worker.cpu_seconds() for worker in shares}
        started = time.monotonic()
        pending: dict[Any, _Worker] = {}
        for worker, start in shares.items():
            self._send(
                worker, engine, documents[start : start + size], scopes[start : start + size]
            )
            pending[worker.connection] = worker
        answers: dict[int, list[list[RawOutcome]]] = {}
        while pending:
            for connection in wait(list(pending), timeout=_CHECK_EVERY):
                worker = pending.pop(connection)
                start = shares[worker]
                try:
                    kind, payload = worker.connection.recv()
                except (EOFError, OSError):
                    raise EvaluationError(
                        "the policy evaluation process died (see the server log)"
                    ) from None
                if kind == "unknown-set":  # it was replaced since: send the policies again
                    worker.known_sets.discard(engine.set_id)
                    end = start + size
                    self._send(worker, engine, documents[start:end], scopes[start:end])
                    pending[worker.connection] = worker
                    continue
                if kind == "error":
                    raise EvaluationError(f"policy evaluation failed: {payload}")
                finished.add(worker)
                answers[start] = payload
            if not pending:
                break
            used = sum(worker.cpu_seconds() - cpu_before[worker] for worker in shares)
            over = used > self.budget
            starved = not over and time.monotonic() - started > self.budget * _WALL_FACTOR
            if over or starved:
                self.stopped += 1
                running = next(iter(pending.values()))
                raise self._overrun(running, shares[running], engine, starved=starved)
        return [row for start in sorted(answers) for row in answers[start]]

    def _send(
        self,
        worker: _Worker,
        engine: IsolatedPolicyEngine,
        documents: Sequence[str],
        scopes: Sequence[frozenset[str] | None],
    ) -> None:
        first = engine.set_id not in worker.known_sets
        request = Request(
            set_id=engine.set_id,
            policies=engine.policies if first else None,
            data=engine.data if first else None,
            documents=documents,
            scopes=scopes,
        )
        worker.reset_progress()
        worker.connection.send(request)
        worker.known_sets.add(engine.set_id)

    def _overrun(
        self, worker: _Worker, start: int, engine: IsolatedPolicyEngine, *, starved: bool
    ) -> EvaluationBudgetExceeded:
        progress = worker.read_progress()
        worker.process.kill()  # read progress first: it is the worker's last word
        if progress < 0:
            return EvaluationBudgetExceeded(
                "(compiling the policies)", -1, self.budget, starved=starved
            )
        document, index = progress >> 16, progress & 0xFFFF
        policy = engine.policies[index].name if index < len(engine.policies) else "?"
        return EvaluationBudgetExceeded(policy, start + document, self.budget, starved=starved)


class IsolatedPolicyEngine(PolicyEngine):
    """A PolicyEngine whose evaluation runs in the pool's worker processes."""

    def __init__(
        self,
        policies: Sequence[Policy],
        data: Mapping[str, Any] | None = None,
        *,
        pool: EvaluatorPool,
        outcome_cache_bytes: int = DEFAULT_OUTCOME_CACHE_BYTES,
    ) -> None:
        super().__init__(policies, data, outcome_cache_bytes=outcome_cache_bytes)
        self.pool = pool
        self.set_id = uuid.uuid4().hex  # policies and data never change after this

    def evaluate_scoped(
        self, documents: Sequence[str], scopes: Sequence[frozenset[str] | None]
    ) -> list[list[PolicyOutcome]]:
        """Each document's outcomes per policy, evaluated in the pool's worker processes: those
        that matched or failed (one that did not match adds nothing to a verdict)."""
        by_name = {p.name: p for p in self.policies}
        return [
            [
                PolicyOutcome(policy=by_name[name], matched=hit, reasons=why, error=error)
                for name, hit, why, error in row
            ]
            for row in self.pool.evaluate(self, documents, scopes)
        ]
