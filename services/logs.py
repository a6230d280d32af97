"""How every faultline process logs: one JSON object per line (FAULTLINE_LOG_FORMAT=json, the
default: what a log pipeline indexes), or plain lines for people (`text`).

A JSON line holds `ts` (ISO 8601, UTC), `level`, `logger`, `msg`, the exception's traceback
when there is one, and the ids a line is about when the call gives them
(`extra={"fault_id": …}`): fault_id, work_order_id, input_id, stage, shard, queue, rule,
subscription. Nothing else of the record is copied, so no header, token or body can slip in
through a field; the messages themselves never carry a token (services/access.py keeps
only hashes; `faultline run` prints its first admin token on stdout, not in a log).
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

FORMATS = ("json", "text")
IDS = ("fault_id", "work_order_id", "input_id", "stage", "shard", "queue", "rule", "subscription")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line: dict[str, object] = {"ts": ts, "level": record.levelname, "logger": record.name,
                                   "msg": record.getMessage()}
        for name in IDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, str | int | float) else str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The plain line, with the ids it names appended as `key=value`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{n}={record.__dict__[n]}" for n in IDS if record.__dict__.get(n) is not None)
        return f"{text} [{ids}]" if ids else text


def setup_logging(level: str | int, fmt: str = "json") -> None:
    """Configure the root logger once for the process (a handler on stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)      # its plugin set-up, every start
