"""Digests computed with the GIL held (`_internal/digests.py`) are hashlib's."""

from __future__ import annotations

import hashlib

import pytest

from sbomgate._internal import digests


@pytest.mark.parametrize(
    "size",
    [0, 1, 2046, 2047, 2048, 2049, 4094, 4095, 100_000, digests.HELD_MAX_BYTES,
     digests.HELD_MAX_BYTES + 1, 1_000_000],
)  # fmt: skip
def test_the_digests_are_hashlibs(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert len(data) == size
    assert digests.sha256(data) == hashlib.sha256(data).digest()
    assert digests.blake2b_256(data) == hashlib.blake2b(data, digest_size=32).digest()
    assert digests.sha256(memoryview(data)) == hashlib.sha256(data).digest()
    assert digests.sha256(bytearray(data)) == hashlib.sha256(data).digest()
