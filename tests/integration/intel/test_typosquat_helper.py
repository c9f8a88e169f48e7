"""The typosquat helper (`intel._typohelper`): a process that works out the typosquat answers of
a verified SBOM's purls while the SBOM is parsed. Its answers are the detector's own, it finds
the purls of what real producers write (CycloneDX, SPDX 2 and 3, JSON escapes), and a helper that
dies or stalls never blocks nor changes a fact."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from sbomgate.identity import identity_of
from sbomgate.intel import _typohelper
from sbomgate.intel._typohelper import TyposquatPrefetcher
from sbomgate.intel.facts import IntelFacts
from sbomgate.intel.snapshot import load_facts_snapshot
from sbomgate.intel.typosquat import Query, TyposquatDetector
from sbomgate.sbom import Sbom, load_sbom_file
from support.real_sboms import outputs, real_sbom

# What producers write over the Python and Node targets, in JSON: their purls are of PyPI and
# npm, which the detector has lists for.
JSON_OUTPUTS = [
    o
    for o in outputs()
    if o.target in ("python-env", "node-app")
    and (o.format.endswith("json") or o.format.endswith("jsonld"))
]
WAIT = 120.0  # seconds: a guard against a hang, not a measure


def fresh_detector() -> TyposquatDetector:
    return TyposquatDetector(TyposquatDetector.default().lists())


def queries(sbom: Sbom, detector: TyposquatDetector) -> list[Query]:
    out = []
    for component in sbom.components:
        identity = identity_of(component)
        if identity is not None and component.purl and detector.covers(identity.type):
            out.append((identity.type, identity.name, identity.namespace))
    return out


@pytest.fixture
def prefetchers() -> Any:
    made: list[TyposquatPrefetcher] = []
    yield made
    for prefetcher in made:
        prefetcher.close()


def answering(
    prefetchers: list[TyposquatPrefetcher],
) -> tuple[TyposquatDetector, TyposquatPrefetcher, Any]:
    """A detector, and a prefetcher whose helper has answered a first document."""
    detector = fresh_detector()
    prefetcher = TyposquatPrefetcher(detector)
    prefetchers.append(prefetcher)
    prefetcher.read_ahead(b'{"purl": "pkg:pypi/reqeusts@1.0"}')
    assert prefetcher.wait(WAIT) and detector.answered(("pypi", "reqeusts", None))
    helper = prefetcher._helper
    assert helper is not None
    return detector, prefetcher, helper


@pytest.mark.parametrize("output", JSON_OUTPUTS, ids=lambda o: o.id)
def test_every_package_of_a_real_sbom_is_answered_as_the_detector_answers(
    output: Any, prefetchers: list[TyposquatPrefetcher]
) -> None:
    path = real_sbom(output)
    detector = fresh_detector()
    prefetcher = TyposquatPrefetcher(detector)
    prefetchers.append(prefetcher)
    prefetcher.read_ahead(path.read_bytes())
    assert prefetcher.wait(WAIT) and prefetcher.running
    wanted = queries(load_sbom_file(path), detector)
    assert wanted, "the SBOM lists PyPI or npm packages"
    assert [q for q in wanted if not detector.answered(q)] == []
    reference = fresh_detector()
    assert [detector.closest(*q) for q in wanted] == [reference.closest(*q) for q in wanted]


def test_escaped_purls_and_near_misses_are_answered(
    prefetchers: list[TyposquatPrefetcher],
) -> None:
    """JSON escapes (`\\/`, `\\u0040`, Go's `\\u0026`), a scoped npm name, SPDX's
    `referenceLocator`, SPDX 3's `software_packageUrl`; bom-refs are not purls to answer."""
    text = (
        b'{"components": ['
        b'{"bom-ref": "pkg:pypi/notlisted-in-a-ref@1.0#x", "purl": "pkg:pypi/reqeusts@2.0"},'
        b'{"purl" : "pkg:npm/\\u0040babel\\/cor\\u0065@7.0.0?a=1\\u0026b=2"},'
        b'{"purl": "pkg:npm/crossenv@1.0.0"}],'
        b'"packages": [{"externalRefs": [{"referenceLocator": "pkg:pypi/python-dateutil@2.8"}]}],'
        b'"@graph": [{"software_packageUrl": "pkg:npm/expresss@4.0.0"}]}'
    )
    detector = fresh_detector()
    prefetcher = TyposquatPrefetcher(detector)
    prefetchers.append(prefetcher)
    prefetcher.read_ahead(text)
    assert prefetcher.wait(WAIT)
    expected: dict[Query, str | None] = {
        ("pypi", "reqeusts", None): "requests",
        ("npm", "core", "@babel"): None,
        ("npm", "crossenv", None): "cross-env",
        ("pypi", "python-dateutil", None): None,
        ("npm", "expresss", None): "express",
    }
    assert {q: detector.answered(q) for q in expected} == dict.fromkeys(expected, True)
    assert not detector.answered(("pypi", "notlisted-in-a-ref", None))
    assert {q: detector.closest(*q) for q in expected} == expected


@pytest.mark.parametrize("output", JSON_OUTPUTS[:3], ids=lambda o: o.id)
def test_facts_with_a_helper_are_the_facts_without(output: Any, tmp_path: Path) -> None:
    path = real_sbom(output)
    sbom = load_sbom_file(path)
    snapshot = tmp_path / "facts.json"
    vouched = {"name": "mirror", "kind": "generic", "url": "https://mirror.example"}
    snapshot.write_bytes(
        orjson.dumps(
            {"packages": {c.purl: {"repository": vouched} for c in sbom.components if c.purl}}
        )
    )
    helped = IntelFacts(
        snapshot=load_facts_snapshot(snapshot), typosquat=fresh_detector(), typosquat_helper=True
    )
    try:
        helped.read_ahead(path.read_bytes())
        plain = IntelFacts(snapshot=load_facts_snapshot(snapshot), typosquat=fresh_detector())
        assert [helped(c) for c in sbom.components] == [plain(c) for c in sbom.components]
    finally:
        helped.close()


def test_a_helper_that_dies_is_replaced_and_nothing_is_lost(
    prefetchers: list[TyposquatPrefetcher],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector, prefetcher, helper = answering(prefetchers)
    helper.process.kill()
    helper.process.wait()
    deadline = time.monotonic() + WAIT
    while helper.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not prefetcher.running
    # Not started again at once (a helper that cannot start must not cost every image a try):
    prefetcher.read_ahead(b'{"purl": "pkg:npm/expresss@1.0"}')
    assert not prefetcher.running and not detector.answered(("npm", "expresss", None))
    assert "the typosquat helper stopped (exit status -9)" in caplog.text
    assert detector.closest("npm", "expresss") == "express"  # worked out inline
    # ... but once the delay has passed.
    monkeypatch.setattr(_typohelper, "_RESTART_AFTER", 0.0)
    prefetcher._next_start = 0.0
    prefetcher.read_ahead(b'{"purl": "pkg:npm/lodahs@1.0"}')
    assert prefetcher.wait(WAIT) and prefetcher.running
    assert detector.answered(("npm", "lodahs", None))
    assert detector.closest("npm", "lodahs") == "lodash"


def test_a_stalled_helper_never_blocks_and_is_stopped(
    prefetchers: list[TyposquatPrefetcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    detector, prefetcher, helper = answering(prefetchers)
    os.kill(helper.process.pid, signal.SIGSTOP)
    try:
        # Far more than a socket holds: each call returns (the sending thread is the one that
        # waits), and past the bound the documents are not even queued.
        big = (
            b'{"components": ['
            + b",".join(b'{"purl": "pkg:npm/name-%d@1.0"}' % i for i in range(20_000))
            + b"]}"
        )
        for _ in range(20):
            prefetcher.read_ahead(big)
        assert helper.pending() <= _typohelper._MAX_PENDING
        assert not prefetcher.wait(0.2)
        monkeypatch.setattr(_typohelper, "_STALLED_AFTER", 0.0)
        monkeypatch.setattr(_typohelper, "_RESTART_AFTER", 0.0)
        prefetcher.read_ahead(b'{"purl": "pkg:npm/expresss@1.0"}')  # finds it stalled
        assert not helper.alive
        assert helper.process.wait(WAIT) == -signal.SIGKILL  # stopped on a thread of its own
        prefetcher.read_ahead(b'{"purl": "pkg:npm/expresss@1.0"}')  # a new one
        assert prefetcher.wait(WAIT) and prefetcher.running
        assert detector.answered(("npm", "expresss", None))
    finally:
        if helper.process.poll() is None:
            os.kill(helper.process.pid, signal.SIGCONT)


def test_a_helper_idle_for_long_is_not_taken_for_stalled(
    prefetchers: list[TyposquatPrefetcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time to answer counts from when it was given something, not from its last answer."""
    # Long enough that a helper slowed by a busy machine still answers within it.
    monkeypatch.setattr(_typohelper, "_STALLED_AFTER", 2.0)
    detector, prefetcher, helper = answering(prefetchers)
    time.sleep(2.5)  # idle for longer than a stall
    for name in ("expresss", "lodahs", "crossenv"):
        prefetcher.read_ahead(b'{"purl": "pkg:npm/%s@1.0"}' % name.encode())
    assert prefetcher.wait(WAIT)
    assert prefetcher._helper is helper and helper.alive
    assert all(detector.answered(("npm", n, None)) for n in ("expresss", "lodahs", "crossenv"))
