"""The JSON log lines: one formatter, the record's fields as keys, the message first."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbomgate._internal.logs import JsonFormatter, LogLevel, configure, fields


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    loggers = [logging.getLogger(), logging.getLogger("sbomgate")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    out = io.StringIO()
    configure(LogLevel.INFO, out)
    yield out
    for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate


def test_other_libraries_log_json_lines_from_warning_up(lines: io.StringIO) -> None:
    """Every line the process writes is one JSON object: uvicorn's and kopf's records too."""
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("kopf.objects").warning("Patching failed", extra={"k": 1})
    [line] = [json.loads(t) for t in lines.getvalue().splitlines()]
    assert (line["message"], line["level"], line["logger"]) == (
        "Patching failed",
        "warning",
        "kopf.objects",
    )


def test_a_record_with_fields_is_one_json_line_led_by_its_message(lines: io.StringIO) -> None:
    log = logging.getLogger("sbomgate.admission")
    log.info("admission", extra=fields(uid="u1", name="web", allowed=False, path=Path("/x")))
    [text] = lines.getvalue().splitlines()
    assert text.startswith('{"message":"admission","timestamp":"')
    line = json.loads(text)
    assert line["level"] == "info" and line["logger"] == "sbomgate.admission"
    assert line["timestamp"].endswith("Z")
    # `name` would collide with LogRecord's own attribute if it were passed as `extra` as is
    assert (line["uid"], line["name"], line["allowed"], line["path"]) == ("u1", "web", False, "/x")


def test_levels_below_the_configured_one_are_dropped(lines: io.StringIO) -> None:
    configure(LogLevel.WARNING, lines)
    log = logging.getLogger("sbomgate.operator.live")
    log.info("policy set loaded")
    log.warning("resync failed", extra=fields(error="timed out"))
    [line] = [json.loads(t) for t in lines.getvalue().splitlines()]
    assert (line["message"], line["level"], line["error"]) == (
        "resync failed",
        "warning",
        "timed out",
    )


def test_an_exception_stays_inside_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "sbomgate.serving.handlers", logging.ERROR, __file__, 1, "review failed", (), None
        )
        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "review failed" and "ValueError: boom" in line["exception"]


def test_fields_do_not_override_the_standard_keys() -> None:
    record = logging.LogRecord("sbomgate.x", logging.INFO, __file__, 1, "real", (), None)
    record.__dict__.update(fields(event="fake", level="fake", uid="u"))
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["level"], line["uid"]) == ("real", "info", "u")
