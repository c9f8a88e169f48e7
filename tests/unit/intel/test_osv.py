"""OSV export loading, range evaluation per ecosystem, de-duplication, scores and live reload."""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version as PepVersion

from sbomgate.intel.ecosystems import (
    UncomparableVersion,
    compare_versions,
    osv_ecosystem,
    osv_package_name,
    version_key,
)
from sbomgate.intel.osv import OsvIndex, OsvLoadError, ReloadingOsvIndex, load_osv
from sbomgate.sbom.model import Component

CVSS31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
CVSS40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


def rec(
    rid: str,
    eco: str,
    name: str,
    *,
    events: list[dict[str, str]] | None = None,
    rtype: str = "ECOSYSTEM",
    versions: list[str] | None = None,
    ranges: list[dict[str, Any]] | None = None,
    aliases: list[str] | None = None,
    severity: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    aff: dict[str, Any] = {"package": {"ecosystem": eco, "name": name}}
    if ranges is not None:
        aff["ranges"] = ranges
    elif events is not None:
        aff["ranges"] = [{"type": rtype, "events": events}]
    if versions is not None:
        aff["versions"] = versions
    out: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": rid,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [aff],
    }
    if aliases:
        out["aliases"] = aliases
    if severity:
        out["severity"] = severity
    return out


def index_of(*records: dict[str, Any]) -> OsvIndex:
    idx = OsvIndex()
    for r in records:
        assert idx.add_record(r)
    return idx


def ids(results: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in results)


# --- ranges per ecosystem --------------------------------------------------------------------

# (ecosystem, events, affected versions, unaffected versions)
RANGE_CASES: list[tuple[str, list[dict[str, str]], list[str], list[str]]] = [
    # PyPI: PEP 440 ordering, pre-releases sort before the release, epochs dominate.
    (
        "PyPI",
        [{"introduced": "1.0"}, {"fixed": "2.0.0"}],
        ["1.0", "1.0.0", "1.5", "2.0rc1", "2.0.0b2", "1.9.post1"],
        ["0.9", "2.0", "2.0.1", "1.0rc1", "1!0.5"],
    ),
    ("PyPI", [{"introduced": "0"}, {"fixed": "1!1.0"}], ["5.0", "1!0.9"], ["1!1.0", "1!2.0"]),
    (
        "PyPI",
        [{"introduced": "1.2.0"}, {"last_affected": "1.4.0"}],
        ["1.2.0", "1.4.0"],
        ["1.4.0.post1", "1.4.1", "1.1.9"],
    ),
    # npm semver: pre-releases before the release.
    (
        "npm",
        [{"introduced": "4.0.0-beta.1"}, {"fixed": "4.17.21"}],
        ["4.0.0-beta.2", "4.0.0", "4.17.20", "4.17.21-rc.1"],
        ["4.0.0-alpha", "4.17.21", "5.0.0", "3.10.1"],
    ),
    ("npm", [{"introduced": "0"}, {"last_affected": "1.2.3"}], ["0.0.1", "1.2.3"], ["1.2.4"]),
    # Maven: qualifiers (alpha < rc < release < sp), 1.0 == 1.0.0.
    (
        "Maven",
        [{"introduced": "2.0-alpha1"}, {"fixed": "2.15.0"}],
        ["2.0-alpha1", "2.0-rc1", "2.0", "2.14.1"],
        ["1.9", "2.15", "2.15.0", "2.17.1"],
    ),
    # Go: OSV omits the v prefix, purls keep it; pseudo-versions are pre-releases.
    (
        "Go",
        [{"introduced": "0"}, {"fixed": "1.9.1"}],
        ["v1.9.0", "1.2.3", "v0.0.0-20210101000000-abcdef123456", "v1.9.1-0.20230101-abcdef"],
        ["v1.9.1", "v1.10.0", "v2.0.0+incompatible"],
    ),
    # Debian: epochs and ~.
    (
        "Debian:12",
        [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
        ["3.0.9-1", "3.0.11-1~deb12u1", "3.0.11-1~"],
        ["3.0.11-1~deb12u2", "3.0.11-1", "1:1.0-1", "3.0.13-1"],
    ),
    # Alpine: -rN revisions, _rc pre-releases.
    (
        "Alpine:v3.18",
        [{"introduced": "1.2.3-r0"}, {"fixed": "1.2.4-r1"}],
        ["1.2.3-r0", "1.2.3-r10", "1.2.4_rc1-r0", "1.2.4-r0"],
        ["1.2.2-r5", "1.2.4-r1", "1.2.5-r0"],
    ),
    # RPM.
    (
        "Red Hat",
        [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}],
        ["1:3.0.7-26.el9", "3.0.9-1.el9"],
        ["1:3.0.7-27.el9", "1:3.0.8-1.el9"],
    ),
]


@pytest.mark.parametrize(("eco", "events", "hit", "miss"), RANGE_CASES)
def test_ranges(eco: str, events: list[dict[str, str]], hit: list[str], miss: list[str]) -> None:
    idx = index_of(rec("ADV-1", eco, "pkg", events=events))
    for v in hit:
        assert ids(idx.match(eco, "pkg", v)) == ["ADV-1"], v
    for v in miss:
        assert idx.match(eco, "pkg", v) == (), v


def test_semver_range_type_uses_semver_whatever_the_ecosystem() -> None:
    idx = index_of(
        rec(
            "S-1",
            "crates.io",
            "tokio",
            rtype="SEMVER",
            events=[{"introduced": "1.0.0"}, {"fixed": "1.18.4"}],
        )
    )
    assert idx.match("crates.io", "tokio", "1.18.3")
    assert idx.match("crates.io", "tokio", "1.18.4-alpha.1")
    assert not idx.match("crates.io", "tokio", "1.18.4")
    assert not idx.match("crates.io", "tokio", "0.2.25")


def test_limit_caps_the_range() -> None:
    idx = index_of(
        rec("L-1", "npm", "x", events=[{"introduced": "0"}, {"limit": "2.0.0"}]),
        rec("L-2", "npm", "y", events=[{"introduced": "1.0.0"}, {"limit": "*"}]),
    )
    assert ids(idx.match("npm", "x", "1.9.9")) == ["L-1"]
    assert not idx.match("npm", "x", "2.0.0")
    assert not idx.match("npm", "x", "3.0.0")
    assert ids(idx.match("npm", "y", "9.0.0")) == ["L-2"]
    assert not idx.match("npm", "y", "0.9.0")


def test_several_ranges_and_reintroduction() -> None:
    idx = index_of(
        rec(
            "M-1",
            "PyPI",
            "django",
            ranges=[
                {"type": "ECOSYSTEM", "events": [{"introduced": "3.2"}, {"fixed": "3.2.20"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "4.1"}, {"fixed": "4.1.10"}]},
            ],
        ),
        # One range, events out of order in the document: evaluated in version order.
        rec(
            "M-2",
            "Go",
            "example.com/mod",
            events=[
                {"fixed": "1.5.0"},
                {"introduced": "2.0.0"},
                {"introduced": "1.0.0"},
                {"fixed": "2.1.0"},
            ],
        ),
    )
    for v in ("3.2.0", "3.2.19", "4.1", "4.1.9"):
        assert ids(idx.match("PyPI", "Django", v)) == ["M-1"], v
    for v in ("3.1", "3.2.20", "4.0", "4.1.10", "4.2"):
        assert not idx.match("PyPI", "django", v), v
    for v in ("v1.0.0", "v1.4.9", "v2.0.0", "v2.0.5"):
        assert ids(idx.match("Go", "example.com/mod", v)) == ["M-2"], v
    for v in ("v0.9.0", "v1.5.0", "v1.9.9", "v2.1.0"):
        assert not idx.match("Go", "example.com/mod", v), v


def test_versions_list_only() -> None:
    idx = index_of(
        rec("V-1", "npm", "@scope/pkg", versions=["1.0.0", "1.0.1"]),
        rec("V-2", "PyPI", "Foo.Bar", versions=["1.0", "2.0RC1"]),
        rec("V-3", "Maven", "org.example:lib", versions=["1.2"]),
    )
    assert ids(idx.match("npm", "@scope/pkg", "1.0.1")) == ["V-1"]
    assert not idx.match("npm", "@scope/pkg", "1.0.2")
    # PEP 503 names; PEP 440-equal spellings of a listed version.
    assert ids(idx.match("PyPI", "foo_bar", "1.0.0")) == ["V-2"]
    assert ids(idx.match("PyPI", "FOO-bar", "2.0rc1")) == ["V-2"]
    assert not idx.match("PyPI", "foo-bar", "1.1")
    assert ids(idx.match("Maven", "org.example:lib", "1.2")) == ["V-3"]
    # Equal in the ecosystem's own order is listed: Maven's 1.2.0 is 1.2 (a deny rule never
    # misses a spelling); npm's v-prefix is node-semver's spelling of the same version.
    assert ids(idx.match("Maven", "org.example:lib", "1.2.0")) == ["V-3"]
    assert not idx.match("Maven", "org.example:lib", "1.2.1")
    assert ids(idx.match("npm", "@scope/pkg", "v1.0.0")) == ["V-1"]


def test_git_ranges_are_ignored() -> None:
    git = {
        "type": "GIT",
        "repo": "https://github.com/x/y",
        "events": [{"introduced": "0"}, {"fixed": "abc123"}],
    }
    idx = index_of(
        rec("G-1", "PyPI", "y", ranges=[git]),
        rec(
            "G-2",
            "PyPI",
            "z",
            ranges=[git, {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
        ),
    )
    assert not idx.match("PyPI", "y", "1.0")
    assert ids(idx.match("PyPI", "z", "1.0")) == ["G-2"]
    assert not idx.match("PyPI", "z", "2.0")


def test_unparseable_versions_match_uncertainly_never_silently() -> None:
    idx = index_of(
        rec(
            "U-1",
            "PyPI",
            "p",
            events=[{"introduced": "0"}, {"fixed": "2.0"}],
            versions=["weird-build"],
        ),
        rec("U-2", "Alpine:v3.18", "a", events=[{"introduced": "0"}, {"fixed": "not a version"}]),
    )
    (hit,) = idx.match("PyPI", "p", "not.a.version!")
    assert hit["uncertain"] == (
        "the version could not be compared with the advisory's affected versions "
        "('not.a.version!' is not a valid PyPI version)"
    )
    (listed,) = idx.match("PyPI", "p", "weird-build")  # listed verbatim: certain
    assert "uncertain" not in listed
    assert not idx.match("PyPI", "p", "2.0")  # comparable and outside the range
    (alpine,) = idx.match("Alpine:v3.18", "a", "1.0-r0")  # the range cannot be ordered
    assert "Alpine:v3.18 order cannot place" in alpine["uncertain"]


def test_unknown_ecosystem_and_package_give_no_match() -> None:
    idx = index_of(rec("K-1", "PyPI", "p", events=[{"introduced": "0"}]))
    assert idx.match("NoSuchEcosystem", "p", "1.0") == ()
    assert idx.match("PyPI", "q", "1.0") == ()
    idx2 = index_of(rec("K-2", "Frobnitz", "p", events=[{"introduced": "0"}, {"fixed": "2"}]))
    # No ordering known: the range can neither match nor be ruled out; a deny rule counts it.
    (hit,) = idx2.match("Frobnitz", "p", "1")
    assert "'1' is not a valid Frobnitz version" in hit["uncertain"]
    with pytest.raises(UncomparableVersion, match="cannot compare"):
        version_key("Frobnitz", "1")


def test_withdrawn_records_do_not_match() -> None:
    r = rec("W-1", "npm", "w", events=[{"introduced": "0"}])
    r["withdrawn"] = "2024-02-01T00:00:00Z"
    assert index_of(r).match("npm", "w", "1.0.0") == ()


# --- de-duplication, scores, malware ----------------------------------------------------------


def test_alias_deduplication_merges_aliases() -> None:
    ev = [{"introduced": "0"}, {"fixed": "2.0.0"}]
    ghsa = rec(
        "GHSA-aaaa-bbbb-cccc",
        "npm",
        "lib",
        events=ev,
        aliases=["CVE-2024-0001"],
        severity=[{"type": "CVSS_V3", "score": CVSS31}],
    )
    cve = rec("CVE-2024-0001", "npm", "lib", events=ev, aliases=["OSV-2024-9"])
    other = rec("GHSA-xxxx-yyyy-zzzz", "npm", "lib", events=ev)
    idx = index_of(ghsa, cve, other, ghsa)  # and the GHSA loaded twice
    out = idx.match("npm", "lib", "1.0.0")
    assert ids(out) == ["GHSA-aaaa-bbbb-cccc", "GHSA-xxxx-yyyy-zzzz"]
    merged = next(r for r in out if r["id"] == "GHSA-aaaa-bbbb-cccc")
    assert merged["aliases"] == ["CVE-2024-0001", "OSV-2024-9"]


def test_one_record_matching_through_several_entries_is_returned_once() -> None:
    r = rec("D-1", "PyPI", "p", events=[{"introduced": "0"}])
    r["affected"].append({"package": {"ecosystem": "PyPI", "name": "P"}, "versions": ["1.0"]})
    assert ids(index_of(r).match("PyPI", "p", "1.0")) == ["D-1"]


def test_numerical_scores_from_cvss_vectors() -> None:
    r = rec(
        "C-1",
        "PyPI",
        "p",
        events=[{"introduced": "0"}],
        severity=[
            {"type": "CVSS_V3", "score": CVSS31},
            {"type": "CVSS_V4", "score": CVSS40},
            {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
            {"type": "CVSS_V3", "score": "CVSS:3.1/garbage"},
            {"type": "Ubuntu", "score": "high"},
        ],
    )
    (out,) = index_of(r).match("PyPI", "p", "1.0")
    scores = [s.get("numerical_score") for s in out["severity"]]
    assert scores == [9.8, 9.3, 7.5, None, None]


def test_malware_records_are_flagged() -> None:
    idx = index_of(
        rec("MAL-2024-1234", "npm", "evil", versions=["1.0.0"]),
        rec("GHSA-mmmm-mmmm-mmmm", "npm", "evil2", versions=["1.0.0"], aliases=["MAL-2024-9"]),
        rec("GHSA-nnnn-nnnn-nnnn", "npm", "fine", versions=["1.0.0"]),
    )
    (mal,) = idx.match("npm", "evil", "1.0.0")
    assert mal["id"] == "MAL-2024-1234" and mal["malware"] is True
    assert idx.match("npm", "evil2", "1.0.0")[0]["malware"] is True
    assert "malware" not in idx.match("npm", "fine", "1.0.0")[0]


# --- loading ----------------------------------------------------------------------------------


def write_zip(
    path: Path, records: list[dict[str, Any]], extra: dict[str, bytes] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r, indent=2))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_zip_and_directory_loading(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    z = write_zip(
        tmp_path / "all.zip",
        [rec("PYSEC-1", "PyPI", "requests", events=[{"introduced": "0"}, {"fixed": "2.31.0"}])],
        {"bad.json": b"{not json", "nested/README.txt": b"ignored"},
    )
    d = tmp_path / "osv" / "npm"
    d.mkdir(parents=True)
    (d / "GHSA-1.json").write_text(json.dumps(rec("GHSA-1", "npm", "lodash", versions=["4.17.20"])))
    (d.parent / "broken.json").write_text(json.dumps({"id": "X", "affected": "nope"}))
    (d.parent / "noid.json").write_text(json.dumps({"affected": []}))
    (d.parent / "badalias.json").write_text(json.dumps({"id": "Y", "aliases": "CVE-1"}))
    with caplog.at_level(logging.WARNING, logger="sbomgate.intel.osv"):
        idx = load_osv([z, tmp_path / "osv"])
    assert len(idx) == 2 and idx.skipped == 4
    assert "bad.json" in caplog.text and "broken.json" in caplog.text
    assert ids(idx.match("PyPI", "Requests", "2.30.0")) == ["PYSEC-1"]
    assert ids(idx.match("npm", "lodash", "4.17.20")) == ["GHSA-1"]


def test_unreadable_export_raises(tmp_path: Path) -> None:
    (tmp_path / "all.zip").write_bytes(b"not a zip")
    with pytest.raises(OsvLoadError):
        load_osv([tmp_path / "all.zip"])
    with pytest.raises(OsvLoadError):
        load_osv([tmp_path / "missing.zip"])


# --- components -------------------------------------------------------------------------------


def comp(
    purl_type: str, name: str, version: str, namespace: str | None = None, **q: str
) -> Component:
    return Component(
        name=name, version=version, purl_type=purl_type, namespace=namespace, qualifiers=q
    )


def test_component_ecosystems_and_names() -> None:
    assert osv_ecosystem("deb", "debian", {"distro": "debian-12.4"}) == "Debian:12"
    assert osv_ecosystem("deb", "debian", {"distro": "bookworm"}) == "Debian:12"
    assert osv_ecosystem("deb", "ubuntu", {"distro": "ubuntu-22.04"}) == "Ubuntu:22.04:LTS"
    assert osv_ecosystem("apk", "alpine", {"distro": "alpine-3.18.4"}) == "Alpine:v3.18"
    assert osv_ecosystem("rpm", "rocky", {}) == "Rocky Linux"
    assert osv_ecosystem("cargo") == "crates.io"
    assert osv_ecosystem("oci") is None
    assert osv_package_name(comp("maven", "log4j-core", "2.14.1", "org.apache.logging.log4j")) == (
        "org.apache.logging.log4j:log4j-core"
    )
    assert osv_package_name(comp("npm", "core", "7.0.0", "@babel")) == "@babel/core"
    assert osv_package_name(comp("npm", "@babel/core", "7.0.0", "@babel")) == "@babel/core"
    assert (
        osv_package_name(comp("golang", "bar", "v1.0.0", "github.com/foo")) == "github.com/foo/bar"
    )
    assert (
        osv_package_name(comp("deb", "libssl3", "3.0", "debian", upstream="openssl")) == "openssl"
    )


def test_match_component() -> None:
    idx = index_of(
        rec(
            "GHSA-log4j",
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            events=[{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}],
        ),
        rec("GO-1", "Go", "github.com/foo/bar", events=[{"introduced": "0"}, {"fixed": "1.2.0"}]),
        rec(
            "DSA-1",
            "Debian:12",
            "openssl",
            events=[{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
        ),
        rec("GHSA-babel", "npm", "@babel/core", versions=["7.0.0"]),
    )
    assert ids(
        idx.match_component(comp("maven", "log4j-core", "2.14.1", "org.apache.logging.log4j"))
    ) == ["GHSA-log4j"]
    assert ids(idx.match_component(comp("golang", "bar", "v1.1.0", "github.com/foo"))) == ["GO-1"]
    deb = comp(
        "deb", "libssl3", "3.0.11-1~deb12u1", "debian", distro="debian-12", upstream="openssl"
    )
    assert ids(idx.match_component(deb)) == ["DSA-1"]
    assert not idx.match_component(
        comp("deb", "libssl3", "3.0.11-1~deb12u1", "debian", distro="debian-11")
    )
    assert ids(idx.match_component(comp("npm", "core", "7.0.0", "@babel"))) == ["GHSA-babel"]
    assert idx.match_component(Component(name="x", version="1")) == ()
    assert idx.match_component(comp("oci", "x", "1")) == ()


def test_version_comparison_helpers() -> None:
    assert compare_versions("PyPI", "1.0rc1", "1.0") == -1
    assert compare_versions("PyPI", "1.0", "1.0.0") == 0
    assert compare_versions("Go", "v1.10.0", "1.9.0") == 1
    assert compare_versions("Debian", "1:1.0", "2.0") == 1
    with pytest.raises(UncomparableVersion):
        compare_versions("npm", "latest", "1.0.0")
    with pytest.raises(UncomparableVersion):
        version_key("Alpine", "###")


# --- reloading --------------------------------------------------------------------------------


def _bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))


def test_reload_serves_old_data_during_rebuild_then_new(tmp_path: Path) -> None:
    z = write_zip(tmp_path / "all.zip", [rec("OLD-1", "npm", "p", versions=["1.0.0"])])
    gate = threading.Event()
    started = threading.Event()
    calls = 0

    def slow_loader(paths: Sequence[Path]) -> OsvIndex:
        nonlocal calls
        calls += 1
        if calls > 1:
            started.set()
            assert gate.wait(10)
        return load_osv(paths)

    now = [0.0]
    live = ReloadingOsvIndex([z], check_interval=5.0, loader=slow_loader, clock=lambda: now[0])
    assert ids(live.match("npm", "p", "1.0.0")) == ["OLD-1"]

    write_zip(z, [rec("NEW-1", "npm", "p", versions=["1.0.0"])])
    _bump(z)
    assert ids(live.match("npm", "p", "1.0.0")) == ["OLD-1"]  # interval not yet passed
    now[0] = 10.0
    assert ids(live.match("npm", "p", "1.0.0")) == ["OLD-1"]  # starts the rebuild
    assert started.wait(5)
    for _ in range(50):  # never empty while rebuilding
        assert ids(live.match("npm", "p", "1.0.0")) == ["OLD-1"]
    gate.set()
    assert live.wait(10)
    assert ids(live.match("npm", "p", "1.0.0")) == ["NEW-1"]
    assert live.generation == 2


def test_broken_export_keeps_the_old_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    z = write_zip(tmp_path / "all.zip", [rec("OLD-1", "npm", "p", versions=["1.0.0"])])
    now = [0.0]
    live = ReloadingOsvIndex([z], check_interval=1.0, clock=lambda: now[0])
    z.write_bytes(b"truncated garbage")
    _bump(z)
    now[0] = 2.0
    with caplog.at_level(logging.ERROR, logger="sbomgate.intel.osv"):
        assert live.maybe_reload()
        assert live.wait(10)
    assert "keeping the previous index" in caplog.text
    assert live.last_error and "zip" in live.last_error
    assert ids(live.match("npm", "p", "1.0.0")) == ["OLD-1"]
    # Fixed again: picked up.
    write_zip(z, [rec("NEW-1", "npm", "p", versions=["1.0.0"])])
    _bump(z)
    now[0] = 4.0
    live.maybe_reload()
    assert live.wait(10)
    assert ids(live.match("npm", "p", "1.0.0")) == ["NEW-1"]


def test_background_watcher_picks_up_changes(tmp_path: Path) -> None:
    d = tmp_path / "osv"
    d.mkdir()
    (d / "A.json").write_text(json.dumps(rec("A", "PyPI", "p", versions=["1.0"])))
    live = ReloadingOsvIndex([d], check_interval=0.05)
    live.start()
    try:
        (d / "B.json").write_text(json.dumps(rec("B", "PyPI", "p", versions=["1.0"])))
        for _ in range(200):
            if live.generation >= 2 and live.wait(1):
                break
            threading.Event().wait(0.02)
        assert ids(live.index.match("PyPI", "p", "1.0")) == ["A", "B"]
    finally:
        live.stop()


def test_failed_first_load_serves_nothing_then_recovers(tmp_path: Path) -> None:
    z = tmp_path / "all.zip"
    z.write_bytes(b"garbage")
    now = [0.0]
    live = ReloadingOsvIndex([z], check_interval=1.0, clock=lambda: now[0])
    assert live.last_error and live.match("npm", "p", "1.0.0") == ()
    write_zip(z, [rec("NEW-1", "npm", "p", versions=["1.0.0"])])
    _bump(z)
    now[0] = 2.0
    assert live.maybe_reload()
    assert live.wait(10)
    assert ids(live.match("npm", "p", "1.0.0")) == ["NEW-1"]


# --- property: introduced/fixed is the half-open interval [introduced, fixed) -------------------

_release = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))
_pre = st.sampled_from(["", "a1", "b2", "rc1", ".post1", ".dev0"])


@settings(max_examples=200, deadline=None)
@given(
    lo=st.tuples(_release, _pre),
    hi=st.tuples(_release, _pre),
    v=st.tuples(_release, _pre),
    epoch=st.sampled_from(["", "1!"]),
)
def test_pypi_range_is_half_open_interval(
    lo: tuple[tuple[int, int, int], str],
    hi: tuple[tuple[int, int, int], str],
    v: tuple[tuple[int, int, int], str],
    epoch: str,
) -> None:
    def s(x: tuple[tuple[int, int, int], str], ep: str = "") -> str:
        return ep + ".".join(map(str, x[0])) + x[1]

    a, b, ver = s(lo), s(hi), s(v, epoch)
    idx = index_of(rec("P-1", "PyPI", "p", events=[{"introduced": a}, {"fixed": b}]))
    pa, pb, pv = PepVersion(a), PepVersion(b), PepVersion(ver)
    # Events are evaluated in version order: a `fixed` below `introduced` ends nothing.
    expected = pa <= pv < pb if pa <= pb else pa <= pv
    assert bool(idx.match("PyPI", "p", ver)) == expected


# --- deny rules never fail open; one identity -------------------------------------------------


def _purl_component(purl: str, version: str | None = None) -> Component:
    from sbomgate.sbom.purl import parse_purl

    parsed = parse_purl(purl)
    return Component(
        name=parsed.name,
        version=version if version is not None else parsed.version,
        purl=parsed.canonical,
        purl_type=parsed.type,
        namespace=parsed.namespace,
        qualifiers=parsed.qualifiers,
    )


ALL_VERSIONS_MAL = rec("MAL-1", "npm", "evil-js", events=[{"introduced": "0"}])
RANGED = rec("GHSA-r", "npm", "evil-js", events=[{"introduced": "1.0.0"}, {"fixed": "2.0.0"}])
LISTED = rec("MAL-2", "PyPI", "evil-py", versions=["1.0"])


@pytest.mark.parametrize(
    "purl", ["pkg:npm/evil-js", "pkg:npm/evil-js@latest", "pkg:npm/evil-js@1.0-evil!"]
)
def test_all_versions_records_match_without_a_comparable_version(purl: str) -> None:
    idx = index_of(ALL_VERSIONS_MAL, RANGED)
    found = {r["id"]: r for r in idx.match_component(_purl_component(purl))}
    assert "uncertain" not in found["MAL-1"]  # every version: certain, whatever the version
    assert found["GHSA-r"]["uncertain"].startswith(
        "the version could not be compared with the advisory's affected versions ("
    )


@pytest.mark.parametrize(
    ("version", "why"),
    [
        (None, "the package has no version"),
        ("latest", "'latest' is not a valid npm version"),
        ("1.0-evil!", "'1.0-evil!' is not a valid npm version"),
    ],
)
def test_uncertain_matches_say_why(version: str | None, why: str) -> None:
    (hit,) = index_of(RANGED).match("npm", "evil-js", version)
    assert hit["uncertain"] == (
        f"the version could not be compared with the advisory's affected versions ({why})"
    )


@pytest.mark.parametrize(
    ("purl", "affected"),
    [
        ("pkg:npm/evil-js@1.5.0%2Bbuild", True),
        ("pkg:npm/evil-js@1.5.0+build", True),
        ("pkg:npm/evil-js@v1.5.0", True),
        ("pkg:npm/evil-js@2.0.0+build", False),
        ("pkg:pypi/evil-py@1.0.0", True),
        ("pkg:pypi/Evil_Py@v1.0", True),
        ("pkg:pypi/evil.py@1.00", True),
        ("pkg:pypi/evil-py@2!1.0", False),
    ],
)
def test_spellings_match_certainly(purl: str, affected: bool) -> None:
    found = index_of(RANGED, LISTED).match_component(_purl_component(purl))
    assert bool(found) is affected
    assert all("uncertain" not in r for r in found)


def test_pypi_local_versions_and_epochs() -> None:
    idx = index_of(rec("P-1", "PyPI", "p", events=[{"introduced": "1.0"}, {"fixed": "2.0"}]))
    assert ids(idx.match("PyPI", "p", "1.0.0+local")) == ["P-1"]
    assert not idx.match("PyPI", "p", "2!1.0")  # epoch 2 sorts after 2.0


def test_osv_uses_the_purls_version_not_the_sboms_field() -> None:
    idx = index_of(
        rec("GHSA-v", "PyPI", "jinja2", events=[{"introduced": "0"}, {"fixed": "2.11.3"}])
    )
    lying = _purl_component("pkg:pypi/jinja2@2.10.0", version="3.1.4")
    assert ids(idx.match_component(lying)) == ["GHSA-v"]


def test_npm_names_are_case_sensitive_in_the_index() -> None:
    idx = index_of(rec("MAL-lower", "npm", "jsonstream", versions=["1.3.5"]))
    assert not idx.match_component(_purl_component("pkg:npm/JSONStream@1.3.5"))
    assert ids(idx.match_component(_purl_component("pkg:npm/jsonstream@1.3.5"))) == ["MAL-lower"]


def test_a_certain_record_merged_with_an_uncertain_one_is_certain() -> None:
    a = rec("GHSA-m", "npm", "m", events=[{"introduced": "0"}, {"fixed": "weird!"}])
    b = rec("CVE-m", "npm", "m", events=[{"introduced": "0"}], aliases=["GHSA-m"])
    (merged,) = index_of(a, b).match("npm", "m", "1.0.0")
    assert "uncertain" not in merged
    (alone,) = index_of(a).match("npm", "m", "1.0.0")
    assert "npm order cannot place" in alone["uncertain"]


# Records whose names each ecosystem folds its own way (PEP 503, case for NuGet, Hex and Pub,
# none for npm), for the name filter of `match_component`.
FOLDED = [
    rec("PYSEC-f", "PyPI", "Zope.Interface_Extra", events=[{"introduced": "0"}]),
    rec("GHSA-n", "NuGet", "Newtonsoft.Json", events=[{"introduced": "0"}]),
    rec("GHSA-h", "Hex", "Plug_Crypto", events=[{"introduced": "0"}]),
    rec("GHSA-p", "Pub", "Http", events=[{"introduced": "0"}]),
    rec("GHSA-c", "npm", "JSONStream", events=[{"introduced": "0"}]),
    rec("RUSTSEC-1", "crates.io", "Foo-Bar", events=[{"introduced": "0"}]),
]
FOLDED_PURLS = [
    "pkg:pypi/zope-interface-extra@1.0",
    "pkg:pypi/ZOPE..interface__extra@1.0",
    "pkg:nuget/newtonsoft.json@13.0.1",
    "pkg:nuget/NEWTONSOFT.JSON@13.0.1",
    "pkg:hex/plug_crypto@1.2.0",
    "pkg:pub/http@1.0.0",
    "pkg:npm/JSONStream@1.3.5",
    "pkg:npm/jsonstream@1.3.5",
    "pkg:cargo/Foo-Bar@1.0.0",
    "pkg:cargo/foo_bar@1.0.0",
]


@pytest.mark.parametrize("purl", FOLDED_PURLS)
def test_the_name_filter_rules_out_no_match(purl: str) -> None:
    """`match_component` rules a package out by its PEP 503-folded name before working out its
    ecosystem: it finds exactly what a lookup by ecosystem and name finds."""
    from sbomgate.identity import identity_of
    from sbomgate.intel.ecosystems import identity_ecosystem, osv_name

    idx = index_of(*FOLDED)
    component = _purl_component(purl)
    identity = identity_of(component)
    assert identity is not None
    ecosystem = identity_ecosystem(identity)
    assert ecosystem is not None
    unfiltered = idx.match(ecosystem, osv_name(identity), identity.version)
    assert ids(idx.match_component(component)) == ids(unfiltered)
    expected = {
        "pkg:pypi/zope-interface-extra@1.0": ["PYSEC-f"],
        "pkg:pypi/ZOPE..interface__extra@1.0": ["PYSEC-f"],
        "pkg:nuget/newtonsoft.json@13.0.1": ["GHSA-n"],
        "pkg:nuget/NEWTONSOFT.JSON@13.0.1": ["GHSA-n"],
        "pkg:hex/plug_crypto@1.2.0": ["GHSA-h"],
        "pkg:pub/http@1.0.0": ["GHSA-p"],
        "pkg:npm/JSONStream@1.3.5": ["GHSA-c"],
        "pkg:npm/jsonstream@1.3.5": [],
        "pkg:cargo/Foo-Bar@1.0.0": ["RUSTSEC-1"],
        "pkg:cargo/foo_bar@1.0.0": [],
    }
    assert ids(idx.match_component(component)) == expected[purl]


@given(
    name=st.text(alphabet="aAbB-_.", min_size=1, max_size=6),
    query=st.text(alphabet="aAbB-_.", min_size=1, max_size=6),
    ptype=st.sampled_from(["pypi", "nuget", "hex", "pub", "npm", "cargo", "gem"]),
)
@settings(max_examples=300, deadline=None)
def test_the_name_filter_agrees_with_every_ecosystems_folding(
    name: str, query: str, ptype: str
) -> None:
    from sbomgate.identity import identity_of
    from sbomgate.intel.ecosystems import identity_ecosystem, osv_name

    component = Component(name=query, version="1.0.0", purl_type=ptype)
    identity = identity_of(component)
    assert identity is not None
    ecosystem = identity_ecosystem(identity)
    assert ecosystem is not None
    idx = index_of(rec("X-1", ecosystem, name, events=[{"introduced": "0"}]))
    unfiltered = idx.match(ecosystem, osv_name(identity), identity.version)
    assert ids(idx.match_component(component)) == ids(unfiltered)
