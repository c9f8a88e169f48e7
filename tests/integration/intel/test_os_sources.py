"""OS package repositories as trusted sources, against real repositories on loopback made by
the distributions' own tools (tests/support/os_repos.py): apt-ftparchive and gpg for apt,
rpmbuild, createrepo_c and gpg for rpm, and Debian's own signed index from this machine."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from sbomgate.intel.facts import build_facts, source_configs
from sbomgate.intel.sources import BACKENDS, SourceAnswer, SourceConfig, TrustedSources
from sbomgate.intel.sources.apt import parse_packages
from sbomgate.intel.sources.interface import Distribution
from sbomgate.sbom.model import Component
from support.index_servers import free_port
from support.os_repos import DEBIAN_KEYRING, AptLists, OsRepos


def deb(
    name: str,
    version: str,
    arch: str | None = "amd64",
    *,
    vendor: str = "debian",
    distro: str | None = "debian-12",
    upstream: str | None = None,
    **hashes: str,
) -> Component:
    qualifiers = {
        k: v for k, v in (("arch", arch), ("distro", distro), ("upstream", upstream)) if v
    }
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(qualifiers.items()))
    purl = f"pkg:deb/{vendor}/{name}@{quote(version, safe='')}" + (f"?{query}" if query else "")
    return Component(
        name, version, purl, "deb", vendor, qualifiers=qualifiers, format="deb", hashes=hashes
    )


def rpm(name: str, version: str, arch: str, epoch: str | None = None, **hashes: str) -> Component:
    qualifiers = {"arch": arch, "distro": "fedora-40"} | ({"epoch": epoch} if epoch else {})
    query = "&".join(f"{k}={v}" for k, v in sorted(qualifiers.items()))
    purl = f"pkg:rpm/fedora/{name}@{version}?{query}"
    return Component(
        name, version, purl, "rpm", "fedora", qualifiers=qualifiers, format="rpm", hashes=hashes
    )


def apt_source(
    url: str,
    keyring: Path | str,
    *,
    suites: tuple[str, ...] = ("bookworm",),
    architectures: tuple[str, ...] = ("amd64", "arm64"),
    name: str = "debian",
) -> SourceConfig:
    return SourceConfig(
        name,
        "apt",
        url,
        distribution=Distribution(
            vendor="debian",
            releases=("debian-12", "bookworm"),
            keyring=str(keyring),
            suites=suites,
            components=("main",),
            architectures=architectures,
        ),
    )


def rpm_source(url: str, keyring: Path) -> SourceConfig:
    return SourceConfig(
        "fedora",
        "rpm",
        url,
        distribution=Distribution(
            vendor="fedora",
            releases=("fedora-40",),
            keyring=str(keyring),
            architectures=("x86_64",),
        ),
    )


def ask(config: SourceConfig, component: Component) -> SourceAnswer:
    with TrustedSources([config]) as sources:
        return sources.lookup(component)


@pytest.fixture(autouse=True)
def fresh_indexes() -> None:
    """The parsed-index caches are shared by digest across sources (the repositories here
    hold the same packages): each test reads its indexes from its own repository."""
    for kind in ("apt", "rpm"):
        BACKENDS[kind].indexes.clear()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- apt: answers


def test_a_package_at_its_version_and_architecture_is_found(os_repos: OsRepos) -> None:
    hostname = os_repos.debs["hostname"]
    config = apt_source(os_repos.url("good"), os_repos.keyring)
    answer = ask(config, deb("hostname", hostname["Version"], sha256=hostname["SHA256"]))
    assert answer.repository == config.repository()
    assert (answer.found_package, answer.found_version, answer.error) == (True, True, None)
    # The .deb's digest the SBOM carries is compared with the signed index's.
    other = ask(config, deb("hostname", hostname["Version"], sha256="0" * 64))
    assert other.repository is None
    assert other.hash_mismatch and "sha256" in other.hash_mismatch
    # Every spelling of the distribution release the source vouches for, and none.
    for distro in ("bookworm", "debian-12.5", None):
        assert ask(config, deb("hostname", hostname["Version"], distro=distro)).repository


def test_an_answer_is_given_again_no_longer_than_its_release_is_valid(os_repos: OsRepos) -> None:
    """A Release signed valid for a day: the answer it vouches for is given again as the same
    object (a new build's lookups), but not past that day, though its cache entries are kept
    for a month; then it is made again, from the cache (the Release is still valid on this
    machine's clock, which did not move)."""
    hostname = os_repos.debs["hostname"]
    component = deb("hostname", hostname["Version"], sha256=hostname["SHA256"])
    now = [0.0]
    config = apt_source(os_repos.url("a-day"), os_repos.keyring)
    with TrustedSources([config], positive_ttl=30 * 86400, clock=lambda: now[0]) as sources:
        first = sources.lookup(component)
        assert first.repository == config.repository() and first.error is None
        now[0] += 86400 - 600
        assert sources.lookup(component) is first
        assert sources.lookup_many([component])[0] is first
        sent = sources.requests_sent
        now[0] += 1200  # past the Release's Valid-Until, within the cache's month
        again = sources.lookup(component)
        assert again == first and again is not first
        assert sources.requests_sent == sent


def test_architecture_all_counts_for_any_architecture(os_repos: OsRepos) -> None:
    netbase = os_repos.debs["netbase"]
    assert netbase["Architecture"] == "all"
    config = apt_source(os_repos.url("good"), os_repos.keyring)
    for arch in ("amd64", "arm64", "all", None):
        assert ask(config, deb("netbase", netbase["Version"], arch)).repository, arch


@pytest.mark.parametrize(
    ("name", "version", "arch", "found_package"),
    [
        ("no-such-package", "1.0-1", "amd64", False),  # not found: name
        ("hostname", "9.99", "amd64", True),  # not found: version
        ("hostname", None, "arm64", False),  # not found: architecture (amd64 only)
        ("hostname", None, "riscv64", False),  # an architecture the source is not for
    ],
)
def test_not_found_is_an_answer_not_a_fault(
    os_repos: OsRepos, name: str, version: str | None, arch: str, found_package: bool
) -> None:
    version = version or os_repos.debs["hostname"]["Version"]
    answer = ask(apt_source(os_repos.url("good"), os_repos.keyring), deb(name, version, arch))
    assert answer.repository is None
    assert answer.error is None
    assert (answer.found_package, answer.found_version) == (found_package, False)


def test_the_purl_names_the_binary_package_and_upstream_its_source(os_repos: OsRepos) -> None:
    popt = os_repos.debs["libpopt0"]
    assert popt["Source"] == "popt"
    config = apt_source(os_repos.url("good"), os_repos.keyring)
    assert ask(config, deb("libpopt0", popt["Version"], upstream="popt")).repository
    assert ask(
        config, deb("libpopt0", popt["Version"], upstream=f"popt@{popt['Version']}")
    ).repository
    # The source package's name is not a binary package, and the wrong source is not this one.
    assert not ask(config, deb("popt", popt["Version"])).found_package
    assert ask(config, deb("libpopt0", popt["Version"], upstream="openssl")).repository is None


def test_another_vendor_or_release_is_not_asked(os_repos: OsRepos) -> None:
    hostname = os_repos.debs["hostname"]
    config = apt_source(os_repos.url("good"), os_repos.keyring)
    before = len(os_repos.asked("/good/"))
    for component in (
        deb("hostname", hostname["Version"], distro="debian-11"),
        deb("hostname", hostname["Version"], distro="ubuntu-22.04"),
        deb("hostname", hostname["Version"], vendor="ubuntu", distro=None),
    ):
        answer = ask(config, component)
        assert (answer.repository, answer.found_package, answer.error) == (None, False, None)
    assert len(os_repos.asked("/good/")) == before  # nothing was sent


def test_release_gpg_and_compression_fallbacks(os_repos: OsRepos) -> None:
    """No InRelease: Release + Release.gpg (armored, as Debian's); no .xz: the .gz it lists."""
    hostname = os_repos.debs["hostname"]
    config = apt_source(os_repos.url("detached"), os_repos.armored_keyring)
    assert ask(config, deb("hostname", hostname["Version"])).repository
    asked = os_repos.asked("/detached/")
    assert "/detached/dists/bookworm/Release.gpg" in asked
    assert "/detached/dists/bookworm/main/binary-amd64/Packages.gz" in asked


def test_an_index_is_fetched_and_parsed_once(os_repos: OsRepos) -> None:
    debs = os_repos.debs
    config = apt_source(os_repos.url("good"), os_repos.keyring)
    before = len(os_repos.asked("/good/"))
    with TrustedSources([config]) as sources:
        answers = sources.lookup_many(
            [deb(n, debs[n]["Version"]) for n in ("hostname", "libpopt0", "netbase")] * 5
        )
        assert all(a.repository for a in answers)
    asked = os_repos.asked("/good/")[before:]
    # 15 concurrent lookups: one InRelease, one index (the digest it lists), nothing else.
    assert sorted(asked) == [
        "/good/dists/bookworm/InRelease",
        "/good/dists/bookworm/main/binary-amd64/Packages.xz",
    ]
    # Another source whose signed Release lists the same index (by digest) reads it from the
    # cache: only its Release is fetched.
    before = len(os_repos.asked("/detached/"))
    with TrustedSources([apt_source(os_repos.url("detached"), os_repos.keyring)]) as sources:
        assert sources.lookup(deb("hostname", debs["hostname"]["Version"])).repository
    assert not [p for p in os_repos.asked("/detached/")[before:] if "Packages" in p]


def test_the_facts_configuration_reads_an_apt_source(os_repos: OsRepos) -> None:
    hostname = os_repos.debs["hostname"]
    entry = {
        "name": "debian",
        "kind": "apt",
        "url": os_repos.url("good"),
        "vendor": "debian",
        "distro": ["debian-12", "bookworm"],
        "suites": ["bookworm"],
        "components": "main",
        "architectures": ["amd64"],
        "keyring": str(os_repos.keyring),
    }
    (config,) = source_configs([entry])
    assert config.distribution is not None and config.distribution.architectures == ("amd64",)
    facts = build_facts(sources=[entry], typosquat=False)
    assert facts is not None
    known = facts(deb("hostname", hostname["Version"]))
    assert known.repository is not None and known.repository["kind"] == "apt"
    assert facts(deb("hostname", "0.1")).repository is None


# --------------------------------------------------------------------------- apt: faults


@pytest.mark.parametrize(
    ("repo", "keyring", "suite", "why"),
    [
        ("tampered", "keyring", "bookworm", "does not verify against the keyring"),
        ("unknown-key", "keyring", "bookworm", "which the keyring"),
        ("good", "other_keyring", "bookworm", "which the keyring"),
        ("expired", "keyring", "bookworm", "has expired: Valid-Until 2000-01-01"),
        ("future", "keyring", "bookworm", "is not valid yet"),
        ("mismatch", "keyring", "bookworm", "is not the index that was signed"),
        ("replay", "keyring", "bullseye", "not of bullseye"),
        ("good", "keyring", "trixie", "no InRelease and no Release"),
    ],
)
def test_what_cannot_be_trusted_is_a_fault_not_a_refusal(
    os_repos: OsRepos, repo: str, keyring: str, suite: str, why: str
) -> None:
    hostname = os_repos.debs["hostname"]
    config = apt_source(os_repos.url(repo), getattr(os_repos, keyring), suites=(suite,))
    answer = ask(config, deb("hostname", hostname["Version"]))
    assert answer.repository is None
    assert not answer.found_package
    assert answer.error is not None and why in answer.error, answer.error
    facts = build_facts(
        sources=[
            {
                "name": "debian",
                "kind": "apt",
                "url": os_repos.url(repo),
                "vendor": "debian",
                "distro": "debian-12",
                "suites": [suite],
                "components": ["main"],
                "architectures": ["amd64"],
                "keyring": str(getattr(os_repos, keyring)),
            }
        ],
        typosquat=False,
    )
    assert facts is not None
    known = facts(deb("hostname", hostname["Version"]))
    assert known.unavailable and why in known.unavailable
    assert "trusted-source-unavailable" in known.tags


def test_a_suite_that_cannot_be_read_does_not_hide_another(os_repos: OsRepos) -> None:
    hostname = os_repos.debs["hostname"]
    config = apt_source(os_repos.url("good"), os_repos.keyring, suites=("trixie", "bookworm"))
    assert ask(config, deb("hostname", hostname["Version"])).repository
    # Not in the suite that could be read, and one could not be: cannot say "not found".
    answer = ask(config, deb("hostname", "9.99"))
    assert answer.repository is None
    assert answer.error is not None and "trixie" in answer.error


def test_a_repository_that_is_down_is_a_fault(os_repos: OsRepos) -> None:
    config = apt_source(f"http://127.0.0.1:{free_port()}/debian", os_repos.keyring)
    answer = ask(config, deb("hostname", os_repos.debs["hostname"]["Version"]))
    assert answer.repository is None and not answer.found_package
    assert answer.error is not None and "debian (127.0.0.1" in answer.error


def test_a_missing_keyring_is_a_fault(os_repos: OsRepos, tmp_path: Path) -> None:
    config = apt_source(os_repos.url("good"), tmp_path / "nothing.gpg")
    answer = ask(config, deb("hostname", os_repos.debs["hostname"]["Version"]))
    assert answer.error is not None and "cannot read its keyring" in answer.error


# --------------------------------------------------------------------------- rpm


def test_rpm_packages_by_epoch_version_release_and_arch(os_repos: OsRepos) -> None:
    hello, tool = os_repos.rpms["sbg-hello"], os_repos.rpms["sbg-tool"]
    assert (hello["arch"], tool["arch"], tool["epoch"]) == ("noarch", "x86_64", "2")
    config = rpm_source(os_repos.url("rpm-good"), os_repos.keyring)
    version = tool["evr"].split(":", 1)[1]
    found = ask(config, rpm("sbg-tool", version, "x86_64", epoch="2", sha256=tool["sha256"]))
    assert found.repository == config.repository() and found.error is None
    assert ask(config, rpm("sbg-hello", hello["evr"], "noarch")).repository
    assert ask(config, rpm("sbg-hello", hello["evr"], "x86_64")).repository  # noarch: any arch
    # Not found: no epoch (0), another arch, another version, another name; a wrong digest.
    for component in (
        rpm("sbg-tool", version, "x86_64"),
        rpm("sbg-tool", version, "aarch64", epoch="2"),
        rpm("sbg-tool", "3.1-5", "x86_64", epoch="2"),
        rpm("sbg-nothing", "1.0-1", "x86_64"),
    ):
        answer = ask(config, component)
        assert (answer.repository, answer.error) == (None, None), component.purl
    wrong = ask(config, rpm("sbg-tool", version, "x86_64", epoch="2", sha256="0" * 64))
    assert wrong.repository is None and wrong.hash_mismatch


def test_rpm_primary_compressed_with_zstd(os_repos: OsRepos) -> None:
    """Fedora's repositories compress their metadata with Zstandard (`primary.xml.zst`)."""
    primary = list((os_repos.root / "rpm-zstd" / "repodata").glob("*primary.xml*"))
    assert [p.suffix for p in primary] == [".zst"]
    hello = os_repos.rpms["sbg-hello"]
    config = rpm_source(os_repos.url("rpm-zstd"), os_repos.keyring)
    assert ask(config, rpm("sbg-hello", hello["evr"], "noarch")).repository
    absent = ask(config, rpm("sbg-nothing", "1.0-1", "x86_64"))
    assert (absent.repository, absent.error) == (None, None)


@pytest.mark.parametrize(
    ("repo", "why"),
    [
        ("rpm-unsigned", "is not signed: no repomd.xml.asc"),
        ("rpm-tampered", "does not verify against the keyring"),
        ("rpm-unknown-key", "which the keyring"),
        ("rpm-mismatch", "is not the index that was signed"),
    ],
)
def test_rpm_faults(os_repos: OsRepos, repo: str, why: str) -> None:
    hello = os_repos.rpms["sbg-hello"]
    answer = ask(
        rpm_source(os_repos.url(repo), os_repos.keyring), rpm("sbg-hello", hello["evr"], "noarch")
    )
    assert answer.repository is None and not answer.found_package
    assert answer.error is not None and why in answer.error, answer.error


# --------------------------------------------------------------------------- Debian's own index


def test_the_debian_archive_index_of_this_machine(
    apt_lists_repo: AptLists, capsys: pytest.CaptureFixture[str]
) -> None:
    """Debian's signed InRelease and main/amd64 Packages as apt keeps them here, verified with
    the machine's archive keyring: about 63,000 packages, 50 MB expanded."""
    wanted: dict[str, dict[str, str]] = {}
    text = apt_lists_repo.packages.read_bytes()
    for stanza in text.split(b"\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in stanza.decode(errors="replace").splitlines()
            if ": " in line and not line.startswith(" ")
        )
        if (
            fields.get("Package") in ("bash", "tzdata", "libssl3")
            and fields["Package"] not in wanted
        ):
            wanted[fields["Package"]] = fields
    assert set(wanted) == {"bash", "tzdata", "libssl3"}
    config = SourceConfig(
        "debian",
        "apt",
        apt_lists_repo.url,
        distribution=Distribution(
            vendor="debian",
            releases=("debian-12", "bookworm"),
            keyring=str(DEBIAN_KEYRING),
            suites=(apt_lists_repo.suite,),
            components=("main",),
            architectures=("amd64",),
        ),
    )
    with TrustedSources([config], max_document_bytes=128 << 20) as sources:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        bash = wanted["bash"]
        first = sources.lookup(
            deb("bash", bash["Version"], distro="bookworm", sha256=bash["SHA256"])
        )
        cold = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        tz, ssl = wanted["tzdata"], wanted["libssl3"]
        warm_answers = [
            sources.lookup(deb("tzdata", tz["Version"])),
            sources.lookup(
                deb("libssl3", ssl["Version"], upstream=ssl.get("Source", "openssl").split()[0])
            ),
            sources.lookup(deb("bash", "0.0-0")),
        ]
        warm = (time.perf_counter() - started) / len(warm_answers)
    assert first.repository is not None and first.error is None
    assert warm_answers[0].repository and warm_answers[1].repository
    assert warm_answers[2].found_package and warm_answers[2].repository is None
    started = time.perf_counter()
    index = parse_packages(text)
    parse = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\nDebian {apt_lists_repo.suite} main/amd64: {index.weight} packages, "
            f"{apt_lists_repo.size / 2**20:.1f} MiB expanded; first lookup (fetch, SHA-256, "
            f"parse) {cold:.2f} s, parse alone {parse:.2f} s, then {warm * 1000:.2f} ms a lookup; "
            f"peak RSS +{(rss_after - rss_before) / 1024:.0f} MiB"
        )
    assert index.weight > 50_000
    assert cold < 60
