"""One typed settings object for every command: each FAULTLINE_* variable, its default and
its validation in one place (pydantic-settings), read when a command starts, never at import.

`Settings.load(args, environ, command=...)` reads the variables of `environ` (default: the
process's environment, at the call), then lets the command-line flags win. The fields are the
variables, named as in the environment without the FAULTLINE_ prefix (case-sensitive, as
always); every value reaches its field as the raw string and is parsed below, so an unusable
one is refused as a `services.config.UsageError` of one line that names the flag and/or the
variable and the bad value — never a pydantic traceback. A variable that is empty (or only
blanks) counts as unset. No .env file, no secrets directory.

The processes read the lower-case views (`kafka`, `database_url`, `http`, `http_host`, ...),
the attributes `services.runtime.shell.ProcessSettings` had.

Variables: FAULTLINE_INVENTORY, FAULTLINE_RULEBOOK, FAULTLINE_DATABASE_URL,
FAULTLINE_KAFKA_BOOTSTRAP, FAULTLINE_KAFKA_IDEMPOTENCE, FAULTLINE_KAFKA_METADATA_MAX_AGE_MS,
FAULTLINE_KAFKA_FETCH_MAX_WAIT_MS,
FAULTLINE_TOPIC_PARTITIONS, FAULTLINE_TOPIC_REPLICATION, FAULTLINE_CLOCK,
FAULTLINE_ARRIVAL_HOLD_MS, FAULTLINE_HTTP_HOST, FAULTLINE_HTTP_PORT,
FAULTLINE_HTTP_MAX_BODY_BYTES, FAULTLINE_HTTP_BODY_TIMEOUT_S, FAULTLINE_HTTP_MAX_CONNECTIONS,
FAULTLINE_CORS_ORIGINS, FAULTLINE_DRAIN_SECONDS, FAULTLINE_LOG_LEVEL, FAULTLINE_LOG_FORMAT,
FAULTLINE_SYSLOG_UDP_PORT, FAULTLINE_SYSLOG_TCP_PORT, FAULTLINE_SNMP_TRAP_PORT,
FAULTLINE_LISTEN_HOST, FAULTLINE_MAPPINGS, FAULTLINE_SNMP_V3_USERS,
FAULTLINE_SNAPSHOT_EVERY, FAULTLINE_SNAPSHOT_BYTES_PER_ENTRY, FAULTLINE_LOG_RETENTION,
FAULTLINE_LOG_RETENTION_ENTRIES.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from services.config import UsageError

if TYPE_CHECKING:                     # built when asked for: `faultline --help` stays light
    from shared.transport.kafka import KafkaConfig

PREFIX = "FAULTLINE_"
PROCESSES = ("ingest", "correlate", "dispatch", "api")   # the production processes: Kafka required
CLOCKS = ("wall", "stream")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
RETENTIONS = ("delete", "archive", "keep")
MiB = 1024 * 1024
_REFUSED = "faultline_setting"        # the pydantic error type of a value the parsers below refuse

# The environment `load` reads, for the sources of the Settings being built (None: os.environ).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("faultline_settings_environ", default=None)


# ---------------------------------------------------------------------- parsers of raw values

def _refuse(reason: str) -> PydanticCustomError:
    return PydanticCustomError(_REFUSED, reason)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _stripped_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value).strip() or None


def _switch(value: Any) -> bool:
    """true/false, as shared.transport.kafka has always read FAULTLINE_KAFKA_IDEMPOTENCE."""
    if isinstance(value, bool):
        return value
    raw = _text(value).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise _refuse("is not true or false")


def _count(value: Any) -> int:
    """A whole number > 0, digits only (the Kafka settings)."""
    raw = _text(value).strip()
    if not raw.isdigit() or int(raw) < 1:
        raise _refuse("is not a whole number > 0")
    return int(raw)


def _whole(value: Any) -> int:
    """A whole number >= 0, digits only."""
    raw = _text(value).strip()
    if not raw.isdigit():
        raise _refuse("is not a whole number >= 0")
    return int(raw)


def _positive(kind: Callable[[str], float]) -> Callable[[Any], float]:
    """A finite number > 0 of `kind` (the HTTP guard's limits)."""
    def parse(value: Any) -> float:
        try:
            number = kind(value)
        except (TypeError, ValueError):
            number = 0
        if not number > 0 or number == math.inf:
            raise _refuse("is not a positive number")
        return number
    return parse


def _millis(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise _refuse("is not a whole number of milliseconds >= 0")
    return number


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 < number < 86400:                 # also refuses nan and inf
        raise _refuse("is not a number of seconds > 0")
    return number


def _port(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number <= 65535:
        raise _refuse("is not a port number (0 to 65535)")
    return number


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        raw = _text(value)
        if raw not in choices:
            raise _refuse(f"is not one of {', '.join(choices)}")
        return raw
    return parse


def _level(value: Any) -> str:
    """A logging level's name, any case (WARN and FATAL too, as logging has them)."""
    raw = _text(value).strip().upper()
    if raw not in logging.getLevelNamesMapping():
        raise _refuse(f"is not one of {', '.join(LOG_LEVELS)}")
    return raw


def _origins(value: Any) -> tuple[str, ...]:
    """Comma-separated; blanks around an origin and empty items are dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(o.strip() for o in items if o.strip())


@dataclass(frozen=True, slots=True)
class RawListeners:
    """The raw feed listeners of ingest and run (shared/listeners.py); a port None is off."""

    syslog_udp: int | None = None
    syslog_tcp: int | None = None
    snmp_udp: int | None = None
    host: str = "127.0.0.1"

    @property
    def any(self) -> bool:
        return bool(self.syslog_udp or self.syslog_tcp or self.snmp_udp)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What a client may cost the service (services/http/guard.py enforces it): the HTTP_* and
    CORS_ORIGINS variables of `Settings.http`, and fixed bounds."""

    max_body_bytes: int = 1 * MiB          # FAULTLINE_HTTP_MAX_BODY_BYTES
    body_timeout_s: float = 10.0           # FAULTLINE_HTTP_BODY_TIMEOUT_S: the whole body, per request
    cors_origins: tuple[str, ...] = ()     # FAULTLINE_CORS_ORIGINS, comma-separated; empty: no CORS
    max_connections: int = 1000            # FAULTLINE_HTTP_MAX_CONNECTIONS: more are answered 503 at once
    keep_alive_s: int = 5                  # idle keep-alive connections are closed after this
    max_header_bytes: int = 16 * 1024      # request line + headers (h11's incomplete-event limit)
    max_decoded_bodies: int = 16           # request bodies intake decodes and holds at once (IntakeSlots)
    max_inventory_bytes: int = 16 * MiB    # FAULTLINE_HTTP_MAX_INVENTORY_BYTES: POST /inventory (one at once)
    backlog: int = 2048


@dataclass(frozen=True, slots=True)
class Recovery:
    """How the city shards bound their recovery (services/runtime/shard_runner.py): the
    SNAPSHOT_EVERY, LOG_RETENTION and LOG_RETENTION_ENTRIES variables of `Settings.recovery`."""

    snapshot_every: int = 5000             # log entries of a shard between two snapshots of its state
    snapshot_bytes_per_entry: int = 100    # ... or more for a big state: its bytes / this (0: never)
    retention: str = "delete"              # behind a snapshot: delete | archive | keep the log
    retention_entries: int = 10_000        # entries kept behind the latest snapshot (redelivery window)


# ---------------------------------------------------------------------- the source

class _Variables(PydanticBaseSettingsSource):
    """The FAULTLINE_* variables of one environment: each field's, under its exact name (the
    prefix, then the field's name), given to the field as the raw string; blank is unset.
    Nothing is decoded as JSON: the field's parser reads the string, as before pydantic."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.environ.get(self.config.get("env_prefix", "") + field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not name.isupper():                 # `command` is not a variable
                continue
            value, key, _complex = self.get_field_value(field, name)
            if value is not None and value.strip():
                values[key] = value
        return values


# ---------------------------------------------------------------------- the settings

class Settings(BaseSettings):
    """Every FAULTLINE_* setting of every command; build it with `load` when a command starts."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, case_sensitive=True, env_file=None,
                                      frozen=True, extra="forbid")

    command: str        # the subcommand (`faultline <command>`): decides what is required, and defaults

    INVENTORY: str | None = None          # inventory JSON; unset: refused where one is needed
    RULEBOOK: str | None = None           # rulebook YAML; unset: the built-in Guangdong V2.2
    DATABASE_URL: str | None = None       # SQLAlchemy URL; unset: the local SQLite file
    KAFKA_BOOTSTRAP: Annotated[str | None, BeforeValidator(_stripped_or_none)] = None
    KAFKA_IDEMPOTENCE: Annotated[bool, BeforeValidator(_switch)] = False
    KAFKA_METADATA_MAX_AGE_MS: Annotated[int, BeforeValidator(_count)] = 300000
    KAFKA_FETCH_MAX_WAIT_MS: Annotated[int, BeforeValidator(_count)] = 500
    TOPIC_PARTITIONS: Annotated[int, BeforeValidator(_count)] = 6
    TOPIC_REPLICATION: Annotated[int, BeforeValidator(_count)] = 1
    CLOCK: Annotated[Literal["wall", "stream"], BeforeValidator(_one_of(CLOCKS))] = "wall"
    ARRIVAL_HOLD_MS: Annotated[int, BeforeValidator(_millis)] = 300
    HTTP_HOST: Annotated[str | None, BeforeValidator(_stripped_or_none)] = None  # see http_host
    HTTP_PORT: Annotated[int, BeforeValidator(_port)] = 8080
    HTTP_MAX_BODY_BYTES: Annotated[int, BeforeValidator(_positive(int))] = 1 * MiB
    HTTP_MAX_INVENTORY_BYTES: Annotated[int, BeforeValidator(_positive(int))] = 16 * MiB
    HTTP_BODY_TIMEOUT_S: Annotated[float, BeforeValidator(_positive(float))] = 10.0
    HTTP_MAX_CONNECTIONS: Annotated[int, BeforeValidator(_positive(int))] = 1000
    CORS_ORIGINS: Annotated[tuple[str, ...], BeforeValidator(_origins)] = ()
    DRAIN_SECONDS: Annotated[float, BeforeValidator(_seconds)] = 30.0
    LOG_LEVEL: Annotated[str, BeforeValidator(_level)] = "INFO"
    LOG_FORMAT: Annotated[Literal["json", "text"], BeforeValidator(_one_of(LOG_FORMATS))] = "json"
    SYSLOG_UDP_PORT: Annotated[int | None, BeforeValidator(_port)] = None    # raw listeners: off
    SYSLOG_TCP_PORT: Annotated[int | None, BeforeValidator(_port)] = None    # when unset
    SNMP_TRAP_PORT: Annotated[int | None, BeforeValidator(_port)] = None
    LISTEN_HOST: Annotated[str | None, BeforeValidator(_stripped_or_none)] = None  # see raw_listeners
    MAPPINGS: str | None = None           # vendor mappings directory; unset: the built-in ones
    SNMP_V3_USERS: str | None = None      # SNMPv3 users YAML (alarm_ingest/snmp_v3.py); unset: no v3
    SNAPSHOT_EVERY: Annotated[int, BeforeValidator(_count)] = 5000         # see Recovery
    SNAPSHOT_BYTES_PER_ENTRY: Annotated[int, BeforeValidator(_whole)] = 100
    LOG_RETENTION: Annotated[Literal["delete", "archive", "keep"],
                             BeforeValidator(_one_of(RETENTIONS))] = "delete"
    LOG_RETENTION_ENTRIES: Annotated[int, BeforeValidator(_count)] = 10_000

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The constructor's values (the flags) win over the environment; no .env, no secrets.
        environ = _ENVIRON.get()
        return init_settings, _Variables(settings_cls, os.environ if environ is None else environ)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None,
             *, command: str) -> Settings:
        """The settings of `command`: its flags in `args` (those given, not None or empty) over
        the variables of `environ` (default: os.environ, now). An unusable value, or a
        production process without a Kafka bootstrap, raises UsageError (a line per problem)."""
        flags = {name: value for name in cls._variables()
                 if (value := getattr(args, name.lower(), None)) is not None and value != ""}
        token = _ENVIRON.set(os.environ if environ is None else environ)
        try:
            settings = cls(command=command, **flags)
        except ValidationError as err:
            raise UsageError("\n".join(_problem(e, args) for e in err.errors())) from None
        finally:
            _ENVIRON.reset(token)
        if command in PROCESSES:
            _ = settings.kafka                  # refused now, before anything starts
        return settings

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        """`load` for the subcommand the parser read (services/commands/process.run_process)."""
        return cls.load(args, command=args.command)

    @classmethod
    def _variables(cls) -> list[str]:
        return [name for name in cls.model_fields if name.isupper()]

    # ------------------------------------------------------------------ what the processes read

    @property
    def kafka_bootstrap(self) -> str | None:
        return self.KAFKA_BOOTSTRAP

    @property
    def kafka(self) -> KafkaConfig:
        """How to reach the cluster; refused without a bootstrap (`run` has its in-process bus)."""
        from shared.transport.kafka import KafkaConfig
        if self.KAFKA_BOOTSTRAP is None:
            if self.command in PROCESSES:
                raise UsageError("--kafka-bootstrap / FAULTLINE_KAFKA_BOOTSTRAP: required by this "
                                 "process (without Kafka, run `faultline run`)")
            raise UsageError(f"FAULTLINE_KAFKA_BOOTSTRAP: not set (`faultline {self.command}` "
                             "runs without Kafka)")
        return KafkaConfig(bootstrap=self.KAFKA_BOOTSTRAP, enable_idempotence=self.KAFKA_IDEMPOTENCE,
                           partitions=self.TOPIC_PARTITIONS, replication_factor=self.TOPIC_REPLICATION,
                           metadata_max_age_ms=self.KAFKA_METADATA_MAX_AGE_MS,
                           fetch_max_wait_ms=self.KAFKA_FETCH_MAX_WAIT_MS)

    @property
    def database_url(self) -> str:
        """The async SQLAlchemy URL (shared.db.database_url; an SQLite file's directory is made)."""
        from shared.db import DEFAULT_DATABASE_URL, database_url
        return database_url(self.DATABASE_URL or DEFAULT_DATABASE_URL)

    @property
    def inventory_path(self) -> str | None:
        return self.INVENTORY

    @property
    def rulebook_path(self) -> str | None:
        return self.RULEBOOK

    @property
    def clock(self) -> str:
        """wall: timers on the wall clock; stream: only message time moves it."""
        return self.CLOCK

    @property
    def arrival_hold_s(self) -> float:
        """correlate: how late a message may reach the broker and still be put in time order."""
        return self.ARRIVAL_HOLD_MS / 1000

    @property
    def http_host(self) -> str:
        """Where the HTTP port listens: the production processes run in containers, where the
        scraper and probes come from outside; `run` is a laptop's."""
        return self.HTTP_HOST or ("127.0.0.1" if self.command == "run" else "0.0.0.0")

    @property
    def http_port(self) -> int:
        return self.HTTP_PORT

    @property
    def http(self) -> HttpLimits:
        """What a client may cost the service (services/http/guard)."""
        return HttpLimits(max_body_bytes=self.HTTP_MAX_BODY_BYTES, body_timeout_s=self.HTTP_BODY_TIMEOUT_S,
                          cors_origins=self.CORS_ORIGINS, max_connections=self.HTTP_MAX_CONNECTIONS,
                          max_inventory_bytes=self.HTTP_MAX_INVENTORY_BYTES)

    @property
    def drain_s(self) -> float:
        """After SIGTERM, the longest a drain may take."""
        return self.DRAIN_SECONDS

    @property
    def log_level(self) -> str:
        return self.LOG_LEVEL

    @property
    def log_format(self) -> str:
        """json (one object a line, for a log pipeline) or text (for people): services/logs.py."""
        return self.LOG_FORMAT

    @property
    def syslog_udp_port(self) -> int | None:
        return self.SYSLOG_UDP_PORT

    @property
    def syslog_tcp_port(self) -> int | None:
        return self.SYSLOG_TCP_PORT

    @property
    def snmp_trap_port(self) -> int | None:
        return self.SNMP_TRAP_PORT

    @property
    def raw_listeners(self) -> RawListeners:
        """ingest, run: the syslog and SNMP listeners (off where no port is set), and where they
        listen: every address for a process in a container; `run` a laptop's loopback."""
        return RawListeners(self.SYSLOG_UDP_PORT, self.SYSLOG_TCP_PORT, self.SNMP_TRAP_PORT,
                            self.LISTEN_HOST or ("127.0.0.1" if self.command == "run" else "0.0.0.0"))

    @property
    def mappings_dir(self) -> str | None:
        return self.MAPPINGS

    @property
    def snmp_v3_users(self) -> str | None:
        return self.SNMP_V3_USERS

    @property
    def recovery(self) -> Recovery:
        """correlate, dispatch, run: how often a city shard's state is snapshotted, and what of
        its log retention lets go behind the latest snapshot."""
        return Recovery(snapshot_every=self.SNAPSHOT_EVERY,
                        snapshot_bytes_per_entry=self.SNAPSHOT_BYTES_PER_ENTRY, retention=self.LOG_RETENTION,
                        retention_entries=self.LOG_RETENTION_ENTRIES)


def _problem(error: Mapping[str, Any], args: argparse.Namespace | None) -> str:
    """One line: the flag (when this command has it) and the variable, the bad value, why."""
    name = str(error["loc"][0]) if error["loc"] else "?"
    label = f"{PREFIX}{name}" if name.isupper() else name
    dest = name.lower()
    if args is not None and hasattr(args, dest):
        label = f"--{dest.replace('_', '-')} / {label}"
    shown = repr(_text(error["input"]))
    if error["type"] == _REFUSED:
        return f"{label}: {shown} {error['msg']}"
    reason = " ".join(str(error["msg"]).split())          # never more than one line
    return f"{label}: {shown}: {reason}"
