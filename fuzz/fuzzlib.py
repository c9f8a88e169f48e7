"""What every atheris target shares: the entry point, JSON built from the fuzzer's bytes, and
the rule that a parser either answers or raises its own specific error.

A target is a script `fuzz/fuzz_<name>.py` that calls `main()`. Run alone it is a libFuzzer
binary (`python fuzz/fuzz_sbom_xml.py CORPUS_DIR -max_total_time=60`, or one input file to
replay a crash); `fuzz/run.py` runs them all and reads their output. Two flags of our own come
before libFuzzer sees the command line: `--write-seeds DIR` writes the target's seed inputs
into DIR, `--write-dict FILE` writes its libFuzzer dictionary (tokens the parsers compare
against, so mutations find them sooner).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-untyped]
import orjson

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SEEDS = Path(__file__).resolve().parent / "seeds"

# Each target's first input byte picks a mode: raw bytes to the parser, or a document built
# from the rest of the bytes (FuzzedDataProvider), which reaches deeper structure sooner.
RAW = 0


class Crash(AssertionError):
    """A property of the answer does not hold: reported by libFuzzer as a crash."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Crash(message)


def expect(call: Callable[[], Any], errors: tuple[type[BaseException], ...]) -> Any:
    """The parser's result, or None when it raised one of its own `errors` with a one-line
    message. Anything else escapes and libFuzzer reports it with its traceback."""
    try:
        return call()
    except errors as exc:
        message = str(exc)
        check(bool(message.strip()), f"{type(exc).__name__} with an empty message")
        check("\n" not in message, f"{type(exc).__name__} message is not one line: {message!r}")
        return None


# -- JSON from the fuzzer's bytes -------------------------------------------------------------

MAX_DEPTH = 8


def text(fdp: Any, vocabulary: Sequence[str], max_len: int = 24) -> str:
    """A word the parsers know, or arbitrary (surrogate-free: JSON cannot carry them) text."""
    if vocabulary and fdp.ConsumeBool():
        word: str = fdp.PickValueInList(list(vocabulary))
        return word
    value: str = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, max_len))
    return value


def json_value(fdp: Any, vocabulary: Sequence[str], depth: int = 0) -> Any:
    """Any JSON value orjson can write (64-bit integers, finite floats)."""
    choice = fdp.ConsumeIntInRange(0, 9 if depth < MAX_DEPTH else 5)
    if choice == 0:
        return None
    if choice == 1:
        return fdp.ConsumeBool()
    if choice == 2:
        return fdp.ConsumeIntInRange(-(2**63), 2**64 - 1)
    if choice == 3:
        return fdp.ConsumeIntInRange(-2, 3)
    if choice == 4:
        return fdp.ConsumeRegularFloat()
    if choice in (5, 6):
        return text(fdp, vocabulary)
    if choice in (7, 8):
        return {
            text(fdp, vocabulary): json_value(fdp, vocabulary, depth + 1)
            for _ in range(fdp.ConsumeIntInRange(0, 4))
        }
    return [json_value(fdp, vocabulary, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]


def mutate(fdp: Any, document: Any, vocabulary: Sequence[str], rounds: int = 4) -> Any:
    """A copy of a valid `document` with a few fuzzer-chosen edits at fuzzer-chosen paths."""
    document = copy.deepcopy(document)
    for _ in range(fdp.ConsumeIntInRange(1, rounds)):
        if fdp.remaining_bytes() == 0:
            break
        document = _edit(fdp, document, vocabulary, 0)
    return document


def _edit(fdp: Any, node: Any, vocabulary: Sequence[str], depth: int) -> Any:
    descend = depth < 16 and fdp.ConsumeIntInRange(0, 3) != 0
    if descend and isinstance(node, dict) and node:
        key = fdp.PickValueInList(list(node))
        node[key] = _edit(fdp, node[key], vocabulary, depth + 1)
        return node
    if descend and isinstance(node, list) and node:
        at = fdp.ConsumeIntInRange(0, len(node) - 1)
        node[at] = _edit(fdp, node[at], vocabulary, depth + 1)
        return node
    action = fdp.ConsumeIntInRange(0, 5)
    if action == 0:
        return json_value(fdp, vocabulary, depth)
    if action == 1 and isinstance(node, dict):
        if node and fdp.ConsumeBool():
            node.pop(fdp.PickValueInList(list(node)))
        else:
            node[text(fdp, vocabulary)] = json_value(fdp, vocabulary, depth + 1)
        return node
    if action == 2 and isinstance(node, list):
        if node and fdp.ConsumeBool():
            node.append(copy.deepcopy(fdp.PickValueInList(node)))  # more of the same
        elif node and fdp.ConsumeBool():
            node.pop(fdp.ConsumeIntInRange(0, len(node) - 1))
        else:
            node.append(json_value(fdp, vocabulary, depth + 1))
        return node
    if action == 3 and isinstance(node, str):
        cut = fdp.ConsumeIntInRange(0, len(node))
        return node[:cut] + text(fdp, vocabulary, 8) + node[cut:]
    if action == 4:
        return [node] if fdp.ConsumeBool() else {text(fdp, vocabulary): node}
    return text(fdp, vocabulary)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


# -- the entry point ------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Collects ERROR records of sbomgate's loggers: the webhook logs (and survives) an
    exception it did not expect, which for the fuzzer is a crash all the same."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def raise_first(self) -> None:
        if not self.records:
            return
        record = self.records[0]
        self.records.clear()
        if record.exc_info and record.exc_info[1] is not None:
            raise Crash(f"logged as an error: {record.getMessage()}") from record.exc_info[1]
        raise Crash(f"logged as an error: {record.getMessage()}")


def capture_errors() -> ErrorLog:
    handler = ErrorLog()
    root = logging.getLogger("sbomgate")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # the decision log lines (INFO) are still built, not shown
    root.propagate = False
    return handler


def _take_option(argv: list[str], name: str) -> str | None:
    if name not in argv:
        return None
    at = argv.index(name)
    if at + 1 >= len(argv):
        sys.exit(f"{name} needs a value")
    value = argv[at + 1]
    del argv[at : at + 2]
    return value


def _dict_line(token: bytes) -> str:
    escaped = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in token
    )
    return f'"{escaped}"'


def main(
    test_one_input: Callable[[bytes], None],
    *,
    seeds: Callable[[], Iterable[bytes]],
    tokens: Iterable[str | bytes] = (),
) -> None:
    argv = list(sys.argv)
    seed_dir = _take_option(argv, "--write-seeds")
    dict_file = _take_option(argv, "--write-dict")
    if seed_dir is not None:
        directory = Path(seed_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for data in seeds():
            name = "seed-" + hashlib.sha1(data).hexdigest()
            (directory / name).write_bytes(data)
    if dict_file is not None:
        lines = sorted({_dict_line(t.encode() if isinstance(t, str) else t) for t in tokens if t})
        Path(dict_file).parent.mkdir(parents=True, exist_ok=True)
        Path(dict_file).write_text("\n".join(lines) + "\n")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def raw_seed(data: bytes) -> bytes:
    """A seed for the raw-bytes mode."""
    return bytes([RAW]) + data


def fixture_bytes(*patterns: str) -> list[bytes]:
    return [
        p.read_bytes()
        for pattern in patterns
        for p in sorted((FIXTURES / "sbom").glob(pattern))
        if p.is_file()
    ]


def committed_seeds(target: str) -> list[bytes]:
    """Hand-made seeds kept in fuzz/seeds/<target>/ (already mode-prefixed)."""
    directory = SEEDS / target
    if not directory.is_dir():
        return []
    return [p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()]
