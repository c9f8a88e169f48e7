"""Request bodies: streamed with a cap and a deadline, parsed with a bound on their size.

Bodies are read as a stream with a cap (MAX_BODY_BYTES) and a deadline (BODY_SECONDS), never
whole into memory first. The API server never sends more than the cap (an UPDATE carries two
objects of at most 3 MiB), so an oversized body comes from something else that reached the
port. It is answered, without reading the rest, with an AdmissionReview denial when the
review's uid is in the first few KiB (the API server writes `"request":{"uid":...` first: the
user then reads why), else with a 413; the API server treats any non-200 as a webhook failure,
which `failurePolicy: Fail` turns into a refusal too. A compressed body (Content-Encoding) is
refused unread (415): the API server never compresses, and nothing is ever decompressed here.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from sbomgate.review import deny
from sbomgate.serving.responses import answer, error

MAX_BODY_BYTES = 8 << 20  # the API server sends at most 3 MiB objects (two on an UPDATE)
BODY_SECONDS = 10.0  # to receive a whole body: the API server waits at most timeoutSeconds
_HEAD_BYTES = 4096  # where an oversized review's uid is looked for
# Objects and arrays a body may hold, counted before parsing: 8 MiB of `[[],[],...]` would
# parse to 2.8 million lists (250 MB). Dense real objects (a Pod of 3 MiB of env entries, twice
# on an UPDATE) hold about 300,000.
MAX_BODY_VALUES = 1_000_000
# The API server serialises AdmissionRequest's fields in order: uid comes first.
_REVIEW_UID = re.compile(rb'"request"\s*:\s*\{\s*"uid"\s*:\s*"([0-9A-Za-z._:-]{1,128})"')


async def receive_body(request: Request) -> bytes | Response:
    """The request body, streamed with a cap and a deadline; or the Response refusing it.

    At most MAX_BODY_BYTES (plus one chunk) are ever held: a body declared larger is refused
    after its first chunk, one that turns out larger (no or a lying Content-Length, chunked)
    as soon as it passes the cap. What is left unread is discarded by the server, not kept.
    """
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        return error(415, f"Content-Encoding {encoding[:40]!r} is not accepted: send plain JSON")
    declared = request.headers.get("content-length", "").strip()
    too_big = declared.isdigit() and int(declared) > MAX_BODY_BYTES
    seconds = BODY_SECONDS
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                if not chunk:
                    continue
                total += len(chunk)
                if too_big or total > MAX_BODY_BYTES:
                    head = (chunks[0] if chunks else chunk)[:_HEAD_BYTES]
                    return _too_large(head, int(declared) if too_big else None)
                chunks.append(chunk)
    except TimeoutError:
        return error(408, f"the request body did not arrive within {seconds:g} s")
    except ClientDisconnect:
        return error(400, "the client went away before sending the whole body")
    if too_big:  # declared, but nothing came
        return _too_large(b"", int(declared))
    return b"".join(chunks)


def parse_body(raw: bytes) -> Any:
    """The parsed body, or the error Response for one that is not JSON (or too dense)."""
    if raw.count(b"{") + raw.count(b"[") > MAX_BODY_VALUES:
        return _refused_unread(
            raw,
            f"sbomgate refused the request: its body holds over {MAX_BODY_VALUES} objects and "
            "arrays (real objects hold far fewer)",
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg:
            return error(400, "not JSON sbomgate reads: nested deeper than 1024 levels")
        return error(400, f"not JSON: {exc.msg} at line {exc.lineno}")


def _too_large(head: bytes, declared: int | None) -> Response:
    size = f"{declared} bytes, over" if declared is not None else "over"
    return _refused_unread(
        head,
        f"sbomgate refused the request: its body is {size} the {MAX_BODY_BYTES >> 20} MiB "
        "limit (the API server never sends a review this large)",
    )


def _refused_unread(head: bytes, message: str) -> Response:
    """A body refused without parsing it: a denial to the review's uid if the head names it
    (see the module docstring), else a 413."""
    found = _REVIEW_UID.search(head[:_HEAD_BYTES])
    if found is None:
        return error(413, message)
    uid = found.group(1).decode()
    return answer(deny(uid, code=413, reason="RequestEntityTooLarge", message=message))
