"""Log formatters: one JSON object per line (the default), or text for humans.

Fields passed with `extra={...}` become top-level keys, so a log line of an
attempt or an API error can be found by its delivery id or error uuid.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

# The attributes every LogRecord has; anything else came in through `extra`.
# Django passes the HttpRequest itself as `request`: its repr carries the
# query string, and the logger's message already names method and path.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """`{"time": ..., "level": ..., "logger": ..., "message": ..., **extra}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(extra_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a UUID or datetime in `extra` must not break the line.
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger message key=value …` (LOG_FORMAT=text)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        head, newline, rest = text.partition("\n")
        return f"{head} {pairs}{newline}{rest}"


def parse_log_format(text: str) -> str:
    """LOG_FORMAT: `json` (the default) or `text`."""
    value = text.strip().lower()
    if value not in ("json", "text"):
        raise ValueError(f"{text!r} is not json or text")
    return value
