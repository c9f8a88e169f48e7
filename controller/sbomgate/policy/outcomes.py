"""Policy outcomes kept across images: the cold path's main saving.

A new build of an image shares almost every package with the build before it, and many images
share base images, so most per-package evaluations in a cluster are repeats. A policy whose
answer can depend only on the package's own input is evaluated once per distinct package input
and its outcome reused, for every later image, until the policy set changes.

Which policies qualify is read from the policy itself (`context_free`), conservatively: it
reads `input` only through `input.v0.<field>` for fields other than `image` and `workload`
(the two that differ per image or workload for the same package), never `input` or
`input.v0` as a whole nor through a computed key, replaces no part of `input` (`with`), and
calls no builtin whose answer is not a function of its arguments (the clock, randomness, the
network, the runtime). Anything else is evaluated per image, as without the cache.

The key (`OutcomeCache.key_of`): what the package's input is made of, serialised
(`policy.input.input_fingerprint`: the component's fields the input holds, every fact:
publication times and the day counts made of them, OSV records, the vouching repository, the
identity disagreements), with the policies in scope. Equal parts make an equal input, with
`image` and `workload` left out; the list matches are a function of the identity and of the
data, and a cache belongs to one `PolicyEngine`, so to one set of policies and data: a changed
policy set is a new engine with an empty cache. Facts keep their own TTLs: a fact that changes
changes the key. The image subject's input (the one with `input.v0.sbom`) is never cached: it
is one per image.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sbomgate._internal import digests

if TYPE_CHECKING:
    from sbomgate.policy.engine import PolicyOutcome
    from sbomgate.policy.loader import Policy

__all__ = [
    "CONTEXT_FIELDS",
    "IMPURE_BUILTINS",
    "PACKAGE_NAMING",
    "OutcomeCache",
    "context_free",
    "match_projection",
    "reads_field",
]

# input.v0 fields that differ per image or workload for the same package.
CONTEXT_FIELDS = frozenset({"image", "workload"})
# Builtins whose answer is not a function of their arguments alone.
IMPURE_BUILTINS = frozenset(
    {
        "time.now_ns",
        # Verified against the clock (a certificate's validity, a token's exp and nbf).
        "crypto.x509.parse_and_verify_certificates",
        "crypto.x509.parse_and_verify_certificates_with_options",
        "io.jwt.decode_verify",
        "rand.intn",
        "uuid.rfc4122",
        "opa.runtime",
        "http.send",
        "net.lookup_ip_addr",
        "print",
        "trace",
    }
)
# Paths of `input` that differ for (almost) every package, or that are large and one per
# image: a `match` that reads any of them, or a document holding them, is not worth a
# projection (`match_projection`): each would be new.
PACKAGE_NAMING = (
    ("v0", "package", "purl"),
    ("v0", "package", "name"),
    ("v0", "package", "version"),
    ("v0", "identity", "name"),
    ("v0", "identity", "version"),
    ("v0", "identity", "canonical", "package"),
    ("v0", "identity", "canonical", "version"),
    ("v0", "sbom"),
)
# A cached entry's bookkeeping beside its reasons' text (measured order of magnitude: the key,
# the tuple and the outcome objects).
ENTRY_OVERHEAD = 200


def context_free(policy: Policy) -> bool:
    """True when the policy's answer can depend only on the package's own input (see the
    module docstring for the rules)."""
    module = policy.module
    if module.replaces_input:
        return False
    if any(name in IMPURE_BUILTINS for name, _ in module.calls):
        return False
    for path in module.input_reads:
        if len(path) < 2 or path[0] != "v0" or path[1] in CONTEXT_FIELDS:
            return False
    return True


def match_projection(policy: Policy) -> tuple[tuple[str, ...], ...] | None:
    """The paths of `input` whose values decide the policy's `match` (`RegoModule.match_reads`,
    none under another), or None when its `match` is not to be kept by them: the policy is not
    context-free, it may read `input.v0.sbom`, what its `match` reads cannot be told, or it reads
    a path in PACKAGE_NAMING.

    Two inputs with the same values at these paths (or the same absence) give the same
    `match`, since the policy and the data are fixed in an engine: a package whose projection
    did not match before does not match now (`PolicyEngine.evaluate_input`). Unlike the outcome
    cache this holds for a new package too, as long as what decides `match` was seen: a
    license expression, a publication age in days, an empty advisory list."""
    reads = policy.module.match_reads
    if reads is None or not context_free(policy) or reads_field(policy, "sbom"):
        return None  # (a policy that may read the SBOM is evaluated with it: once per image)
    for path in reads:
        if any(path == leaf[: len(path)] or leaf == path[: len(leaf)] for leaf in PACKAGE_NAMING):
            return None
    return tuple(sorted(p for p in reads if not any(q != p and p[: len(q)] == q for q in reads)))


def reads_field(policy: Policy, field: str) -> bool:
    """True when the policy may read `input.v0.<field>`: it reads that path, or `input` or
    `input.v0` whole or through a computed key, or replaces part of `input` (`with`)."""
    module = policy.module
    if module.replaces_input:
        return True
    return any(len(path) < 2 or path[0] != "v0" or path[1] == field for path in module.input_reads)


class OutcomeCache:
    """Outcomes of the context-free policies per package input, least recently used first
    out, bounded by an estimate of their size in bytes. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[tuple[PolicyOutcome, ...], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(document: str) -> bytes:
        """The key of a context-free input document."""
        # 256 bits: whoever writes an SBOM chooses inputs, and a collision of two (one benign,
        # one not) must not be within reach.
        return digests.blake2b_256(document.encode())

    @staticmethod
    def key_of(fingerprint: bytes, scope: str) -> bytes:
        """The key of a package's input by what it is made of (`policy.input.input_fingerprint`)
        and the policies in scope (`*`: all; else their names, sorted, comma-separated)."""
        digest = hashlib.blake2b(fingerprint, digest_size=32)  # 256 bits: see `key`
        digest.update(b"\0" + scope.encode())
        return digest.digest()

    def get(self, key: bytes) -> tuple[PolicyOutcome, ...] | None:
        """The outcomes kept for `key`, or None."""
        # Without the lock (a new build asks 5,000 times): each OrderedDict call is atomic under
        # the GIL, and an entry that `put` evicts meanwhile is simply not moved. The counters
        # may miss a count when two threads add at once (they are a metric).
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        try:  # noqa: SIM105 (suppress() costs a context manager per call)
            self._entries.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return entry[0]

    def put(self, key: bytes, outcomes: Sequence[PolicyOutcome]) -> None:
        """Keep `outcomes` for `key`, dropping the least recently used beyond the bound."""
        size = ENTRY_OVERHEAD + sum(
            64 + sum(len(r) for r in outcome.reasons) for outcome in outcomes
        )
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (tuple(outcomes), size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
