from __future__ import annotations

import pytest

from sbomgate.policy._versions import IncomparableVersions, compare_versions


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0.15", "0.16.0", -1),  # Cloudsmith's lenient comparator: padded SemVer
        ("0.9", "0.16.0", -1),  # numeric, not lexical
        ("0.16", "0.16.0", 0),
        ("v1.2.3", "1.2.3", 0),
        ("1.0.0-alpha", "1.0.0", -1),  # pre-release below its release
        ("1.0.0-alpha.2", "1.0.0-alpha.10", -1),  # numeric identifiers numerically
        ("1.0.0-alpha.beta", "1.0.0-alpha.1", 1),  # alphanumeric above numeric
        ("1.0.0+build.5", "1.0.0", 0),  # build metadata ignored
        ("2.31.0", "2.31.0.post1", -1),  # PEP 440 post-release
        ("1.0.0rc1", "1.0.0", -1),  # PEP 440 pre-release
        ("1.0.dev0", "1.0a1", -1),
        ("1!0.1", "2.0", 1),  # PEP 440 epoch
        ("10.0.0", "9.99.99", 1),
    ],
)
def test_lenient_order(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


@pytest.mark.parametrize(("a", "b"), [("not-a-version", "1.0.0"), ("1.0", "banana"), ("", "1")])
def test_incomparable_versions_raise(a: str, b: str) -> None:
    with pytest.raises(IncomparableVersions):
        compare_versions(a, b)


def test_non_strings_are_incomparable() -> None:
    with pytest.raises(IncomparableVersions):
        compare_versions(None, "1.0")  # type: ignore[arg-type]
