"""The inventory of CONTRACT.md §1: customers, resources and circuits.

`load_inventory(path)` / `parse_inventory(doc)` validate a whole document and return
an `Inventory` of frozen dataclasses with lookup indexes, or raise `InventoryError`
listing every problem, each naming where it is. Fields the contract does not name are
allowed and ignored (adding fields is not a breaking change); the named ones are strict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from shared.limits import MAX_DEPTH, FileTooLarge, read_bounded, too_deep
from shared.problems import format_pydantic_errors

__all__ = [
    "MAX_INVENTORY_BYTES",
    "Circuit",
    "Customer",
    "Inventory",
    "InventoryError",
    "Resource",
    "load_inventory",
    "parse_inventory",
]

Id = Annotated[StrictStr, Field(min_length=1)]

#: An inventory file larger than this is refused (a province's is a few MiB).
MAX_INVENTORY_BYTES = 256 << 20


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CustomerDoc(_Entry):
    customer_id: Id
    name: Id
    level: Literal["provincial", "city"]
    grade: Literal["diamond", "gold", "silver", "bronze", "standard"]
    hq_city: Id | None = None


class ResourceDoc(_Entry):
    resource_id: Id
    layer: Literal["core", "data", "vas", "transmission", "access", "cpe"]
    city: Id
    maintainer: Literal["province", "city"]


class CircuitDoc(_Entry):
    circuit_id: Id
    customer_id: Id
    service_type: Literal["internet", "data", "voice", "gprs_apn", "sms", "circuit_lease"]
    a_city: Id
    z_city: Id | None = None
    span: Literal["local", "cross_city", "cross_province"]
    maintenance_transferred: StrictBool = True
    paths: Annotated[list[Annotated[list[Id], Field(min_length=1)]], Field(min_length=1)]


class InventoryError(Exception):
    """The inventory is refused; `problems` lists every reason, each naming where."""

    def __init__(self, problems: list[str], origin: str = "inventory"):
        self.origin = origin
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{origin} refused ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    name: str
    level: str
    grade: str
    hq_city: str | None
    important: bool


@dataclass(frozen=True, slots=True)
class Resource:
    resource_id: str
    layer: str
    city: str
    maintainer: str


@dataclass(frozen=True, slots=True)
class Circuit:
    circuit_id: str
    customer_id: str
    service_type: str
    a_city: str
    z_city: str | None
    span: str
    maintenance_transferred: bool
    paths: tuple[tuple[str, ...], ...]


class Inventory:
    """Customers, resources and circuits by id (in file order), with lookup indexes."""

    __slots__ = ("customers", "resources", "circuits", "cities", "_by_customer", "_on_resource",
                 "_a_cities_on", "_group_of", "_groups_on")

    def __init__(self, customers: Iterable[Customer], resources: Iterable[Resource],
                 circuits: Iterable[Circuit]):
        self.customers: dict[str, Customer] = {c.customer_id: c for c in customers}
        self.resources: dict[str, Resource] = {r.resource_id: r for r in resources}
        self.circuits: dict[str, Circuit] = {c.circuit_id: c for c in circuits}
        by_customer: dict[str, list[Circuit]] = {}
        on_resource: dict[str, list[tuple[Circuit, int]]] = {}
        for circuit in self.circuits.values():
            by_customer.setdefault(circuit.customer_id, []).append(circuit)
            for index, path in enumerate(circuit.paths):
                for resource_id in dict.fromkeys(path):
                    on_resource.setdefault(resource_id, []).append((circuit, index))
        self._by_customer = {k: tuple(v) for k, v in by_customer.items()}
        self._on_resource = {k: tuple(v) for k, v in on_resource.items()}
        self._a_cities_on = {k: tuple(sorted({c.a_city for c, _i in v})) for k, v in on_resource.items()}
        # Every city the inventory names: where a complaint or an operator's `city` may point.
        self.cities: frozenset[str] = frozenset(
            {c.a_city for c in self.circuits.values()}
            | {c.z_city for c in self.circuits.values() if c.z_city}
            | {r.city for r in self.resources.values()}
            | {c.hq_city for c in self.customers.values() if c.hq_city})
        self._group_of = _city_groups(self.cities, self._a_cities_on.values())
        # Per resource, the groups of the cities whose circuits it lies under (or of its own city):
        # every alarm asks, so it is worked out once here, not per alarm.
        self._groups_on = {rid: tuple(sorted({self._group_of[c] for c in
                                              self._a_cities_on.get(rid) or (r.city,)}))
                           for rid, r in self.resources.items()}

    def circuits_of(self, customer_id: str) -> tuple[Circuit, ...]:
        """The customer's circuits, in file order."""
        return self._by_customer.get(customer_id, ())

    def circuits_on(self, resource_id: str) -> tuple[tuple[Circuit, int], ...]:
        """Every (circuit, path index) whose path holds the resource, once per path."""
        return self._on_resource.get(resource_id, ())

    def a_cities_on(self, resource_id: str) -> tuple[str, ...]:
        """The A-end cities of the circuits whose paths hold the resource, sorted (computed
        once: every alarm asks, and a trunk lies under hundreds of circuits)."""
        return self._a_cities_on.get(resource_id, ())

    def groups_on(self, resource_id: str) -> tuple[str, ...]:
        """The correlation groups that must see an alarm on a resource of the inventory, sorted
        (empty for a resource it does not hold)."""
        return self._groups_on.get(resource_id, ())

    def group_of(self, city: str) -> str:
        """The correlation group of a city the inventory names: the first (sorted) of the cities
        joined to it by resources that lie under circuits of both as A-end cities. One incident
        (AL-6) can span such cities, so they are correlated together."""
        return self._group_of[city]

    def __repr__(self) -> str:
        return (f"Inventory({len(self.customers)} customers, {len(self.resources)} resources, "
                f"{len(self.circuits)} circuits)")


def _city_groups(cities: Iterable[str], a_cities: Iterable[tuple[str, ...]]) -> dict[str, str]:
    """City → its group's name (union-find over the A-end cities sharing a resource)."""
    parent = {c: c for c in cities}

    def root(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for shared in a_cities:
        for other in shared[1:]:
            a, b = root(shared[0]), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)    # the smaller code names the group
    return {c: root(c) for c in parent}


def load_inventory(path: str | Path, max_bytes: int | None = None) -> Inventory:
    """Read and validate an inventory JSON file of at most `max_bytes` (MAX_INVENTORY_BYTES)."""
    origin = str(path)
    try:
        data = read_bounded(path, MAX_INVENTORY_BYTES if max_bytes is None else max_bytes)
    except FileTooLarge as e:
        raise InventoryError([f"{origin}: refused: {e}"], origin) from None
    except OSError as e:
        raise InventoryError([f"{origin}: cannot read: {e.strerror or e}"], origin) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        where = f"{origin}:{e.lineno}:{e.colno}"
        if "depth limit" in e.msg:  # orjson stops at 1024 levels, the same problem as too_deep
            raise InventoryError([f"{where}: refused: nested deeper than {MAX_DEPTH} levels"],
                                 origin) from None
        raise InventoryError([f"{where}: invalid JSON: {e.msg}"], origin) from None
    return parse_inventory(doc, origin)


_SECTIONS: tuple[tuple[str, type[_Entry], str], ...] = (
    ("customers", CustomerDoc, "customer_id"),
    ("resources", ResourceDoc, "resource_id"),
    ("circuits", CircuitDoc, "circuit_id"),
)


def parse_inventory(doc: Any, origin: str = "inventory") -> Inventory:
    """Validate an inventory document (parsed JSON) and build the Inventory."""
    if not isinstance(doc, dict):
        raise InventoryError(["(document): must be a JSON object with customers, resources, circuits"],
                             origin)
    if too_deep(doc, MAX_DEPTH):  # before pydantic, whose validation and errors recurse
        raise InventoryError([f"{origin}: refused: nested deeper than {MAX_DEPTH} levels"], origin)
    problems: list[str] = []
    valid: dict[str, list[tuple[int, Any]]] = {}
    ids: dict[str, dict[str, int]] = {}  # section -> id -> first index (valid entries or not)
    for section, model, key in _SECTIONS:
        valid[section], ids[section] = _validate_section(doc, section, model, key, problems)
    customers = {c.customer_id: c for _, c in valid["customers"]}
    resources = {r.resource_id: r for _, r in valid["resources"]}
    for i, c in valid["circuits"]:
        _check_circuit(i, c, ids, problems)
    if problems:
        raise InventoryError(problems, origin)
    circuits = [c for _, c in valid["circuits"]]
    wide = {c.customer_id for c in circuits if c.span != "local"}
    return Inventory(
        customers=(
            Customer(c.customer_id, c.name, c.level, c.grade, c.hq_city,
                     important=c.level == "provincial" or c.grade == "diamond" or c.customer_id in wide)
            for c in customers.values()
        ),
        resources=(Resource(r.resource_id, r.layer, r.city, r.maintainer) for r in resources.values()),
        circuits=(
            Circuit(c.circuit_id, c.customer_id, c.service_type, c.a_city, c.z_city, c.span,
                    c.maintenance_transferred, tuple(tuple(p) for p in c.paths))
            for c in circuits
        ),
    )


def _validate_section(doc: dict[str, Any], section: str, model: type[_Entry], key: str,
                      problems: list[str]) -> tuple[list[tuple[int, Any]], dict[str, int]]:
    entries = doc.get(section)
    if section not in doc:
        problems.append(f"{section}: required field is missing")
        return [], {}
    if not isinstance(entries, list):
        problems.append(f"{section}: must be a list (got {type(entries).__name__})")
        return [], {}
    valid: list[tuple[int, Any]] = []
    first: dict[str, int] = {}
    for i, entry in enumerate(entries):
        entry_id = entry.get(key) if isinstance(entry, dict) else None
        duplicate = False
        if isinstance(entry_id, str) and entry_id:
            if entry_id in first:
                duplicate = True
                problems.append(f"{section}[{i}]: duplicate {key} {entry_id} "
                                f"(also {section}[{first[entry_id]}])")
            else:
                first[entry_id] = i
        try:
            parsed = model.model_validate(entry)
        except ValidationError as e:
            problems.extend(format_pydantic_errors(e.errors(), prefix=(section, i)))
            continue
        if not duplicate:
            valid.append((i, parsed))
    return valid, first


def _check_circuit(i: int, c: CircuitDoc, ids: dict[str, dict[str, int]], problems: list[str]) -> None:
    where = f"circuits[{i}]"
    label = f"({c.circuit_id})"
    if c.customer_id not in ids["customers"]:
        problems.append(f"{where} {label}: customer {c.customer_id} is not in customers")
    for p, path in enumerate(c.paths):
        for r, resource_id in enumerate(path):
            if resource_id not in ids["resources"]:
                problems.append(f"{where}.paths[{p}][{r}] {label}: resource {resource_id} "
                                "is not in resources")
    if c.span == "cross_city":
        if c.z_city is None:
            problems.append(f"{where}.z_city {label}: required when span is cross_city")
        elif c.z_city == c.a_city:
            problems.append(f"{where}.z_city {label}: {c.z_city} is the a_city; a cross_city circuit "
                            "ends in another city")
    elif c.span == "local" and c.z_city is not None and c.z_city != c.a_city:
        problems.append(f"{where}.z_city {label}: {c.z_city} differs from a_city {c.a_city} "
                        "on a local circuit (use span cross_city)")
