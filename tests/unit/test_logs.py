"""Structured logs (services/logs.py): JSON lines with the ids a line is about, plain text for
people; the decisions a monitoring room asks about are logged with their ids; nothing but the
named ids is copied from a record."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from services.logs import JsonFormatter, TextFormatter, setup_logging
from services.runtime.shard_runner import NOTED, note_record


def _record(msg: str, *args, exc=None, **extra) -> logging.LogRecord:
    rec = logging.getLogger("faultline.test").makeRecord("faultline.test", logging.WARNING, __file__, 1, msg,
                                                         args, exc)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_holds_time_level_logger_message_and_the_ids():
    line = json.loads(JsonFormatter().format(_record("故障 %s 升级", "F-GZ-000001", fault_id="F-GZ-000001",
                                                     stage="correlate", shard="GZ",
                                                     authorization="Bearer secret")))
    assert line["msg"] == "故障 F-GZ-000001 升级" and line["level"] == "WARNING"
    assert line["logger"] == "faultline.test" and line["ts"].endswith("Z")
    assert (line["fault_id"], line["stage"], line["shard"]) == ("F-GZ-000001", "correlate", "GZ")
    assert "authorization" not in line and "secret" not in json.dumps(line)   # only the named ids


def test_a_json_line_keeps_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        line = json.loads(JsonFormatter().format(_record("failed", exc=sys.exc_info())))
    assert "ValueError: boom" in line["exc"]


def test_a_text_line_appends_the_ids():
    text = TextFormatter().format(_record("refused", input_id="faultline.alarms:0:7@1", stage="ingest"))
    assert text.endswith("refused [input_id=faultline.alarms:0:7@1 stage=ingest]")


@pytest.mark.parametrize("record, ids", [
    ({"type": "fault.serious", "fault_id": "F-GZ-000001", "rule": "SF-3", "at": "x"},
     {"fault_id": "F-GZ-000001", "rule": "SF-3"}),
    ({"type": "work_order.created", "work_order_id": "W-GZ-000002", "fault_ids": ["F-GZ-000001"],
      "queue": "city.GZ.monitoring", "rule": "RT-2"},
     {"work_order_id": "W-GZ-000002", "queue": "city.GZ.monitoring", "rule": "RT-2"}),
    ({"type": "escalation", "fault_id": "F-GZ-000001", "reason": "ES-4", "to_queue": "prov.monitoring"},
     {"fault_id": "F-GZ-000001", "rule": "ES-4", "queue": "prov.monitoring"}),
])
def test_the_decisions_a_room_asks_about_are_logged_with_their_ids(caplog, record, ids):
    assert record["type"] in NOTED
    with caplog.at_level(logging.INFO, logger="faultline"):
        note_record(record, "dispatch", "GZ")
    (logged,) = [r for r in caplog.records if r.name.startswith("faultline")]
    assert {k: logged.__dict__.get(k) for k in ids} == ids
    assert (logged.stage, logged.shard) == ("dispatch", "GZ")
    line = json.loads(JsonFormatter().format(logged))
    assert {k: line[k] for k in ids} == ids


def test_setup_logging_puts_one_handler_of_the_format_on_the_root(capsys):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("INFO", "json")
        logging.getLogger("faultline.test").info("hello", extra={"work_order_id": "W-FS-000001"})
        setup_logging("WARNING", "text")
        logging.getLogger("faultline.test").warning("people")
        assert len(root.handlers) == 1
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err.splitlines()
    assert json.loads(err[0])["work_order_id"] == "W-FS-000001"
    assert err[1].endswith("WARNING faultline.test: people")
