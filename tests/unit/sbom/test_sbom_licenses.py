"""License expressions and hash normalisation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sbomgate.errors import SbomError
from sbomgate.sbom import Component, parse_sbom
from sbomgate.sbom.licenses import normalise_expression


def one(component: dict[str, Any]) -> Component:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [{"type": "library", "name": "x", "purl": "pkg:npm/x@1", **component}],
    }
    return parse_sbom(orjson.dumps(doc), source="t").components[0]


def spdx_one(package: dict[str, Any]) -> Component:
    doc = {"spdxVersion": "SPDX-2.3", "packages": [{"SPDXID": "SPDXRef-x", "name": "x", **package}]}
    return parse_sbom(orjson.dumps(doc), source="t").components[0]


@pytest.mark.parametrize(
    ("licenses", "expected", "raw"),
    [
        ([{"license": {"id": "MIT"}}], "MIT", "MIT"),
        ([{"license": {"id": "mit"}}], "MIT", "mit"),  # lower-case id normalised
        ([{"license": {"id": "apache-2.0"}}], "Apache-2.0", "apache-2.0"),
        # not on the SPDX list: unknown, said so with a LicenseRef
        ([{"license": {"id": "Foo-Bar-1.0"}}], "LicenseRef-Foo-Bar-1.0", "Foo-Bar-1.0"),
        ([{"license": {"name": "Apache-2.0"}}], "Apache-2.0", "Apache-2.0"),  # name that is an id
        ([{"license": {"name": "MIT OR Apache-2.0"}}], "MIT OR Apache-2.0", "MIT OR Apache-2.0"),
        (
            [{"license": {"name": "Apache License, Version 2.0"}}],
            "Apache-2.0",  # a name on the SPDX list, spelt its usual way
            "Apache License, Version 2.0",
        ),
        ([{"license": {"name": "Acme Internal"}}], "LicenseRef-Acme-Internal", "Acme Internal"),
        ([{"expression": "Apache-2.0 OR MIT"}], "Apache-2.0 OR MIT", "Apache-2.0 OR MIT"),
        ([{"expression": "mit or apache-2.0"}], "MIT OR Apache-2.0", "mit or apache-2.0"),
        ([{"expression": "GPL-2.0+"}], "GPL-2.0-or-later", "GPL-2.0+"),
        ([{"expression": "MIT AND Weird-Unknown"}], "MIT AND LicenseRef-Weird-Unknown", None),
        (
            [{"license": {"id": "MIT"}}, {"license": {"id": "Apache-2.0"}}],
            "MIT AND Apache-2.0",
            "MIT AND Apache-2.0",
        ),
        (
            [{"license": {"id": "GPL-2.0-only"}}, {"expression": "MIT OR BSD-3-Clause"}],
            "GPL-2.0-only AND (MIT OR BSD-3-Clause)",
            None,
        ),
        ([{"license": {"id": "MIT"}}, {"license": {"id": "mit"}}], "MIT", "MIT AND mit"),
        ([{"license": {"id": "NOASSERTION"}}], None, "NOASSERTION"),
        ([{"license": {"name": "NONE"}}], None, "NONE"),
        ([{"expression": "NOASSERTION"}], None, "NOASSERTION"),
        ([{"license": {"id": "NOASSERTION"}}, {"license": {"id": "ISC"}}], "ISC", None),
        ([{"license": {"url": "https://example.com/l"}}], None, None),
        ([], None, None),
    ],
)
def test_cyclonedx_licenses(licenses: list[Any], expected: str | None, raw: str | None) -> None:
    c = one({"licenses": licenses})
    assert c.license == expected
    if raw is not None:
        assert c.raw_license == raw


def test_no_licenses_field() -> None:
    c = one({})
    assert (c.license, c.raw_license) == (None, None)


def test_invalid_expression_is_an_error_with_its_path() -> None:
    with pytest.raises(SbomError) as err:
        one({"licenses": [{"license": {"id": "MIT"}}, {"expression": "MIT AND"}]})
    assert err.value.message.startswith(
        "components[0].licenses[1].expression: invalid SPDX license expression 'MIT AND'"
    )


@pytest.mark.parametrize(
    ("package", "expected", "raw"),
    [
        ({"licenseConcluded": "MIT", "licenseDeclared": "Apache-2.0"}, "MIT", "MIT"),
        ({"licenseConcluded": "NOASSERTION", "licenseDeclared": "Apache-2.0"}, "Apache-2.0", None),
        ({"licenseConcluded": "NONE", "licenseDeclared": "NOASSERTION"}, None, "NONE"),
        ({"licenseDeclared": "mit"}, "MIT", "mit"),
        ({"licenseConcluded": ""}, None, ""),
        ({}, None, None),
        ({"licenseDeclared": "LicenseRef-custom OR MIT"}, "LicenseRef-custom OR MIT", None),
    ],
)
def test_spdx_licenses(package: dict[str, Any], expected: str | None, raw: str | None) -> None:
    c = spdx_one(package)
    assert c.license == expected
    if raw is not None:
        assert c.raw_license == raw


def test_spdx_invalid_expression_path() -> None:
    with pytest.raises(SbomError) as err:
        spdx_one({"licenseConcluded": "(MIT"})
    assert err.value.message.startswith(
        "packages[0].licenseConcluded: invalid SPDX license expression '(MIT'"
    )


def test_expression_normalisation_is_cached() -> None:
    normalise_expression.cache_clear()
    for _ in range(3):
        assert normalise_expression("apache-2.0 or mit") == "Apache-2.0 OR MIT"
    info = normalise_expression.cache_info()
    assert (info.misses, info.hits) == (1, 2)


@pytest.mark.parametrize(
    ("alg", "normalised"),
    [
        ("SHA-256", "sha256"),
        ("SHA-1", "sha1"),
        ("SHA-384", "sha384"),
        ("SHA-512", "sha512"),
        ("MD5", "md5"),
        ("SHA3-256", "sha3_256"),
        ("SHA3-512", "sha3_512"),
        ("BLAKE2b-256", "blake2b_256"),
        ("BLAKE2b-512", "blake2b_512"),
        ("BLAKE3", "blake3"),
    ],
)
def test_cyclonedx_hash_algorithms(alg: str, normalised: str) -> None:
    c = one({"hashes": [{"alg": alg, "content": "ABCDEF0123"}]})
    assert c.hashes == {normalised: "abcdef0123"}


@pytest.mark.parametrize(
    ("alg", "normalised"),
    [
        ("SHA256", "sha256"),
        ("SHA1", "sha1"),
        ("SHA512", "sha512"),
        ("MD5", "md5"),
        ("SHA3-256", "sha3_256"),
        ("BLAKE2b-384", "blake2b_384"),
    ],
)
def test_spdx_checksum_algorithms(alg: str, normalised: str) -> None:
    c = spdx_one({"checksums": [{"algorithm": alg, "checksumValue": "00FF"}]})
    assert c.hashes == {normalised: "00ff"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # digits written into a name are not its version: a name without them names nothing
        ("LicenseRef-x", "LicenseRef-x"),
        ("X", "LicenseRef-X"),
        ("CC", "LicenseRef-CC"),
        ("HDF", "LicenseRef-HDF"),
        # the names themselves, and real version-less names, still resolve
        ("X11", "X11"),
        ("CC0", "CC0-1.0"),
        ("HDF5", "HDF5"),
        ("Server Side Public License", "SSPL-1.0"),
        ("LicenseRef-MIT-X11", "MIT"),
        ("MIT-X11", "MIT"),
    ],
)
def test_a_name_without_the_digits_written_into_it(text: str, expected: str) -> None:
    assert normalise_expression(text) == expected
