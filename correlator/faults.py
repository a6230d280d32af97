"""The correlator's mutable state: faults, circuits and resources as the engine sees them."""

from __future__ import annotations

from shared.facts import FaultFacts
from shared.inventory import Circuit, Customer, Resource


class Fault:
    """One customer-impacting condition from its start to its end (RULES.md §1, CL-3)."""

    __slots__ = (
        "seq", "fault_id", "incident_id", "kind", "circuit", "customer", "city", "service_type",
        "important", "cause_side", "root_resource", "layer", "root_maintainer", "probable_cause",
        "opened_at", "green", "found_by_city", "severity", "serious_at", "trigger", "rule",
        "ended_at", "attribution", "sf_rule", "sf_long", "tm1_gen", "tm1_running",
        "customer_reported", "root_alarm", "complaints", "listed", "listed_in", "flaps",
        "is_flapping", "circuit_state", "position",
    )

    def __init__(self, seq: int, fault_id: str, incident_id: str, kind: str, *,
                 circuit: Circuit | None, customer: Customer | None, city: str, service_type: str,
                 important: bool, cause_side: str, root: Resource | None,
                 probable_cause: str | None, opened_at: float) -> None:
        self.seq = seq
        self.fault_id = fault_id
        self.incident_id = incident_id
        self.kind = kind
        self.circuit = circuit
        self.customer = customer
        self.city = city
        self.service_type = service_type
        self.important = important
        self.cause_side = cause_side
        self.root_resource = root.resource_id if root else None
        self.layer = root.layer if root else None
        self.root_maintainer = root.maintainer if root else None
        self.probable_cause = probable_cause
        self.opened_at = opened_at
        self.green = False
        self.found_by_city = False
        self.severity = "general"
        self.serious_at: float | None = None
        self.trigger: str | None = None
        self.rule: str | None = None
        self.ended_at: float | None = None
        self.attribution = "ours"
        self.sf_rule: str | None = None       # the SF row that applies, if any
        self.sf_long = False                  # SF-5's 8-hour case
        self.tm1_gen = 0                      # bumped to cancel a running TM-1
        self.tm1_running = False
        self.customer_reported = False
        self.root_alarm: tuple[str, str] | None = None
        self.complaints: list[str] = []
        self.listed: list[Fault] = []         # SF-6b: the complaint faults it lists
        self.listed_in: list[Fault] = []      # the SF-6b faults that list this one
        self.flaps: list[str] = []            # AL-5: the flap faults that joined it
        self.is_flapping = False
        self.circuit_state = None
        self.position: tuple = ()             # the place of the input that opened it (Correlator.position)

    @property
    def open(self) -> bool:
        return self.ended_at is None

    def facts(self) -> FaultFacts:
        return FaultFacts(
            seq=self.seq, fault_id=self.fault_id, incident_id=self.incident_id, kind=self.kind,
            circuit=self.circuit, customer=self.customer, city=self.city,
            service_type=self.service_type, important=self.important, cause_side=self.cause_side,
            root_resource=self.root_resource, layer=self.layer, root_maintainer=self.root_maintainer,
            probable_cause=self.probable_cause, opened_at=self.opened_at, green=self.green,
            found_by_city=self.found_by_city, severity=self.severity, serious_at=self.serious_at,
            ended_at=self.ended_at, listed=self._listed_customers() if self.listed else 0,
        )


    def _listed_customers(self) -> int:
        return len({f.customer.customer_id for f in self.listed if f.customer})


class CircuitState:
    """AL-3/AL-4 bookkeeping of one circuit: how many of its paths are down, and its faults."""

    __slots__ = ("circuit", "customer", "npaths", "path_down", "paths_down", "interrupted",
                 "deg_count", "outage_fault", "deg_fault", "flap_fault", "flaps", "quiet_gen",
                 "complaint_faults", "resources")

    def __init__(self, circuit: Circuit, customer: Customer) -> None:
        self.circuit = circuit
        self.customer = customer
        self.npaths = len(circuit.paths)
        self.path_down = [0] * self.npaths     # per path: resources on it that are down
        self.paths_down = 0
        self.interrupted = False
        self.deg_count = 0                     # member resources holding a degradation alarm
        self.outage_fault: Fault | None = None
        self.deg_fault: Fault | None = None
        self.flap_fault: Fault | None = None
        self.flaps: list[float] = []           # opened_at of recent flaps (AL-5)
        self.quiet_gen = 0
        self.complaint_faults: list[Fault] = []
        self.resources: list[ResourceState] = []


class ResourceState:
    """Active outage and degradation alarms on one resource, and its current incident."""

    __slots__ = ("resource", "memberships", "circuits", "outage", "degr", "incident_id",
                 "incident_first")

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.memberships: list[tuple[CircuitState, int]] = []
        self.circuits: list[CircuitState] = []
        self.outage: dict[tuple[str, str], tuple[float, str]] = {}
        self.degr: dict[tuple[str, str], tuple[float, str]] = {}
        self.incident_id: str | None = None
        self.incident_first = 0.0

    def earliest_outage(self) -> tuple[float, str]:
        return min(self.outage.values())

    def earliest_degradation(self) -> tuple[float, str]:
        return min(self.degr.values())


class AlarmState:
    """AL-1: one (source, alarm_id) key: active, cleared, or a tombstone."""

    __slots__ = ("resource_id", "cls", "cause", "active", "raised_at", "last_clear", "count",
                 "last_seen")

    def __init__(self, resource_id: str, cls: str, cause: str, raised_at: float) -> None:
        self.resource_id = resource_id
        self.cls = cls
        self.cause = cause
        self.active = True
        self.raised_at = raised_at
        self.last_clear: float | None = None
        self.count = 1
        self.last_seen = raised_at
