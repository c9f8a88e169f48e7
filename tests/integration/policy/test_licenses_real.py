"""Licenses as people write them: names, spellings, trove classifiers, Unicode look-alikes,
misused WITH, OR with an unknown. Each spelling has the SPDX expression sbomgate must read it as
and the bundled license policy's verdict in deny-list mode (its defaults) and allow-list mode,
through the real parser, input builder and Rego engine (and OPA, as the oracle)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sbomgate.errors import SbomError
from sbomgate.output import json as json_output
from sbomgate.policy import PolicyEngine, build_input, load_policy
from sbomgate.policy.engine import LICENSES
from sbomgate.sbom import Component, Sbom, _licensing, _spdx_list, licenses, parse_sbom
from sbomgate.sbom.license_names import resolve_spelling
from support.spdx_license_list import read_list

ROOT = Path(__file__).resolve().parents[3]
LICENSE_POLICY = ROOT / "policies" / "license.rego"
ALLOW = {"sbomgate": {"license": {"allow": ["MIT", "Apache-2.0", "BSD-*", "ISC"]}}}
INVALID = "LicenseRef-sbomgate-invalid-WITH"
D, OK = True, False  # denied / accepted

# (as written, SPDX expression sbomgate reads, denied in deny-list mode, denied in allow mode)
CASES: list[tuple[str, str | None, bool, bool]] = [
    # names and common spellings of denied licenses: denied in both modes
    ("GNU General Public License v3.0", "GPL-3.0-only", D, D),
    ("GNU General Public License v3.0 only", "GPL-3.0-only", D, D),
    ("GNU General Public License v3.0 or later", "GPL-3.0-or-later", D, D),
    ("GNU General Public License, version 2", "GPL-2.0-only", D, D),
    ("GNU GPL v2 or any later version", "GPL-2.0-or-later", D, D),
    ("GNU GPLv3", "GPL-3.0-only", D, D),
    ("GPLv3", "GPL-3.0-only", D, D),
    ("GPL v3", "GPL-3.0-only", D, D),
    ("GPL-3", "GPL-3.0-only", D, D),
    ("gpl3", "GPL-3.0-only", D, D),
    ("GPLv2+", "GPL-2.0-or-later", D, D),
    ("GPL", "GPL-1.0-or-later", D, D),  # unversioned: any version (the GPL says so)
    ("AGPL v3", "AGPL-3.0-only", D, D),
    ("AGPLv3+", "AGPL-3.0-or-later", D, D),
    ("GNU Affero General Public License v3.0", "AGPL-3.0-only", D, D),
    ("Affero GPL 3", "AGPL-3.0-only", D, D),
    ("Server Side Public License", "SSPL-1.0", D, D),
    ("Server Side Public License, v 1", "SSPL-1.0", D, D),
    ("SSPL", "SSPL-1.0", D, D),
    ("SSPLv1", "SSPL-1.0", D, D),
    ("European Union Public Licence 1.2", "EUPL-1.2", D, D),
    ("Creative Commons Attribution Share Alike 4.0 International", "CC-BY-SA-4.0", D, D),
    ("CC BY-SA 4.0", "CC-BY-SA-4.0", D, D),
    ("Open Software License 3.0", "OSL-3.0", D, D),
    # look-alike characters: the id they imitate
    ("GPL\u20103.0-only", "GPL-3.0-only", D, D),  # hyphen
    ("GPL\u20113.0-only", "GPL-3.0-only", D, D),  # non-breaking hyphen
    ("GPL\u20133.0-only", "GPL-3.0-only", D, D),  # en dash
    ("GPL\u22123.0-only", "GPL-3.0-only", D, D),  # minus sign
    ("GPL\uff0d3.0-only", "GPL-3.0-only", D, D),  # full-width hyphen-minus
    ("\uff27\uff30\uff2c-3.0-only", "GPL-3.0-only", D, D),  # full-width letters
    ("G\u0420L-3.0-only", "GPL-3.0-only", D, D),  # Cyrillic Er
    ("\u0410GPL-3.0-only", "AGPL-3.0-only", D, D),  # Cyrillic A
    ("GPL-3.0\u200b-only", "GPL-3.0-only", D, D),  # zero-width space
    ("AGPL\u20103.0-or-later", "AGPL-3.0-or-later", D, D),
    # WITH used for something other than license WITH exception: unknown, every license counts
    ("MIT WITH GPL-3.0-only", f"MIT AND GPL-3.0-only AND {INVALID}", D, D),
    ("Apache-2.0 WITH AGPL-3.0-or-later", f"Apache-2.0 AND AGPL-3.0-or-later AND {INVALID}", D, D),
    ("MIT WITH GPLv3", f"MIT AND GPL-3.0-only AND {INVALID}", D, D),
    ("mit with sspl-1.0", f"MIT AND SSPL-1.0 AND {INVALID}", D, D),
    ("MIT WITH Apache-2.0", f"MIT AND Apache-2.0 AND {INVALID}", OK, D),
    (
        "Classpath-exception-2.0 WITH MIT",
        f"LicenseRef-Classpath-exception-2.0 AND MIT AND {INVALID}",
        OK,
        D,
    ),
    ("Classpath-exception-2.0", "LicenseRef-Classpath-exception-2.0", OK, D),
    (
        "GPL-2.0-only WITH Foo-exception",
        f"GPL-2.0-only AND LicenseRef-Foo-exception AND {INVALID}",
        D,
        D,
    ),
    (
        "Apache-2.0 WITH Foo-exception",
        f"Apache-2.0 AND LicenseRef-Foo-exception AND {INVALID}",
        OK,
        D,
    ),
    # WITH used as it should be
    (
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        D,
        D,
    ),
    ("GPLv2 with Classpath exception", "GPL-2.0-only WITH Classpath-exception-2.0", D, D),
    ("GPL-2.0-with-classpath-exception", "GPL-2.0-only WITH Classpath-exception-2.0", D, D),
    ("Apache-2.0 WITH LLVM-exception", "Apache-2.0 WITH LLVM-exception", OK, OK),
    # an unknown alternative is not a way out of a denied license
    ("GPL-3.0-only OR NOASSERTION", "GPL-3.0-only OR NOASSERTION", D, D),
    ("NOASSERTION OR GPL-3.0-only", "NOASSERTION OR GPL-3.0-only", D, D),
    ("AGPL-3.0-only OR NONE", "AGPL-3.0-only OR NONE", D, D),
    ("GPL-3.0-only OR LicenseRef-Free", "GPL-3.0-only OR LicenseRef-Free", D, D),
    ("GPLv3 OR Some Free License", "GPL-3.0-only OR LicenseRef-Some-Free-License", D, D),
    ("(GPL-3.0-only OR NOASSERTION) AND MIT", "(GPL-3.0-only OR NOASSERTION) AND MIT", D, D),
    ("MIT OR NOASSERTION", "MIT OR NOASSERTION", OK, OK),
    ("MIT AND NOASSERTION", "MIT AND NOASSERTION", OK, D),
    ("GPL-3.0-only OR MIT", "GPL-3.0-only OR MIT", OK, OK),
    # lists written with separators an SPDX expression does not have: every license applies
    ("GPL-3.0-only, MIT", "GPL-3.0-only AND MIT", D, D),
    ("MIT; GPLv3", "MIT AND GPL-3.0-only", D, D),
    ("MIT & AGPL v3", "MIT AND AGPL-3.0-only", D, D),
    ("Apache 2.0, MIT License", "Apache-2.0 AND MIT", OK, OK),
    ("Acme License, Version 3", "LicenseRef-Acme-License-Version-3", OK, D),
    # unknown licenses: the policy decides (denied in allow-list mode)
    ("Acme Proprietary", "LicenseRef-Acme-Proprietary", OK, D),
    ("Public Domain", "LicenseRef-Public-Domain", OK, D),
    ("LicenseRef-Acme", "LicenseRef-Acme", OK, D),
    ("Foo-1.0", "LicenseRef-Foo-1.0", OK, D),
    ("BSD License", "LicenseRef-BSD-License", OK, D),  # which BSD?
    ("NOASSERTION", None, OK, D),  # no information: unknown too
    # permissive names
    ("Apache License, Version 2.0", "Apache-2.0", OK, OK),
    ("Apache License 2.0", "Apache-2.0", OK, OK),
    ("The Apache Software License, Version 2.0", "Apache-2.0", OK, OK),
    ("Apache 2", "Apache-2.0", OK, OK),
    ("ASL 2.0", "Apache-2.0", OK, OK),
    ("MIT License", "MIT", OK, OK),
    ("The MIT License (MIT)", "MIT", OK, OK),
    ("Expat", "MIT", OK, OK),
    ('BSD 3-Clause "New" or "Revised" License', "BSD-3-Clause", OK, OK),
    ("New BSD License", "BSD-3-Clause", OK, OK),
    ("3-Clause BSD License", "BSD-3-Clause", OK, OK),
    ("ISC License (ISCL)", "ISC", OK, OK),
    ("Mozilla Public License 2.0", "MPL-2.0", OK, D),
    ("GNU Lesser General Public License v2.1 or later", "LGPL-2.1-or-later", OK, D),
    ("CC0 1.0 Universal", "CC0-1.0", OK, D),
    ("MIT/Apache-2.0", "MIT OR Apache-2.0", OK, OK),  # crates.io's old OR
    # PyPI trove classifiers (cyclonedx-py writes them as license names)
    ("License :: OSI Approved :: MIT License", "MIT", OK, OK),
    ("License :: OSI Approved :: GNU General Public License v3 (GPLv3)", "GPL-3.0-only", D, D),
    (
        "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
        D,
        D,
    ),
    (
        "License :: OSI Approved :: GNU Library or Lesser General Public License (LGPL)",
        "LGPL-2.0-or-later",
        OK,
        D,
    ),
    ("License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0", OK, D),
    ("License :: OSI Approved :: ISC License (ISCL)", "ISC", OK, OK),
    ("License :: OSI Approved :: Python Software Foundation License", "PSF-2.0", OK, D),
    (
        "License :: OSI Approved :: Apache Software License",  # alone: which Apache?
        "LicenseRef-License-OSI-Approved-Apache-Software-License",
        OK,
        D,
    ),
    # what syft writes for a name it does not know
    ("LicenseRef-GPLv3", "GPL-3.0-only", D, D),
    ("LicenseRef-GNU-General-Public-License-v3.0", "GPL-3.0-only", D, D),
    ("LicenseRef-Apache-License-2.0", "Apache-2.0", OK, OK),
]


def cdx(components: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components})


def cdx_component(i: int, licenses_: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "library", "name": f"p{i}", "purl": f"pkg:pypi/p{i}@1.0", "licenses": licenses_}


def by_name(texts: list[str]) -> Sbom:
    """Each text as a CycloneDX `license.name` (where names usually are)."""
    return parse_sbom(
        cdx([cdx_component(i, [{"license": {"name": t}}]) for i, t in enumerate(texts)]),
        source="t",
    )


def engine(data: dict[str, Any] | None) -> PolicyEngine:
    policy = load_policy(str(LICENSE_POLICY), LICENSE_POLICY.read_text())
    return PolicyEngine([policy], data)


def denied(sbom: Sbom, data: dict[str, Any] | None) -> set[str]:
    verdict = engine(data).evaluate_sbom(sbom)
    assert verdict.errors == ()
    return {f.purl or "" for f in verdict.violations}


def test_every_spelling_reads_as_its_spdx_license() -> None:
    sbom = by_name([c[0] for c in CASES])
    got = {c.name: c.license for c in sbom.components}
    wrong = {
        text: (got[f"p{i}"], expected)
        for i, (text, expected, _, _) in enumerate(CASES)
        if got[f"p{i}"] != expected
    }
    assert wrong == {}


@pytest.mark.parametrize(("mode", "data"), [("deny-list", None), ("allow-list", ALLOW)])
def test_bundled_license_policy_verdict_per_spelling(mode: str, data: Any) -> None:
    sbom = by_name([c[0] for c in CASES])
    got = denied(sbom, data)
    column = 2 if mode == "deny-list" else 3
    expected = {f"pkg:pypi/p{i}@1.0" for i, case in enumerate(CASES) if case[column]}
    wrong = {
        CASES[int(p.split("/p")[1].split("@")[0])][0]: ("denied" if p in got else "accepted")
        for p in got ^ expected
    }
    assert wrong == {}


@pytest.mark.parametrize(("data_name", "data"), [("deny-list", None), ("allow-list", ALLOW)])
def test_opa_agrees_on_every_spelling(
    data_name: str, data: Any, opa_bin: str, tmp_path: Path
) -> None:
    sbom = by_name([c[0] for c in CASES])
    inputs = [build_input(c) for c in sbom.components]
    driver = tmp_path / "driver.rego"
    driver.write_text(
        "package driver\nimport rego.v1\n"
        "results := [m | some i in data.cases; m := data.cloudsmith.match with input as i]\n"
    )
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps({**(data or {}), "cases": inputs}))
    files = ["-d", str(LICENSE_POLICY), "-d", str(driver), "-d", str(data_file)]
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", *files, "data.driver.results"],
        capture_output=True,
        text=True,
        check=True,
    )
    oracle = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    ours = denied(sbom, data)
    assert [f"pkg:pypi/p{i}@1.0" in ours for i in range(len(CASES))] == oracle


# --- the issue's examples, in every place a license can be written -----------------------

BYPASSES = [
    ("GNU General Public License v3.0", "GPL-3.0-only"),
    ("GPLv3", "GPL-3.0-only"),
    ("AGPL v3", "AGPL-3.0-only"),
    ("Server Side Public License", "SSPL-1.0"),
    ("GPL\u20103.0-only", "GPL-3.0-only"),
    ("MIT WITH GPL-3.0-only", f"MIT AND GPL-3.0-only AND {INVALID}"),
    ("GPL-3.0-only OR NOASSERTION", "GPL-3.0-only OR NOASSERTION"),
]


def _spdx(text: str, field: str) -> bytes:
    return orjson.dumps(
        {
            "spdxVersion": "SPDX-2.3",
            "packages": [
                {
                    "SPDXID": "SPDXRef-p",
                    "name": "p",
                    "versionInfo": "1.0",
                    "externalRefs": [
                        {
                            "referenceCategory": "PACKAGE-MANAGER",
                            "referenceType": "purl",
                            "referenceLocator": "pkg:pypi/p@1.0",
                        }
                    ],
                    field: text,
                }
            ],
        }
    )


def _xml(text: str, element: str) -> bytes:
    inner = (
        f"<expression>{escape(text)}</expression>"
        if element == "expression"
        else f"<license><{element}>{escape(text)}</{element}></license>"
    )
    return (
        '<bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1"><components>'
        '<component type="library"><name>p</name><version>1.0</version>'
        f"<licenses>{inner}</licenses><purl>pkg:pypi/p@1.0</purl></component>"
        "</components></bom>"
    ).encode()


def _cdx(entry: dict[str, Any]) -> bytes:
    return cdx([{"type": "library", "name": "p", "purl": "pkg:pypi/p@1.0", "licenses": [entry]}])


FEEDS = {
    "cyclonedx license.name": lambda t: _cdx({"license": {"name": t}}),
    "cyclonedx license.id": lambda t: _cdx({"license": {"id": t}}),
    "cyclonedx expression": lambda t: _cdx({"expression": t}),
    "cyclonedx xml license.name": lambda t: _xml(t, "name"),
    "cyclonedx xml expression": lambda t: _xml(t, "expression"),
    "spdx licenseDeclared": lambda t: _spdx(t, "licenseDeclared"),
    "spdx licenseConcluded": lambda t: _spdx(t, "licenseConcluded"),
}


@pytest.mark.parametrize("feed", sorted(FEEDS))
@pytest.mark.parametrize(("text", "expected"), BYPASSES)
def test_issue_examples_are_denied_wherever_written(feed: str, text: str, expected: str) -> None:
    try:
        sbom = parse_sbom(FEEDS[feed](text), source="t")
    except SbomError as exc:
        # An expression field may refuse what is not an expression: that denies too.
        assert "expression" in feed or "spdx" in feed, exc
        return
    (component,) = sbom.components
    assert component.license == expected
    assert denied(sbom, None) == {"pkg:pypi/p@1.0"}
    assert denied(sbom, ALLOW) == {"pkg:pypi/p@1.0"}


def test_reason_names_what_was_written() -> None:
    sbom = by_name(["GNU General Public License v3.0"])
    (finding,) = engine(None).evaluate_sbom(sbom).violations
    assert finding.reasons == (
        'license GPL-3.0-only (written "GNU General Public License v3.0") of pkg:pypi/p0@1.0 is '
        "copyleft and denied: GPL-3.0-only matched the license deny list (GPL-*)",
    )


# --- several license entries on one component (cyclonedx-py, syft) ------------------------


@pytest.mark.parametrize(
    ("entries", "expected", "deny", "allow"),
    [
        # cyclonedx-py lists the SPDX id and the trove classifier of the same license
        (
            [
                {"license": {"id": "Apache-2.0"}},
                {"license": {"name": "License :: OSI Approved :: Apache Software License"}},
            ],
            "Apache-2.0",
            OK,
            OK,
        ),
        (
            [
                {"license": {"id": "BSD-3-Clause"}},
                {"license": {"name": "License :: OSI Approved :: BSD License"}},
            ],
            "BSD-3-Clause",
            OK,
            OK,
        ),
        (
            [
                {"license": {"name": "License :: OSI Approved :: MIT License"}},
                {"license": {"id": "MIT"}},
            ],
            "MIT",
            OK,
            OK,
        ),
        (
            [
                {"expression": "MIT OR Apache-2.0"},
                {"license": {"name": "License :: OSI Approved :: Apache Software License"}},
            ],
            "(MIT OR Apache-2.0) AND LicenseRef-License-OSI-Approved-Apache-Software-License",
            OK,
            D,
        ),
        # a classifier of another family is a second license, not a restatement
        (
            [
                {"license": {"id": "MIT"}},
                {"license": {"name": "License :: OSI Approved :: BSD License"}},
            ],
            "MIT AND LicenseRef-License-OSI-Approved-BSD-License",
            OK,
            D,
        ),
        (
            [
                {"license": {"id": "Apache-2.0"}},
                {
                    "license": {
                        "name": "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"
                    }
                },
            ],
            "Apache-2.0 AND GPL-3.0-only",
            D,
            D,
        ),
        (
            [{"license": {"id": "MIT"}}, {"license": {"name": "GPLv3"}}],
            "MIT AND GPL-3.0-only",
            D,
            D,
        ),
        # a version-less name that is not a classifier may be another license of the package
        # (Debian's `Artistic`, 1.0, beside `Artistic-2.0` in perl's copyright): it stays
        (
            [{"license": {"id": "Artistic-2.0"}}, {"license": {"name": "Artistic"}}],
            "Artistic-2.0 AND LicenseRef-Artistic",
            OK,
            D,
        ),
        (
            [{"expression": "LicenseRef-Artistic AND Artistic-2.0"}],
            "LicenseRef-Artistic AND Artistic-2.0",
            OK,
            D,
        ),
        (
            [{"license": {"id": "BSD-3-Clause"}}, {"license": {"name": "BSD"}}],
            "BSD-3-Clause AND LicenseRef-BSD",
            OK,
            D,
        ),
        (
            [{"license": {"id": "MIT"}}, {"expression": "NOASSERTION"}],
            "MIT",
            OK,
            OK,
        ),
    ],
)
def test_license_lists(entries: list[Any], expected: str, deny: bool, allow: bool) -> None:
    sbom = parse_sbom(cdx([cdx_component(0, entries)]), source="t")
    assert sbom.components[0].license == expected
    assert bool(denied(sbom, None)) is deny
    assert bool(denied(sbom, ALLOW)) is allow


# --- the data behind the spellings ----------------------------------------------------------


def test_shipped_spdx_list_is_the_library_copy() -> None:
    """_spdx_list.py is what tests/support/spdx_license_list.py builds from cyclonedx-python-lib's
    copy of the SPDX License List (run it again after upgrading that library)."""
    version, licenses_, exceptions = read_list()
    shipped = (_spdx_list.VERSION, _spdx_list.LICENSES, _spdx_list.EXCEPTIONS)
    assert shipped == (version, tuple(licenses_), tuple(exceptions))


def test_every_spdx_id_is_a_known_license() -> None:
    """Every id on the SPDX list reads as a license (deprecated ids as their replacement),
    whether license-expression's index has it or only the newer SPDX list does."""
    unknown = [
        spdx_id
        for spdx_id, _ in _spdx_list.LICENSES
        if (licenses.license_from_name(spdx_id) or "LicenseRef-").startswith("LicenseRef-")
    ]
    assert unknown == []


def test_spdx_names_do_not_resolve_to_another_license() -> None:
    """A full name from the SPDX list never reads as a different license (names two
    licenses share are left unknown rather than guessed)."""
    wrong = {}
    for spdx_id, name in _spdx_list.LICENSES:
        from_id = licenses.license_from_name(spdx_id)
        from_name = licenses.license_from_name(name)
        if from_name != from_id and not (from_name or "").startswith("LicenseRef-"):
            wrong[name] = (from_name, from_id)
    assert wrong == {}


def test_exceptions_resolve_as_exceptions() -> None:
    for spdx_id, name in _spdx_list.EXCEPTIONS:
        found = resolve_spelling(spdx_id)
        if found is not None and getattr(found, "id", "").startswith("GPL-"):
            continue  # deprecated `GPL-2.0-with-...-exception` ids are licenses
        assert found is not None and getattr(found, "is_exception", False), (spdx_id, name)


# --- thread safety and failures ---------------------------------------------------------------


@pytest.fixture
def fresh_licensing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A Licensing not built yet (the first parse builds it), and empty caches."""
    monkeypatch.setattr(_licensing, "_shared", None)
    _clear_caches()
    yield
    _clear_caches()


def _clear_caches() -> None:
    for fn in (
        licenses._tree,
        licenses._leaf,
        licenses.normalise_expression,
        licenses.license_from_id,
        licenses.license_from_name,
        licenses.combine_and,
    ):
        fn.cache_clear()


def test_licensing_is_complete_before_it_is_shared(fresh_licensing: None) -> None:
    # license-expression fills its tokenizer lazily after publishing it; ours is built first.
    assert _licensing._licensing().advanced_tokenizer is not None


def test_concurrent_first_parses_all_succeed(fresh_licensing: None) -> None:
    """Many threads parsing distinct expressions on a Licensing built by the first of them
    (the race seen as "'object' object has no attribute 'children'")."""
    texts = [f"0BSD OR MIT OR Lic{i}-1.0" for i in range(64)] + ["0BSD OR MIT"]
    start = threading.Barrier(len(texts))
    results: dict[str, str | None] = {}
    failures: list[BaseException] = []

    def parse(text: str) -> None:
        start.wait()
        try:
            results[text] = licenses.normalise_expression(text)
        except BaseException as exc:  # any failure is the finding
            failures.append(exc)

    threads = [threading.Thread(target=parse, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert results["0BSD OR MIT"] == "0BSD OR MIT"
    assert results["0BSD OR MIT OR Lic7-1.0"] == "0BSD OR MIT OR LicenseRef-Lic7-1.0"


def test_concurrent_sbom_parses_agree(fresh_licensing: None) -> None:
    data = cdx(
        [
            cdx_component(
                i, [{"expression": f"0BSD OR MIT OR X{i}-1.0"}, {"license": {"name": "GPLv3"}}]
            )
            for i in range(200)
        ]
    )
    start = threading.Barrier(8)
    seen: list[tuple[str | None, ...]] = []
    failures: list[BaseException] = []

    def parse() -> None:
        start.wait()
        try:
            seen.append(tuple(c.license for c in parse_sbom(data, source="t").components))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=parse) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(set(seen)) == 1
    assert seen[0][3] == "(0BSD OR MIT OR LicenseRef-X3-1.0) AND GPL-3.0-only"


@pytest.fixture
def failing_library(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """license-expression failing (not refusing the syntax) on texts that mention `boom`."""
    real = _licensing.parse

    def parse(text: str) -> Any:
        if "boom" in text:
            raise AttributeError("'object' object has no attribute 'children'")
        return real(text)

    monkeypatch.setattr(_licensing, "parse", parse)
    _clear_caches()
    yield
    _clear_caches()


@pytest.mark.parametrize(
    "data",
    [
        cdx([cdx_component(0, [{"expression": "0BSD OR boom"}])]),
        cdx([cdx_component(0, [{"license": {"id": "MIT"}}, {"license": {"name": "boom AND x"}}])]),
        cdx([cdx_component(0, [{"license": {"id": "boom AND MIT"}}])]),
        _spdx("MIT OR boom", "licenseDeclared"),
        _spdx("boom AND MIT", "licenseConcluded"),
        _xml("boom OR MIT", "expression"),
    ],
    ids=["cdx-expression", "cdx-name", "cdx-id", "spdx-declared", "spdx-concluded", "xml"],
)
def test_library_failure_is_an_error_in_the_verdict(failing_library: None, data: bytes) -> None:
    sbom = parse_sbom(data, source="t")
    (component,) = sbom.components
    assert component.license is None
    assert component.license_error is not None
    assert "AttributeError" in component.license_error
    verdict = engine(None).evaluate_sbom(sbom)
    assert not verdict.allowed
    assert json_output.document(verdict)["summary"]["errors"] == 1
    (error,) = verdict.errors
    assert (error.purl, error.policy) == (component.purl, LICENSES)
    assert "license-expression failed on" in error.message


def test_library_failure_on_the_subject_is_an_error(failing_library: None) -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {
            "component": {"type": "container", "name": "app", "licenses": [{"expression": "boom"}]}
        },
        "components": [cdx_component(0, [{"license": {"id": "MIT"}}])],
    }
    sbom = parse_sbom(orjson.dumps(doc), source="t")
    assert sbom.subject is not None and sbom.subject.license_error is not None
    verdict = engine(None).evaluate_sbom(sbom)
    assert [e.name for e in verdict.errors] == ["app"]


def test_syntax_errors_are_still_the_documents(failing_library: None) -> None:
    with pytest.raises(SbomError, match=r"invalid SPDX license expression 'MIT AND'"):
        parse_sbom(cdx([cdx_component(0, [{"expression": "MIT AND"}])]), source="t")


def test_no_component_built_by_hand_has_a_license_error() -> None:
    assert Component(name="x").license_error is None


# --- what sbomgate writes is itself a normalised SPDX expression ------------------------------

_WORDS = [
    "MIT", "mit", "Apache-2.0", "GPL-3.0", "GPLv3", "GPL", "AGPL v3", "LGPL-2.1+", "AND", "OR",
    "WITH", "with", "or", "and", "(", ")", "Classpath-exception-2.0", "LLVM-exception",
    "NOASSERTION", "NONE", "LicenseRef-x", "LicenseRef-GPLv3", "DocumentRef-a:LicenseRef-b",
    "Apache License, Version 2.0", "BSD License", "License :: OSI Approved :: MIT License",
    "License :: OSI Approved :: Apache Software License", "later", "version", "2.0", "+", "/",
    "GPL\u20103.0-only", "G\u0420L-2.0", "Public Domain", "Foo-1.0", "(MIT)", "Server Side Public License",
    ",", ";", "&", "and/or",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=7).map(" ".join))
# Found by this test: the same classifier twice, once after a stray parenthesis.
@example(
    "License :: OSI Approved :: Apache Software License , MIT , ( License :: OSI Approved :: Apache Software License"
)
def test_what_sbomgate_writes_reads_back_as_itself(text: str) -> None:
    for read in (licenses.license_from_name, licenses.normalise_expression):
        try:
            once = read(text)
        except (licenses.LicenseSyntaxError, licenses.LicenseLibraryError):
            continue
        if once is not None:
            assert licenses.normalise_expression(once) == once, text


def _nested(depth: int) -> str:
    text = "MIT"
    for i in range(depth):
        text = f"(X{i} {'AND' if i % 2 else 'OR'} {text})"
    return text


@pytest.mark.parametrize("depth", [licenses.MAX_NESTING + 1, 1000, 5000])
def test_deep_nesting_is_refused_not_a_crash(depth: int) -> None:
    # The parse tree is walked recursively: past a bound an expression is the document's
    # error (SbomError, never RecursionError), and a name is one unknown license.
    text = _nested(depth)
    with pytest.raises(SbomError, match="parentheses nested deeper than 32 levels"):
        parse_sbom(cdx([cdx_component(0, [{"expression": text}])]), source="t")
    with pytest.raises(SbomError, match="parentheses nested deeper than 32 levels"):
        parse_sbom(_spdx(text, "licenseDeclared"), source="t")
    (component,) = parse_sbom(
        cdx([cdx_component(0, [{"license": {"name": text}}])]), source="t"
    ).components
    assert component.license is not None and component.license.startswith("LicenseRef-")
    assert " " not in component.license


def test_nesting_up_to_the_bound_is_read() -> None:
    got = licenses.normalise_expression(_nested(licenses.MAX_NESTING))
    assert got is not None and got.count("(") == licenses.MAX_NESTING - 1
