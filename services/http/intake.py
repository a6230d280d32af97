"""The intake routes of the one HTTP app and the outcome of an input (CL-4): see the
design in services/http/app.py's docstring."""


from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from sqlalchemy.exc import InterfaceError, OperationalError

from alarm_ingest.normalized import alarm_from_dict
from alarm_ingest.raw import normalize
from services.access import ACT, INGEST, READ, AuditTrail, Principal
from services.drivers.dead_letters import MAX_VALUE, fits
from services.drivers.dead_letters import dead_letter as letter
from services.drivers.sharding import Ask, all_shards
from services.drivers.split import shards_for
from services.http.auth import AUTH_ANSWERS, Auth, check
from services.http.face import FIRST_PAUSE_S, LONGEST_PAUSE_S, Face, Wait
from services.http.guard import (
    MAX_ALARMS,
    IntakeSlots,
    action_refusal,
    alarm_list_refusal,
    decode_json,
)
from services.http.models import (
    ACTION_BODY,
    ALARMS_BODY,
    COMPLAINT_BODY,
    IMPORT_BODY,
    InputOutcome,
    IntakeAnswer,
    QueryProblem,
)
from services.http.reads import (
    fault_city,
    input_outcomes,
    parse_input_id,
)
from shared.model import Rejected
from shared.topics import ACTIONS, ALARMS, DEADLETTER, raw_alarms_topic
from shared.transport.port import Record
from shared.wire import action_from_dict, complaint_from_dict

log = logging.getLogger("faultline.http")


# ---------------------------------------------------------------------- outcomes

class Outcomes:
    """The outcomes of inputs, read from the database (services/http/reads.py), waited for."""

    def __init__(self, face: Face) -> None:
        self.db = face.db
        self.shards = all_shards(face.inventory) if face.inventory is not None else None

    async def read(self, inputs: Mapping[str, Sequence[str] | None]) -> dict[str, dict]:
        async with self.db.connect() as conn:
            return await input_outcomes(conn, inputs, shards=self.shards)

    async def wait(self, inputs: Mapping[str, Sequence[str] | None], wait_s: float) -> dict[str, dict]:
        """Each input's outcome, polling (20 ms, growing to 200 ms) while any is pending, for at
        most `wait_s` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        pause, known, undecided = FIRST_PAUSE_S, {}, dict(inputs)
        while True:
            known.update(await self.read(undecided))
            undecided = {i: e for i, e in undecided.items() if known[i]["status"] == "pending"}
            left = deadline - loop.time()
            if not undecided or left <= 0:
                return known
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, LONGEST_PAUSE_S)


# ---------------------------------------------------------------------- intake

class _Refusal(Exception):
    """An input refused before publishing, its dead letter sent: answered 422 (`_refused`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    reason = exc.reason if isinstance(exc, _Refusal) else str(exc)
    return JSONResponse(_body([None], {0: reason}, {}, awaited=False, single=True), status_code=422)


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse({"detail": f"database unavailable: {type(exc).__name__}"}, status_code=503)


class _TooLarge(HTTPException):
    def __init__(self, what: str, size: int) -> None:
        super().__init__(413, f"{what} is {size} bytes once encoded; at most {MAX_VALUE} fit a message")


@dataclass(slots=True)
class _Batch:
    """What one request sends: per input, its record (a message, or the dead letter of a
    refused one), the refusal's reason, and the shards that must handle it (when known)."""

    kind: str
    records: list[Record] = field(default_factory=list)
    refusals: dict[int, str] = field(default_factory=dict)
    expect: dict[int, Sequence[str] | None] = field(default_factory=dict)

    def take(self, record: Record, shards: Sequence[str] | None) -> None:
        self.expect[len(self.records)] = shards
        self.records.append(record)

    def refuse(self, record: Record, reason: str) -> None:
        self.refusals[len(self.records)] = reason
        self.records.append(record)


MAX_AUDITED_IDS = 1000          # a list's ids all fit (MAX_ALARMS); the count says if more


class Intake:
    """What the intake endpoints share: the producer, the counter, the outcomes, and how a
    body becomes records (accepted, or refused and dead-lettered)."""

    def __init__(self, face: Face) -> None:
        self.face = face
        self.producer = face.producer
        self.outcomes = Outcomes(face)
        self.slots = IntakeSlots(face.limits.max_decoded_bodies)
        self.trail = AuditTrail(face.db)
        self.counted = Counter("faultline_api_inputs", "Inputs received over HTTP, by kind and outcome",
                               ["kind", "outcome"], registry=face.registry)
        for kind in ("alarm", "complaint", "action", "tmf642", "export"):   # 0 before the first
            for outcome in ("accepted", "refused"):
                self.counted.labels(kind, outcome)

    def message(self, kind: str, topic: str, value: object, key: str | None) -> Record:
        """An accepted value as the record to send; 413 (nothing sent) if it could never be sent:
        Kafka refuses a record over 1 MiB, and a smaller body can encode larger."""
        encoded = orjson.dumps(value)
        if not fits(encoded):
            self.counted.labels(kind, "too_large").inc()
            raise _TooLarge(kind, len(encoded))
        return (topic, encoded, key, None, self.face.now_ms())

    async def audit(self, who: Principal, action: str, ids: Sequence[str | None]) -> None:
        """The change in the audit trail (services/access.AuditTrail): who, what, when, and the
        ids of the inputs it published (refused ones are dead-lettered, not changes)."""
        taken = [i for i in ids if i is not None]
        if not taken:
            return
        try:
            await self.trail.record(who, action, len(taken), {"input_ids": taken[:MAX_AUDITED_IDS],
                                                              "more": max(0, len(taken) - MAX_AUDITED_IDS)})
        except (OperationalError, InterfaceError) as err:
            # The inputs are published: answering 503 would make the sender post them again.
            # The gap in the trail is said instead (never the token), and counted.
            self.counted.labels("audit", "not_kept").inc(len(taken))
            log.error("audit trail: not kept (database: %s): %s by token %s (%s), inputs %s",
                      type(err).__name__, action, who.token_id, who.role, ", ".join(taken[:20]))

    @staticmethod
    def may_complain(who: Principal, complaint: Any) -> None:
        """403 unless a city operator's token posts a complaint of its own city."""
        if who.city is not None:
            check(who, INGEST, getattr(complaint, "city", None) or "no city", "a complaint of that city")

    async def may_act(self, who: Principal, action: Any) -> None:
        """403 unless a city operator's token acts on what is of its own city."""
        if who.city is not None and not isinstance(action, Rejected):
            city = await self.action_city(action.select)
            check(who, ACT, city or "a city it cannot tell", "what this select names")

    async def action_city(self, select: Any) -> str | None:
        """The city of what an action's `select` names, for a city operator's token: its `city`,
        the A-end city of its circuit, the read model's city of its fault, or the one A-end
        city of the customer's circuits of that service; None when it cannot tell."""
        if select.city:
            return select.city
        inventory = self.face.inventory
        if select.circuit_id:
            circuit = inventory.circuits.get(select.circuit_id) if inventory is not None else None
            return circuit.a_city if circuit is not None else None
        if select.fault_id:
            async with self.face.db.connect() as conn:
                return await fault_city(conn, select.fault_id)
        if select.customer_id and inventory is not None:
            cities = {c.a_city for c in inventory.circuits_of(select.customer_id)
                      if select.service_type in (None, c.service_type)}
            return cities.pop() if len(cities) == 1 else None
        return None

    def dead_letter(self, reason: str, body: Any) -> Record:
        """A refused input as the message that keeps it on faultline.deadletter: the body cut
        to fit (services/drivers/dead_letters.py), whatever its size."""
        return (DEADLETTER, letter(reason, "api", body), None, None, self.face.now_ms())

    async def refuse(self, kind: str, reason: str, body: Any) -> Exception:
        """Send the dead letter; the caller raises what this returns (422)."""
        await self.producer.send_many([self.dead_letter(reason, body)])
        self.counted.labels(kind, "refused").inc()
        return _Refusal(reason)

    async def json_body(self, request: Request, kind: str) -> Any:
        """The body (services/http/guard.decode_json), or 422 once it is dead-lettered; an alarm
        list over the cap is kept as the text it came as, its decoded items dropped at once."""
        raw = await request.body()
        body, reason = decode_json(raw)
        if reason is None and kind == "alarm" and (reason := alarm_list_refusal(body)) is not None:
            body = raw.decode("utf-8", "replace")
        if reason is not None:
            raise await self.refuse(kind, reason, body)
        return body

    def check(self, event: object, *, route: bool = True) -> tuple[list[str] | None, str | None]:
        """(None, why) for a decoder's refusal or an input the router could not route (when the
        inventory is known); else (the city shards the router sends it to, or None, None).
        `route=False`: the decoder's verdict only (an alarm always routes; its cities matter
        only to an answer that waits for each of them)."""
        if isinstance(event, Rejected):
            return None, event.reason
        if self.face.inventory is None or not route:
            return None, None
        cities = shards_for(self.face.inventory, event)
        if isinstance(cities, Rejected):
            return None, cities.reason
        # An asked input goes to whichever one shard the answers settle on.
        return (None, None) if isinstance(cities, Ask) else (cities, None)

    async def publish(self, batch: _Batch) -> list[str | None]:
        """Send every record of the batch in one round of acks; each input's id (None when refused)."""
        sent = await self.producer.send_many(batch.records)
        ids: list[str | None] = []
        for i, ((topic, _v, _k, _p, ts), (partition, offset)) in enumerate(zip(batch.records, sent,
                                                                                  strict=True)):
            ids.append(None if i in batch.refusals else f"{topic}:{partition}:{offset}@{ts}")
        self.counted.labels(batch.kind, "accepted").inc(len(ids) - len(batch.refusals))
        if batch.refusals:
            self.counted.labels(batch.kind, "refused").inc(len(batch.refusals))
        return ids

    async def export_rows(self, request: Request, who: Principal) -> JSONResponse:
        """POST /alarms/import: each row checked with its export mapping; the accepted published
        unchanged to faultline.alarms.raw.export (ingest normalizes them), the refused
        dead-lettered."""
        async with self.slots.slot():
            body = await self.json_body(request, "export")
            if type(body) is not dict or type(body.get("mapping")) is not str \
                    or type(body.get("rows")) is not list:
                raise await self.refuse("export", "expected {mapping: name, source?: text, rows: "
                                                  "[{column: value}, …]}", body)
            rows = body["rows"]
            if len(rows) > MAX_ALARMS:
                raise await self.refuse("export", f"{len(rows)} rows; at most {MAX_ALARMS} in one request",
                                        f"{len(rows)} rows of mapping {body['mapping'][:64]}")
            source = body.get("source") if type(body.get("source")) is str else None
            batch = _Batch("export")
            for i, row in enumerate(rows):
                doc = {"mapping": body["mapping"], "row": row, "source": source}
                got = normalize("export", doc, f"rows[{i}]", mappings=self.face.mappings)
                if isinstance(got, Rejected):
                    batch.refuse(self.dead_letter(got.reason, doc), got.reason)
                else:
                    batch.take(self.message("export", raw_alarms_topic("export"), doc, source), None)
            del body, rows
            ids = await self.publish(batch)
            await self.audit(who, "POST /alarms/import", ids)
        return await self.answer(batch, ids, 0, single=False)

    async def answer(self, batch: _Batch, ids: list[str | None], wait_s: float, single: bool) -> JSONResponse:
        """202, or 422 for a single input refused while it was waited for."""
        outcomes: dict[str, dict] = {}
        waited = {i: batch.expect.get(n) for n, i in enumerate(ids) if i is not None}
        if wait_s > 0 and waited:
            try:
                outcomes = await self.outcomes.wait(waited, wait_s)
            except (OperationalError, InterfaceError) as err:       # published: say pending, not 5xx
                log.warning("outcome of %d input(s) unknown: database unavailable (%s)", len(waited),
                            type(err).__name__)
        body = _body(ids, batch.refusals, outcomes, awaited=wait_s > 0, single=single)
        return JSONResponse(body, status_code=422 if single and body["rejected"] else 202)


def _body(ids: list[str | None], refusals: Mapping[int, str], outcomes: Mapping[str, dict], *,
          awaited: bool, single: bool) -> dict:
    """The IntakeAnswer of a request: per input, refused before publishing (`refusals`), or as
    its outcome says (pending when not awaited or not decided in time). `records` is null, not
    short, when a decided input's count was let go by log retention (its outcome's `pruned`)."""
    reasons, pending, records, known = [], 0, 0, True
    for n, input_id in enumerate(ids):
        reason = refusals.get(n)
        outcome = outcomes.get(input_id) if input_id is not None else None
        if reason is None and (outcome is None or outcome["status"] == "pending"):
            pending += input_id is not None
            continue
        if outcome is not None:
            records += outcome["records"] or 0
            known = known and not outcome.get("pruned")
            reason = outcome["reason"]
        if reason is not None:
            reasons.append({"index": n, "reason": reason})
    body = {"accepted": len(ids) - len(reasons), "rejected": len(reasons), "reasons": reasons,
            "records": records if awaited and known else None, "refused": [r["reason"] for r in reasons],
            "input_ids": ids, "pending": pending}
    if single and reasons:
        body["detail"] = reasons[0]["reason"]
    return body


_INTAKE_ANSWERS: dict[int | str, dict[str, Any]] = {
    422: {"model": IntakeAnswer | QueryProblem,
          "description": "refused: the reason is in `detail` and `reasons` (a bad query parameter, such "
                         "as wait_s: `detail` lists the problems, as on every route)"},
    413: {"description": "an accepted value too large for one message; nothing sent"}}


def intake_routes(face: Face, auth: Auth, io: Intake | None = None) -> APIRouter:
    io = io or Intake(face)
    router = APIRouter(tags=["intake"], responses=AUTH_ANSWERS)
    ingest, act, read = Depends(auth.needs(INGEST)), Depends(auth.needs(ACT)), Depends(auth.needs(READ))

    @router.post("/alarms", status_code=202, response_model=IntakeAnswer, openapi_extra=ALARMS_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_alarms(request: Request, wait_s: Wait = 0, who: Principal = ingest) -> JSONResponse:
        """One normalized alarm (CONTRACT §2) or a list (at most 1,000); a list is answered 202
        with the outcome of each item. Alarms are the province's: not a city operator's."""
        check(who, INGEST, None, "alarms")
        async with io.slots.slot():          # held while the handler decodes and holds the body
            body = await io.json_body(request, "alarm")
            listed = isinstance(body, list)
            batch = _Batch("alarm")
            for i, item in enumerate(body if listed else [body]):
                alarm = alarm_from_dict(item, f"alarms[{i}]" if listed else "alarm")
                shards, reason = io.check(alarm, route=wait_s > 0)
                if reason is not None and not listed:
                    raise await io.refuse("alarm", reason, item)
                if reason is not None:
                    batch.refuse(io.dead_letter(reason, item), reason)
                else:
                    batch.take(io.message("alarm", ALARMS, item, alarm.resource_id), shards)
            del body
            ids = await io.publish(batch)
            await io.audit(who, "POST /alarms", ids)
        return await io.answer(batch, ids, wait_s, single=not listed)

    @router.post("/alarms/import", status_code=202, response_model=IntakeAnswer, openapi_extra=IMPORT_BODY,
                 responses=_INTAKE_ANSWERS)
    async def import_rows(request: Request, who: Principal = ingest) -> JSONResponse:
        """Rows of an NMS alarm export (`faultline import FILE`): each row is checked with the
        named export mapping; an accepted row is published unchanged to
        faultline.alarms.raw.export, where ingest normalizes it like any feed (refused rows are
        dead-lettered with the reason). At most 1,000 rows; `input_ids` are the raw messages'."""
        check(who, INGEST, None, "alarms")
        return await io.export_rows(request, who)

    @router.post("/complaints", status_code=202, response_model=IntakeAnswer, openapi_extra=COMPLAINT_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_complaint(request: Request, wait_s: Wait = 0, who: Principal = ingest) -> JSONResponse:
        """A complaint (CONTRACT §3); the wrapped form {"kind": "complaint", "complaint": {...}} also.
        A city operator's token posts its city's only."""
        async with io.slots.slot():
            body = await io.json_body(request, "complaint")
            if isinstance(body, dict) and body.get("kind") == "complaint" and "complaint" in body:
                body = body["complaint"]
            complaint = complaint_from_dict(body)
            shards, reason = io.check(complaint)
            if reason is not None:
                raise await io.refuse("complaint", reason, body)
            io.may_complain(who, complaint)
            batch = _Batch("complaint")
            batch.take(io.message("complaint", ACTIONS, {"kind": "complaint", "complaint": body},
                                  complaint.city), shards)
            ids = await io.publish(batch)
            await io.audit(who, "POST /complaints", ids)
        return await io.answer(batch, ids, wait_s, single=True)

    @router.post("/actions", status_code=202, response_model=IntakeAnswer, openapi_extra=ACTION_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_action(request: Request, wait_s: Wait = 0, who: Principal = act) -> JSONResponse:
        """An operator action: confirm, attribution, ack, resolve or escalate (CONTRACT §3, without
        `at`). Whether the rules take it (CL-4) is its outcome: `wait_s` to wait for it. A city
        operator's token acts on its city's faults only."""
        async with io.slots.slot():
            body = await io.json_body(request, "action")
            reason = action_refusal(body)
            if reason is not None:
                raise await io.refuse("action", reason, body)
            kind = body["kind"]
            action = action_from_dict(kind, body)
            await io.may_act(who, action)
            shards, reason = io.check(action)
            if reason is not None:
                raise await io.refuse(kind, reason, body)
            batch = _Batch(kind)
            batch.take(io.message(kind, ACTIONS, {k: v for k, v in body.items() if k != "at"}, None), shards)
            ids = await io.publish(batch)
            await io.audit(who, "POST /actions", ids)
        return await io.answer(batch, ids, wait_s, single=True)

    @router.get("/inputs/{input_id}", response_model=InputOutcome,
                responses={404: {"description": "not the id of an input"}})
    async def get_input(input_id: str, wait_s: Wait = 0, who: Principal = read) -> JSONResponse:
        """What became of an input intake published (its id from `input_ids`): pending, accepted
        (with the number of decision records it made) or refused (with the reason, CL-4);
        waits up to `wait_s` seconds while it is pending. Once log retention has let go of the
        entries that handled it, the status still holds; `records` may then be null (`pruned`)."""
        if not parse_input_id(input_id):
            raise HTTPException(404, "not an input id: expected topic:partition:offset@timestamp_ms")
        outcome = (await io.outcomes.wait({input_id: None}, wait_s))[input_id]
        return JSONResponse(outcome)

    return router
