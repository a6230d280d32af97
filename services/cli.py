"""The `faultline` command: one composition root per subcommand, built when it runs."""

from __future__ import annotations

import argparse
import os
import sys

from services.config import UsageError, load_config
from services.settings import CLOCKS, Settings
from shared.clock import TimeFormatError, parse_time
from shared.db import DatabaseError

ENVIRONMENT = """\
environment (a flag, where a command has one, wins over its variable; empty is unset):
  FAULTLINE_INVENTORY        path of the inventory JSON (CONTRACT §1)
  FAULTLINE_RULEBOOK         rulebook YAML; unset: the built-in Guangdong V2.2
  FAULTLINE_DATABASE_URL     SQLAlchemy URL; unset: a local SQLite file
  FAULTLINE_KAFKA_BOOTSTRAP  Kafka bootstrap servers: required by the processes (`run`: the in-process bus)
  FAULTLINE_KAFKA_IDEMPOTENCE  true on Apache Kafka (idempotent producer); false for Tansu (default)
  FAULTLINE_KAFKA_METADATA_MAX_AGE_MS  how often clients refresh topic metadata (default 300000)
  FAULTLINE_KAFKA_FETCH_MAX_WAIT_MS  longest a fetch waits at the broker (default 500; Tansu: 50)
  FAULTLINE_TOPIC_PARTITIONS   partitions of the topics a process creates (default 6)
  FAULTLINE_TOPIC_REPLICATION  replication factor of those topics (default 1)
  FAULTLINE_CLOCK            wall (timers on the wall clock, default) or stream (message time only)
  FAULTLINE_ARRIVAL_HOLD_MS  correlate: skew allowed between partitions' arrivals (default 300)
  FAULTLINE_SNAPSHOT_EVERY   correlate, dispatch, run: log entries between a shard's snapshots (default 5000)
  FAULTLINE_SNAPSHOT_BYTES_PER_ENTRY  ... or, for a big state, its bytes / this many (default 100; 0: off)
  FAULTLINE_LOG_RETENTION    delete (default), archive or keep the log behind a snapshot
  FAULTLINE_LOG_RETENTION_ENTRIES  entries kept behind a snapshot for redeliveries (default 10000)
  FAULTLINE_HTTP_PORT        HTTP port: the API, /healthz, /readyz, /metrics (default 8080)
  FAULTLINE_HTTP_HOST        address the processes listen on (default 0.0.0.0; `run`: 127.0.0.1)
  FAULTLINE_SYSLOG_UDP_PORT, FAULTLINE_SYSLOG_TCP_PORT, FAULTLINE_SNMP_TRAP_PORT
                             ingest, run: raw listeners (off when unset)
  FAULTLINE_LISTEN_HOST      address they listen on (default 0.0.0.0; `run`: 127.0.0.1)
  FAULTLINE_MAPPINGS         directory of vendor mapping YAML files, over the built-in ones
  FAULTLINE_SNMP_V3_USERS    YAML of the SNMPv3 users traps may come from (unset: v3 refused)
  FAULTLINE_HTTP_MAX_BODY_BYTES  larger request bodies get 413 (default 1048576)
  FAULTLINE_HTTP_MAX_INVENTORY_BYTES  the same for POST /inventory, one at a time (default 16777216)
  FAULTLINE_HTTP_BODY_TIMEOUT_S  a body slower than this gets 408 (default 10)
  FAULTLINE_HTTP_MAX_CONNECTIONS more connections get 503 at once (default 1000)
  FAULTLINE_CORS_ORIGINS     comma-separated origins allowed cross-site (default: none)
  FAULTLINE_DRAIN_SECONDS    processes: after SIGTERM, the longest a drain may take (default 30)
  FAULTLINE_LOG_LEVEL        DEBUG, INFO (default), WARNING, ERROR or CRITICAL
  FAULTLINE_LOG_FORMAT       json (default: one object a line, with fault/work-order/input ids) or text
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faultline",
        description="Alarm correlation and fault dispatch for group-customer private lines.",
        epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("replay", help="run the rulebook on recorded events (CONTRACT §3)",
                        epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("--inventory", help="inventory JSON file")
    rp.add_argument("--events", required=True, help="events JSONL file ('-' for stdin)")
    rp.add_argument("--until", help="advance the clock to this ISO-8601 time at the end")
    rp.add_argument("--rulebook", help="rulebook YAML file")
    rp.add_argument("--summary", action="store_true", help="print a digest to stderr at the end")

    run = sub.add_parser("run", help="the live service on the embedded default",
                         epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--inventory", help="inventory JSON file")
    run.add_argument("--rulebook", help="rulebook YAML file")
    run.add_argument("--database-url",
                     help="SQLAlchemy URL (default: sqlite file under ./.faultline/)")
    run.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    run.add_argument("--log-format", choices=("json", "text"), help="json (default) or text, for people")
    run.add_argument("--demo", action="store_true",
                     help="feed the bundled Guangdong sample on an accelerated clock")
    run.add_argument("--speed", type=float, default=None,
                     help="demo clock speed-up (default 120: an hour in 30 seconds)")
    run.add_argument("--exit-after-demo", action="store_true",
                     help="with --demo: exit 0 once the last demo input and the timers of the "
                          "following two simulated hours are handled")

    for name, what in (("ingest", "raw feeds → normalized alarms on faultline.alarms"),
                       ("correlate", "alarms and actions → faults (city shards)"),
                       ("dispatch", "faults → work orders, escalations, notices (city shards)"),
                       ("api", "the HTTP API over Kafka and PostgreSQL")):
        proc = sub.add_parser(name, help=what, epilog=ENVIRONMENT,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        proc.add_argument("--kafka-bootstrap",
                          help="Kafka bootstrap servers (this or FAULTLINE_KAFKA_BOOTSTRAP: required)")
        proc.add_argument("--database-url", help="SQLAlchemy URL")
        proc.add_argument("--inventory", help="inventory JSON file")
        proc.add_argument("--rulebook", help="rulebook YAML file")
        proc.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
        proc.add_argument("--clock", choices=CLOCKS, help="wall (default) or stream")
        proc.add_argument("--log-format", choices=("json", "text"), help="json (default) or text")
        if name == "correlate":
            proc.add_argument("--arrival-hold-ms",
                              help="how late a message may reach the broker after a later-stamped one "
                                   "and still be put in time order (default 300)")

    imp = sub.add_parser("import", help="an NMS alarm export (CSV or JSON) into a running faultline",
                         epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", help="the export: CSV with a header row, a JSON array of rows, or JSON lines")
    imp.add_argument("--mapping", default="sdh-otn-export",
                     help="the export mapping that reads its columns (default sdh-otn-export)")
    imp.add_argument("--source", help="the NMS it comes from (default: the file's name)")
    imp.add_argument("--url", default=os.environ.get("FAULTLINE_URL") or "http://127.0.0.1:8080",
                     help="the faultline API (FAULTLINE_URL; default http://127.0.0.1:8080)")
    imp.add_argument("--token", default=os.environ.get("FAULTLINE_TOKEN"),
                     help="an API token, ingest-only or above (FAULTLINE_TOKEN)")

    db = sub.add_parser("db", help="database schema (migrations)",
                        epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="bring the schema up to date (a no-op when it is)")
    up.add_argument("--database-url",
                    help="SQLAlchemy URL (default: sqlite file under ./.faultline/)")
    tok = sub.add_parser("token", help="the API's bearer tokens: create, list, revoke",
                         epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    toksub = tok.add_subparsers(dest="token_command", required=True)
    create = toksub.add_parser("create", help="make a token; it is printed once, alone on its line")
    create.add_argument("--role", required=True,
                        help="admin, province-operator, city-operator, read-only or ingest-only")
    create.add_argument("--city", help="the city of a city-operator (e.g. GZ)")
    create.add_argument("--name", help="who or what holds it (default: the role)")
    toksub.add_parser("list", help="every token made: id, role, city, created, revoked, name")
    revoke = toksub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    for p in (create, toksub.choices["list"], revoke):
        p.add_argument("--database-url", help="SQLAlchemy URL (default: sqlite file under ./.faultline/)")
    return parser


def _command(args: argparse.Namespace) -> str:
    if args.command == "token":
        return f"token {args.token_command}"
    return f"{args.command} {args.db_command}" if args.command == "db" else args.command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "replay":
            until = None
            if args.until is not None:
                try:
                    until = parse_time(args.until)
                except TimeFormatError as err:
                    raise UsageError(f"--until: {err}") from None
            if args.events != "-" and not os.path.isfile(args.events):
                raise UsageError(f"--events: no such file {args.events}")
            settings = Settings.load(args, command="replay")
            inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
            from services.commands.replay import replay_main
            return replay_main(inventory, rulebook, args.events, until, args.summary)
        if args.command in ("ingest", "correlate", "dispatch", "api"):
            from services.commands.process import run_process
            return run_process(args.command, args)
        if args.command == "run":
            from services.commands.run import run_main
            return run_main(args)
        if args.command == "import":
            from services.commands.import_file import import_main
            return import_main(args.file, args.mapping, args.source, args.url, args.token)
        if args.command == "token":
            from services.commands.token import token_main
            return token_main(args, Settings.load(args, command=_command(args)).DATABASE_URL)
        if args.command == "db" and args.db_command == "upgrade":
            from shared.db import DEFAULT_DATABASE_URL
            from shared.db.migrate import upgrade
            upgrade(Settings.load(args, command="db upgrade").DATABASE_URL or DEFAULT_DATABASE_URL)
            return 0
    except UsageError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    except DatabaseError as err:  # one line naming the (redacted) URL and the reason, no traceback
        sys.stderr.write(f"faultline {_command(args)}: {err}\n")
        return err.exit_status
    return 2


if __name__ == "__main__":
    sys.exit(main())
