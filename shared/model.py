"""The domain's plain values: what flows between the stages inside one process.

Pydantic models live at the edges (HTTP bodies, the rulebook file); inside, these slotted
classes are cheap to build in the alarm hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = frozenset({"critical", "major", "minor", "warning", "indeterminate"})
ALARM_STATES = frozenset({"raised", "cleared"})
SERVICE_TYPES = frozenset({"internet", "data", "voice", "gprs_apn", "sms", "circuit_lease"})
CHANNELS = frozenset({"10086-8", "400", "direct", "account_manager"})
SCOPES = frozenset({"all_users", "partial"})
IMPACTS = frozenset({"full_block", "no_impact"})
ATTRIBUTIONS = frozenset({"ours", "not_ours"})
OPERATOR_ESCALATIONS = frozenset({"ES-4", "ES-5", "ES-6", "ES-7"})
CORE_LAYERS = frozenset({"core", "data", "vas", "transmission"})
CUSTOMER_LAYERS = frozenset({"access", "cpe"})

# The longest values the read model's columns hold (shared/db/models.py uses these): the
# decoders refuse longer ones, naming the field, before they reach a database.
MAX_NAME = 255      # alarm sources, alarm and resource ids
MAX_CAUSE = 64      # probable causes
MAX_ID = 64         # complaint and customer ids
MAX_CITY = 32       # city codes


class Alarm:
    """A normalized alarm (CONTRACT §2) with its event time parsed to Unix seconds."""

    __slots__ = ("source", "alarm_id", "resource_id", "probable_cause", "severity", "state",
                 "event_time", "text")

    def __init__(self, source: str, alarm_id: str, resource_id: str, probable_cause: str,
                 severity: str, state: str, event_time: float, text: str = "") -> None:
        self.source = source
        self.alarm_id = alarm_id
        self.resource_id = resource_id
        self.probable_cause = probable_cause
        self.severity = severity
        self.state = state
        self.event_time = event_time
        self.text = text


@dataclass(frozen=True, slots=True)
class Complaint:
    """A customer's report of a fault (RULES.md §5)."""

    complaint_id: str
    channel: str
    customer_id: str
    city: str
    service_type: str
    scope: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class Select:
    """Which open fault an operator action means (CONTRACT §3 `select`)."""

    fault_id: str | None = None
    circuit_id: str | None = None
    customer_id: str | None = None
    service_type: str | None = None
    city: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("fault_id", self.fault_id), ("circuit_id", self.circuit_id),
                                          ("customer_id", self.customer_id),
                                          ("service_type", self.service_type), ("city", self.city))
                 if v is not None]
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True, slots=True)
class Action:
    """An operator action: confirm, attribution, ack, resolve or escalate."""

    kind: str
    select: Select
    impact: str | None = None
    attribution: str | None = None
    queue: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input or action that cannot be used, with a reason a person can act on."""

    reason: str
