"""The key of every cache that holds a decision, in one place, with why each part is in it.

A cached answer may be reused only for exactly what it judged. Each key therefore names
everything that shaped the answer; anything left out must be something the answer cannot
depend on, or something bounded by the entry's TTL (said below where that is the case).

Image checks (`ImageChecker`, process-wide, shared by every policy set of the process):

    (repository, digest, trust, settings)

- repository (`registry/repository`): attestations are found per repository (the cosign
  `.att` tag, referrers and the fallback tag live in a repository), so the same digest pushed
  to `dev/` and `prod/` may carry different attestations, and trust policies select images by
  repository name.
- digest: the content judged (an index or a manifest).
- trust: the fingerprint of the trust policies that cover the repository (names and contents:
  keys, identities, trusted roots, requirements, allowUnsigned). A different set of covering
  policies, or a new version of one, is a different key; a change to a policy that does not
  cover the repository keeps its entries.
- settings: checker settings that change the answer (e.g. whether an empty SBOM is refused).

Verdicts (`AdmissionController`, per policy set):

    (policies, image, documents, workload, scope)

- policies: the fingerprint of the policy set and its data (every policy's source, action,
  precedence, terminal, enabled and scope; the data documents and quarantine entries, which
  also decide `input.v0.lists`).
- image: the image check key above (repository, digest, covering trust policies).
- documents: the fingerprint of what verification produced for it: the bytes of every
  verified SBOM and the `input.v0.image` each is evaluated with (pinned reference, signer,
  issuer, predicate type, provenance). The same image key verified again after its TTL may
  find other attestations: their verdict is not the old one.
- workload: `input.v0.workload` (kind, namespace, name, labels, annotations, operation,
  dry_run), when some policy may read it (`reads_workload`: any use of `input` other than a
  field named here counts); otherwise None, so one verdict serves every workload that runs
  the image.
- scope: the names of the policies whose scope applies to this namespace and image, only when
  some policy has a scope.

Not in the verdict key: facts (trusted-source answers, OSV). They keep their own TTLs and
verdicts expire after `cache.verdictTtl`, so a changed fact is in force within that time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from sbomgate.policy.loader import Policy

ImageCheckKey = tuple[str, str, str, str]
VerdictKey = tuple[str, ImageCheckKey, str, bytes | None, frozenset[str] | None]


def fingerprint(parts: Iterable[bytes | str]) -> str:
    """A SHA-256 over length-prefixed parts (no two sequences of parts collide)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys; values JSON cannot hold (YAML dates) as their text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)


def image_check_key(*, repository: str, digest: str, trust: str, settings: str) -> ImageCheckKey:
    """The key of an image check (see the module docstring)."""
    return (repository, digest, trust, settings)


def verdict_key(
    *,
    policies: str,
    image: ImageCheckKey,
    documents: str,
    workload: Mapping[str, Any] | None,
    scope: frozenset[str] | None,
) -> VerdictKey:
    """The key of a verdict (see the module docstring); the workload as canonical JSON."""
    return (
        policies,
        image,
        documents,
        canonical_json(workload) if workload is not None else None,
        scope,
    )


def documents_fingerprint(documents: Sequence[tuple[bytes, Mapping[str, Any]]]) -> str:
    """Of verified SBOMs as (bytes, input.v0.image) pairs, in the order they are evaluated."""
    return fingerprint(
        part
        for data, image_input in documents
        for part in (hashlib.sha256(data).digest(), canonical_json(image_input))
    )


def policy_set_fingerprint(policies: Iterable[Policy], data: Mapping[str, Any]) -> str:
    """Of everything in a policy set that decides a verdict (see the module docstring)."""
    return fingerprint(
        [
            *(
                part
                for p in policies
                for part in (
                    p.name,
                    p.package,
                    p.module.source,
                    p.action.value,
                    str(p.precedence),
                    str(p.terminal),
                    str(p.enabled),
                    canonical_json(p.scope),
                )
            ),
            canonical_json(data),
        ]
    )


# `input` followed by a field a verdict is already keyed on (through the image check and the
# documents); any other use of `input` (the workload, `input` or `input.v0` as a whole, a
# computed key) may read the workload.
_INPUT = re.compile(r"\binput\b")
_KEYED_INPUT = re.compile(
    r"input\.v0\.(?:package|identity|osv|vulnerabilities|repository|sbom|image_subject|image|lists)\b"
)


def reads_workload(source: str) -> bool:
    """Whether a policy's verdict may depend on `input.v0.workload`: conservatively, any use
    of `input` in its code (not its comments) other than a keyed field."""
    code = _without_comments(source)
    if "workload" in code:
        return True
    return any(_KEYED_INPUT.match(code, match.start()) is None for match in _INPUT.finditer(code))


def _without_comments(source: str) -> str:
    """Rego source with its `#` comments blanked (strings, raw strings and escapes respected:
    the source has already been parsed, so its strings are well-formed)."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(source):
        char = source[i]
        if quote is not None:
            if char == "\\" and quote == '"':
                out.append(source[i : i + 2])
                i += 2
                continue
            if char == quote or (char == "\n" and quote == '"'):
                quote = None
        elif char in '"`':
            quote = char
        elif char == "#":
            end = source.find("\n", i)
            i = len(source) if end < 0 else end
            continue
        out.append(char)
        i += 1
    return "".join(out)
