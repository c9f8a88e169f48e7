"""A policy evaluation worker process: `python -m sbomgate.policy._worker SOCKET PROGRESS KEEP`.

It compiles each policy set once (the policies come with a set's first request), evaluates the
serialised `input` documents it is sent, and answers what each policy said of each. Before each
policy runs it writes (document index << 16) | policy index into the shared PROGRESS memory,
so a parent that stops it for overrunning its budget can name the policy.
"""

from __future__ import annotations

import mmap
import signal
import struct
import sys
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from sbomgate.policy.engine import PolicyEngine, with_context
from sbomgate.policy.loader import Policy

PROGRESS_BYTES = 8

# What a worker answers per document: (policy name, matched, reasons, error) per policy run
# that matched or failed. One that did not match adds nothing to a verdict nor cuts an
# evaluation short, and most packages match nothing: leaving them out keeps the answers (and
# the parent's work reading them) to what matters.
RawOutcome = tuple[str, bool, tuple[str, ...], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One evaluation request to a worker: a policy set (by id; its policies the first time) and
    input documents, each with the policies that apply to it (`scopes[i]`; None: all)."""

    set_id: str
    policies: tuple[Policy, ...] | None  # sent once per worker and policy set
    data: Mapping[str, Any] | None
    documents: Sequence[str]
    scopes: Sequence[frozenset[str] | None]
    # The image and workload every document is evaluated with (engine.with_context): sent
    # once, not with each of a large image's thousands of documents.
    context: str | None = None


def answer(engine: PolicyEngine, request: Request, progress: mmap.mmap) -> list[list[RawOutcome]]:
    """Each document's outcomes, policy by policy, writing progress before each policy runs."""
    index = {p.name: i for i, p in enumerate(engine.policies)}
    current = 0

    def mark(policy: Policy) -> None:
        struct.pack_into("<q", progress, 0, (current << 16) | index[policy.name])

    answers: list[list[RawOutcome]] = []
    for current, (document, scope) in enumerate(  # noqa: B007 (current is read by mark)
        zip(request.documents, request.scopes, strict=True)
    ):
        full = with_context(document, request.context)
        # Projections read from the smaller document when it is one (engine.evaluate_input).
        projected = document if full is not document else None
        outcomes = engine.evaluate_input(full, scope, before=mark, projected=projected)
        answers.append(
            [
                (o.policy.name, o.matched, o.reasons, o.error)
                for o in outcomes
                if o.matched or o.error is not None
            ]
        )
    return answers


def serve(connection: Connection, progress: mmap.mmap, keep: int) -> None:
    """Answer requests on `connection` until the parent goes, keeping the last `keep` policy sets
    compiled."""
    engines: OrderedDict[str, PolicyEngine] = OrderedDict()
    while True:
        try:
            request: Request = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            engine = engines.get(request.set_id)
            if engine is None:
                if request.policies is None:
                    connection.send(("unknown-set", request.set_id))
                    continue
                # The parent keeps the outcomes across images; a worker only evaluates.
                engine = PolicyEngine(request.policies, request.data, outcome_cache_bytes=0)
                engines[request.set_id] = engine
                while len(engines) > keep:
                    engines.popitem(last=False)
            engines.move_to_end(request.set_id)
            connection.send(("ok", answer(engine, request, progress)))
        except Exception as exc:  # answered, so the parent reports it and denies
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


def main(argv: Sequence[str]) -> None:
    """The worker's entry point: `argv` is SOCKET and PROGRESS (file descriptors) and KEEP."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    socket_fd, progress_fd, keep = (int(a) for a in argv)
    progress = mmap.mmap(progress_fd, PROGRESS_BYTES)
    serve(Connection(socket_fd), progress, keep)


if __name__ == "__main__":
    main(sys.argv[1:])
