"""The data lists (allow, blocklist, quarantine) matched against the canonical identity
(controller/sbomgate/intel/lists.py), and the bundled policies acting on the matches through
the real engine: every bypass class of issue 12 (sections 5, 6 and the allow-list item of 8),
each with several spellings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from sbomgate.errors import InputError
from sbomgate.identity import identity_from_purl
from sbomgate.intel.facts import IntelFacts
from sbomgate.intel.lists import compile_lists
from sbomgate.intel.osv import OsvIndex
from sbomgate.policy import PolicyEngine, load_policy_dir
from sbomgate.sbom import parse_sbom
from sbomgate.verdict import Verdict

POLICIES = Path(__file__).resolve().parents[3] / "policies"


def hits(data: Mapping[str, Any], purl: str, which: str) -> list[Mapping[str, Any]]:
    return list(compile_lists({"sbomgate": data}).match(identity_from_purl(purl))[which])


def listed(data: Mapping[str, Any], purl: str, which: str) -> bool:
    return bool(hits(data, purl, which))


# --- names ------------------------------------------------------------------------------------

PYPI_SPELLINGS = [
    "pkg:pypi/evil__pkg@1.0",
    "pkg:pypi/Evil.Pkg@1.0",
    "pkg:pypi/evil-_-pkg@1.0",
    "pkg:pypi/EVIL_PKG@1.0",
    "pkg:pypi/evil.pkg@1.0",
]


@pytest.mark.parametrize("purl", PYPI_SPELLINGS)
@pytest.mark.parametrize("entry", ["python:evil-pkg", "pypi:Evil__Pkg:*", "python:evil.pkg:1.0"])
def test_blocklist_pep503_names(purl: str, entry: str) -> None:
    assert listed({"blocklist": [entry]}, purl, "blocklist")


@pytest.mark.parametrize("purl", PYPI_SPELLINGS)
@pytest.mark.parametrize(
    "entry", ["pkg:pypi/evil-pkg", "pkg:pypi/evil__pkg@1.0", "pkg:pypi/EVIL.PKG"]
)
def test_quarantine_pep503_names(purl: str, entry: str) -> None:
    assert listed({"quarantine": [{"purl": entry}]}, purl, "quarantine")


@pytest.mark.parametrize(
    "purl",
    ["pkg:npm/%40acme/util@1.0.0", "pkg:npm/@acme/util@1.0.0", "pkg:npm/acme/util@1.0.0"],
)
@pytest.mark.parametrize(
    "data",
    [
        {"blocklist": ["npm:@acme/util"]},
        {"blocklist": ["npm:acme/util:1.0.0"]},
        {"blocklist": ["npm:%40acme/util:*"]},
        {"quarantine": [{"purl": "pkg:npm/acme/util@1.0.0"}]},
        {"quarantine": [{"purl": "pkg:npm/%40acme/util", "vers": "vers:npm/>=1.0.0"}]},
    ],
)
def test_npm_scope_with_or_without_at(purl: str, data: Mapping[str, Any]) -> None:
    assert listed(data, purl, next(iter(data)))


def test_npm_names_are_case_sensitive_in_lists() -> None:
    data = {"blocklist": ["npm:jsonstream"], "allow": ["npm:JSONStream:1.3.5"]}
    assert not listed(data, "pkg:npm/JSONStream@1.3.5", "blocklist")
    assert listed(data, "pkg:npm/jsonstream@1.3.5", "blocklist")
    assert listed(data, "pkg:npm/JSONStream@1.3.5", "allow")
    assert not listed(data, "pkg:npm/jsonstream@1.3.5", "allow")
    assert not listed({"blocklist": ["npm:util"]}, "pkg:npm/%40acme/util@1.0.0", "blocklist")


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:golang/github.com/Azure/azure-sdk-for-go@v1.9.0",
        "pkg:golang/github.com/!azure/azure-sdk-for-go@v1.9.0",
        "pkg:golang/github.com/Azure/azure-sdk-for-go@1.9.0",
    ],
)
def test_go_module_paths(purl: str) -> None:
    data = {"blocklist": ["go:github.com/Azure/azure-sdk-for-go:v1.9.0"]}
    assert listed(data, purl, "blocklist")
    assert listed({"blocklist": ["golang:github.com/!azure/azure-sdk-for-go"]}, purl, "blocklist")
    assert not listed({"blocklist": ["go:azure-sdk-for-go"]}, purl, "blocklist")


def test_maven_groups() -> None:
    log4j = "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    for entry in (
        "maven:org.apache.logging.log4j:log4j-core:2.14.1",
        "maven:org.apache.logging.log4j/log4j-core:*",
        "maven:log4j-core:2.14.1",  # a deny list may name every group
    ):
        assert listed({"blocklist": [entry]}, log4j, "blocklist"), entry
    assert not listed({"blocklist": ["maven:com.evil:log4j-core"]}, log4j, "blocklist")
    assert listed({"allow": ["maven:org.apache.logging.log4j:log4j-core:2.14.1"]}, log4j, "allow")
    assert not listed(
        {"allow": ["maven:org.apache.logging.log4j:log4j-core:2.14.1"]},
        "pkg:maven/com.evil/log4j-core@2.14.1",
        "allow",
    )
    with pytest.raises(InputError, match=r"allow\[0\].*names no Maven group"):
        compile_lists({"sbomgate": {"allow": ["maven:log4j-core"]}})


def test_os_packages_by_source_and_vendor() -> None:
    libssl = "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12&upstream=openssl"
    assert listed({"blocklist": ["deb:openssl"]}, libssl, "blocklist")
    assert listed({"blocklist": ["deb:debian/libssl3:3.0.11-1~deb12u1"]}, libssl, "blocklist")
    assert not listed({"blocklist": ["deb:ubuntu/libssl3"]}, libssl, "blocklist")
    assert listed({"quarantine": [{"purl": "pkg:deb/debian/openssl@3.0.11-1~deb12u1"}]}, libssl,
                  "quarantine")  # fmt: skip
    assert not listed({"allow": ["deb:openssl"]}, libssl, "allow")  # exempts the package only


def test_docker_and_oci_are_one_format() -> None:
    for purl in ("pkg:docker/app@1.0.0", "pkg:oci/app@1.0.0"):
        assert listed({"allow": ["docker:app:1.0.0"]}, purl, "allow")
        assert listed({"allow": ["oci:app:*"]}, purl, "allow")


# --- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "v1.0", "1.00", "1.0.0", "1.0.0.0", "V1.0"])
@pytest.mark.parametrize(
    "data",
    [
        {"blocklist": ["python:foo:1.0"]},
        {"quarantine": [{"purl": "pkg:pypi/foo@1.0"}]},
        {"quarantine": [{"purl": "pkg:pypi/foo@v1.0.0"}]},
        {"allow": ["python:foo:1.00"]},
    ],
)
def test_exact_versions_pep440(version: str, data: Mapping[str, Any]) -> None:
    assert listed(data, f"pkg:pypi/foo@{version}", next(iter(data)))


@pytest.mark.parametrize("version", ["3.3.6%2Bbuild", "3.3.6+build", "v3.3.6", "3.4.0-rc.1"])
def test_npm_ranges_and_build_metadata(version: str) -> None:
    data = {"quarantine": [{"purl": "pkg:npm/event-stream", "vers": "vers:npm/>=3.3.6|<4.0.0"}]}
    (hit,) = hits(data, f"pkg:npm/event-stream@{version}", "quarantine")
    assert hit["uncertain"] is None
    assert not listed(data, "pkg:npm/event-stream@4.0.0", "quarantine")
    assert not listed(data, "pkg:npm/event-stream@3.3.5", "quarantine")


def test_exact_entries_with_plus_or_percent_2b() -> None:
    for entry in ("npm:flatmap-stream:0.1.1+evil", "npm:flatmap-stream:0.1.1%2Bevil"):
        for purl in ("pkg:npm/flatmap-stream@0.1.1%2Bevil", "pkg:npm/flatmap-stream@0.1.1+evil"):
            assert listed({"allow": [entry]}, purl, "allow")
            assert listed({"blocklist": [entry]}, purl, "blocklist")


@pytest.mark.parametrize(
    ("purl", "vers", "inside"),
    [
        ("pkg:pypi/foo@2!1.0", "vers:pypi/>=1.0", True),  # epoch 2 is above every 0!x
        ("pkg:pypi/foo@2!1.0", "vers:pypi/<2.0", False),
        ("pkg:pypi/foo@1.0.0+local", "vers:pypi/>=1.0.0|<2.0.0", True),
        ("pkg:pypi/foo@1.0.0%2Blocal", "vers:pypi/1.0.0", True),
        ("pkg:maven/g/a@2.14.1", "vers:maven/>=2.0-beta9|<2.15.0", True),
        ("pkg:deb/debian/a@1:0.5-1", "vers:deb/>=1.0-1", True),
        ("pkg:golang/example.com/m@v1.5.0", "vers:golang/>=v1.0.0|<v2.0.0", True),
        ("pkg:pypi/foo@1.5.0", "vers:pypi/>=1.0.0|!=1.5.0|<2.0.0", False),
        ("pkg:pypi/foo@2.7.0", "vers:pypi/<1.0.0|>=2.0.0|<2.5.0|>=3.0.0", False),
        ("pkg:pypi/foo@2.1", "vers:pypi/<1.0.0|>=2.0.0|<2.5.0|>=3.0.0", True),
        ("pkg:pypi/foo@0.15", "vers:pypi/*", True),
    ],
)
def test_ecosystem_order(purl: str, vers: str, inside: bool) -> None:
    base = purl.split("@")[0]
    data = {"quarantine": [{"purl": base, "vers": vers}]}
    found = hits(data, purl, "quarantine")
    assert bool(found) is inside
    assert all(h["uncertain"] is None for h in found)


@pytest.mark.parametrize(
    ("purl", "why"),
    [
        ("pkg:npm/event-stream@latest", "'latest' is not a valid npm version"),
        ("pkg:npm/event-stream@1.0-evil!", "'1.0-evil!' is not a valid npm version"),
        ("pkg:npm/event-stream", "the package has no version"),
        ("pkg:pypi/event-stream@1.0-evil!", "'1.0-evil!' is not a valid pypi version"),
        ("pkg:pypi/event-stream@latest", "'latest' is not a valid pypi version"),
        ("pkg:pypi/event-stream", "the package has no version"),
    ],
)
def test_deny_lists_match_what_cannot_be_compared(purl: str, why: str) -> None:
    scheme = purl.split(":")[1].split("/")[0]
    data = {
        "quarantine": [{"purl": f"pkg:{scheme}/event-stream", "vers": f"vers:{scheme}/>=3.3.6"}],
        "blocklist": [f"{scheme}:event-stream:3.3.6"],
        "allow": [f"{scheme}:event-stream:3.3.6"],
    }
    for which in ("quarantine", "blocklist"):
        (hit,) = hits(data, purl, which)
        assert hit["uncertain"].startswith("the version could not be compared")
        assert why in hit["uncertain"]
    assert not listed(data, purl, "allow")  # an exemption is never a guess


def test_every_version_entries_need_no_version() -> None:
    data = {"quarantine": [{"purl": "pkg:pypi/ctx"}], "blocklist": ["python:ctx"]}
    for which in ("quarantine", "blocklist"):
        (hit,) = hits(data, "pkg:pypi/ctx", which)
        assert hit["uncertain"] is None and hit["version"] == "*"


# --- entries that cannot be read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"blocklist": ["python"]}, r"blocklist\[0\]: 'python' is not format:name"),
        ({"blocklist": [None]}, r"blocklist\[0\]: expected a string"),
        ({"blocklist": [":::"]}, r"blocklist\[0\]"),
        ({"allow": "python:x"}, r"data.sbomgate.allow: expected a list"),
        ({"quarantine": [{"purl": "foo"}]}, r"quarantine\[0\].purl: expected a package URL"),
        ({"quarantine": [{"purl": "pkg:pypi/x", "vers": 7}]}, r"quarantine\[0\].vers"),
        ({"quarantine": [{"purl": "pkg:pypi/x", "vers": "vers:npm/>=1"}]}, r"npm range"),
        ({"quarantine": [{"purl": "pkg:pypi/x", "vers": "vers:pypi/>=1.0-evil!"}]}, r"parse"),
        ({"quarantine": [{"purl": "pkg:pypi/x@1", "vers": "vers:pypi/>=1"}]}, r"one of them"),
        ({"quarantine": ["pkg:pypi/x"]}, r"quarantine\[0\]: expected a mapping"),
    ],
)
def test_unreadable_entries_are_errors(data: Mapping[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        compile_lists({"sbomgate": data})


def test_the_engine_refuses_unreadable_lists_at_load() -> None:
    with pytest.raises(InputError, match=r"data.sbomgate.blocklist\[1\]"):
        PolicyEngine(load_policy_dir(POLICIES), {"sbomgate": {"blocklist": ["npm:x", 5]}})


# --- through the engine with the bundled policies --------------------------------------------


def sbom(*components: Mapping[str, Any]) -> Any:
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}
    body = json.dumps({**document, "components": list(components)}).encode()
    return parse_sbom(body, source="t.json")


def lib(purl: str, **fields: Any) -> dict[str, Any]:
    return {"type": "library", "name": fields.pop("name", "x"), "purl": purl, **fields}


def evaluate(
    data: Mapping[str, Any],
    *components: Mapping[str, Any],
    osv: Sequence[Any] = (),
    vouched: bool = True,
) -> Verdict:
    index = OsvIndex()
    for record in osv:
        assert index.add_record(record)
    engine = PolicyEngine(load_policy_dir(POLICIES), {"sbomgate": data})
    facts = IntelFacts(osv=index)

    def trusted(component: Any) -> Any:  # every package is in the trusted repository, or none
        from dataclasses import replace

        repository = {"name": "trusted", "hosting": "hosted"}
        return replace(facts(component), repository=repository if vouched else None)

    return engine.evaluate_sbom(sbom(*components), facts=trusted)


def by_policy(verdict: Verdict) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for finding in (*verdict.violations, *verdict.exemptions):
        out.setdefault(finding.policy, []).append(finding.purl)
    return out


def test_engine_quarantines_and_blocks_every_spelling() -> None:
    verdict = evaluate(
        {
            "quarantine": [{"purl": "pkg:pypi/evil-pkg", "reason": "typosquat"}],
            "blocklist": ["npm:acme/util:1.0.0"],
        },
        *(lib(p) for p in PYPI_SPELLINGS),
        lib("pkg:npm/%40acme/util@v1.0.0"),
        lib("pkg:npm/acme/util@1.0.0"),
        lib("pkg:pypi/evil-pkg-two@1.0"),
    )
    found = by_policy(verdict)
    assert len(found["quarantine"]) == len(PYPI_SPELLINGS)
    assert len(found["blocklist"]) == 2
    assert "pkg:pypi/evil-pkg-two@1.0" not in found["quarantine"]


def test_engine_denies_uncertain_quarantine_with_a_message() -> None:
    verdict = evaluate(
        {"quarantine": [{"purl": "pkg:npm/event-stream", "vers": "vers:npm/>=3.3.6|<4.0.0"}]},
        lib("pkg:npm/event-stream@latest"),
        lib("pkg:npm/event-stream@3.3.6%2Bbuild"),
    )
    reasons = {f.purl: f.reasons[0] for f in verdict.violations}
    assert "the version could not be compared" in reasons["pkg:npm/event-stream@latest"]
    assert "could not be compared" not in reasons["pkg:npm/event-stream@3.3.6%2Bbuild"]


MAL = {
    "id": "MAL-2024-9",
    "summary": "Malicious code in evil-pkg",
    "affected": [
        {"package": {"ecosystem": "PyPI", "name": "evil-pkg"}, "versions": ["6.6.6"]},
        {
            "package": {"ecosystem": "npm", "name": "evil-js"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
        },
    ],
}


@pytest.mark.parametrize("entry", ["python:evil-pkg", "python:evil_pkg:*", "pypi:Evil.Pkg"])
def test_a_name_only_allow_entry_never_exempts_malware(entry: str) -> None:
    verdict = evaluate({"allow": [entry]}, lib("pkg:pypi/evil-pkg@6.6.6"), osv=[MAL])
    assert by_policy(verdict) == {"malware": ["pkg:pypi/evil-pkg@6.6.6"]}
    # ...while it still exempts the versions that are not malware.
    clean = evaluate({"allow": [entry]}, lib("pkg:pypi/evil-pkg@1.0"), osv=[MAL])
    assert by_policy(clean) == {"allow-list": ["pkg:pypi/evil-pkg@1.0"]}


@pytest.mark.parametrize("entry", ["python:evil-pkg:6.6.6", "python:Evil_Pkg:v6.6.6"])
def test_an_allow_entry_naming_the_version_does_exempt_it(entry: str) -> None:
    verdict = evaluate({"allow": [entry]}, lib("pkg:pypi/evil-pkg@6.6.6"), osv=[MAL])
    assert by_policy(verdict) == {"allow-list": ["pkg:pypi/evil-pkg@6.6.6"]}


@pytest.mark.parametrize("version", ["", "@latest", "@1.0-evil!"])
def test_all_version_malware_matches_without_a_comparable_version(version: str) -> None:
    purl = f"pkg:npm/evil-js{version}"
    verdict = evaluate({}, lib(purl), osv=[MAL])
    (finding,) = verdict.violations
    assert finding.policy == "malware"
    assert finding.reasons[0].startswith(f"{finding.purl} is known malware (MAL-2024-9")


def test_engine_warns_of_fields_that_disagree_with_the_purl() -> None:
    verdict = evaluate(
        {},
        lib("pkg:pypi/evil@6.6.6", name="requests", version="2.31.0"),
        lib("pkg:npm/%40scope/x@1.0.0", name="x", group="@scope", version="1.0.0"),
    )
    (warning,) = verdict.warnings
    assert warning.policy == "sbomgate/identity"
    assert warning.reasons == (
        "pkg:pypi/evil@6.6.6: the SBOM's fields disagree with its purl (its name 'requests' is "
        "not the purl's 'evil'; its version '2.31.0' is not the purl's '6.6.6'); sbomgate "
        "judged the package the purl names",
    )


@pytest.mark.parametrize(
    "qualifier",
    ["repository_url=https://evil.example/simple", "download_url=https://evil.example/r.tar.gz"],
)
def test_an_allow_entry_does_not_exempt_a_package_from_another_index(qualifier: str) -> None:
    purl = f"pkg:pypi/requests@2.31.0?{qualifier}"
    data = {"allow": ["python:requests:2.31.0"]}
    verdict = evaluate(data, lib(purl), vouched=False)
    assert by_policy(verdict) == {"unverified": [purl]}
    # The same package from the trusted index is exempted.
    assert by_policy(evaluate(data, lib("pkg:pypi/requests@2.31.0"), vouched=False)) == {
        "allow-list": ["pkg:pypi/requests@2.31.0"]
    }
