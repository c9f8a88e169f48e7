"""Typosquat answers worked out ahead on another core: `python -m sbomgate.intel._typohelper FD`.

Comparing a never-seen package's name with the popular-name lists takes about 6 µs (30 ms of a
never-seen 5,000-package image), on the process that also reads the image and makes every other
fact of its packages, one after the other, while the other core waits for inputs to evaluate.
`IntelFacts.read_ahead` sends the SBOM's text here once it is verified; the helper finds its
purls and works out each one's typosquat answer, in order, while the SBOM is parsed (when the
other core has nothing to evaluate yet). Each answer is remembered by the detector
(`TyposquatDetector.remember`, by `closest`'s arguments), and by the time the facts of a package
are made its answer is mostly there.

Nothing waits for the helper and nothing depends on it: a name it has not answered yet is
worked out where it is needed, as without it, and both give the same answer (the same lists,
the same code). A helper that dies, or stops answering, is left alone (its names are worked out
inline) and another is started a while later.
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection

import orjson

from sbomgate._internal.children import start_child
from sbomgate.identity import identity_from_purl
from sbomgate.intel.typosquat import Query, TyposquatDetector
from sbomgate.sbom.purl import parse_purl

log = logging.getLogger(__name__)


# Names sent and not answered yet, at most (about four never-seen 5,000-package images): past
# this, names are not sent (the helper is behind, or stalled) and are worked out inline.
_MAX_PENDING = 10_000
# A document larger than this is not read ahead (syft's SPDX of a Debian image, 70 MB, is
# mostly files), and one is counted as a name per this many bytes (a CycloneDX component's JSON).
_MAX_READ_AHEAD = 16 << 20
_BYTES_PER_NAME = 400
# A helper that has names to answer and answered none for this long is stalled: it is stopped.
_STALLED_AFTER = 30.0
# After a helper died or stalled, no other is started for this long.
_RESTART_AFTER = 60.0


class TyposquatPrefetcher:
    """Sends names to a helper process and remembers its answers in `detector`."""

    def __init__(self, detector: TyposquatDetector) -> None:
        self._detector = detector
        self._lock = threading.Lock()
        self._helper: _Helper | None = None
        self._next_start = 0.0  # monotonic time before which no helper is started
        self._closed = False

    def start(self) -> None:
        """Start the helper now rather than with the first document (a process of its own: its
        start is not the first image's to wait for)."""
        with self._lock:
            self._current()

    def read_ahead(self, document: bytes) -> None:
        """Have the helper work out the typosquat answers of every purl in a JSON document's
        text (an SBOM, or the statement that holds it), before it is parsed; never waits.
        Dropped when the helper is behind, stalled or down."""
        if len(document) <= _MAX_READ_AHEAD:
            self._send(document, max(1, len(document) // _BYTES_PER_NAME))

    def _send(self, document: bytes, units: int) -> None:
        with self._lock:
            helper = self._current()
            if helper is None or helper.pending() + units > _MAX_PENDING:
                return
            if helper.pending() == 0:
                helper.busy_since = time.monotonic()  # it had nothing to answer until now
            helper.sent += units
        helper.outbox.put((units, document))

    def _current(self) -> _Helper | None:
        """The running helper: a new one when there is none (or it died or stalled) and the
        restart delay has passed. Called with the lock held."""
        helper, now = self._helper, time.monotonic()
        if helper is not None and helper.stalled(now):
            log.warning(
                "the typosquat helper answered nothing for %g s: stopped, names are worked out "
                "inline, another starts in %g s",
                _STALLED_AFTER,
                _RESTART_AFTER,
            )
            helper.alive = False
            # Stopped on a thread of its own: this is the caller's check of an image.
            threading.Thread(target=helper.stop, name="typosquat-helper-stop", daemon=True).start()
        elif helper is not None and not helper.alive:
            log.warning(
                "the typosquat helper stopped (exit status %s): names are worked out inline, "
                "another starts in %g s",
                helper.process.poll(),
                _RESTART_AFTER,
            )
        if helper is not None and not helper.alive:
            self._helper = helper = None
            self._next_start = now + _RESTART_AFTER
        if helper is None and not self._closed and now >= self._next_start:
            try:
                helper = self._helper = _Helper(self._detector)
            except OSError as exc:
                log.warning("the typosquat helper could not be started: %s", exc)
                self._next_start = now + _RESTART_AFTER
        return helper

    def wait(self, timeout: float) -> bool:
        """Wait until the helper has answered everything sent to it (or is down), at most
        `timeout` seconds; whether it has (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                helper = self._helper
            if helper is None or not helper.alive or helper.pending() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    @property
    def running(self) -> bool:
        """Whether a helper process is up (for tests and diagnostics)."""
        with self._lock:
            return self._helper is not None and self._helper.alive

    def close(self) -> None:
        """Stop the helper; later submissions are dropped."""
        with self._lock:
            self._closed = True
            helper, self._helper = self._helper, None
        if helper is not None:
            helper.stop()


class _Helper:
    """One helper process, a thread that sends it the names and one that reads its answers."""

    def __init__(self, detector: TyposquatDetector) -> None:
        self.process, self.connection = start_child("sbomgate.intel._typohelper")
        self.detector = detector
        self.alive = True
        # Names sent (counted under the prefetcher's lock) and answered (by the receiving
        # thread alone): each has one writer.
        self.sent = 0
        self.answered = 0
        # When it last answered, or was given something when it had nothing to answer.
        self.busy_since = time.monotonic()
        self.outbox: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        # Sending from a thread of its own: a helper that stops reading fills the socket, and
        # only that thread waits.
        self._sender = threading.Thread(
            target=self._send, args=(detector.lists(),), name="typosquat-helper-send", daemon=True
        )
        self._receiver = threading.Thread(
            target=self._receive, name="typosquat-helper-receive", daemon=True
        )
        self._sender.start()
        self._receiver.start()

    def pending(self) -> int:
        return self.sent - self.answered

    def stalled(self, now: float) -> bool:
        return self.alive and self.pending() > 0 and now - self.busy_since > _STALLED_AFTER

    def _send(self, lists: Mapping[str, tuple[str, ...]]) -> None:
        try:
            self.connection.send(lists)
            while (message := self.outbox.get()) is not None:
                self.connection.send(message)
        except (OSError, ValueError):  # the helper is gone, or the connection closed
            self.alive = False

    def _receive(self) -> None:
        remember = self.detector.remember
        try:
            while True:
                count, answers = self.connection.recv()
                for query, found in answers:
                    remember(query, found)
                self.answered += count
                self.busy_since = time.monotonic()
        except (EOFError, OSError, ValueError, TypeError):
            self.alive = False

    def stop(self) -> None:
        self.alive = False
        self.outbox.put(None)
        self.process.kill()  # the receiving thread then reads the end of the connection
        self.process.wait(timeout=5)
        self._receiver.join(timeout=5)
        self.connection.close()


def serve(connection: Connection) -> None:
    """Answer on `connection` until the parent goes: the popular-name lists come first, then
    each message is (units, a JSON text). Answered as it goes with (units, [(
    `TyposquatDetector.closest`'s arguments, its answer), ...]) for the text's purls
    (`_purls_in`) of a type the detector has a list for, `units` 0 but in the last answer."""
    try:
        detector = TyposquatDetector(connection.recv())
        types: dict[str, bool] = {}  # purl types as written: whether the detector has a list
        # Purls answered already (a new build lists those of the build before): not again.
        answered: set[str] = set()
        while True:
            units, document = connection.recv()
            answers: list[tuple[Query, str | None]] = []
            for purl in _purls_in(document):
                if purl in answered:
                    continue
                if len(answered) >= _ANSWERED_KEPT:
                    answered.clear()
                answered.add(purl)
                kind = purl[4:].split("/", 1)[0]
                covered = types.get(kind)
                if covered is None:
                    covered = types[kind] = detector.covers(kind)
                if not covered:
                    continue
                try:
                    identity = identity_from_purl(purl)
                    query = (identity.type, identity.name, identity.namespace)
                    answers.append((query, detector.closest(*query)))
                except Exception:  # left out: the parent works it out inline
                    continue
                if len(answers) >= _ANSWERS_AT_ONCE:
                    connection.send((0, answers))
                    answers = []
            connection.send((units, answers))
            # Purls and identities are cached for the process, and here each purl comes once:
            # kept, they would hold some 20-30 MB after a few images.
            identity_from_purl.cache_clear()
            parse_purl.cache_clear()
    except (EOFError, OSError):
        return  # the parent is gone


# Purls remembered as answered (then forgotten all at once): fewer than the detector remembers
# answers, so that one it forgot is mostly answered again.
_ANSWERED_KEPT = 32_768
# Answers sent back in one message: the first are there while the rest are worked out.
_ANSWERS_AT_ONCE = 256
# A purl as an SBOM gives a package's: CycloneDX's `purl`, SPDX 2's `referenceLocator`, SPDX
# 3's `software_packageUrl` (not a bom-ref, which may be a purl with a fragment), the JSON
# string up to its closing quote.
_PURL_MEMBER = re.compile(
    rb'"(?:purl|referenceLocator|software_packageUrl)"\s*:\s*"(pkg:[^"\\]*(?:\\.[^"\\]*)*)"'
)


def _purls_in(document: bytes) -> list[str]:
    """Every distinct purl in `document` (`_PURL_MEMBER`), in order."""
    out: dict[str, None] = {}
    for raw in _PURL_MEMBER.findall(document):
        try:
            text = orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            continue
        out[text] = None
    return list(out)


def main(argv: Sequence[str]) -> None:
    """The helper's entry point: `argv` is the socket's file descriptor."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the helper stops
    serve(Connection(int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
