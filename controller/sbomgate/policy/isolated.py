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
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from sbomgate._internal.children import start_child
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
# Documents per request: a worker starts on a cold image's first inputs while the rest are
# built, and the last chunk (the one the other workers may wait for) is short.
_CHUNK = 256


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
        progress = os.memfd_create("sbomgate-evaluation-progress")
        try:
            os.ftruncate(progress, PROGRESS_BYTES)
            self.progress = mmap.mmap(progress, PROGRESS_BYTES)
            self.process, self.connection = start_child(
                "sbomgate.policy._worker", str(progress), str(_KEPT_SETS), pass_fds=(progress,)
            )
        finally:
            os.close(progress)
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

    def evaluate_stream(
        self,
        engine: IsolatedPolicyEngine,
        work: Iterable[tuple[str, frozenset[str] | None]],
        context: str | None = None,
    ) -> list[list[RawOutcome]]:
        """Evaluate the documents `work` yields (each with its scope) within one budget of CPU
        time, in chunks sent to the workers as they are made: a cold image's inputs are
        still being built while the first are evaluated, and every core the pool has is used
        once there are enough documents to share. EvaluationError naming the policy that
        overran."""
        try:
            first = self._idle.get(timeout=_QUEUE_WAIT)
        except queue.Empty:
            raise EvaluationError(
                f"no policy evaluator was free for {_QUEUE_WAIT:g} s (all busy)"
            ) from None
        run = _Run(self, engine, context)
        try:
            run.join(first)
            return run.evaluate(work)
        except BaseException:
            # A worker that overran, died or was interrupted mid-answer is not reused.
            for worker in run.workers:
                if worker in run.busy:
                    self._retire(worker)
            raise
        finally:
            # Every slot taken goes back; a retired worker's replacement starts now, so that it
            # is warm by the next call (or on first use, if it cannot start now).
            for index in range(run.slots):
                back: _Worker | None = None
                if index < len(run.workers) and run.workers[index] not in run.busy:
                    back = run.workers[index]
                if back is None and not self._closed:
                    try:
                        back = self._spawn()
                    except OSError:
                        back = None
                self._idle.put(None if self._closed else back)

    def _more(self) -> tuple[bool, _Worker | None]:
        """Another slot if one is free now: (True, its worker, or None: start one), else
        (False, None)."""
        try:
            return True, self._idle.get_nowait()
        except queue.Empty:
            return False, None

    def _send(
        self,
        worker: _Worker,
        engine: IsolatedPolicyEngine,
        documents: Sequence[str],
        scopes: Sequence[frozenset[str] | None],
        context: str | None,
    ) -> None:
        first = engine.set_id not in worker.known_sets
        request = Request(
            set_id=engine.set_id,
            policies=engine.policies if first else None,
            data=engine.data if first else None,
            documents=documents,
            scopes=scopes,
            context=context,
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


class _Run:
    """One `EvaluatorPool.evaluate_stream` call: the workers it took, the request each is
    answering (at most one, so that neither side of a pipe can fill up while the other
    writes) and the answers so far, by the position of their first document."""

    def __init__(
        self, pool: EvaluatorPool, engine: IsolatedPolicyEngine, context: str | None
    ) -> None:
        self.pool = pool
        self.engine = engine
        self.context = context  # the image and workload, added by the worker (`with_context`)
        self.slots = 0  # slots taken from the pool (each goes back, see evaluate_stream)
        self.workers: list[_Worker] = []
        self.free: list[_Worker] = []
        # Per busy worker: its request's first document and the request's documents and
        # scopes (sent again if the worker no longer knows the policy set).
        self.busy: dict[_Worker, tuple[int, list[str], list[frozenset[str] | None]]] = {}
        self.answers: dict[int, list[list[RawOutcome]]] = {}
        self.cpu_before: dict[_Worker, float] = {}
        self.waited = 0.0  # seconds spent waiting for answers

    def join(self, slot: _Worker | None) -> None:
        """Take a slot: its worker, or a new one if it has none or its worker died."""
        self.slots += 1
        if slot is not None and not slot.alive():
            self.pool._retire(slot)
            slot = None
        worker = slot if slot is not None else self.pool._spawn()
        self.workers.append(worker)
        self.free.append(worker)
        self.cpu_before[worker] = worker.cpu_seconds()

    def evaluate(self, work: Iterable[tuple[str, frozenset[str] | None]]) -> list[list[RawOutcome]]:
        documents: list[str] = []
        scopes: list[frozenset[str] | None] = []
        count = 0
        for document, scope in work:
            documents.append(document)
            scopes.append(scope)
            count += 1
            if len(documents) >= _CHUNK:
                self._dispatch(count - len(documents), documents, scopes, count)
                documents, scopes = [], []
        if documents:
            self._dispatch_last(count - len(documents), documents, scopes, count)
        while self.busy:
            self._collect(_CHECK_EVERY)
        return [row for start in sorted(self.answers) for row in self.answers[start]]

    def _dispatch(
        self, start: int, documents: list[str], scopes: list[frozenset[str] | None], seen: int
    ) -> None:
        """Send a chunk to a free worker: one more from the pool when the documents so far
        are enough to share (_SHARE_FROM per worker) and a slot is free, else the first of
        this run's workers to answer."""
        if not self.free and seen // _SHARE_FROM > self.slots:
            taken, slot = self.pool._more()
            if taken:
                self.join(slot)
        while not self.free:
            self._collect(_CHECK_EVERY)
        worker = self.free.pop()
        self.pool._send(worker, self.engine, documents, scopes, self.context)
        self.busy[worker] = (start, documents, scopes)

    def _dispatch_last(
        self, start: int, documents: list[str], scopes: list[frozenset[str] | None], seen: int
    ) -> None:
        """Send the last chunk, which every other worker's wait ends on (all of a new build's
        hundred changed packages), shared among the workers free now, and as many more as the
        pool has free while there are _SHARE_FROM documents for each."""
        while len(documents) // _SHARE_FROM > len(self.free) and seen // _SHARE_FROM > self.slots:
            taken, slot = self.pool._more()
            if not taken:
                break
            self.join(slot)
        parts = max(1, min(len(self.free), len(documents) // _SHARE_FROM))
        size = -(-len(documents) // parts)  # ceiling: the last part may be smaller
        for offset in range(0, len(documents), size):
            end = offset + size
            self._dispatch(start + offset, documents[offset:end], scopes[offset:end], seen)

    def _collect(self, timeout: float) -> None:
        """Read the answers that are there (waiting up to `timeout`), then check the budget."""
        by_connection = {worker.connection: worker for worker in self.busy}
        began = time.monotonic()
        ready = wait(list(by_connection), timeout=timeout)
        self.waited += time.monotonic() - began
        for connection in ready:
            worker = by_connection[connection]  # type: ignore[index]
            start, documents, scopes = self.busy[worker]
            try:
                kind, payload = worker.connection.recv()
            except (EOFError, OSError):
                raise EvaluationError(
                    "the policy evaluation process died (see the server log)"
                ) from None
            if kind == "unknown-set":  # it was replaced since: send the policies again
                worker.known_sets.discard(self.engine.set_id)
                self.pool._send(worker, self.engine, documents, scopes, self.context)
                continue
            if kind == "error":
                raise EvaluationError(f"policy evaluation failed: {payload}")
            del self.busy[worker]
            self.free.append(worker)
            self.answers[start] = payload
        if not self.busy:
            return
        budget = self.pool.budget
        used = sum(worker.cpu_seconds() - before for worker, before in self.cpu_before.items())
        over = used > budget
        # Starved: waited this long for workers that got too little CPU to use the budget.
        starved = not over and self.waited > budget * _WALL_FACTOR
        if over or starved:
            self.pool.stopped += 1
            running, (start, _, _) = next(iter(self.busy.items()))
            raise self.pool._overrun(running, start, self.engine, starved=starved)


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
        return self.evaluate_stream(zip(documents, scopes, strict=True))

    def evaluate_stream(
        self, work: Iterable[tuple[str, frozenset[str] | None]], context: str | None = None
    ) -> list[list[PolicyOutcome]]:
        """`evaluate_scoped`, the documents sent to the workers while later ones are made; the
        workers add `context` (PolicyEngine.evaluate_stream)."""
        by_name = {p.name: p for p in self.policies}
        return [
            [
                PolicyOutcome(policy=by_name[name], matched=hit, reasons=why, error=error)
                for name, hit, why, error in row
            ]
            for row in self.pool.evaluate_stream(self, work, context)
        ]
