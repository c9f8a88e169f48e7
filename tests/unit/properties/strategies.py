"""The property suite's generators, shared by every parser family it covers.

The suite (tests/unit/properties) states one property of every parser sbomgate runs on input it
does not control: whatever it is given, it returns its result or raises its own error with a
one-line message, and the webhook answers every request with a valid review or a 4xx.

- test_sbom_properties: CycloneDX JSON/XML and SPDX bodies (parse_sbom);
- test_parser_properties: DSSE envelopes, in-toto statements, Sigstore bundles, the verifier
  over hostile attestations, CycloneDX XML roots, and the regressions fuzzing found;
- test_webhook_properties: AdmissionReviews, workloads and PackagePolicy reviews over HTTP;
- test_fuzz: the atheris targets (fuzz/) over the same parsers, a short coverage-guided run
  and the replay of every crash input they found.

Each family draws JSON from `json_values` over its own vocabulary (`words`): values made of the
keys and constants its format uses reach far deeper than random text would.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def settings_for(examples: int) -> settings:
    """Hypothesis settings: `examples` a test, no deadline (CI machines stall), and module
    fixtures allowed (the webhook's app is built once)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def words(vocabulary: list[str], *, max_size: int = 12) -> st.SearchStrategy[str]:
    """Strings: the format's own words, or any text."""
    return st.sampled_from(vocabulary) | st.text(max_size=max_size)


def json_values(
    text: st.SearchStrategy[str],
    *,
    integers: st.SearchStrategy[int] | None = None,
    max_leaves: int = 20,
) -> st.SearchStrategy[Any]:
    """Any JSON value whose strings and keys are drawn from `text` (integers: 64-bit unless
    `integers` says otherwise)."""
    if integers is None:
        integers = st.integers(-(2**63), 2**63 - 1)
    scalars = (
        st.none()
        | st.booleans()
        | integers
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=max_leaves,
    )


@st.composite
def edited(
    draw: st.DrawFn, document: Any, values: st.SearchStrategy[Any], keys: st.SearchStrategy[str]
) -> Any:
    """`document` with one to four edits at drawn paths: replace, delete, insert or wrap."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        parent: Any = None
        key: Any = None
        node = document
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            parent, node = node, node[key]
        action = draw(st.sampled_from(["replace", "delete", "insert", "wrap"]))
        if action == "insert" and isinstance(node, dict):
            node[draw(keys)] = draw(values)
        elif parent is None:
            document = draw(values) if action != "wrap" else [document]
        elif action == "delete":
            del parent[key]
        else:
            parent[key] = [node] if action == "wrap" else draw(values)
    return document
