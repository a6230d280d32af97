"""The durable store of the production path: SQLAlchemy 2 Core tables (CONTRACT §4).

Portable to SQLite and PostgreSQL: JSON values are kept as Text (UTF-8 JSON written by
the code), booleans as Boolean, ids as strings. The schema itself is created by the
Alembic migrations in `shared/db/migrations` (`faultline db upgrade`); this metadata is
what they were written from and what the code queries with.

Times, three kinds, each stored one way:
- Times of the domain, the ones CONTRACT §3 records carry (`at`, `opened_at`, `deadline`,
  an alarm's `event_time`...): TEXT, the ISO-8601 string exactly as the record has it.
  Output times are all `+08:00` with whole seconds (microseconds only when present), so
  for them the text order is the time order. Alarm `event_time`s are the sender's and may
  carry another offset.
- Times the engine computes with (`input_log.clock`, `timers.due`): FLOAT, Unix seconds,
  the engine's own representation (shared/clock.py).
- Bookkeeping stamps (`created_at`, `updated_at` of the log and ownership tables): the
  database server's clock, `DateTime(timezone=True)` filled by the server.

Tables:
- `input_log`: every input and timer tick a stage handled, per (stage, shard), in order.
- `outbox`: what each input produced for the bus, published later by a relay.
- `shard_owner`: which process owns a shard and its epoch (fencing zombie writers).
- `shard_snapshots`: a shard's state as of a log seq, so a rebuild re-runs only the log
  after it; `input_log_archive`: log entries moved out of `input_log` by retention
  (FAULTLINE_LOG_RETENTION=archive), and `input_log_archive_sent` what they sent;
  `input_log_horizon` and `pruned_notices`: how far retention let go of each shard's log,
  and the notices it left open, for the outcome of an input whose entry has gone.
- `api_tokens`: the API's bearer tokens (a hash of each), their role and city; `api_audit`:
  who changed what through the API or the token command, and when.
- the read model, filled by `shared.db.projection`: `alarms`, `faults`, `incidents`,
  `complaints`, `work_orders`, `notifications`, `escalations`, `audit`, `rejected`;
  plus `timers` (the engine's pending timers, written by the stage that owns them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

from shared.model import MAX_CAUSE, MAX_CITY, MAX_ID, MAX_NAME

# Constraint names are explicit (and stable across SQLite and PostgreSQL) so migrations
# can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL; INTEGER on SQLite, where only an INTEGER PRIMARY KEY autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ID = String(MAX_ID)      # fault, incident, work-order, complaint, alarm ids
STAGE = String(32)       # "correlate" | "dispatch"
SHARD = String(MAX_CITY)  # a city code or "-"
QUEUE = String(128)      # RULES.md §4 queue names
RULE = String(16)        # SF-3, RT-2, TM-4...
TIME = String(40)        # ISO-8601 text (see the module docstring)
NAME = String(MAX_NAME)  # resource ids, sources, keys


def _stamp(name: str) -> Column:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


# ---------------------------------------------------------------------------------------
# The production path: input log, outbox, shard ownership.

input_log = Table(
    "input_log", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("seq", Integer, nullable=False),                  # per (stage, shard), from 1
    Column("kind", String(16), nullable=False),              # "input" | "tick"
    Column("clock", Float, nullable=False),                  # the stage clock, Unix seconds
    Column("body", Text, nullable=True),                     # JSON; null for a tick
    Column("source_key", NAME, nullable=True),               # "topic:partition:offset", ...
    _stamp("created_at"),
    UniqueConstraint("stage", "shard", "seq"),
    # NULLs are distinct in a UNIQUE constraint (both databases): ticks carry no key.
    UniqueConstraint("stage", "shard", "source_key"),
    Index(None, "stage", "shard"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("seq", Integer, nullable=False),                  # the input_log seq it came from
    Column("topic", NAME, nullable=False),
    Column("key", NAME, nullable=True),
    Column("value", Text, nullable=False),
    Column("published", Boolean, nullable=False, server_default=false(), default=False),
    UniqueConstraint("stage", "shard", "seq", "topic"),
    Index(None, "published", "id"),
)

shard_owner = Table(
    "shard_owner", metadata,
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("owner", NAME, nullable=False),
    Column("epoch", Integer, nullable=False),
    _stamp("updated_at"),
    PrimaryKeyConstraint("stage", "shard"),
)

# A shard's state as of `seq` (services/drivers/snapshots.py; migration 0005): a rebuild loads
# the latest whose fingerprint (of the inventory and rulebook) matches and re-runs only the
# log entries after `seq`. `records`: the shard's rows in `audit` when it was taken.
shard_snapshots = Table(
    "shard_snapshots", metadata,
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("seq", Integer, nullable=False),                  # the last input_log seq it covers
    _stamp("taken_at"),
    Column("fingerprint", String(64), nullable=False),       # SHA-256 hex of inventory + rulebook
    Column("records", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),
    PrimaryKeyConstraint("stage", "shard", "seq"),
)

# Entries retention moved out of `input_log` (FAULTLINE_LOG_RETENTION=archive), as they were;
# found by source key too (migration 0006): the outcome of an input (GET /inputs/{id}).
input_log_archive = Table(
    "input_log_archive", metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),     # the id it had in input_log
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("clock", Float, nullable=False),
    Column("body", Text, nullable=True),
    Column("source_key", NAME, nullable=True),
    _stamp("created_at"),
    Index(None, "stage", "shard", "seq"),
    Index(None, "stage", "source_key"),
)

# What an archived input's outbox rows said, as they are dropped with it (migration 0006): the
# decision records it made and the ids of the notices it sent dispatch. One row per archived
# entry with a source key; none for an entry archived before 0006 (then it is not known).
input_log_archive_sent = Table(
    "input_log_archive_sent", metadata,
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("records", Integer, nullable=False),              # its faultline.decisions messages
    Column("notices", Text, nullable=True),                  # JSON list of notice ids; null: none
    PrimaryKeyConstraint("stage", "shard", "seq"),
)

# How far retention has let go of a shard's log (migration 0006), so that what was let go is
# still known to have been handled without a row per input. Per (stage, shard) and origin of
# the source keys of the entries it removed (services/runtime/shard_log.py, `horizon_marks`),
# the span of their positions:
# - kind "source", a key `topic:partition:offset@timestamp_ms` (an input's id): `origin` the
#   topic, `partition` its partition; `low`..`high` the offsets and `low_ts`..`high_ts` the
#   timestamps removed (each range of its own);
# - kind "notice", a notice id `city:seq:n` (what correlate sends dispatch): `origin` the city,
#   `partition` 0; (`low`, `low_ts`)..(`high`, `high_ts`) the (seq, n) removed, in that order.
# One row per shard and topic partition (or city): it grows with neither history nor load.
input_log_horizon = Table(
    "input_log_horizon", metadata,
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("kind", String(16), nullable=False),              # source | notice
    Column("origin", NAME, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("low_ts", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("high_ts", BigInteger, nullable=False),
    _stamp("updated_at"),
    PrimaryKeyConstraint("stage", "shard", "kind", "origin", "partition"),
)

# The notices of correlate entries retention deleted whose fate was open or a refusal then
# (migration 0006): not yet handled by dispatch, or refused by it. The outcome of the input
# (`source_key`) still waits for, or tells, them. A row goes once dispatch's own retention has
# let go of its notice unrefused; a refused one stays, as its refusal in `rejected` does.
pruned_notices = Table(
    "pruned_notices", metadata,
    Column("source_key", NAME, nullable=False),              # the input's id
    Column("notice_id", NAME, nullable=False),               # city:seq:n
    Column("shard", SHARD, nullable=False),                  # the correlate (and dispatch) shard
    PrimaryKeyConstraint("source_key", "notice_id"),
    Index(None, "shard"),
)

# API bearer tokens (migration 0007, services/access.py): only a SHA-256 of each token is
# kept; the token itself is shown once, when it is made. A revoked token keeps its row (who
# held which role, for the audit trail), with the time it was revoked.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),   # SHA-256 hex of the token
    Column("role", String(32), nullable=False),
    Column("city", SHARD, nullable=True),                    # city-operator's city; else null
    Column("name", NAME, nullable=False),                    # who or what holds it
    Column("created_at", Float, nullable=False),             # Unix seconds
    Column("revoked_at", Float, nullable=True),
)

# Who changed what through the API or the token command, and when (migration 0008,
# services/access.py AuditTrail): one row per accepted change, never updated.
api_audit = Table(
    "api_audit", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),                     # Unix seconds
    Column("token_id", BigInteger, nullable=True),           # null: the token command
    Column("actor", NAME, nullable=False),                   # the token's name, or "faultline token"
    Column("role", String(32), nullable=False),
    Column("city", SHARD, nullable=True),
    Column("action", String(64), nullable=False),            # "POST /alarms", "token create", ...
    Column("inputs", Integer, nullable=False),               # how many inputs it carried
    Column("detail", Text, nullable=True),                   # JSON: input ids, token ids, ...
)

# ---------------------------------------------------------------------------------------
# The read model (shared.db.projection).

alarms = Table(
    "alarms", metadata,
    Column("source", NAME, nullable=False),
    Column("alarm_id", NAME, nullable=False),
    Column("resource_id", NAME, nullable=True),
    Column("probable_cause", String(MAX_CAUSE), nullable=True),
    Column("severity", String(16), nullable=True),
    Column("state", String(16), nullable=True),              # raised | cleared
    Column("event_time", TIME, nullable=True),
    Column("text", Text, nullable=True),
    Column("first_seen_at", TIME, nullable=True),
    Column("last_seen_at", TIME, nullable=True),
    Column("count", Integer, nullable=False, server_default="0", default=0),
    Column("unmapped", Boolean, nullable=False, server_default=false(), default=False),
    # TMF642 acknowledgement and clearing by an operator (migration 0009); no record carries them.
    Column("ack_state", String(16), nullable=False, server_default="unacknowledged",
           default="unacknowledged"),
    Column("ack_user_id", NAME, nullable=True),
    Column("ack_at", TIME, nullable=True),
    Column("clear_user_id", NAME, nullable=True),
    Column("comments", Text, nullable=False, server_default="[]", default="[]"),   # JSON list
    PrimaryKeyConstraint("source", "alarm_id"),
    Index(None, "resource_id"),
)

faults = Table(
    "faults", metadata,
    Column("fault_id", ID, primary_key=True),
    Column("incident_id", ID, nullable=True),
    Column("kind", String(16), nullable=True),               # outage | degradation | complaint
    Column("circuit_id", NAME, nullable=True),
    Column("customer_id", ID, nullable=True),
    Column("city", SHARD, nullable=True),
    Column("service_type", String(32), nullable=True),
    Column("important", Boolean, nullable=True),
    Column("cause_side", String(16), nullable=True),
    Column("root_resource", NAME, nullable=True),
    Column("layer", String(16), nullable=True),
    Column("probable_cause", String(MAX_CAUSE), nullable=True),
    Column("opened_at", TIME, nullable=True),
    Column("severity", String(16), nullable=True),           # general | serious
    Column("serious_at", TIME, nullable=True),
    Column("rule", RULE, nullable=True),                     # the SF- rule that made it serious
    Column("trigger", String(16), nullable=True),            # duration | confirmed
    Column("ended_at", TIME, nullable=True),
    Column("duration_s", Integer, nullable=True),
    Column("attribution", String(16), nullable=True),        # ours | not_ours
    Column("updated_at", TIME, nullable=True),               # `at` of the latest record
    # No record carries these (SV-5, SV-6, SF-6b): the correlate shard writes them (migration 0003).
    Column("complaints", Text, nullable=False, server_default="[]", default="[]"),   # JSON list
    Column("customer_reported", Boolean, nullable=False, server_default=false(), default=False),
    Index(None, "incident_id"),
    Index(None, "city", "severity"),
    Index(None, "customer_id", "service_type"),
)

incidents = Table(
    "incidents", metadata,
    Column("incident_id", ID, primary_key=True),
    Column("root_resource", NAME, nullable=True),
    Column("first_opened_at", TIME, nullable=True),
    Column("fault_count", Integer, nullable=False, server_default="0", default=0),
)

complaints = Table(
    "complaints", metadata,
    Column("complaint_id", ID, primary_key=True),
    Column("customer_id", ID, nullable=True),
    Column("city", SHARD, nullable=True),
    Column("service_type", String(32), nullable=True),
    Column("channel", String(32), nullable=True),
    Column("scope", String(16), nullable=True),
    Column("text", Text, nullable=True),
    Column("received_at", TIME, nullable=True),
    Column("fault_id", ID, nullable=True),
    Index(None, "fault_id"),
)

work_orders = Table(
    "work_orders", metadata,
    Column("work_order_id", ID, primary_key=True),
    Column("queue", QUEUE, nullable=True),
    Column("fault_ids", Text, nullable=False, server_default="[]", default="[]"),   # JSON list
    Column("cc", Text, nullable=False, server_default="[]", default="[]"),          # JSON list
    Column("priority", String(16), nullable=True),           # normal | urgent
    Column("title", Text, nullable=True),
    Column("rule", RULE, nullable=True),
    # TMF621: acknowledged | inProgress | resolved | closed | held | pending | cancelled
    Column("status", String(16), nullable=False, server_default="acknowledged",
           default="acknowledged"),
    Column("contact_by", TIME, nullable=True),
    Column("arrive_by", TIME, nullable=True),
    Column("created_at", TIME, nullable=True),
    Column("updated_at", TIME, nullable=True),
    Column("resolved_at", TIME, nullable=True),
    Index(None, "queue", "status"),
)

# What operators add to a work order through TMF621 (migration 0009): notes (note[],
# appended, never rewritten) and the status changes they made (statusChange[]), with who.
work_order_notes = Table(
    "work_order_notes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("work_order_id", ID, nullable=False),
    Column("author", NAME, nullable=False),
    Column("date", TIME, nullable=False),
    Column("text", Text, nullable=False),
    Index(None, "work_order_id"),
)

work_order_changes = Table(
    "work_order_changes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("work_order_id", ID, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", TIME, nullable=False),
    Column("by", NAME, nullable=False),                      # the token's name and role
    Index(None, "work_order_id"),
)

timers = Table(
    "timers", metadata,
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("fault_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),              # TM-1 ... TM-10, AL-5
    Column("due", Float, nullable=False),                    # Unix seconds
    PrimaryKeyConstraint("stage", "shard", "fault_id", "kind", "due"),
    Index(None, "stage", "shard", "due"),
)

# The key columns of a notification are NOT NULL ('' when a type has no such field), so the
# UNIQUE key also holds on PostgreSQL, where NULLs would all be distinct.
notifications = Table(
    "notifications", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("fault_id", ID, nullable=False),
    # sms | phone.notify | onsite.required | report.due | deadline.missed
    Column("type", String(32), nullable=False),
    Column("stage_or_rule", String(32), nullable=False, server_default="", default=""),
    Column("queue_or_target", QUEUE, nullable=False, server_default="", default=""),
    Column("recipients", Text, nullable=False, server_default="[]", default="[]"),  # JSON list
    Column("text", Text, nullable=True),
    Column("deadline", TIME, nullable=True),                 # deadline, or report.due's `due`
    Column("at", TIME, nullable=False),
    UniqueConstraint("fault_id", "type", "stage_or_rule", "queue_or_target", "at",
                     name="uq_notifications_key"),
)

escalations = Table(
    "escalations", metadata,
    Column("fault_id", ID, nullable=False),
    Column("reason", RULE, nullable=False),                  # ES-...
    Column("to_queue", QUEUE, nullable=True),
    Column("at", TIME, nullable=True),
    PrimaryKeyConstraint("fault_id", "reason"),
)

# Every projected record, once: `digest` is the SHA-256 of (stage, shard, canonical JSON of
# the record), so projecting the same record again adds no row. A row written by other code
# may leave it NULL (never a conflict: NULLs are distinct in a UNIQUE constraint).
audit = Table(
    "audit", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", TIME, nullable=False),
    Column("stage", STAGE, nullable=False),
    Column("shard", SHARD, nullable=False),
    Column("type", String(32), nullable=False),
    Column("fault_id", ID, nullable=True),
    Column("work_order_id", ID, nullable=True),
    Column("body", Text, nullable=False),                    # the record, JSON
    Column("digest", String(64), nullable=True),
    UniqueConstraint("digest"),
    Index(None, "fault_id"),
    Index(None, "work_order_id"),
    Index(None, "stage", "shard"),      # what a shard stored, counted when it is rebuilt
)

# Every refused input, kept with its reason: the input.rejected records (projection, which
# fills `digest` and so deduplicates like `audit`) and whatever a stage refuses itself.
rejected = Table(
    "rejected", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", TIME, nullable=False),
    Column("stage", STAGE, nullable=False),
    Column("source_key", NAME, nullable=True),               # the line / message it came from
    Column("reason", Text, nullable=False),
    Column("body", Text, nullable=True),
    Column("digest", String(64), nullable=True),
    UniqueConstraint("digest"),
    Index(None, "source_key"),          # the outcome of an input (GET /inputs/{id}), polled
)

# ---------------------------------------------------------------------------------------
# The local transport of `faultline run` (shared/transport/local.py): the topics and the
# consumer groups' committed offsets that Kafka keeps in production.

transport_messages = Table(
    "transport_messages", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),      # global append order
    Column("topic", NAME, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", Text, nullable=True),
    Column("value", LargeBinary, nullable=False),            # bytes, as on Kafka
    Column("timestamp_ms", BigInteger, nullable=False),
    UniqueConstraint("topic", "partition", "offset"),
)

transport_offsets = Table(
    "transport_offsets", metadata,
    Column("group_id", NAME, nullable=False),
    Column("topic", NAME, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "topic", "partition"),
)

TABLES = (
    input_log, outbox, shard_owner, shard_snapshots, input_log_archive, input_log_archive_sent,
    input_log_horizon, pruned_notices, api_tokens, api_audit, alarms, faults, incidents, complaints,
    work_orders, work_order_notes, work_order_changes, timers,
    notifications, escalations, audit, rejected, transport_messages, transport_offsets,
)

# ---------------------------------------------------------------------------------------
# The TMF event hub (services/hub.py; migration 0010): listeners registered by POST /hub, the
# events (TMF621 envelopes) made from the decisions log, one delivery row per listener and
# event until the listener answered 2xx, and the pump's position in `audit`.

hub_listeners = Table(
    "hub_listeners", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("callback", Text, nullable=False),                # http(s) URL, no credentials
    Column("query", Text, nullable=False),                   # the TMF filter ('' : every event)
    Column("created_at", Float, nullable=False),             # Unix seconds
    Column("created_by", BigInteger, nullable=True),         # api_tokens.id; null: not a token
    Column("failing_since", Float, nullable=True),           # first failure since the last 2xx
    Column("disabled_at", Float, nullable=True),             # given up on: no more deliveries
    Column("disabled_reason", Text, nullable=True),
)

hub_events = Table(
    "hub_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),      # the events' order
    Column("event_id", String(64), nullable=False),          # the envelope's eventId (uuid4 hex)
    Column("event_type", String(64), nullable=False),
    Column("event_time", TIME, nullable=False),
    Column("queue", QUEUE, nullable=True),
    Column("city", SHARD, nullable=True),
    Column("body", Text, nullable=False),                    # the envelope, JSON
    Column("created_at", Float, nullable=False),             # Unix seconds (retention)
    UniqueConstraint("event_id"),
    Index(None, "created_at"),
)

hub_deliveries = Table(
    "hub_deliveries", metadata,
    Column("listener_id", BigInteger, nullable=False),       # hub_listeners.id
    Column("event_seq", BigInteger, nullable=False),         # hub_events.id
    Column("attempts", Integer, nullable=False),
    Column("next_at", Float, nullable=False),                # Unix seconds: due (or leased) until
    Column("last_error", Text, nullable=True),               # "HTTP 500", "ConnectTimeout": never a body
    Column("delivered_at", Float, nullable=True),
    PrimaryKeyConstraint("listener_id", "event_seq"),
    Index(None, "delivered_at", "next_at"),
    Index(None, "event_seq"),
)

hub_cursor = Table(
    "hub_cursor", metadata,
    Column("name", String(64), primary_key=True),            # "decisions": the pump over `audit`
    Column("last_id", BigInteger, nullable=False),
)

TABLES = (*TABLES, hub_listeners, hub_events, hub_deliveries, hub_cursor)

# Inventories loaded through the API (migration 0011, services/inventory_store.py): each load
# that passed every check is a new version; the current one is the highest id. The document
# is kept as compressed JSON; the processes take the current version at their (re)start.
inventories = Table(
    "inventories", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),            # SHA-256 of the canonical document
    Column("body", LargeBinary, nullable=False),             # zlib(canonical JSON)
    Column("customers", Integer, nullable=False),
    Column("resources", Integer, nullable=False),
    Column("circuits", Integer, nullable=False),
    Column("loaded_at", Float, nullable=False),              # Unix seconds
    Column("loaded_by", NAME, nullable=False),               # the token's name and role
)

TABLES = (*TABLES, inventories)
