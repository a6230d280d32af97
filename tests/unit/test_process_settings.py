"""The production processes' settings: flags, each also read from the environment, and a
refusal that names the setting and the bad value."""

from __future__ import annotations

import pytest

from services.cli import build_parser
from services.config import UsageError
from services.process_kit import ProcessSettings


def settings(monkeypatch, argv: list[str], **env: str) -> ProcessSettings:
    for name in ("FAULTLINE_ARRIVAL_HOLD_MS", "FAULTLINE_CLOCK", "FAULTLINE_DRAIN_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"FAULTLINE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", **env}.items():
        monkeypatch.setenv(name, value)
    return ProcessSettings.from_args(build_parser().parse_args(argv))


def test_arrival_hold_defaults_to_300_ms_and_is_read_from_flag_or_environment(monkeypatch) -> None:
    assert settings(monkeypatch, ["correlate"]).arrival_hold_s == 0.3
    assert settings(monkeypatch, ["correlate"], FAULTLINE_ARRIVAL_HOLD_MS="1500").arrival_hold_s == 1.5
    assert settings(monkeypatch, ["correlate", "--arrival-hold-ms", "0"]).arrival_hold_s == 0.0


@pytest.mark.parametrize("bad", ["-5", "0.5s", "soon"])
def test_a_bad_arrival_hold_is_refused_naming_the_setting(monkeypatch, bad: str) -> None:
    with pytest.raises(UsageError, match=rf"FAULTLINE_ARRIVAL_HOLD_MS: '{bad}' is not a whole number"):
        settings(monkeypatch, ["correlate"], FAULTLINE_ARRIVAL_HOLD_MS=bad)


def test_clock_is_wall_unless_stream_is_asked_for(monkeypatch) -> None:
    assert settings(monkeypatch, ["dispatch"]).clock == "wall"
    assert settings(monkeypatch, ["dispatch"], FAULTLINE_CLOCK="stream").clock == "stream"


def test_the_drain_limit_is_read_when_the_process_starts_not_at_import(monkeypatch) -> None:
    assert settings(monkeypatch, ["ingest"]).drain_s == 30.0
    assert settings(monkeypatch, ["ingest"], FAULTLINE_DRAIN_SECONDS="2.5").drain_s == 2.5


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "nan"])
def test_a_bad_drain_limit_is_refused_naming_the_setting(monkeypatch, bad: str) -> None:
    with pytest.raises(UsageError, match=rf"FAULTLINE_DRAIN_SECONDS: '{bad}' is not a number of seconds"):
        settings(monkeypatch, ["ingest"], FAULTLINE_DRAIN_SECONDS=bad)
