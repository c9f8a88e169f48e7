"""What sbomgate counts before evaluation so that policies need not: packages' ages in whole
days (`published_days_ago`, `first_published_days_ago`) and an SPDX expression's terms
(`license.spdx_terms`). The bundled policies read only these, so these are what decides."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
import regorus

from sbomgate.policy.input import PackageFacts, build_input, days_since, spdx_terms, timestamp_ns
from sbomgate.sbom.model import Component

POLICIES = Path(__file__).resolve().parents[3] / "controller" / "sbomgate" / "policies"
# 2024-06-15T12:00:00Z
NOW = 1_718_452_800_000_000_000
DAY = 86_400 * 10**9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-10T12:00:00Z", "2024-06-10T12:00:00+00:00"),
        ("2024-06-15T13:59:59.123456+02:00", "2024-06-15T11:59:59.123456+00:00"),
        ("2023-06-15T13:59:59.5-07:00", "2023-06-15T20:59:59.500000+00:00"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00+00:00"),
        ("2000-02-29", "2000-02-29T00:00:00+00:00"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        ("2199-12-31T23:59:59Z", "2199-12-31T23:59:59+00:00"),
    ],
)
def test_readable_timestamps(text: str, expected: str) -> None:
    ns = timestamp_ns(text)
    assert ns is not None
    want = dt.datetime.fromisoformat(expected)
    assert ns // 1000 == int(want.timestamp()) * 10**6 + want.microsecond


def test_nanoseconds_are_kept() -> None:
    assert (
        timestamp_ns("2024-06-10T12:00:00.000000001Z") == timestamp_ns("2024-06-10T12:00:00Z") + 1
    )  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-06-10 12:00:00",
        "2024-13-01T00:00:00Z",
        "2024-06-31T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29",
        "2024-06-10T24:00:00Z",
        "2024-06-10T12:00:60Z",
        "2024-06-10T12:00:00+25:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2024-06-10T12:00:00.1234567891Z",
        "2024-06-10T12:00:00Z\n",
        "2024-06-10t12:00:00z",
        "2024-06-10T12:00Z",
    ],
)
def test_unreadable_timestamps(text: str) -> None:
    assert timestamp_ns(text) is None
    assert days_since(text, NOW) is None


@pytest.mark.parametrize(
    ("published", "days"),
    [
        ("2024-06-10T11:00:00Z", 5),
        ("2024-06-14T06:00:00Z", 1),
        ("2024-06-15T12:00:00Z", 0),
        ("2024-06-01T12:00:00Z", 14),  # exactly 14 days: not younger than 14
        ("2024-06-01T12:00:01Z", 13),
        ("2024-06-15T12:00:01Z", -1),  # a second in the future is in the future
        ("2024-07-01T00:00:00Z", -16),
        ("2024-06-12", 3),
        (None, None),
    ],
)
def test_days_since(published: str | None, days: int | None) -> None:
    assert days_since(published, NOW) == days


def test_whole_days_decide_as_nanoseconds_do_for_a_whole_minimum() -> None:
    """`days < N` for whole N is `age < N days` exactly (the old policies compared
    nanoseconds); every second around the 14-day boundary."""
    for offset in range(-3, 4):
        age_ns = 14 * DAY + offset * 10**9
        published = NOW - age_ns
        stamp = dt.datetime.fromtimestamp(published // 10**9, dt.UTC)
        days = days_since(stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), NOW)
        assert days is not None
        assert (days < 14) == (age_ns < 14 * DAY)


def test_ages_in_the_input() -> None:
    facts = PackageFacts(published_at="2024-06-10T12:00:00Z", first_published_at="2019-13-01")
    meta = build_input(Component(name="x", purl="pkg:npm/x@1"), facts=facts, now_ns=NOW)["v0"][
        "package"
    ]["upstream_metadata"]
    assert meta["published_days_ago"] == 5
    assert meta["first_published_days_ago"] is None  # month 13: unreadable, never old
    assert meta["published_at"] == "2024-06-10T12:00:00Z"  # Cloudsmith's field as it was


@pytest.mark.parametrize(
    ("expression", "terms"),
    [
        ("MIT", ("MIT",)),
        ("MIT OR Apache-2.0", ("MIT", "OR", "Apache-2.0")),
        (
            "(GPL-2.0-only WITH Classpath-exception-2.0 OR MIT) AND BSD-3-Clause",
            ("(", "GPL-2.0-only", "OR", "MIT", ")", "AND", "BSD-3-Clause"),
        ),
        ("(MIT)", ("(", "MIT", ")")),
        ("mit or  gpl-3.0+", ("mit", "or", "gpl-3.0+")),
        ("MIT with", ("MIT",)),
    ],
)
def test_spdx_terms(expression: str, terms: tuple[str, ...]) -> None:
    assert spdx_terms(expression) == terms


# Expressions as sbomgate writes them from real SBOMs, and some that are not well formed.
EXPRESSIONS = [
    "MIT",
    "GPL-3.0-only",
    "MIT OR GPL-3.0-only",
    "Apache-2.0 AND (MIT OR GPL-2.0-or-later)",
    "GPL-2.0-only WITH Classpath-exception-2.0",
    "(LGPL-2.1-or-later AND GPL-3.0-or-later WITH GCC-exception-3.1) OR LicenseRef-x",
    "LicenseRef-Artistic AND GPL-1.0-or-later",
    "(GPL-3.0-only AND LicenseRef-sbomgate-invalid-WITH AND MIT)",
    "BSD-3-Clause AND NOASSERTION",
    "((MIT OR (GPL-2.0-only AND Apache-2.0)) AND ISC)",
    "(MIT AND GPL-3.0-only",
    "MIT OR",
    "mit or gpl-3.0+",
]


@pytest.mark.parametrize("data", [{}, {"sbomgate": {"license": {"allow": ["MIT", "Apache-*"]}}}])
def test_license_policy_reads_the_terms_as_it_reads_the_expression(data: dict[str, object]) -> None:
    """The bundled license policy decides the same, with the same messages, from sbomgate's
    split as from tokenising the expression itself."""
    engine = regorus.Engine()
    engine.add_policy("license.rego", (POLICIES / "license.rego").read_text())
    engine.add_data(data)
    for expression in EXPRESSIONS:
        component = Component(name="x", purl="pkg:npm/x@1", license=expression)
        document = build_input(component, now_ns=NOW)
        assert document["v0"]["package"]["license"]["spdx_terms"] == list(spdx_terms(expression))
        answers = []
        for with_terms in (True, False):
            if not with_terms:
                document["v0"]["package"]["license"].pop("spdx_terms")
            engine.set_input_json(orjson.dumps(document).decode())
            answers.append(
                (
                    engine.eval_rule("data.cloudsmith.match"),
                    engine.eval_rule("data.cloudsmith.reason"),
                )
            )
        assert answers[0] == answers[1], expression
