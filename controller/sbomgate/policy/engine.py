"""The policy engine: every package of an SBOM against every policy, in precedence order.

One engine serves every front door (CLI, webhook, audit). It does no I/O: the SBOM, the
policies, the data and the per-package facts are handed to it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

import orjson

from sbomgate._internal import digests
from sbomgate.errors import EvaluationError
from sbomgate.identity import Declared, component_disagreements, declared_fields
from sbomgate.intel.lists import compile_lists
from sbomgate.intel.model import NO_FACTS, PackageFacts
from sbomgate.intel.model import FactSource as FactSource
from sbomgate.policy._combined import CombinedPlan, plan_combined
from sbomgate.policy._fold import fold_constants
from sbomgate.policy._regorus import RegoEngine, RegoModule
from sbomgate.policy.input import build_input, day_window, input_fingerprint
from sbomgate.policy.loader import Action, Policy
from sbomgate.policy.outcomes import OutcomeCache, context_free, match_projection, reads_field
from sbomgate.sbom.model import Component, Sbom
from sbomgate.verdict import EvaluationFailure, Finding, Verdict

# Who reports a package that no trusted repository could be asked about (not a policy).
TRUSTED_SOURCES = "sbomgate/trusted-sources"
# Who reports a package whose license text could not be read (sbom/licenses.py).
LICENSES = "sbomgate/licenses"
# Who warns of a component whose name, group or version fields disagree with its purl.
IDENTITY = "sbomgate/identity"


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyOutcome:
    """What one policy said of one input."""

    policy: Policy
    matched: bool
    reasons: tuple[str, ...] = ()
    error: str | None = None


def _reasons(value: Any) -> tuple[str, ...]:
    """`reason` as a set (`contains`) or an object (`reason[msg] if ...`): its messages."""
    if value is None:
        return ()
    if isinstance(value, dict):
        items: list[Any] = list(value.keys())
    elif isinstance(value, set | frozenset | list | tuple):
        items = list(value)
    else:
        items = [value]
    texts = {v if isinstance(v, str) else orjson.dumps(v).decode() for v in items}
    return tuple(sorted(texts))


def _evaluate(
    engine: RegoEngine, policy: Policy, known: bool | None = None
) -> tuple[Any, tuple[str, ...]]:
    """`match` (unless `known`: what it is), and `reason` only when it matched (most packages
    match nothing: one evaluation)."""
    matched = engine.eval_rule(policy.match_rule) if known is None else known
    if matched is not True or not policy.module.definitions("reason"):
        return matched, ()
    return matched, _reasons(engine.eval_rule(policy.reason_rule))


_THREAD = threading.local()
# The outcome cache's default bound (policy/outcomes.py): about 150,000 packages' outcomes.
DEFAULT_OUTCOME_CACHE_BYTES = 64 * 1024 * 1024
# Components whose disagreements and outcome-cache key an engine remembers (then forgets all
# at once): more than the parser remembers (cyclonedx.COMPONENT_MEMO), whose objects these are.
_KNOWN_ROWS = 65_536
# (component, facts, names declared for its purl, scope, clock from, clock to, disagreements,
# key): see PolicyEngine._problems_and_key.
_KnownRow = tuple[
    Component,
    PackageFacts,
    tuple[tuple[str | None, str | None], ...] | None,
    str,
    int,
    int,
    tuple[str, ...],
    bytes,
]
# How a context-free input document ends: `image` and `workload` are its last two keys.
_NO_CONTEXT = ',"image":null,"workload":null}}'


class PolicyEngine:
    """Policies + data, compiled lazily into regorus engines, one set per thread."""

    def __init__(
        self,
        policies: Sequence[Policy],
        data: Mapping[str, Any] | None = None,
        *,
        outcome_cache_bytes: int = DEFAULT_OUTCOME_CACHE_BYTES,
        combine: bool = True,
        projections: bool = True,
        fold: bool = True,
    ) -> None:
        """`combine=False` gives every policy an engine of its own (see _combined);
        `projections=False` evaluates every policy's `match` on every input (see
        evaluate_input); `fold=False` leaves the rules that depend on data alone as written
        (see _fold)."""
        self.policies = tuple(sorted(policies, key=lambda p: (p.precedence, p.name)))
        self.data: Mapping[str, Any] = dict(data or {})
        # The data lists, matched per package in Python (InputError for an unreadable entry).
        self.lists = compile_lists(self.data)
        # Outcomes of the policies that see only the package, kept across images; the cache
        # is this engine's, so a new policy set (a new engine) starts empty.
        self.context_free = frozenset(p.name for p in self.policies if context_free(p))
        # The policies that may read input.v0.sbom: only they get the subject's whole SBOM.
        self.sbom_readers = frozenset(p.name for p in self.policies if reads_field(p, "sbom"))
        # Per policy whose `match` is decided by a few paths of the input (outcomes.py:
        # match_projection): those paths. A projection that did not match is remembered.
        projected = {
            p.name: paths
            for p in (self.policies if projections else ())
            if (paths := match_projection(p)) is not None
        }
        # Every projected path once, and per policy: its position in the policy order (what
        # its projection keys start with) and its paths' positions among those (_pieces).
        self._projected_paths = sorted({path for paths in projected.values() for path in paths})
        where = {path: i for i, path in enumerate(self._projected_paths)}
        self._order = {p.name: i for i, p in enumerate(self.policies)}
        self._projections = {
            name: (self._order[name], tuple(where[path] for path in paths))
            for name, paths in projected.items()
        }
        # Per policy, in order: the policy, its position, and what picks its projection's
        # pieces (None without a projection).
        self._plan = tuple(
            (p, i, _picker(self._projections[p.name][1]) if p.name in self._projections else None)
            for i, p in enumerate(self.policies)
        )
        # The projected paths as a tree (_pieces walks each step once).
        self._projected_tree = _path_tree([(p, i) for i, p in enumerate(self._projected_paths)])
        # A policy that did not match, without reasons nor error: one object each.
        self._no_match = {p.name: PolicyOutcome(policy=p, matched=False) for p in self.policies}
        # The policies evaluated in one engine, each under a package of its own (_combined).
        self._combined = plan_combined(self.policies, self.data) if combine else CombinedPlan.NONE
        self._fold = fold
        # Per component object: its disagreements and key (see _problems_and_key).
        self._known_rows: dict[int, _KnownRow] = {}
        self.outcomes = (
            OutcomeCache(outcome_cache_bytes)
            if outcome_cache_bytes > 0 and self.context_free
            else None
        )

    def _engines(self) -> _Engines:
        # regorus engines must be dropped on the thread that made them (PyO3 "unsendable"):
        # they live in the thread's own store, and a thread drops the engines of policy sets
        # that no longer exist the next time it evaluates (or when it exits).
        store: dict[int, tuple[weakref.ref[PolicyEngine], _Engines]] | None
        store = getattr(_THREAD, "engines", None)
        if store is None:
            store = _THREAD.engines = {}
        entry = store.get(id(self))
        if entry is not None and entry[0]() is self:
            return entry[1]
        for key in [k for k, (ref, _) in store.items() if ref() is None]:
            del store[key]
        engines = _Engines(self.data, self._combined, fold=self._fold)
        store[id(self)] = (weakref.ref(self), engines)
        return engines

    def evaluate_input(
        self,
        document: str,
        only: frozenset[str] | None = None,
        *,
        before: Callable[[Policy], None] | None = None,
        projected: str | None = None,
    ) -> list[PolicyOutcome]:
        """Run every enabled policy (of `only`, if given), in order, on one serialised `input`
        until a terminal match. `before` is told each policy it evaluates, as it starts (not one
        its projection decides); `projected` is where the projections are read from, when not
        `document` (the same input without its image and workload: no projected path is under
        them, as only the context-free policies have projections).

        A policy whose `match` is decided by a few paths of the input (`match_projection`) is
        not evaluated when the values there are ones its `match` was false or undefined for
        before, in this thread: most packages match nothing, and many share what decides it
        (a license expression, an age in days, no advisories). `document` is JSON without
        repeated keys, as the engine writes it, so the values read here are regorus'."""
        outcomes: list[PolicyOutcome] = []
        engines = self._engines()
        engines.document = None  # no engine has this document as its input yet
        matches, no_match = engines.matches, self._no_match
        pieces: list[str] | None = None
        for policy, position, picker in self._plan:
            if not policy.enabled or (only is not None and policy.name not in only):
                continue
            key: tuple[Any, ...] | None = None
            known: bool | None = None
            if picker is not None:
                if pieces is None:
                    pieces = _pieces(
                        document if projected is None else projected,
                        self._projected_tree,
                        len(self._projected_paths),
                    )
                if pieces:
                    # The policy's position, then the pieces at its paths.
                    key = (position, picker(pieces))
                    known = matches.get(key)
                    if known is False:
                        # Not evaluated, so not announced to `before` either.
                        outcomes.append(no_match[policy.name])
                        continue
            if before is not None:
                before(policy)
            try:
                matched_value, reasons = engines.evaluate(policy, document, known)
            except EvaluationError as exc:
                outcomes.append(PolicyOutcome(policy=policy, matched=False, error=str(exc)))
                continue
            if key is not None and known is None and isinstance(matched_value, bool | None):
                engines.remember_match(key, matched_value is True)
            if matched_value is not None and not isinstance(matched_value, bool):
                got = orjson.dumps(matched_value).decode()
                error = f"`match` must be a boolean, got {got}"
                outcomes.append(PolicyOutcome(policy=policy, matched=False, error=error))
                continue
            if not matched_value:
                outcomes.append(self._no_match[policy.name])
                continue
            outcomes.append(PolicyOutcome(policy=policy, matched=True, reasons=reasons))
            if policy.terminal:
                break
        return outcomes

    def evaluate_documents(
        self, documents: Sequence[str], only: frozenset[str] | None = None
    ) -> list[list[PolicyOutcome]]:
        """`evaluate_input` over many documents (an isolated engine sends them in one go)."""
        return self.evaluate_scoped(documents, [only] * len(documents))

    def evaluate_scoped(
        self, documents: Sequence[str], scopes: Sequence[frozenset[str] | None]
    ) -> list[list[PolicyOutcome]]:
        """`evaluate_input` of each document with its own `only` (`scopes[i]`). One call is one
        evaluation of an image: an isolated engine runs it within one budget, on as many
        worker processes as are free. An EvaluationError may name the document it failed on
        (its `document` attribute, an index into `documents`)."""
        return [
            self.evaluate_input(document, scope)
            for document, scope in zip(documents, scopes, strict=True)
        ]

    def evaluate_stream(
        self, work: Iterable[tuple[str, frozenset[str] | None]], context: str | None = None
    ) -> list[list[PolicyOutcome]]:
        """`evaluate_scoped` of the documents `work` yields, each with its scope (an isolated
        engine evaluates the first while the generator makes the next). With `context` (see
        `with_context`), a document without image and workload is evaluated with them."""
        items = [(with_context(d, context), s) for d, s in work]
        return self.evaluate_scoped([d for d, _ in items], [s for _, s in items])

    def evaluate_sbom(
        self,
        sbom: Sbom,
        *,
        facts: FactSource | None = None,
        image: Mapping[str, Any] | None = None,
        workload: Mapping[str, Any] | None = None,
        only: frozenset[str] | None = None,
        now_ns: int | None = None,
    ) -> Verdict:
        """The verdict on an SBOM: its subject once (with `input.v0.sbom`), then each component.

        `only` names the policies that apply (a PackagePolicy's scope); None means all.
        `now_ns` is the clock packages' ages are counted to (default: now), one for the SBOM."""
        now = time.time_ns() if now_ns is None else now_ns
        # documents[0] is the subject, without the SBOM for the policies that do not read it
        # (see _evaluate_reusing); rows 1.. are the distinct component inputs, by key. The
        # input with the SBOM is made only when a policy in scope reads it (a 5,000-component
        # document took 5 ms to write, for nothing when none does; kept as its statement, its
        # text is not even there until asked for).
        in_scope = self._in_scope(only)
        reads_sbom = bool(in_scope & self.sbom_readers)
        subject_input = build_input(
            sbom.subject,
            sbom=sbom,
            facts=facts(sbom.subject) if facts and sbom.subject else NO_FACTS,
            image=image,
            workload=workload,
            lists=self.lists,
            now_ns=now,
            sbom_document=reads_sbom,
        )
        subject_sbom = _dump(subject_input) if reads_sbom else ""
        subject_input["v0"]["sbom"] = None
        subject_document = _dump(subject_input)
        # Each distinct component input's outcome-cache key and row: components whose inputs
        # are made of the same parts (`input_fingerprint`) are evaluated once. An input is built
        # only for the rows that are evaluated (_Rows.document): a new build's packages are
        # mostly known, and building their inputs was most of its evaluation.
        rows = _Rows(self, context=_context_json(image, workload), now_ns=now)
        scope = "*" if only is None else ",".join(sorted(only))
        collector = _Collector()
        # A license text license-expression failed on cannot be judged: an error, not a pass.
        for failed in (c for c in (sbom.subject, *sbom.components) if c and c.license_error):
            collector.errors.append(
                EvaluationFailure(
                    purl=failed.purl,
                    name=failed.name,
                    policy=LICENSES,
                    message=str(failed.license_error),
                )
            )
        declared = sbom.declared if sbom.declared is not None else declared_fields(sbom.document)
        component_rows: list[int] = []

        def new_rows() -> Iterator[int]:
            # Each component's row, as the evaluation asks for them (an isolated engine's
            # workers evaluate the first rows while the next are made); a new row is yielded.
            # (Locals: this runs once per component, 5,000 times for a large image.)
            problems_and_key, add_row, keys = self._problems_and_key, rows.add, rows.keys
            append = component_rows.append
            for component in sbom.components:
                known = facts(component) if facts else NO_FACTS
                if known.unavailable is not None:
                    collector.unavailable(component, known.unavailable)
                problems, key = problems_and_key(component, known, declared, scope, now)
                if problems:
                    collector.disagrees(component, problems)
                count = len(keys)
                row = add_row(key, component, known, problems)
                append(row)
                if row == count:
                    yield row

        try:
            answers = self._evaluate_reusing(subject_document, rows, new_rows(), only, subject_sbom)
        except EvaluationError as exc:
            # Nothing is known of this SBOM beyond the failure, which denies (fail closed).
            number = getattr(exc, "document", 0)
            who = sbom.subject if number <= 0 else sbom.components[component_rows.index(number)]
            collector.errors.append(
                EvaluationFailure(
                    purl=who.purl if who else None,
                    name=who.name if who else None,
                    policy=getattr(exc, "policy", "(evaluation)"),
                    message=str(exc),
                )
            )
            return collector.verdict(len(sbom.components), sbom)
        collector.add(sbom.subject, answers[0], subject=True)
        for component, row in zip(sbom.components, component_rows, strict=True):
            collector.add(component, answers[row])
        return collector.verdict(len(sbom.components), sbom)

    def _problems_and_key(
        self,
        component: Component,
        facts: PackageFacts,
        declared: Declared,
        scope: str,
        now_ns: int,
    ) -> tuple[tuple[str, ...], bytes]:
        """The component's identity disagreements and its input's outcome-cache key
        (`OutcomeCache.key_of`), remembered per component object: the parser hands out the same
        object for the same JSON object, and a fact source the same facts object for a package
        whose facts are fixed (a snapshot), so a new build's known packages cost a lookup. The
        entry is used only for that same object, those same facts (by identity), the same
        names declared for its purl, the same scope and a clock that gives the same day
        counts; anything else is computed again."""
        memo = self._known_rows
        pairs = declared.get(component.purl) if component.purl else None
        found = memo.get(id(component))
        if (
            found is not None
            and found[0] is component
            and found[1] is facts
            and found[2] == pairs
            and found[3] == scope
            and found[4] <= now_ns < found[5]
        ):
            return found[6], found[7]
        problems = component_disagreements(component, declared)
        fingerprint = input_fingerprint(
            component, facts=facts, disagreements=problems, now_ns=now_ns
        )
        key = OutcomeCache.key_of(fingerprint, scope)
        start, end = day_window(facts, now_ns)
        if len(memo) >= _KNOWN_ROWS:
            memo.clear()
        # The entry holds the component, so its id names no other object while it is kept.
        memo[id(component)] = (component, facts, pairs, scope, start, end, problems, key)
        return problems, key

    def _evaluate_reusing(
        self,
        subject_document: str,
        rows: _Rows,
        new_rows: Iterable[int],
        only: frozenset[str] | None,
        subject_sbom: str,
    ) -> list[Sequence[PolicyOutcome]]:
        """Every row's outcomes in one `evaluate_stream` call (so one budget); the answers are
        those of `evaluate_documents` on [the subject's input with `subject_sbom`, then each
        row's input]. `new_rows` adds the component rows to `rows` as it is consumed, and
        yields each new one.

        - The context-free policies' outcomes come from the outcome cache where it has them
          (only the other policies are evaluated for those rows); what is learnt is kept.
        - Row 0 is the subject's input without `input.v0.sbom` (`subject_document`): only the
          policies that may read that are evaluated with `subject_sbom`, the input with the
          whole SBOM (parsing it again for each policy would cost more than the rest of the
          image)."""
        cache = self.outcomes
        keys = rows.keys
        cached: dict[int, Sequence[PolicyOutcome]] = {}
        in_scope = self._in_scope(only)
        others = in_scope - self.context_free
        readers = in_scope & self.sbom_readers
        # The row of each document evaluated, in order.
        work_rows: list[int] = []

        def work() -> Iterator[tuple[str, frozenset[str] | None]]:
            # Every row not cached with the policies in scope (the subject with those that do
            # not read the SBOM), cached rows with the others, the subject with the SBOM for
            # those that read it.
            work_rows.append(0)
            yield subject_document, in_scope - readers
            for row in new_rows:
                hit = cache.get(keys[row]) if cache is not None else None
                if hit is None:
                    work_rows.append(row)
                    yield rows.document(row), only
                    continue
                cached[row] = hit
                if others:
                    work_rows.append(row)
                    yield rows.document(row), others
            if readers:
                work_rows.append(0)
                yield subject_sbom, readers

        try:
            # Component documents go without the image and workload, which every document of
            # one SBOM shares: added once per request, not written and sent with each.
            found = self.evaluate_stream(work(), context=rows.context)
        except EvaluationError as exc:
            number = getattr(exc, "document", None)
            if isinstance(number, int) and 0 <= number < len(work_rows):
                exc.document = work_rows[number]  # type: ignore[attr-defined]
            raise
        answers: list[Sequence[PolicyOutcome]] = [()] * len(keys)
        for row, outcomes in zip(work_rows, found, strict=True):
            if row == 0 or row in cached:
                answers[row] = self._merge(answers[row] or cached.get(row, ()), outcomes)
                continue
            answers[row] = outcomes
            if cache is not None:
                self._remember(keys[row], outcomes)
        if not others:
            # A kept entry is one evaluation's matches, in policy order and ending at the
            # first terminal one (`_remember`): already what `_merge(hit, ())` makes.
            for row, hit in cached.items():
                answers[row] = hit
        return answers

    def _in_scope(self, only: frozenset[str] | None) -> frozenset[str]:
        """The names of the policies that apply (`only`, or all of them)."""
        return frozenset(p.name for p in self.policies if only is None or p.name in only)

    def _remember(self, key: bytes, outcomes: Sequence[PolicyOutcome]) -> None:
        """Keep the context-free policies' outcomes of one document, when they are complete:
        not cut short by a terminal match of a policy that sees the image or workload (the
        policies after it were not evaluated, and another image may need them), and free of
        errors.

        Only the matches are kept: an outcome that did not match adds nothing to a verdict
        (`_Collector.add`) nor cuts a merge short, and most packages match nothing, so most
        entries hold no object that Python's cyclic GC has to walk (with every outcome kept, a
        full collection of a server's heap took about 100 ms)."""
        assert self.outcomes is not None
        last = outcomes[-1] if outcomes else None
        cut_short = last is not None and last.matched and last.policy.terminal
        if cut_short and last is not None and last.policy.name not in self.context_free:
            return
        kept = [o for o in outcomes if o.policy.name in self.context_free]
        if any(o.error is not None for o in kept):
            return
        self.outcomes.put(key, [o for o in kept if o.matched])

    def _merge(
        self, cached: Sequence[PolicyOutcome], fresh: Sequence[PolicyOutcome]
    ) -> list[PolicyOutcome]:
        """Both in policy order, cut after the first terminal match, as one evaluation
        would have stopped there."""
        merged = sorted([*cached, *fresh], key=lambda o: self._order[o.policy.name])
        for index, outcome in enumerate(merged):
            if outcome.matched and outcome.policy.terminal:
                return merged[: index + 1]
        return merged


class _Rows:
    """The distinct component inputs of one SBOM evaluation: per row (from 1; row 0 is the
    subject), its outcome-cache key and what its input is built from, built when asked."""

    def __init__(self, engine: PolicyEngine, *, context: str, now_ns: int) -> None:
        self._engine = engine
        self.context = context  # the image and workload (`_context_json`)
        self._now = now_ns
        self.keys: list[bytes] = [b""]
        self._parts: list[tuple[Component, PackageFacts, tuple[str, ...]] | None] = [None]
        self._by_key: dict[bytes, int] = {}

    def add(
        self, key: bytes, component: Component, facts: PackageFacts, problems: tuple[str, ...]
    ) -> int:
        """The row of the input whose outcome-cache key is `key` (a new one unless an equal
        input has one)."""
        row = self._by_key.get(key)
        if row is None:
            row = self._by_key[key] = len(self.keys)
            self.keys.append(key)
            self._parts.append((component, facts, problems))
        return row

    def document(self, row: int) -> str:
        """The row's input document, without the image and the workload (`with_context`
        adds them)."""
        parts = self._parts[row]
        assert parts is not None, "row 0 is the subject's"
        component, facts, problems = parts
        free = _dump(
            build_input(
                component,
                facts=facts,
                lists=self._engine.lists,
                disagreements=problems,
                now_ns=self._now,
            )
        )
        return free


# Projections of inputs and whether their `match` was true, per thread and policy set (about
# 300 bytes each): a few large images' worth of distinct projections.
_PROJECTION_KEYS = 32_768
# A value at a projected path longer than this is kept as its digest (`_pieces`).
_SHORT = 64


def _picker(positions: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """What takes the pieces at `positions` from a list, as a tuple."""
    if len(positions) == 1:
        only = positions[0]
        return lambda pieces: (pieces[only],)
    if not positions:
        return lambda _: ()
    return cast(Callable[[list[str]], tuple[str, ...]], itemgetter(*positions))


# A tree of paths (`_path_tree`): per key, the subtree under it, or the path's position
# among the paths when the key ends one.
_PathTree = tuple[tuple[str, "_PathTree | int"], ...]


def _path_tree(rest: Sequence[tuple[tuple[str, ...], int]]) -> _PathTree:
    """Distinct non-empty paths, each with its position, as a tree whose leaves are their
    positions (a step that ends one path and leads on to others appears twice)."""
    ends: dict[str, int] = {}
    branches: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for path, position in rest:
        if len(path) == 1:
            ends[path[0]] = position
        else:
            branches.setdefault(path[0], []).append((path[1:], position))
    tree: list[tuple[str, _PathTree | int]] = list(ends.items())
    tree += [(step, _path_tree(under)) for step, under in branches.items()]
    return tuple(tree)


def _pieces(document: str, tree: _PathTree, count: int) -> list[str]:
    """What `document` holds at each of the `count` paths of `tree` (`_path_tree`), by their
    positions: its JSON (a 256-bit digest, in hex behind `#`, when longer than _SHORT
    characters: whoever writes the SBOM chooses these values), or "" where nothing is (no JSON
    text is empty or starts with `#`); an empty list when orjson cannot read the document (a
    number past a double's range): no projection."""
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return []
    pieces = [""] * count
    _fill(parsed, tree, pieces)
    return pieces


def _fill(node: Any, tree: _PathTree, pieces: list[str]) -> None:
    """Write the JSON at each leaf of `tree` under `node` into `pieces` (left "" where `node`
    is not an object, or lacks the key)."""
    if type(node) is not dict:
        return
    for step, under in tree:
        if step not in node:
            continue
        value = node[step]
        if not isinstance(under, int):
            _fill(value, under, pieces)
            continue
        text = orjson.dumps(value)
        # Kept as a str: orjson's bytes of a few characters occupy 4 KiB each, and these are
        # kept (the projection keys: 32,768 of them held over 100 MiB).
        pieces[under] = (
            text.decode() if len(text) <= _SHORT else "#" + digests.blake2b_256(text).hex()
        )


class _Engines:
    """One thread's regorus engines of a policy set: the policies that can share one engine
    (_combined) are evaluated there; a policy is evaluated in an engine of its own when it
    cannot share, or when the shared engine fails on it (an error of one module, say a rule
    regorus compiles only when first evaluated, must not become every policy's)."""

    def __init__(self, data: Mapping[str, Any], plan: CombinedPlan, *, fold: bool) -> None:
        self._data = data
        self._renamed = plan.renamed
        self._fold = fold
        self._shared = self._engine([p.module for p in plan.shared]) if plan.shared else None
        self._own: dict[str, RegoEngine] = {}
        self._alone: set[str] = set()  # failed in the shared engine once: evaluated alone
        # The engine whose input is the document being evaluated (None: none yet).
        self.document: RegoEngine | None = None
        # Per projection key (a policy's position and the `_pieces` at its paths): whether
        # `match` was true (else false or undefined). Forgotten all at once when full.
        self.matches: dict[tuple[Any, ...], bool] = {}

    def remember_match(self, key: tuple[Any, ...], matched: bool) -> None:
        """Remember whether `match` was true for a projection key."""
        if len(self.matches) >= _PROJECTION_KEYS:
            self.matches.clear()
        self.matches[key] = matched

    def _engine(self, modules: list[RegoModule]) -> RegoEngine:
        """An engine of these modules, their constant rules folded (_fold) unless told not to."""
        return RegoEngine(
            fold_constants(modules, self._data) if self._fold else modules, self._data
        )

    def _given(self, engine: RegoEngine, document: str) -> RegoEngine:
        if self.document is not engine:
            self.document = None
            engine.set_input_json(document)
            self.document = engine
        return engine

    def evaluate(
        self, policy: Policy, document: str, known: bool | None = None
    ) -> tuple[Any, tuple[str, ...]]:
        """`_evaluate` of `policy` on `document`."""
        renamed = self._renamed.get(policy.name)
        if renamed is not None and self._shared is not None and policy.name not in self._alone:
            try:
                return _evaluate(self._given(self._shared, document), renamed, known)
            except EvaluationError:
                # Evaluated again alone, below, and from now on (not twice per document).
                self._alone.add(policy.name)
        engine = self._own.get(policy.name)
        if engine is None:
            engine = self._own[policy.name] = self._engine([policy.module])
        return _evaluate(self._given(engine, document), policy, known)


def _dump(document: Mapping[str, Any]) -> str:
    return orjson.dumps(document).decode()


def _context_json(image: Mapping[str, Any] | None, workload: Mapping[str, Any] | None) -> str:
    """The end of an input document with this image and workload (see with_context)."""
    return f',"image":{_dump_value(image)},"workload":{_dump_value(workload)}}}}}'


def _dump_value(value: Any) -> str:
    return orjson.dumps(value).decode()


def with_context(document: str, context: str | None) -> str:
    """A document with the image and workload (`_context_json`): one whose last two keys are
    null has them replaced (the same bytes as serialising it whole), any other is as it is.
    Every document of one SBOM's evaluation has the same image and workload, so a subject's
    document that already has them, or has none, is the same either way."""
    if context is None or not document.endswith(_NO_CONTEXT):
        return document
    return document[: -len(_NO_CONTEXT)] + context


class _Collector:
    def __init__(self) -> None:
        self.by_action: dict[Action, list[Finding]] = {a: [] for a in Action}
        self.errors: list[EvaluationFailure] = []

    def unavailable(self, component: Component, why: str) -> None:
        self.errors.append(
            EvaluationFailure(
                purl=component.purl,
                name=component.name,
                policy=TRUSTED_SOURCES,
                message=f"no trusted repository could be asked about it ({why}): cannot verify",
                fault=True,
            )
        )

    def disagrees(self, component: Component, problems: Sequence[str]) -> None:
        self.by_action[Action.WARN].append(
            Finding(
                purl=component.purl,
                name=component.name,
                version=component.version,
                policy=IDENTITY,
                title="Package identity",
                action=Action.WARN,
                reasons=(
                    f"{component.purl}: the SBOM's fields disagree with its purl "
                    f"({'; '.join(problems)}); sbomgate judged the package the purl names",
                ),
            )
        )

    def add(
        self,
        component: Component | None,
        outcomes: Sequence[PolicyOutcome],
        *,
        subject: bool = False,
    ) -> None:
        if not outcomes:  # most packages: nothing matched
            return
        purl = component.purl if component else None
        name = component.name if component else None
        version = component.version if component else None
        for outcome in outcomes:
            policy = outcome.policy
            if outcome.error is not None:
                self.errors.append(
                    EvaluationFailure(
                        purl=purl, name=name, policy=policy.name, message=outcome.error
                    )
                )
            elif outcome.matched:
                self.by_action[policy.action].append(
                    Finding(
                        purl=purl,
                        name=name,
                        version=version,
                        policy=policy.name,
                        title=policy.title,
                        action=policy.action,
                        reasons=outcome.reasons or (policy.title,),
                        subject=subject,
                    )
                )

    def verdict(self, components: int, sbom: Sbom) -> Verdict:
        return Verdict(
            components=components,
            subject=sbom.subject,
            violations=tuple(f for a in Action if a.denies for f in self.by_action[a]),
            warnings=tuple(self.by_action[Action.WARN]),
            audits=tuple(self.by_action[Action.AUDIT]),
            exemptions=tuple(self.by_action[Action.ALLOW]),
            errors=tuple(self.errors),
            source=sbom.source,
        )
