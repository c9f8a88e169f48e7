"""Log lines as JSON, made by one formatter for every logger of the package.

A record's message names what happened; its structured fields travel in `extra=fields(...)`
and each becomes a key of the line:

    log.info("admission", extra=fields(uid=uid, kind="Pod", allowed=False))

    {"message":"admission","timestamp":"2026-12-02T07:57:54.123Z","level":"info",
     "logger":"sbomgate.admission","uid":"…","kind":"Pod","allowed":false}

The message comes first, as `message` (the key log collectors read a line's text from): every
line starts with it, and log queries match on it. A record logged with an exception carries
its traceback in `exception`, inside the one line. Other libraries' records (uvicorn, kopf,
the Kubernetes client) go through the same formatter from WARNING up, so that every line the
process writes is one JSON object.
"""

from __future__ import annotations

import logging
import sys
import time
from enum import StrEnum
from typing import Any, TextIO

import orjson

# The LogRecord attribute the fields travel in: one name, so no field (`name`, `message`)
# can collide with LogRecord's own attributes.
_FIELDS = "sbomgate_fields"
_OWN = ("message", "timestamp", "level", "logger")


class LogLevel(StrEnum):
    """The least level logged (`--log-level`, `logLevel`)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a record whose values are keys of its log line."""
    return {_FIELDS: values}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: message, timestamp (UTC), level, logger, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line: message first, then its fields."""
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "message": record.getMessage(),
            "timestamp": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        for key, value in getattr(record, _FIELDS, {}).items():
            if key not in _OWN:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a field that JSON cannot hold (a Path, an exception) is still written
        return orjson.dumps(line, default=str).decode()


def configure(level: LogLevel = LogLevel.INFO, stream: TextIO | None = None) -> None:
    """Send the package's records, from `level` up, and every other library's from WARNING up,
    to `stream` (stdout) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    ours = logging.getLogger("sbomgate")
    ours.handlers[:] = []
    ours.setLevel(level.upper())
    ours.propagate = True
