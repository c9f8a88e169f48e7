"""Section 5: one identity for a package, everywhere.

Quarantine, blocklist, allow list, facts, OSV and trusted-source lookups must all know a
package by the same canonical identity: PEP 503 names and PEP 440 versions for PyPI,
case-preserving names for npm (`JSONStream` and `jsonstream` are two packages), npm scopes
with or without `@`, `+` and `%2B` alike. Qualifiers that say a package came from elsewhere
(`repository_url`, `download_url`, Debian `distro`) are part of its identity for trust: the
trusted repository vouches for its own copy only.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from hostile.content import component, osv_record
from hostile.corpus import Case, Outcome, Verdict, case_ids, check_unique, judge
from hostile.sbom_cases import eval_case, one, quarantine

EVIL = "pkg:pypi/evil-pkg@1.0"
Q = "quarantine"


def q_case(id: str, description: str, expect: Verdict, entry: dict[str, Any], purl: str) -> Case:
    """A quarantine entry against one component, denied by the quarantine policy or not."""
    return eval_case(
        id,
        5,
        description,
        expect,
        one(purl),
        data=entry,
        policy=Q if expect == "denied" else None,
    )


CASES = check_unique(
    [
        # -- quarantine entries against other spellings of the same package
        q_case(
            "quarantine-pep503-double-underscore",
            "evil__pkg is evil-pkg (PEP 503)",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/evil__pkg@1.0",
        ),
        q_case(
            "quarantine-pep503-case-and-dot",
            "Evil.Pkg is evil-pkg (PEP 503)",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/Evil.Pkg@1.0",
        ),
        q_case(
            "quarantine-pep503-separator-run",
            "a run of -_. is one separator",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/evil-_.pkg@1.0",
        ),
        q_case(
            "quarantine-entry-spelled-differently",
            "an entry written Evil_Pkg quarantines evil-pkg",
            "denied",
            quarantine("pkg:pypi/Evil_Pkg@1.0"),
            EVIL,
        ),
        q_case(
            "quarantine-version-v-prefix",
            "v1.0 is 1.0 (PEP 440)",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/evil-pkg@v1.0",
        ),
        q_case(
            "quarantine-version-trailing-zero",
            "1.0.0 is 1.0 (PEP 440)",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/evil-pkg@1.0.0",
        ),
        q_case(
            "quarantine-version-leading-zeros",
            "1.00 is 1.0 (PEP 440)",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/evil-pkg@1.00",
        ),
        q_case(
            "quarantine-version-uppercase-v",
            "V1.0 is 1.0 (PEP 440)",
            "denied",
            quarantine(EVIL),
            "pkg:pypi/evil-pkg@V1.0",
        ),
        q_case(
            "quarantine-entry-version-v-prefix",
            "an entry for v1.0 quarantines 1.0",
            "denied",
            quarantine("pkg:pypi/evil-pkg@v1.0"),
            EVIL,
        ),
        q_case(
            "quarantine-plus-encoded-in-sbom",
            "%2B in the SBOM is the entry's +",
            "denied",
            quarantine("pkg:pypi/evil-pkg@1.0+local"),
            "pkg:pypi/evil-pkg@1.0%2Blocal",
        ),
        q_case(
            "quarantine-plus-encoded-in-entry",
            "%2B in the entry is the SBOM's +",
            "denied",
            quarantine("pkg:pypi/evil-pkg@1.0%2Blocal"),
            "pkg:pypi/evil-pkg@1.0+local",
        ),
        q_case(
            "quarantine-npm-scope-without-at-in-sbom",
            "pkg:npm/evil/pkg is @evil/pkg",
            "denied",
            quarantine("pkg:npm/%40evil/pkg@1.0.0"),
            "pkg:npm/evil/pkg@1.0.0",
        ),
        q_case(
            "quarantine-npm-scope-without-at-in-entry",
            "an entry without @ quarantines @evil/pkg",
            "denied",
            quarantine("pkg:npm/evil/pkg@1.0.0"),
            "pkg:npm/%40evil/pkg@1.0.0",
        ),
        q_case(
            "quarantine-npm-scope-raw-at-in-entry",
            "an entry with a raw @ quarantines %40evil",
            "denied",
            quarantine("pkg:npm/@evil/pkg@1.0.0"),
            "pkg:npm/%40evil/pkg@1.0.0",
        ),
        q_case(
            "quarantine-npm-case-JSONStream-spares-jsonstream",
            "npm names keep their case: another package",
            "allowed",
            quarantine("pkg:npm/JSONStream@1.3.5"),
            "pkg:npm/jsonstream@1.3.5",
        ),
        q_case(
            "quarantine-npm-case-jsonstream-spares-JSONStream",
            "npm names keep their case: another package",
            "allowed",
            quarantine("pkg:npm/jsonstream@1.3.5"),
            "pkg:npm/JSONStream@1.3.5",
        ),
        q_case(
            "quarantine-npm-case-exact-spelling-hits",
            "the quarantined npm package itself",
            "denied",
            quarantine("pkg:npm/JSONStream@1.3.5"),
            "pkg:npm/JSONStream@1.3.5",
        ),
        q_case(
            "quarantine-all-versions-pep503",
            "an every-version entry against EVIL_PKG",
            "denied",
            quarantine("pkg:pypi/evil-pkg"),
            "pkg:pypi/EVIL_PKG@7.0",
        ),
        q_case(
            "quarantine-range-pep503",
            "a range entry against evil.pkg",
            "denied",
            quarantine("pkg:pypi/evil-pkg", "vers:pypi/>=1.0|<2.0"),
            "pkg:pypi/evil.pkg@1.5",
        ),
        # -- blocklist and allow list entries
        eval_case(
            "blocklist-pep503",
            5,
            "python:evil-pkg blocks evil__pkg",
            "denied",
            one("pkg:pypi/evil__pkg@1.0"),
            data={"blocklist": ["python:evil-pkg"]},
            policy="blocklist",
        ),
        eval_case(
            "blocklist-npm-scope-without-at",
            5,
            "npm:@evil/pkg blocks pkg:npm/evil/pkg",
            "denied",
            one("pkg:npm/evil/pkg@1.0.0"),
            data={"blocklist": ["npm:@evil/pkg"]},
            policy="blocklist",
        ),
        eval_case(
            "blocklist-npm-case-spares-other-package",
            5,
            "npm:JSONStream does not block jsonstream",
            "allowed",
            one("pkg:npm/jsonstream@1.3.5"),
            data={"blocklist": ["npm:JSONStream"]},
        ),
        eval_case(
            "blocklist-version-trailing-zero",
            5,
            "python:evil-pkg:1.0 blocks 1.0.0",
            "denied",
            one("pkg:pypi/evil-pkg@1.0.0"),
            data={"blocklist": ["python:evil-pkg:1.0"]},
            policy="blocklist",
        ),
        eval_case(
            "blocklist-version-v-prefix",
            5,
            "python:evil-pkg:1.0 blocks v1.0",
            "denied",
            one("pkg:pypi/evil-pkg@v1.0"),
            data={"blocklist": ["python:evil-pkg:1.0"]},
            policy="blocklist",
        ),
        eval_case(
            "allow-npm-case-exempts-only-its-package",
            5,
            "an exemption of jsonstream does not exempt JSONStream",
            "denied",
            one("pkg:npm/JSONStream@1.3.5"),
            data={"allow": ["npm:jsonstream:*"]},
            vouch=[],
            policy="unverified",
        ),
        eval_case(
            "allow-pep503-spelling-exempts",
            5,
            "an exemption of internal-tool covers internal_tool",
            "allowed",
            one("pkg:pypi/internal_tool@1.4.2"),
            data={"allow": ["python:internal-tool:1.4.2"]},
            vouch=[],
        ),
        eval_case(
            "npm-mixed-case-name-vouched",
            5,
            "npm's own JSONStream, vouched for, is not refused",
            "allowed",
            one("pkg:npm/JSONStream@1.3.5"),
            vouch=["pkg:npm/JSONStream@1.3.5"],
        ),
        # -- qualifiers that say the package came from elsewhere (facts snapshot)
        eval_case(
            "facts-repository-url-elsewhere",
            5,
            "requests from another index is not the trusted requests",
            "denied",
            one("pkg:pypi/requests@2.32.3?repository_url=https://evil.example/simple"),
            vouch=["pkg:pypi/requests@2.32.3"],
            policy="unverified",
            says=("pkg:pypi/requests@2.32.3",),
        ),
        eval_case(
            "facts-download-url-elsewhere",
            5,
            "requests downloaded from elsewhere is not the trusted requests",
            "denied",
            one(
                "pkg:pypi/requests@2.32.3?download_url=https://evil.example/requests-2.32.3.tar.gz"
            ),
            vouch=["pkg:pypi/requests@2.32.3"],
            policy="unverified",
        ),
        eval_case(
            "facts-npm-repository-url-elsewhere",
            5,
            "tslib from another npm registry",
            "denied",
            one("pkg:npm/tslib@2.8.0?repository_url=https://evil.example/npm/"),
            vouch=["pkg:npm/tslib@2.8.0"],
            policy="unverified",
        ),
        eval_case(
            "facts-deb-distro-elsewhere",
            5,
            "a Debian package built for another distro",
            "denied",
            one("pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=evil-os"),
            vouch=["pkg:deb/debian/openssl@3.0.11-1~deb12u2"],
            policy="unverified",
        ),
        eval_case(
            "facts-deb-same-distro",
            5,
            "the distro the trusted repository names",
            "allowed",
            one("pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12"),
            vouch=["pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12"],
        ),
        eval_case(
            "facts-arch-qualifier-still-vouched",
            5,
            "arch says nothing about where it came from",
            "allowed",
            one("pkg:deb/debian/curl@7.88.1-10?arch=amd64"),
            vouch=["pkg:deb/debian/curl@7.88.1-10"],
        ),
        eval_case(
            "facts-purl-version-over-field",
            5,
            "the purl's version is the one looked up",
            "denied",
            [component("pkg:pypi/requests@9.9.9", name="requests", version="2.32.3")],
            vouch=["pkg:pypi/requests@2.32.3"],
            policy="unverified",
        ),
        # -- qualifiers against a real trusted PyPI (pypiserver: Foo_Bar 1.0 and 2.0)
        eval_case(
            "source-repository-url-elsewhere",
            5,
            "foo-bar from another index, asked of the trusted PyPI",
            "denied",
            one("pkg:pypi/foo-bar@1.0?repository_url=https://evil.example/simple"),
            vouch=[],
            source=True,
            policy="unverified",
        ),
        eval_case(
            "source-download-url-elsewhere",
            5,
            "foo-bar downloaded from elsewhere, asked of the trusted PyPI",
            "denied",
            one("pkg:pypi/foo-bar@1.0?download_url=https://evil.example/foo_bar-1.0.tar.gz"),
            vouch=[],
            source=True,
            policy="unverified",
        ),
        eval_case(
            "source-pep503-spelling",
            5,
            "Foo_Bar is foo-bar on the trusted PyPI",
            "allowed",
            one("pkg:pypi/Foo_Bar@1.0"),
            vouch=[],
            source=True,
        ),
        eval_case(
            "source-version-trailing-zero",
            5,
            "1.0.0 is the 1.0 the trusted PyPI has",
            "allowed",
            one("pkg:pypi/foo-bar@1.0.0"),
            vouch=[],
            source=True,
        ),
        eval_case(
            "source-plain",
            5,
            "foo-bar 2.0, found as written",
            "allowed",
            one("pkg:pypi/foo-bar@2.0"),
            vouch=[],
            source=True,
        ),
        # -- OSV records against other spellings
        eval_case(
            "osv-pep503-name",
            5,
            "a MAL- record for evil-osv hits Evil_Osv",
            "denied",
            one("pkg:pypi/Evil_Osv@1.0"),
            osv=[osv_record("MAL-2026-9001", "PyPI", "evil-osv", versions=["1.0"])],
            policy="malware",
        ),
        eval_case(
            "osv-version-trailing-zero",
            5,
            "a MAL- record for 1.0 hits 1.0.0",
            "denied",
            one("pkg:pypi/evil-osv@1.0.0"),
            osv=[osv_record("MAL-2026-9002", "PyPI", "evil-osv", versions=["1.0"])],
            policy="malware",
        ),
        eval_case(
            "osv-npm-case-spares-other-package",
            5,
            "a MAL- record for JSONStream spares jsonstream",
            "allowed",
            one("pkg:npm/jsonstream@1.3.5"),
            osv=[osv_record("MAL-2026-9003", "npm", "JSONStream", versions=["1.3.5"])],
        ),
        eval_case(
            "osv-npm-case-exact-spelling-hits",
            5,
            "a MAL- record for JSONStream hits JSONStream",
            "denied",
            one("pkg:npm/JSONStream@1.3.5"),
            osv=[osv_record("MAL-2026-9004", "npm", "JSONStream", versions=["1.3.5"])],
            policy="malware",
        ),
        eval_case(
            "osv-npm-scope-without-at",
            5,
            "a MAL- record for @evil/pkg hits pkg:npm/evil/pkg",
            "denied",
            one("pkg:npm/evil/pkg@1.0.0"),
            osv=[osv_record("MAL-2026-9005", "npm", "@evil/pkg", versions=["1.0.0"])],
            policy="malware",
        ),
        eval_case(
            "osv-purl-version-over-field",
            5,
            "version field 9.9.9, purl @1.0: the purl's version is matched",
            "denied",
            [component("pkg:pypi/evil-osv@1.0", name="evil-osv", version="9.9.9")],
            osv=[osv_record("MAL-2026-9006", "PyPI", "evil-osv", versions=["1.0"])],
            policy="malware",
        ),
        eval_case(
            "osv-purl-name-over-field",
            5,
            "name field requests, purl evil-osv: the purl's name is matched",
            "denied",
            [component("pkg:pypi/evil-osv@1.0", name="requests", version="2.32.3")],
            osv=[osv_record("MAL-2026-9007", "PyPI", "evil-osv", versions=["1.0"])],
            policy="malware",
        ),
    ]
)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_identity(case: Case, eval_outcomes: dict[str, Future[Outcome]]) -> None:
    judge(case, eval_outcomes[case.id].result())
