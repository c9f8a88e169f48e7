"""Fuzz target: image references from Pod specs (parse_reference), and the registry allow-list
check every reference meets before anything is sent.

Modes (first byte): 0 the rest as UTF-8 text; 1 a reference assembled from fuzzer-chosen
parts (host, port, path, tag, digest, junk). Every input parses or raises InputError; what
parses prints back to itself and passes the allow-list check or is refused by it, nothing else.
"""

from __future__ import annotations

import contextlib

import atheris  # type: ignore[import-untyped]
import fuzzlib

with atheris.instrument_imports(include=["sbomgate"]):
    from sbomgate.errors import InputError, RegistryNotAllowedError
    from sbomgate.registry.reference import MAX_NAME_LENGTH, ImageReference, parse_reference
    from sbomgate.registry.transport import RegistryAccess

ACCESS = RegistryAccess(allowed=("ghcr.io", "*.example.com:5000", "[::1]:*", "localhost:*"))
PARTS = [
    "docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "localhost", "a.b.c",
    "reg.example.com:5000", "[::1]:5000", "[fe80::1%eth0]", "[::ffff:1.2.3.4]", "10.0.0.1:0",
    "host:65536", "host:99999", "xn--bcher-kva.example", "UPPER.Example.COM", "-bad-.io",
    "library", "acme", "web", "a__b", "a--b", "a.b", "a._b", "_", "..", "", ":", "/", "@", "//",
    "latest", "v1.2.3", "x" * 128, "sha256:" + "a" * 64, "sha512:" + "b" * 128,
    "sha256:" + "A" * 64, "sha256:abc", "user@", "https://", " ", "\t", "\u0130", "ǅ", "\x00",
]  # fmt: skip
MODES = 2


def check_reference(text: str) -> None:
    parsed = fuzzlib.expect(lambda: parse_reference(text), (InputError,))
    if parsed is None:
        return
    fuzzlib.check(isinstance(parsed, ImageReference), f"returned {parsed!r}")
    fuzzlib.check(len(parsed.name) <= MAX_NAME_LENGTH, f"name longer than the limit: {parsed}")
    fuzzlib.check(parsed.registry == parsed.registry.lower(), f"registry not lower-cased: {parsed}")
    fuzzlib.check(
        parsed.tag is not None or parsed.digest is not None, f"no tag or digest: {text!r}"
    )
    again = parse_reference(str(parsed))
    fuzzlib.check(again == parsed, f"{text!r} -> {parsed} -> {again}")
    fuzzlib.check(parse_reference(parsed.pinned).name == parsed.name, "pinned name differs")
    with contextlib.suppress(RegistryNotAllowedError):  # allowed, or refused: nothing else
        ACCESS.check_host(parsed.api_host)


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        check_reference(data[1:].decode("utf-8", errors="replace"))
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    pieces = []
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        pieces.append(fuzzlib.text(fdp, PARTS, 12))
        pieces.append(fdp.PickValueInList(["/", "/", ":", "@", ""]))
    check_reference("".join(pieces))


def seeds() -> list[bytes]:
    refs = [
        "nginx", "nginx:1.25", "docker.io/library/nginx@sha256:" + "a" * 64, "ghcr.io/acme/web:1",
        "localhost:5000/a/b/c:tag@sha512:" + "b" * 128, "[::1]:5000/x", "quay.io/a/b_c-d.e:f",
    ]  # fmt: skip
    raw = [fuzzlib.raw_seed(r.encode()) for r in refs]
    structured = [bytes([1]) + bytes(range(i, i + 48)) for i in (0, 97, 180)]
    return raw + structured + fuzzlib.committed_seeds("image_reference")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=PARTS)
