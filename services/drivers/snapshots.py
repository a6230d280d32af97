"""Snapshots of a city shard's state, so that a shard is rebuilt from its latest snapshot and
the tail of its log instead of from the whole log (bounded recovery).

    blob = dump(core)                 # a CorrelatorShard or a DispatcherShard, between steps
    core = load(blob, logic)          # CorrelateLogic / DispatchLogic: the live inventory,
                                      # rulebook and callables the state is bound to again

Pure: bytes in, bytes out; the runner (services/runtime/shard_runner.py) stores the blob
with the seq of the last log entry it covers (services/runtime/shard_log.py).

What is in a blob. A header line (`MAGIC`, then JSON: the format version, the stage, the
shard), then the state pickled and compressed. The state is the shard's object graph
(faults, alarms, timers heap, counters, work orders...) with everything that is not state
stored by reference and bound again at load:

- inventory objects (shared.inventory `Circuit`, `Customer`, `Resource`): by id, as
  ("circuit", id) etc.; the `Inventory` itself and the `Rulebook` by token;
- the callables a shard holds (the correlator's `owns`, a lambda; its `rulebook.cause_class`
  bound once; the dispatcher's `warn`): by token, taken from a fresh shard of the logic;
- a correlator's structure derived from the inventory (its `circuits` and `resources`
  dicts, the `CircuitState`/`ResourceState` objects with their memberships): by id; the
  fresh shard builds it from the inventory, and the blob carries only the dynamic slots of
  those states that differ from a blank one (a circuit with a path down, a resource with
  an active alarm, ...). A snapshot grows with the shard's state, not with the inventory.

Any other callable in the graph is refused at dump (SnapshotError) rather than pickled.
Loading unpickles only the classes of the shard's state (correlator, dispatcher,
shared.facts, shared.timers, the city shards): a blob naming anything else is refused.

`fingerprint(inventory, rulebook)` is a SHA-256 of a stable dump of both (set order does
not depend on the hash seed; the rulebook's file path is left out), kept beside each
snapshot. A code change that changes the shape of the state must bump `FORMAT`: a blob of
another format is refused (SnapshotError), and the runner rebuilds without it.

When the inventory or the rulebook has changed (the fingerprint differs), the runner
(ShardRunner.open_shard) re-runs the whole log when it still holds every entry from seq 1
(the state is then what the new data makes of the inputs, as before snapshots). When the
log has been pruned it cannot: it loads the latest snapshot re-bound BY ID to the new
inventory and rulebook (a circuit whose fields changed is the new circuit from then on;
timers already scheduled keep their due times). If an id the state names is gone from the
new inventory (or a circuit's number of paths changed), `load` raises SnapshotMismatch
listing what is missing; the runner logs an error naming the shard and that list and
re-runs the retained tail of the log from a fresh shard: the state of the entries before
the tail is lost (faults open then are no longer known to that shard), which is the price
of a retention window once the inventory under it has changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import pickle
import types
import zlib
from functools import partial
from typing import Any

import orjson

from correlator.faults import CircuitState, ResourceState
from services.drivers.city_shards import CorrelatorShard, DispatcherShard
from shared.inventory import Circuit, Customer, Inventory, Resource
from shared.rulebook import Rulebook

FORMAT = 1
MAGIC = b"faultline-shard-snapshot"

# Attributes of the shard wrappers that the fresh shard of the live logic supplies (its
# configuration, not its state): kept from the fresh shard at load.
_FROM_FRESH = frozenset({"shard", "catch_up_s"})
# The same of the engines (Correlator, Dispatcher) inside them.
_ENGINE_CONFIG = ("inventory", "rulebook", "owns", "_cause_class", "warn", "id_prefix")

# The slots of a correlator's per-circuit and per-resource state that the inventory
# determines (built by the fresh shard); every other slot is state.
CS_STATIC = frozenset({"circuit", "customer", "npaths", "resources"})
RS_STATIC = frozenset({"resource", "memberships", "circuits"})
CS_DYNAMIC = tuple(s for s in CircuitState.__slots__ if s not in CS_STATIC)
RS_DYNAMIC = tuple(s for s in ResourceState.__slots__ if s not in RS_STATIC)

# The modules whose classes a blob may name (find_class at load).
_ALLOWED_PACKAGES = ("correlator.", "dispatcher.")
_ALLOWED_MODULES = frozenset({"shared.facts", "shared.timers", "services.drivers.city_shards"})
_CALLABLES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType,
              types.BuiltinMethodType, partial)
_KINDS = {"correlate": CorrelatorShard, "dispatch": DispatcherShard}


class SnapshotError(Exception):
    """The blob cannot be made or used (another format, corrupt, a state that will not pickle)."""


class SnapshotMismatch(SnapshotError):
    """The blob names what the live inventory no longer has; `missing` says what."""

    def __init__(self, stage: str, shard: str, missing: list[str]) -> None:
        self.missing = missing
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        super().__init__(f"snapshot of {stage} {shard} names what the inventory no longer has: {shown}")


# ---------------------------------------------------------------------- fingerprint

def _canon(value: Any) -> Any:
    """A JSON-able form of inventory and rulebook values, the same in every process."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__] + [[f.name, _canon(getattr(value, f.name))]
                                         for f in dataclasses.fields(value)
                                         if f.name not in ("origin", "_warned")]
    if isinstance(value, (set, frozenset)):
        return sorted((_canon(v) for v in value), key=lambda v: orjson.dumps(v))
    if isinstance(value, dict):
        return [[_canon(k), _canon(v)] for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value) if not isinstance(value, dt.tzinfo) else str(value)


def fingerprint(inventory: Inventory, rulebook: Rulebook) -> str:
    """SHA-256 (hex) of the inventory (in file order, which decisions depend on) and the
    rulebook (its values, not the path it was read from)."""
    h = hashlib.sha256()
    for table in (inventory.customers, inventory.resources, inventory.circuits):
        for item in table.values():
            h.update(orjson.dumps([getattr(item, f.name) for f in dataclasses.fields(item)]))
        h.update(b"\x00")
    h.update(orjson.dumps(_canon(rulebook)))
    return h.hexdigest()


# ---------------------------------------------------------------------- dump

def _engine(core: Any) -> Any:
    return core.correlator if isinstance(core, CorrelatorShard) else core.dispatcher


_PLAIN = frozenset({str, int, float, bool, type(None), tuple, list, set, frozenset, bytes})


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, core: Any) -> None:
        super().__init__(file, protocol=5)
        engine = _engine(core)
        self.tokens: dict[int, tuple] = {id(engine.rulebook): ("rulebook",)}
        self.keep = [engine.rulebook]          # the ids above stay valid while pickling
        named = {"owns": "owns", "_cause_class": "cause_class", "warn": "warn",
                 "inventory": "inventory", "circuits": "circuits", "resources": "resources"}
        for attr, token in named.items():
            obj = getattr(engine, attr, None)
            if obj is not None:
                self.tokens[id(obj)] = (token,)
                self.keep.append(obj)

    def persistent_id(self, obj: Any) -> tuple | None:
        t = type(obj)
        if t in _PLAIN:                 # most of what a state holds: one set probe, then the C pickler
            return None
        if t is Circuit:
            return ("circuit", obj.circuit_id)
        if t is Customer:
            return ("customer", obj.customer_id)
        if t is Resource:
            return ("resource", obj.resource_id)
        if t is CircuitState:
            return ("cs", obj.circuit.circuit_id)
        if t is ResourceState:
            return ("rs", obj.resource.resource_id)
        if t is dict or t is Inventory or t is Rulebook or isinstance(obj, _CALLABLES):
            token = self.tokens.get(id(obj))
            if token is not None:
                return token
            if t is not dict:
                raise SnapshotError(f"the shard's state holds {obj!r}, which is not the shard's own "
                                    "inventory, rulebook or callable: it cannot be kept in a snapshot")
        return None


_blanks: dict[int, tuple] = {}


def _cs_blank(npaths: int) -> tuple:
    """The dynamic slots of a CircuitState with `npaths` paths as it is built."""
    blank = _blanks.get(npaths)
    if blank is None:
        shape = types.SimpleNamespace(paths=((),) * npaths)
        cs = CircuitState(shape, None)  # type: ignore[arg-type]
        blank = _blanks[npaths] = tuple(getattr(cs, s) for s in CS_DYNAMIC)
    return blank


_RS_BLANK = tuple(getattr(ResourceState(None), s) for s in RS_DYNAMIC)  # type: ignore[arg-type]


def _overlays(core: Any) -> tuple[list, list]:
    """The dynamic slots of the correlator's circuit and resource states that are not blank."""
    if not isinstance(core, CorrelatorShard):
        return [], []
    corr = core.correlator
    circuits = []
    for cid, cs in corr.circuits.items():
        values = tuple(getattr(cs, s) for s in CS_DYNAMIC)
        if values != _cs_blank(cs.npaths):
            circuits.append((cid, values))
    resources = []
    for rid, rs in corr.resources.items():
        values = tuple(getattr(rs, s) for s in RS_DYNAMIC)
        if values != _RS_BLANK:
            resources.append((rid, values))
    return circuits, resources


def dump(core: CorrelatorShard | DispatcherShard) -> bytes:
    """The shard's state as bytes. Call it between steps only (never on a half-changed shard)."""
    return dump_sized(core)[0]


def dump_sized(core: CorrelatorShard | DispatcherShard) -> tuple[bytes, int]:
    """dump(core), and the size of the state before compression (what dumping it cost: ~120 ns
    a byte on the bench's 20,000-circuit shard)."""
    stage = next((k for k, cls in _KINDS.items() if type(core) is cls), None)
    if stage is None:
        raise SnapshotError(f"not a city shard: {type(core).__name__}")
    state = {k: v for k, v in vars(core).items() if k not in _FROM_FRESH}
    circuits, resources = _overlays(core)
    buf = io.BytesIO()
    try:
        _Pickler(buf, core).dump((state, CS_DYNAMIC, circuits, RS_DYNAMIC, resources))
    except SnapshotError:
        raise
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:
        raise SnapshotError(f"{stage} {core.shard}: the state does not pickle: {err}") from err
    header = orjson.dumps({"format": FORMAT, "stage": stage, "shard": core.shard})
    raw = buf.getvalue()
    return MAGIC + b" " + header + b"\n" + zlib.compress(raw, 1), len(raw)


# ---------------------------------------------------------------------- load

class _Missing:
    """Stands where the blob names something the live inventory does not have."""

    __slots__ = ()


_MISSING = _Missing()


class _ResourceStates:
    """A shard's resource states by id, made on first use as the correlator makes them (a
    city's shard does not hold every resource of the inventory)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def get(self, rid: Any) -> Any:
        return self.engine.resource_state(rid) if type(rid) is str else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, fresh: Any, logic: Any) -> None:
        super().__init__(file)
        engine = _engine(fresh)
        inv: Inventory = logic.inventory
        self.tables = {"circuit": inv.circuits, "customer": inv.customers, "resource": inv.resources}
        if isinstance(fresh, CorrelatorShard):
            self.tables["cs"] = engine.circuits
            self.tables["rs"] = _ResourceStates(engine)
        self.tokens = {"inventory": inv, "rulebook": logic.rulebook}
        for attr, token in (("owns", "owns"), ("_cause_class", "cause_class"), ("warn", "warn"),
                            ("circuits", "circuits"), ("resources", "resources")):
            if hasattr(engine, attr):
                self.tokens[token] = getattr(engine, attr)
        self.missing: dict[str, None] = {}

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is not tuple or not pid:
            raise SnapshotError(f"a reference the format does not have: {pid!r}")
        if len(pid) == 1:
            if pid[0] not in self.tokens:
                raise SnapshotError(f"a reference the format does not have: {pid!r}")
            return self.tokens[pid[0]]
        kind, key = pid
        table = self.tables.get(kind)
        if table is None:
            raise SnapshotError(f"a reference the format does not have: {pid!r}")
        obj = table.get(key)
        if obj is None:
            name = {"cs": "circuit", "rs": "resource"}.get(kind, kind)
            self.missing[f"{name} {key}"] = None
            return _MISSING
        return obj

    def find_class(self, module: str, name: str) -> Any:
        if module in _ALLOWED_MODULES or module.startswith(_ALLOWED_PACKAGES):
            return super().find_class(module, name)
        raise SnapshotError(f"a snapshot may not name {module}.{name}")


def header(blob: bytes) -> dict:
    """The blob's header: {"format", "stage", "shard"}; SnapshotError if it is none."""
    head, sep, _body = blob.partition(b"\n")
    if not sep or not head.startswith(MAGIC + b" "):
        raise SnapshotError("not a shard snapshot")
    try:
        meta = orjson.loads(head[len(MAGIC) + 1:])
    except orjson.JSONDecodeError as err:
        raise SnapshotError(f"a snapshot header that does not parse: {err}") from None
    if type(meta) is not dict or meta.get("format") != FORMAT:
        raise SnapshotError(f"snapshot format {meta.get('format') if type(meta) is dict else '?'}; "
                            f"this version reads format {FORMAT}")
    return meta


def _overlay(engine: Any, circuits: list, resources: list, missing: dict[str, None]) -> None:
    """The dumped dynamic slots onto the fresh correlator's circuit and resource states."""
    path_down = CS_DYNAMIC.index("path_down")
    for cid, values in circuits:
        cs = engine.circuits.get(cid)
        if cs is None:
            missing[f"circuit {cid}"] = None
        elif len(values[path_down]) != cs.npaths:
            missing[f"circuit {cid} with its {len(values[path_down])} paths"] = None
        else:
            for slot, value in zip(CS_DYNAMIC, values, strict=True):
                setattr(cs, slot, value)
    for rid, values in resources:
        rs = engine.resource_state(rid)
        if rs is None:
            missing[f"resource {rid}"] = None
        else:
            for slot, value in zip(RS_DYNAMIC, values, strict=True):
                setattr(rs, slot, value)


def load(blob: bytes, logic: Any) -> CorrelatorShard | DispatcherShard:
    """The shard the blob was dumped from, bound to `logic`'s inventory, rulebook and
    callables. SnapshotMismatch when it names ids the inventory no longer has;
    SnapshotError when the blob is unusable otherwise."""
    return load_sized(blob, logic)[0]


def load_sized(blob: bytes, logic: Any) -> tuple[CorrelatorShard | DispatcherShard, int]:
    """load(blob, logic), and the state's size before compression (as dump_sized gives it)."""
    meta = header(blob)
    stage, shard = meta.get("stage"), meta.get("shard")
    if stage != logic.stage or type(shard) is not str:
        raise SnapshotError(f"a snapshot of {stage} {shard}, not of a {logic.stage} shard")
    fresh = logic.new_shard(shard)
    if type(fresh) is not _KINDS.get(stage):
        raise SnapshotError(f"{stage} {shard}: the logic makes a {type(fresh).__name__}")
    try:
        body = zlib.decompress(blob.partition(b"\n")[2])
        unpickler = _Unpickler(io.BytesIO(body), fresh, logic)
        state, cs_slots, circuits, rs_slots, resources = unpickler.load()
    except SnapshotError:
        raise
    except Exception as err:            # a corrupt blob, or a state of another shape
        raise SnapshotError(f"{stage} {shard}: the snapshot does not load: {type(err).__name__}: "
                            f"{err}") from err
    if tuple(cs_slots) != CS_DYNAMIC or tuple(rs_slots) != RS_DYNAMIC:
        raise SnapshotError(f"{stage} {shard}: the snapshot's circuit and resource states have "
                            "another shape than this version's")
    missing = unpickler.missing
    engine = _engine(fresh)
    _overlay(engine, circuits, resources, missing)
    if missing:
        raise SnapshotMismatch(stage, shard, list(missing))
    vars(fresh).update(state)
    loaded = _engine(fresh)
    for attr in _ENGINE_CONFIG:             # the live logic's, even where the dumped one had none
        if hasattr(engine, attr):
            setattr(loaded, attr, getattr(engine, attr))
    if isinstance(fresh, CorrelatorShard):
        _upgrade(loaded)
    return fresh, len(body)


def _upgrade(correlator: Any) -> None:
    """State a blob of this format dumped before the router's asks lacks (a shard's `answers`
    come from the fresh shard): where the input order stands, and each fault's place in it —
    `()`, before every input since (what the log would re-make, were the blob refused, is
    lost once the log is pruned: so the format stays, and old blobs load)."""
    if not hasattr(correlator, "position"):
        correlator.position = ()
    for fault in correlator.faults.values():
        if not hasattr(fault, "position"):
            fault.position = ()
