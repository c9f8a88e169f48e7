"""TrustedSources gives an answer again, as the same object, only while everything it was
made of holds: its cache entries, and what a backend says of its own metadata (an apt
Release's Valid-Until), which may end sooner."""

from __future__ import annotations

from typing import Any

import pytest

from sbomgate.identity import PackageIdentity
from sbomgate.intel.sources import SourceConfig, TrustedSources
from sbomgate.intel.sources import trusted as trusted_module
from sbomgate.intel.sources.interface import Listing, SourceClient, VersionInfo
from sbomgate.sbom.model import Component


class SignedMetadata:
    """A backend whose listings come from metadata that is valid for ten seconds more, though
    the cache keeps it for an hour."""

    kind = "pypi"
    purl_types = ("pypi",)

    def __init__(self) -> None:
        self.asked = 0

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Any:
        self.asked += 1
        client.cached(("signed", identity.package), lambda: "metadata")
        client.holds_for(10.0)
        return Listing(found_package=True, version=VersionInfo())


def test_an_answer_holds_no_longer_than_its_backend_says(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = SignedMetadata()
    monkeypatch.setattr(trusted_module, "BACKENDS", {"pypi": backend})
    now = [100.0]
    component = Component("flask", "3.0", "pkg:pypi/flask@3.0", "pypi", format="python")
    config = SourceConfig("signed", "pypi", "https://repo.example/simple/")
    with TrustedSources([config], positive_ttl=3600, clock=lambda: now[0]) as sources:
        first = sources.lookup(component)
        assert first.found_version and sources.lookup(component) is first
        assert sources.lookup_many([component])[0] is first
        assert backend.asked == 1
        now[0] += 11  # the metadata's ten seconds passed; its cache entry holds for an hour
        later = sources.lookup(component)
        assert later == first and later is not first and backend.asked == 2
        assert sources.requests_sent == 0  # asked again, from the cache
