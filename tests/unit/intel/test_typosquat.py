"""TyposquatDetector: near misses of popular PyPI / npm names, and what is not one."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import pytest

from sbomgate.intel.typosquat import TyposquatDetector, fuzzy_threshold


@pytest.fixture(scope="module")
def det() -> TyposquatDetector:
    return TyposquatDetector.default()


@pytest.mark.parametrize(
    ("purl_type", "name", "namespace", "expected"),
    [
        ("pypi", "reqeusts", None, "requests"),  # transposition
        ("pypi", "python-requests", None, "requests"),
        ("pypi", "python_requests", None, "requests"),
        ("pypi", "requests-py", None, "requests"),
        ("pypi", "pyrequests", None, "requests"),
        ("pypi", "requests_", None, "requests"),
        ("pypi", "numpyy", None, "numpy"),
        ("pypi", "dateutil", None, "python-dateutil"),
        ("python", "reqeusts", None, "requests"),  # format alias
        ("npm", "lodsah", None, "lodash"),
        ("npm", "lodahs", "@types", "@types/lodash"),
        ("npm", "lodahs", "%40types", "@types/lodash"),  # percent-encoded purl namespace
        ("npm", "crossenv", None, "cross-env"),
        ("npm", "cross_env", None, "cross-env"),
        ("npm", "Lodash", None, "lodash"),  # npm names are case-sensitive packages
        ("npm", "types-lodash", None, "@types/lodash"),  # scope confusion
        ("npm", "babel-core-js", None, None),
    ],
)
def test_near_misses(
    det: TyposquatDetector, purl_type: str, name: str, namespace: str | None, expected: str | None
) -> None:
    assert det.closest(purl_type, name, namespace) == expected


@pytest.mark.parametrize(
    ("purl_type", "name", "namespace"),
    [
        ("pypi", "requests", None),
        ("pypi", "Requests", None),  # PEP 503: the same project
        ("pypi", "python_dateutil", None),
        ("pypi", "numpy", None),
        ("pypi", "pytest", None),
        ("pypi", "pytest-cov", None),
        ("pypi", "pytest-xdist", None),
        ("pypi", "boto3", None),
        ("pypi", "botocore", None),
        ("npm", "lodash", None),
        ("npm", "lodash", "@types"),
        ("npm", "cross-env", None),
        ("npm", "core", "@babel"),
    ],
)
def test_well_known_names_are_not_flagged(
    det: TyposquatDetector, purl_type: str, name: str, namespace: str | None
) -> None:
    assert det.closest(purl_type, name, namespace) is None


@pytest.mark.parametrize(
    ("purl_type", "name"),
    [
        ("pypi", "zzqxv-frobnicator"),
        ("pypi", "sbomgate"),
        ("npm", "my-internal-widget-kit"),
        ("pypi", "req"),  # too short to judge
        ("golang", "reqeusts"),  # no list for the ecosystem
        ("pypi", ""),
        ("", "requests"),
    ],
)
def test_unrelated_names(det: TyposquatDetector, purl_type: str, name: str) -> None:
    assert det.closest(purl_type, name) is None


def test_popular_names_do_not_flag_each_other() -> None:
    # Close pairs of real packages: with only one of them known, the other is not reported.
    pairs = [
        ("pypi", "pytest", "pytest-cov"),
        ("pypi", "django-cte", "django-csp"),
        ("pypi", "gitdb", "gitdb2"),
        ("npm", "listr", "listr2"),
        ("npm", "@aws-sdk/client-sts", "@aws-sdk/client-kms"),
        ("npm", "@img/sharp-linux-arm64", "@img/sharp-linux-arm"),
        ("npm", "eslint-plugin-import", "eslint-plugin-import-x"),
        ("npm", "yaml", "yazl"),
        ("npm", "clone", "fclone"),
    ]
    for purl_type, known, other in pairs:
        d = TyposquatDetector({purl_type: [known]})
        assert d.closest(purl_type, other) is None, (known, other)
        assert d.closest(purl_type, known) is None


def test_ties_go_to_the_more_popular_name() -> None:
    d = TyposquatDetector({"pypi": ["abcdef", "abcdeg"]})
    assert d.closest("pypi", "abcdex") == "abcdef"
    d = TyposquatDetector({"pypi": ["abcdeg", "abcdef"]})
    assert d.closest("pypi", "abcdex") == "abcdeg"


def test_thresholds() -> None:
    assert [fuzzy_threshold(n) for n in (1, 4, 5, 8, 9, 30)] == [0, 0, 1, 1, 2, 2]
    d = TyposquatDetector({"pypi": ["tensorflow"]})
    assert d.closest("pypi", "tensorfolw") == "tensorflow"  # one transposition
    assert d.closest("pypi", "tensrflowx") == "tensorflow"  # two edits
    assert d.closest("pypi", "tnsrflowx") is None  # three
    assert d.closest("pypi", "tensrflw") is None  # two edits, but only 8 characters


def test_bundled_lists() -> None:
    data = resources.files("sbomgate.intel").joinpath("data")
    for purl_type in ("pypi", "npm"):
        lines = data.joinpath(f"popular-{purl_type}.txt").read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("#")
        names = [ln for ln in lines if ln and not ln.startswith("#")]
        assert len(names) >= 3000
        assert len(set(names)) == len(names)
        assert all(n == n.strip() and " " not in n for n in names)


def test_speed(det: TyposquatDetector) -> None:
    names = [f"{w}{i}x" for i in range(1000) for w in ("reqests", "lodsh", "numpi", "djanga", "q")]
    start = time.perf_counter()
    for i, n in enumerate(names):
        det.closest("pypi" if i % 2 else "npm", n)
    elapsed = time.perf_counter() - start
    print(f"{len(names)} typosquat lookups in {elapsed:.3f} s")


@pytest.mark.parametrize(
    ("purl", "expected"),
    [
        ("pkg:npm/%40babel/core@7.0.0", None),
        ("pkg:npm/babel/core@7.0.0", None),  # the scope written without its @
        ("pkg:npm/JSONStream@1.3.5", None),  # a popular name, with its capitals
        ("pkg:npm/lodsah@1.0.0", "lodash"),
        ("pkg:pypi/Requests@2.31.0", None),  # PEP 503: the same project
        ("pkg:pypi/reqeusts@2.31.0", "requests"),
        ("pkg:pypi/Reqeusts@2.31.0", "requests"),
    ],
)
def test_the_facts_ask_by_canonical_identity(purl: str, expected: str | None) -> None:
    from sbomgate.intel.facts import IntelFacts
    from sbomgate.sbom.model import Component
    from sbomgate.sbom.purl import parse_purl

    p = parse_purl(purl)
    component = Component(
        name=p.name, version=p.version, purl=p.canonical, purl_type=p.type, namespace=p.namespace
    )
    facts = IntelFacts(typosquat=TyposquatDetector.default())
    assert facts(component).typosquat_of == expected


# --------------------------------------------------------------------------- scoped near misses


def _scoped_near_misses(count: int, seed: int = 7) -> list[str]:
    """`count` distinct one-edit misspellings of the name part of popular scoped npm names
    (substitution, deletion, insertion or transposition after the first character), none of
    them a popular name itself."""
    import random

    from sbomgate.intel.typosquat import _read_list

    popular = _read_list("npm")
    known = set(popular)
    scoped = [n for n in popular if n.startswith("@") and len(n.split("/", 1)[1]) >= 6]
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: dict[str, None] = {}
    while len(out) < count:
        scope, name = rng.choice(scoped).split("/", 1)
        at = rng.randrange(1, len(name) - 1)
        edit = rng.choice("sdit")
        if edit == "s":
            new = name[:at] + rng.choice(letters) + name[at + 1 :]
        elif edit == "d":
            new = name[:at] + name[at + 1 :]
        elif edit == "i":
            new = name[:at] + rng.choice(letters) + name[at:]
        else:
            new = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
        if new != name and f"{scope}/{new}" not in known:
            out[f"{scope}/{new}"] = None
    return list(out)


def test_a_name_that_carries_its_scope_gets_it_once(det: TyposquatDetector) -> None:
    """An SBOM component's name is `@scope/name` and its namespace `@scope`: asked with both, the
    scope used to be added twice (`@babel/@babel/...`), which matched nothing."""
    for name, namespace in [
        ("@babel/helper-plugin-utlis", "@babel"),
        ("@babel/helper-plugin-utlis", "%40babel"),
        ("babel/helper-plugin-utlis", "babel"),
        ("helper-plugin-utlis", "@babel"),
        ("@babel/helper-plugin-utlis", None),
    ]:
        assert det.closest("npm", name, namespace) == "@babel/helper-plugin-utils", name
    assert det.closest("npm", "@babel/core", "@babel") is None  # the popular name itself


def test_scoped_near_misses_reach_the_policy_through_the_cli_and_the_webhook(
    det: TyposquatDetector, tmp_path: Path
) -> None:
    """500 scoped near misses in one CycloneDX SBOM, none in any trusted repository (an empty
    facts snapshot): every one the detector finds directly must get its "did you mean" from the
    bundled `unverified` policy through `sbomgate eval`, and through the facts `serve` builds.
    (Before the scope was added once, the CLI and webhook gave 0 of them.)"""
    import json
    import subprocess
    import sys
    from urllib.parse import quote

    from sbomgate.admission import Observer
    from sbomgate.config import ServeConfig
    from sbomgate.policy import PolicyEngine
    from sbomgate.policy.loader import load_policy_dir
    from sbomgate.runtime import shared_parts
    from sbomgate.sbom import parse_sbom
    from support.paths import POLICIES

    misses = _scoped_near_misses(500)
    direct = {m: det.closest("npm", m) for m in misses}
    found = {m: hit for m, hit in direct.items() if hit is not None}
    print(f"scoped near misses found directly: {len(found)} of {len(misses)}")
    assert len(found) >= 400
    components = []
    for number, miss in enumerate(misses):
        scope, name = miss.split("/", 1)
        purl = f"pkg:npm/{quote(scope)}/{quote(name)}@1.0.0"
        components.append(
            {"type": "library", "bom-ref": f"c{number}", "group": scope, "name": name,
             "version": "1.0.0", "purl": purl}
        )  # fmt: skip
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}
    sbom_file = tmp_path / "scoped.cdx.json"
    sbom_file.write_text(json.dumps({**document, "components": components}))
    facts_file = tmp_path / "facts.yaml"
    facts_file.write_text("packages: {}\n")

    def did_you_mean(reasons_by_purl: dict[str, str]) -> dict[str, str]:
        out = {}
        for purl, reason in reasons_by_purl.items():
            if "(did you mean " in reason:
                name = purl.removeprefix("pkg:npm/").rsplit("@", 1)[0].replace("%40", "@")
                out[name] = reason.split("(did you mean ", 1)[1].split("?", 1)[0]
        return out

    result = subprocess.run(
        [sys.executable, "-m", "sbomgate.cli", "eval", "--sbom", str(sbom_file),
         "--facts", str(facts_file), "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    cli = did_you_mean(
        {v["purl"]: v["reasons"][0] for v in verdict["violations"] if v["policy"] == "unverified"}
    )
    print(f"through sbomgate eval: {len(cli)} of {len(misses)}")
    assert cli == found

    shared = shared_parts(ServeConfig(facts=facts_file), Observer())
    sbom = parse_sbom(sbom_file.read_bytes(), source=str(sbom_file))
    served = PolicyEngine(load_policy_dir(POLICIES)).evaluate_sbom(sbom, facts=shared.facts)
    webhook = did_you_mean(
        {v.purl: v.reasons[0] for v in served.violations if v.policy == "unverified" and v.purl}
    )
    print(f"through the facts serve builds: {len(webhook)} of {len(misses)}")
    assert webhook == found


def test_the_remembered_candidate_lists_are_bounded() -> None:
    """The candidate lists a lookup puts together are remembered by the name's first two
    characters and its length, which the SBOM's writer chooses: no more than a bound of them
    are kept, and answers stay the same past it."""
    from sbomgate.intel import typosquat

    detector = TyposquatDetector({"npm": ["express", "lodash"]})
    for i in range(typosquat._MAX_CHOICE_LISTS + 100):
        assert detector.closest("npm", "e" + chr(0x4E00 + i) + "qqqqqq") is None
    assert len(detector._ecosystems["npm"].choices) <= typosquat._MAX_CHOICE_LISTS
    assert detector.closest("npm", "exprses") == "express"
