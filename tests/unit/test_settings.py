"""Every command's settings (services/settings.py): flags, each also read from the environment
when the command starts (never at import), today's defaults, and a refusal of one line that
names the setting and the bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli import build_parser, main
from services.config import UsageError
from services.http.guard import HttpLimits
from services.settings import PROCESSES, RawListeners, Settings
from shared.transport.kafka import KafkaConfig

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = {"FAULTLINE_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No FAULTLINE_* variable of the test run leaks in; the SQLite default is made under tmp."""
    for name in [n for n in os.environ if n.startswith("FAULTLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(monkeypatch, argv: list[str], **env: str) -> Settings:
    """Through the parser and os.environ, as `faultline <argv>` builds them."""
    for name, value in {**BOOTSTRAP, **env}.items():
        monkeypatch.setenv(name, value)
    return Settings.from_args(build_parser().parse_args(argv))


def load(environ: dict[str, str], command: str = "correlate", argv: list[str] | None = None) -> Settings:
    """Through Settings.load on an explicit environment (os.environ is not read); with `argv`,
    the flags the parser read from it."""
    args = build_parser().parse_args(argv) if argv is not None else None
    return Settings.load(args, {**BOOTSTRAP, **environ} if command in PROCESSES else environ,
                         command=command)


def refusal(environ: dict[str, str], command: str = "correlate", argv: list[str] | None = None) -> str:
    with pytest.raises(UsageError) as err:
        load(environ, command, argv)
    return str(err.value)


# ---------------------------------------------------------------------- the tests from before

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


# ---------------------------------------------------------------------- defaults

def test_the_defaults_are_those_of_before() -> None:
    s = load({})
    assert s.kafka == KafkaConfig("127.0.0.1:9092")          # shared.transport.kafka.config's own defaults
    assert s.http == HttpLimits()                            # services.http.guard's own defaults
    assert (s.inventory_path, s.rulebook_path) == (None, None)
    assert s.database_url == "sqlite+aiosqlite:///.faultline/faultline.sqlite3"
    assert (s.clock, s.arrival_hold_s, s.drain_s) == ("wall", 0.3, 30.0)
    assert (s.http_host, s.http_port, s.log_level) == ("0.0.0.0", 8080, "INFO")
    assert (s.syslog_udp_port, s.syslog_tcp_port, s.snmp_trap_port) == (None, None, None)


def test_the_processes_listen_on_every_address_and_run_on_localhost_only() -> None:
    for command in PROCESSES:
        assert load({}, command).http_host == "0.0.0.0"
    assert load({}, "run").http_host == "127.0.0.1"
    assert load({"FAULTLINE_HTTP_HOST": "::1"}, "run").http_host == "::1"
    # and so do the raw feed listeners (off until a port is set)
    assert load({}, "ingest").raw_listeners == RawListeners(host="0.0.0.0")
    assert load({"FAULTLINE_SYSLOG_UDP_PORT": "5514"}, "run").raw_listeners == RawListeners(5514, None, None,
                                                                                           "127.0.0.1")
    assert not load({}, "run").raw_listeners.any
    assert load({"FAULTLINE_HTTP_HOST": "10.0.0.7"}, "api").http_host == "10.0.0.7"


def test_an_empty_variable_is_unset() -> None:
    blank = {name: " " for name in ("FAULTLINE_HTTP_PORT", "FAULTLINE_CLOCK", "FAULTLINE_INVENTORY",
                                    "FAULTLINE_HTTP_MAX_BODY_BYTES", "FAULTLINE_DRAIN_SECONDS")}
    s = load({**blank, "FAULTLINE_TOPIC_PARTITIONS": ""})
    assert (s.http_port, s.clock, s.inventory_path, s.drain_s) == (8080, "wall", None, 30.0)
    assert s.http == HttpLimits()
    assert s.kafka.partitions == 6


# ---------------------------------------------------------------------- every variable read

READ = [
    ("FAULTLINE_INVENTORY", "inv.json", lambda s: s.inventory_path, "inv.json"),
    ("FAULTLINE_RULEBOOK", "rules.yaml", lambda s: s.rulebook_path, "rules.yaml"),
    ("FAULTLINE_DATABASE_URL", "postgresql://u@db/fl", lambda s: s.database_url, "postgresql+asyncpg://u@db/fl"),
    ("FAULTLINE_KAFKA_BOOTSTRAP", " k1:9092,k2:9092 ", lambda s: s.kafka.bootstrap, "k1:9092,k2:9092"),
    ("FAULTLINE_KAFKA_IDEMPOTENCE", "true", lambda s: s.kafka.enable_idempotence, True),
    ("FAULTLINE_KAFKA_IDEMPOTENCE", " Off", lambda s: s.kafka.enable_idempotence, False),
    ("FAULTLINE_KAFKA_METADATA_MAX_AGE_MS", "2000", lambda s: s.kafka.metadata_max_age_ms, 2000),
    ("FAULTLINE_KAFKA_FETCH_MAX_WAIT_MS", "50", lambda s: s.kafka.fetch_max_wait_ms, 50),
    ("FAULTLINE_TOPIC_PARTITIONS", "12", lambda s: s.kafka.partitions, 12),
    ("FAULTLINE_TOPIC_REPLICATION", "3", lambda s: s.kafka.replication_factor, 3),
    ("FAULTLINE_CLOCK", "stream", lambda s: s.clock, "stream"),
    ("FAULTLINE_ARRIVAL_HOLD_MS", "1500", lambda s: s.arrival_hold_s, 1.5),
    ("FAULTLINE_SNAPSHOT_EVERY", "300", lambda s: s.recovery.snapshot_every, 300),
    ("FAULTLINE_SNAPSHOT_BYTES_PER_ENTRY", "0", lambda s: s.recovery.snapshot_bytes_per_entry, 0),
    ("FAULTLINE_LOG_RETENTION", "archive", lambda s: s.recovery.retention, "archive"),
    ("FAULTLINE_LOG_RETENTION_ENTRIES", "50000", lambda s: s.recovery.retention_entries, 50000),
    ("FAULTLINE_HTTP_HOST", "127.0.0.2", lambda s: s.http_host, "127.0.0.2"),
    ("FAULTLINE_HTTP_PORT", "9090", lambda s: s.http_port, 9090),
    ("FAULTLINE_HTTP_MAX_BODY_BYTES", "2048", lambda s: s.http.max_body_bytes, 2048),
    ("FAULTLINE_HTTP_BODY_TIMEOUT_S", "2.5", lambda s: s.http.body_timeout_s, 2.5),
    ("FAULTLINE_HTTP_MAX_CONNECTIONS", "50", lambda s: s.http.max_connections, 50),
    ("FAULTLINE_HTTP_MAX_INVENTORY_BYTES", "8192", lambda s: s.http.max_inventory_bytes, 8192),
    ("FAULTLINE_CORS_ORIGINS", "https://a.example, https://b.example,", lambda s: s.http.cors_origins,
     ("https://a.example", "https://b.example")),
    ("FAULTLINE_DRAIN_SECONDS", "2.5", lambda s: s.drain_s, 2.5),
    ("FAULTLINE_LOG_LEVEL", "debug", lambda s: s.log_level, "DEBUG"),
    ("FAULTLINE_SYSLOG_UDP_PORT", "5514", lambda s: s.syslog_udp_port, 5514),
    ("FAULTLINE_SYSLOG_TCP_PORT", "6514", lambda s: s.syslog_tcp_port, 6514),
    ("FAULTLINE_SNMP_TRAP_PORT", "1162", lambda s: s.snmp_trap_port, 1162),
    ("FAULTLINE_LISTEN_HOST", "10.0.0.5", lambda s: s.raw_listeners.host, "10.0.0.5"),
    ("FAULTLINE_LOG_FORMAT", "text", lambda s: s.log_format, "text"),
    ("FAULTLINE_SNMP_V3_USERS", "/etc/faultline/snmp.yaml", lambda s: s.snmp_v3_users,
     "/etc/faultline/snmp.yaml"),
    ("FAULTLINE_MAPPINGS", "/etc/faultline/mappings", lambda s: s.mappings_dir, "/etc/faultline/mappings"),
]


@pytest.mark.parametrize(("name", "raw", "view", "expected"), READ, ids=[f"{r[0]}={r[1]}" for r in READ])
def test_each_variable_is_read(name: str, raw: str, view, expected) -> None:
    assert view(load({name: raw})) == expected


def test_every_variable_of_the_settings_is_tested_and_listed_in_the_cli_help() -> None:
    names = {f"FAULTLINE_{n}" for n in Settings.model_fields if n.isupper()}
    assert names == {r[0] for r in READ}
    help_text = build_parser().epilog or ""
    assert {n for n in names if n not in help_text} == set()


def test_variable_names_are_case_sensitive() -> None:
    assert load({"faultline_http_port": "1", "FAULTLINE_http_port": "2"}).http_port == 8080


# ---------------------------------------------------------------------- every bad value refused

BAD = [
    ("FAULTLINE_KAFKA_IDEMPOTENCE", "maybe", "is not true or false"),
    ("FAULTLINE_KAFKA_METADATA_MAX_AGE_MS", "0", "is not a whole number > 0"),
    ("FAULTLINE_KAFKA_FETCH_MAX_WAIT_MS", "soon", "is not a whole number > 0"),
    ("FAULTLINE_TOPIC_PARTITIONS", "-3", "is not a whole number > 0"),
    ("FAULTLINE_TOPIC_REPLICATION", "two", "is not a whole number > 0"),
    ("FAULTLINE_CLOCK", "lunar", "is not one of wall, stream"),
    ("FAULTLINE_ARRIVAL_HOLD_MS", "0.5s", "is not a whole number of milliseconds >= 0"),
    ("FAULTLINE_SNAPSHOT_EVERY", "0", "is not a whole number > 0"),
    ("FAULTLINE_SNAPSHOT_BYTES_PER_ENTRY", "-5", "is not a whole number >= 0"),
    ("FAULTLINE_LOG_RETENTION", "shred", "is not one of delete, archive, keep"),
    ("FAULTLINE_LOG_RETENTION_ENTRIES", "-1", "is not a whole number > 0"),
    ("FAULTLINE_HTTP_PORT", "http", "is not a port number (0 to 65535)"),
    ("FAULTLINE_HTTP_PORT", "70000", "is not a port number (0 to 65535)"),
    ("FAULTLINE_HTTP_MAX_BODY_BYTES", "abc", "is not a positive number"),
    ("FAULTLINE_HTTP_MAX_BODY_BYTES", "1e6", "is not a positive number"),
    ("FAULTLINE_HTTP_BODY_TIMEOUT_S", "inf", "is not a positive number"),
    ("FAULTLINE_HTTP_MAX_CONNECTIONS", "0", "is not a positive number"),
    ("FAULTLINE_HTTP_MAX_INVENTORY_BYTES", "-5", "is not a positive number"),
    ("FAULTLINE_DRAIN_SECONDS", "nan", "is not a number of seconds > 0"),
    ("FAULTLINE_LOG_LEVEL", "loud", "is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("FAULTLINE_SYSLOG_UDP_PORT", "514x", "is not a port number (0 to 65535)"),
    ("FAULTLINE_SYSLOG_TCP_PORT", "-1", "is not a port number (0 to 65535)"),
    ("FAULTLINE_SNMP_TRAP_PORT", "99999", "is not a port number (0 to 65535)"),
]


@pytest.mark.parametrize(("name", "bad", "why"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_each_bad_value_is_refused_in_one_line_naming_the_variable_and_the_value(name, bad, why) -> None:
    assert refusal({name: bad}, "api") == f"{name}: {bad!r} {why}"


def test_a_refusal_names_the_flag_too_where_the_command_has_one() -> None:
    assert refusal({"FAULTLINE_CLOCK": "lunar"}, argv=["correlate"]) == \
        "--clock / FAULTLINE_CLOCK: 'lunar' is not one of wall, stream"
    assert refusal({}, argv=["correlate", "--arrival-hold-ms", "-5"]) == \
        "--arrival-hold-ms / FAULTLINE_ARRIVAL_HOLD_MS: '-5' is not a whole number of milliseconds >= 0"
    assert refusal({}, argv=["api", "--http-port", "70000"]) == \
        "--http-port / FAULTLINE_HTTP_PORT: '70000' is not a port number (0 to 65535)"
    # `run` has no --clock: the variable alone is named
    assert refusal({"FAULTLINE_CLOCK": "lunar"}, "run", argv=["run"]) == \
        "FAULTLINE_CLOCK: 'lunar' is not one of wall, stream"


def test_several_bad_values_are_refused_together_a_line_each() -> None:
    lines = refusal({"FAULTLINE_HTTP_PORT": "x", "FAULTLINE_DRAIN_SECONDS": "0"}).splitlines()
    assert lines == ["FAULTLINE_HTTP_PORT: 'x' is not a port number (0 to 65535)",
                     "FAULTLINE_DRAIN_SECONDS: '0' is not a number of seconds > 0"]


def test_a_production_process_needs_a_kafka_bootstrap_and_run_does_not() -> None:
    for command in PROCESSES:
        with pytest.raises(UsageError) as err:
            Settings.load(build_parser().parse_args([command]), {}, command=command)
        assert str(err.value) == ("--kafka-bootstrap / FAULTLINE_KAFKA_BOOTSTRAP: required by this process "
                                  "(without Kafka, run `faultline run`)")
    run = Settings.load(build_parser().parse_args(["run"]), {}, command="run")
    assert run.kafka_bootstrap is None
    with pytest.raises(UsageError, match="FAULTLINE_KAFKA_BOOTSTRAP"):
        run.kafka                                                        # noqa: B018
    assert load({"FAULTLINE_KAFKA_BOOTSTRAP": "k:9092"}, "run").kafka == KafkaConfig("k:9092")


# ---------------------------------------------------------------------- flags, environment, import

FLAGS = [
    (["correlate", "--kafka-bootstrap", "flag:1"], "FAULTLINE_KAFKA_BOOTSTRAP", "env:1",
     lambda s: s.kafka.bootstrap, "flag:1"),
    (["api", "--database-url", "sqlite:///flag.db"], "FAULTLINE_DATABASE_URL", "sqlite:///env.db",
     lambda s: s.database_url, "sqlite+aiosqlite:///flag.db"),
    (["dispatch", "--inventory", "flag.json"], "FAULTLINE_INVENTORY", "env.json",
     lambda s: s.inventory_path, "flag.json"),
    (["replay", "--events", "-", "--rulebook", "flag.yaml"], "FAULTLINE_RULEBOOK", "env.yaml",
     lambda s: s.rulebook_path, "flag.yaml"),
    (["run", "--http-port", "0"], "FAULTLINE_HTTP_PORT", "9090", lambda s: s.http_port, 0),
    (["ingest", "--clock", "stream"], "FAULTLINE_CLOCK", "wall", lambda s: s.clock, "stream"),
    (["correlate", "--arrival-hold-ms", "0"], "FAULTLINE_ARRIVAL_HOLD_MS", "bad",
     lambda s: s.arrival_hold_s, 0.0),
    (["db", "upgrade", "--database-url", "sqlite:///flag.db"], "FAULTLINE_DATABASE_URL", "x",
     lambda s: s.DATABASE_URL, "sqlite:///flag.db"),
]


@pytest.mark.parametrize(("argv", "name", "env", "view", "expected"), FLAGS, ids=[f[0][-2] for f in FLAGS])
def test_a_flag_wins_over_its_variable(argv, name, env, view, expected) -> None:
    args = build_parser().parse_args(argv)
    command = "db upgrade" if args.command == "db" else args.command
    assert view(Settings.load(args, {**BOOTSTRAP, name: env}, command=command)) == expected


def test_no_flag_has_a_default_so_an_unset_flag_leaves_the_variable_or_default(monkeypatch) -> None:
    monkeypatch.setenv("FAULTLINE_HTTP_PORT", "9090")       # never the parser's default
    parser = build_parser()
    parsers = [parser, *next(a for a in parser._actions if a.dest == "command").choices.values()]
    settings_flags = [a for p in parsers for a in p._actions if a.dest.upper() in Settings.model_fields]
    assert {a.dest for a in settings_flags} == {"kafka_bootstrap", "database_url", "inventory", "rulebook",
                                                "http_port", "clock", "arrival_hold_ms", "log_format"}
    assert [a.option_strings for a in settings_flags if a.default is not None] == []


def test_load_reads_the_given_environment_only(monkeypatch) -> None:
    monkeypatch.setenv("FAULTLINE_HTTP_PORT", "not a port")
    assert Settings.load(None, {}, command="run").http_port == 8080
    with pytest.raises(UsageError, match="FAULTLINE_HTTP_PORT: 'not a port'"):
        Settings.load(None, command="run")          # the default: os.environ, when called


def test_no_dot_env_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("FAULTLINE_HTTP_PORT=1\nHTTP_PORT=2\n", encoding="utf-8")
    assert Settings.load(None, command="run").http_port == 8080


def test_settings_are_frozen() -> None:
    s = load({})
    with pytest.raises(ValueError, match="frozen"):
        s.HTTP_PORT = 1


def test_nothing_is_read_at_import() -> None:
    hostile = {name: "hostile" for name, *_rest in READ}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FAULTLINE_")}, **hostile}
    code = ("import services.settings, services.runtime.shell, services.cli, services.commands.process\n"
            "args = services.cli.build_parser().parse_args(['correlate'])\n"
            "assert args.http_port is None and args.clock is None and args.kafka_bootstrap is None\n"
            "try:\n"
            "    services.settings.Settings.from_args(args)\n"
            "except services.config.UsageError as err:\n"
            "    print(err)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "FAULTLINE_HTTP_PORT: 'hostile' is not a port number" in proc.stdout   # read when asked


# ---------------------------------------------------------------------- through the command

def test_a_process_without_bootstrap_exits_2_with_one_line(capsys) -> None:
    assert main(["correlate"]) == 2
    err = capsys.readouterr().err
    assert err == ("--kafka-bootstrap / FAULTLINE_KAFKA_BOOTSTRAP: required by this process "
                   "(without Kafka, run `faultline run`)\n")


def test_a_bad_variable_exits_2_with_one_line_naming_it(monkeypatch, capsys) -> None:
    monkeypatch.setenv("FAULTLINE_HTTP_MAX_BODY_BYTES", "abc")
    assert main(["api", "--kafka-bootstrap", "x:1"]) == 2
    assert capsys.readouterr().err == "FAULTLINE_HTTP_MAX_BODY_BYTES: 'abc' is not a positive number\n"


def test_replay_reads_its_inventory_from_the_environment(monkeypatch, capsys) -> None:
    monkeypatch.setenv("FAULTLINE_INVENTORY", "/nonexistent/inventory.json")
    assert main(["replay", "--events", "-"]) == 2
    assert "/nonexistent/inventory.json" in capsys.readouterr().err
