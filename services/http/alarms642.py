"""Alarms as TMF642 v4 Alarm Management (issue 10), at the official base path
/tmf-api/alarm/v4/ and at the alias /tmf-api/alarmManagement/v4/ (CONTRACT §4).

- POST alarm: through ingest exactly like a feed. The body is read by the same normalizer the
  ingest stage runs (alarm_ingest.raw, format tmf642), so one it would refuse is refused here
  at once (400, kept on faultline.deadletter); an accepted one is published as it came (with
  the server's id and alarmReportingTime when it had none) to faultline.alarms.raw.tmf642,
  where ingest normalizes, deduplicates and dead-letters it like any other source. 201 with
  the alarm as it will be kept. `id` is `<sourceSystemId>:<alarm id>` (strings; v4 types it
  as an integer): the read model keys alarms by source and id.
- GET list (filters, paging) and GET one: the read model's `alarms`. DELETE answers 405:
  alarms are kept (留痕); an operator clears one instead.
- PATCH: `ackState` (acknowledged / unacknowledged, with ackUserId, ackSystemId), `comment`
  (appended), and clearing (`state` or `perceivedSeverity` = cleared, clearUserId). A clear
  is a clearing alarm published to faultline.alarms like any feed's, so the rules see it (a
  circuit may come back, a fault end); acknowledgement and comments are the operators' own
  bookkeeping, written at once. A cleared alarm's severity can no longer be set (409).
- Tasks ackAlarms, unAckAlarms, clearAlarms, commentAlarms: POST {alarmPattern: [...]} → 201
  with the matched alarms (ackedAlarm / unAckedAlarm / clearedAlarm / commentedAlarm);
  a pattern matches when every attribute it gives matches (id, externalAlarmId,
  sourceSystemId, alarmedObject.id, probableCause, perceivedSeverity, state, ackState).
  groupAlarms and unGroupAlarms answer 405: faultline groups alarms itself, by correlation
  (RULES.md §2–3). Tasks are not kept as resources (no GET of past tasks): each one's
  changes are in the audit trail.

Alarms are the province's: a city operator's token may not read or change them (403).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import and_, false, func, or_, select, update
from starlette.convertors import Convertor, register_url_convertor

from alarm_ingest.raw import normalize
from services.access import ACT, INGEST, READ, Principal
from services.http import examples
from services.http.auth import AUTH_ANSWERS, Auth, check
from services.http.examples import answer as example_answer
from services.http.guard import Limit, Offset, decode_json
from services.http.intake import Intake, _Batch
from services.http.models import request_schema
from services.http.tmf import (
    LIST_HEADERS,
    Fields,
    bad,
    base_url,
    comparisons,
    list_answer,
    one,
    query_filters,
    select_fields,
    time_filters,
    tmf_answers,
)
from shared.clock import fmt_time
from shared.db.models import alarms
from shared.model import Rejected
from shared.topics import ALARMS, raw_alarms_topic


class _AnyId(Convertor[str]):
    """An alarm id is `<source>:<the feed's id>` and a feed's id may hold any character, a `/`
    or a line break included (starlette's `path` stops at a line break, which made such an id
    a 404 on DELETE and so an undocumented answer)."""
    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("alarm_id", _AnyId())

BASES = ("/tmf-api/alarm/v4", "/tmf-api/alarmManagement/v4")
MAX_MATCHED = 1000
MAX_COMMENTS = 100
FILTERS = ("id", "externalAlarmId", "sourceSystemId", "alarmedObject.id", "probableCause",
           "perceivedSeverity", "state", "ackState",
           *time_filters(("alarmReportingTime", "alarmChangedTime")))
PATTERN_KEYS = ("id", "externalAlarmId", "sourceSystemId", "alarmedObject.id", "probableCause",
                "perceivedSeverity", "state", "ackState")
PATCHABLE = ("ackState", "ackUserId", "ackSystemId", "comment", "state", "perceivedSeverity", "clearUserId",
             "clearSystemId")
TASKS = {"ackAlarms": "ackedAlarm", "unAckAlarms": "unAckedAlarm", "clearAlarms": "clearedAlarm",
         "commentAlarms": "commentedAlarm"}

ALARM_EXAMPLE = {
    "alarmType": "communicationsAlarm", "perceivedSeverity": "critical", "probableCause": "LOS",
    "specificProblem": "R_LOS", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "sourceSystemId": "gd-otn-nms-1",
    "state": "raised", "alarmRaisedTime": "2026-11-25T10:00:00+08:00"}
_CREATE_BODY = request_schema({"type": "object", "description": "a TMF642 v4 Alarm (Alarm_Create): "
                               "alarmType, perceivedSeverity, probableCause, alarmedObject, sourceSystemId, "
                               "state, alarmRaisedTime (or eventTime)", "examples": [ALARM_EXAMPLE]})
_PATCH_BODY = request_schema({"type": "object", "description": "merge patch: ackState, ackUserId, "
                              "ackSystemId, comment (appended), state/perceivedSeverity = cleared, "
                              "clearUserId",
                              "examples": [{"ackState": "acknowledged", "ackUserId": "gz-noc-li"},
                                           {"state": "cleared", "clearUserId": "gz-noc-li"},
                                           {"comment": [{"comment": "fibre cut, splicing"}]}]})
_TASK_BODY = request_schema({"type": "object", "description": "{alarmPattern: [partial Alarm, …]} "
                             "(+ ackUserId, clearUserId, comment for the task)",
                             "examples": [{"alarmPattern": [{"alarmedObject": {"id": "GZ-OTN-A:1-3-1"}}],
                                           "ackUserId": "gz-noc-li"}]})


def alarm_ref(source: str, alarm_id: str) -> str:
    return f"{source}:{alarm_id}"


def tmf_alarm(row: dict, base: str, root: str) -> dict:
    """A read-model `alarms` row as a TMF642 Alarm."""
    ref = alarm_ref(row["source"], row["alarm_id"])
    cleared = row["state"] == "cleared"
    try:
        comments = orjson.loads(row.get("comments") or "[]")
    except orjson.JSONDecodeError:
        comments = []
    return {
        "id": ref, "href": f"{base}{root}/alarm/{quote(ref, safe='')}", "@type": "Alarm",
        "externalAlarmId": row["alarm_id"], "alarmType": None,
        "perceivedSeverity": "cleared" if cleared else row["severity"],
        "probableCause": row["probable_cause"], "specificProblem": row["text"],
        "alarmedObjectType": "Resource", "alarmedObject": {"id": row["resource_id"]},
        "sourceSystemId": row["source"], "reportingSystemId": row["source"],
        "state": "cleared" if cleared else ("updated" if (row.get("count") or 0) > 1 else "raised"),
        "ackState": row.get("ack_state") or "unacknowledged", "ackUserId": row.get("ack_user_id"),
        "alarmRaisedTime": None if cleared else row["event_time"],
        "alarmReportingTime": row["first_seen_at"], "alarmChangedTime": row["last_seen_at"],
        "alarmClearedTime": row["event_time"] if cleared else None, "clearUserId": row.get("clear_user_id"),
        "comment": comments if isinstance(comments, list) else [],
        "alarmDetails": "unmapped: no circuit uses this resource" if row.get("unmapped") else None,
    }


_COLUMN = {"externalAlarmId": "alarm_id", "sourceSystemId": "source", "alarmedObject.id": "resource_id",
           "probableCause": "probable_cause", "ackState": "ack_state"}


def _condition(name: str, value: str) -> Any:
    """One attribute = value, as SQL on `alarms`."""
    c = alarms.c
    if name == "id":
        source, _, alarm_id = value.partition(":")
        return and_(c.source == source, c.alarm_id == alarm_id)
    if name == "state":
        return c.state == "cleared" if value == "cleared" else c.state != "cleared"
    if name == "perceivedSeverity":
        return c.state == "cleared" if value == "cleared" else and_(c.state != "cleared", c.severity == value)
    return c[_COLUMN[name]] == value


def _pattern(pattern: object, where: str) -> Any:
    """An alarmPattern item (a partial Alarm) as SQL; 400 naming what cannot be matched."""
    if type(pattern) is not dict or not pattern:
        raise bad(f"{where}: expected a non-empty object (a partial Alarm)")
    flat: dict[str, object] = {}
    for key, value in pattern.items():
        if key == "alarmedObject" and type(value) is dict and set(value) <= {"id", "href", "@referredType"}:
            if "id" in value:
                flat["alarmedObject.id"] = value["id"]
            continue
        flat[key] = value
    conditions = []
    for key, value in flat.items():
        if key not in PATTERN_KEYS:
            raise bad(f"{where}.{key[:60]}: cannot match on it; match on {', '.join(PATTERN_KEYS)}")
        if type(value) is not str:
            raise bad(f"{where}.{key}: expected a string")
        conditions.append(_condition(key, value))
    return and_(*conditions)


class AlarmDesk:
    def __init__(self, io: Intake) -> None:
        self.io, self.db, self.face = io, io.face.db, io.face

    def now(self) -> str:
        return fmt_time(self.face.now_ms() / 1000)

    async def rows(self, where: Any, offset: int = 0, limit: int = MAX_MATCHED) -> tuple[list[dict], int]:
        query = select(alarms).where(where).order_by(alarms.c.first_seen_at.nulls_last(), alarms.c.source,
                                                      alarms.c.alarm_id)
        async with self.db.connect() as conn:
            rows = [{str(k): v for k, v in r._mapping.items()}
                    for r in await conn.execute(query.offset(offset).limit(limit))]
            total = (await conn.execute(select(func.count()).select_from(alarms).where(where))).scalar_one()
        return rows, total

    async def one_row(self, ref: str) -> dict:
        rows, _ = await self.rows(_condition("id", ref), limit=1)
        if not rows:
            raise HTTPException(404, f"no alarm {ref[:120]} (ids are <sourceSystemId>:<alarm id>)")
        return rows[0]

    async def create(self, request: Request, root: str, who: Principal) -> Response:
        io = self.io
        async with io.slots.slot():
            doc = await self._json(request, "tmf642")
            if type(doc) is dict:
                doc = dict(doc)
                if "id" not in doc:
                    external = doc.get("externalAlarmId")
                    made = f"A-{uuid.uuid4().hex[:20]}"
                    doc["id"] = external if type(external) is str and external else made
                doc.setdefault("alarmReportingTime", self.now())
            alarm = normalize("tmf642", doc, "alarm")
            if isinstance(alarm, Rejected):
                await io.refuse("tmf642", alarm.reason, doc)
                raise bad(alarm.reason)
            batch = _Batch("tmf642")
            batch.take(io.message("tmf642", raw_alarms_topic("tmf642"), doc, alarm.resource_id), None)
            ids = await io.publish(batch)
            await io.audit(who, f"POST {root}/alarm", ids)
        row = {"source": alarm.source, "alarm_id": alarm.alarm_id, "resource_id": alarm.resource_id,
               "severity": alarm.severity, "state": alarm.state, "probable_cause": alarm.probable_cause,
               "text": alarm.text, "event_time": doc.get("eventTime") or doc.get("alarmRaisedTime")
               or doc.get("alarmClearedTime"), "first_seen_at": doc["alarmReportingTime"],
               "last_seen_at": doc["alarmReportingTime"], "count": 1}
        body = tmf_alarm(row, base_url(request), root)
        body["alarmType"] = doc.get("alarmType")
        return one(body, 201, {"Location": body["href"], "X-Input-Ids": ",".join(i for i in ids if i)})

    async def _json(self, request: Request, kind: str) -> Any:
        body, reason = decode_json(await request.body())
        if reason is not None:
            await self.io.refuse(kind, reason, body)
            raise bad(reason)
        return body

    async def page(self, request: Request, root: str, offset: int, limit: int,
                   fields: str | None) -> Response:
        got = query_filters(request, FILTERS)
        where: list[Any] = []
        for name, values in got.items():
            base, _, _op = name.partition(".")
            if base in ("alarmReportingTime", "alarmChangedTime"):
                continue
            where.append(or_(false(), *(_condition(name, v) for v in values)))
        for name, column in (("alarmReportingTime", alarms.c.first_seen_at),
                             ("alarmChangedTime", alarms.c.last_seen_at)):
            for op, text in comparisons(got, name):
                where.append({"eq": column == text, "gt": column > text, "gte": column >= text,
                              "lt": column < text, "lte": column <= text}[op])
        rows, total = await self.rows(and_(*where) if where else and_(True), offset, limit)
        base = base_url(request)
        return list_answer([select_fields(tmf_alarm(r, base, root), fields) for r in rows], total, offset)

    async def change(self, rows: list[dict], who: Principal, what: dict, action: str) -> list[dict]:
        """Apply an ack, unack, clear or comment to these alarms: the bookkeeping at once, a clear
        also published as a clearing alarm for the rules. The rows as they now are."""
        now = self.now()
        clears = []
        async with self.db.begin() as conn:
            for row in rows:
                values: dict[str, Any] = {}
                if "ackState" in what:
                    values.update(ack_state=what["ackState"], ack_user_id=what.get("ackUserId") or who.name,
                                  ack_at=now)
                if what.get("comment"):
                    kept = orjson.loads(row.get("comments") or "[]")
                    kept = (kept if isinstance(kept, list) else []) + what["comment"]
                    values["comments"] = orjson.dumps(kept[-MAX_COMMENTS:]).decode()
                if what.get("clear") and row["state"] != "cleared":
                    values["clear_user_id"] = what.get("clearUserId") or who.name
                    clears.append(row)
                if values:
                    key = (alarms.c.source == row["source"], alarms.c.alarm_id == row["alarm_id"])
                    await conn.execute(update(alarms).where(*key).values(**values))
                    row.update(values)
            await self.io.trail.record_in(conn, who, action, len(clears), {
                "alarms": [alarm_ref(r["source"], r["alarm_id"]) for r in rows][:MAX_MATCHED],
                "change": {k: v for k, v in what.items() if k != "comment"},
                "comments_added": len(what.get("comment") or ())})
        if clears:
            await self._publish_clears(clears)
            for row in clears:
                row.update(state="cleared", event_time=now)
        return rows

    async def _publish_clears(self, rows: list[dict]) -> None:
        """A clearing alarm per row, to faultline.alarms as /alarms would send it."""
        io, now = self.io, self.now()
        batch = _Batch("alarm")
        for row in rows:
            alarm = {"source": row["source"], "alarm_id": row["alarm_id"], "resource_id": row["resource_id"],
                     "probable_cause": row["probable_cause"] or "OTHER",
                     "severity": row["severity"] or "indeterminate",
                     "state": "cleared", "event_time": now, "text": "cleared by an operator (TMF642)"}
            batch.take(io.message("alarm", ALARMS, alarm, row["resource_id"]), None)
        await io.publish(batch)


    async def task(self, request: Request, root: str, task: str, answer: str, who: Principal) -> Response:
        body = await self._json(request, "tmf642")
        if type(body) is not dict or type(body.get("alarmPattern")) is not list or not body["alarmPattern"]:
            raise bad(f"{task}: expected {{alarmPattern: [partial Alarm, …]}}")
        where = or_(*(_pattern(p, f"alarmPattern[{i}]") for i, p in enumerate(body["alarmPattern"][:50])))
        what = _read_change(body, task, task=task)
        what.update({"ackAlarms": {"ackState": "acknowledged"}, "unAckAlarms": {"ackState": "unacknowledged"},
                     "clearAlarms": {"clear": True}, "commentAlarms": {}}[task])
        if task == "commentAlarms" and not what.get("comment"):
            raise bad("commentAlarms: expected comment [{comment: text}]")
        rows, _total = await self.rows(where)
        rows = await self.change(rows, who, what, f"POST {root}/{task}")
        base = base_url(request)
        matched = [tmf_alarm(r, base, root) for r in rows]
        return one({"@type": task[0].upper() + task[1:-1], "state": "done",
                    "alarmPattern": body["alarmPattern"],
                    answer: [{"id": a["id"], "href": a["href"]} for a in matched]}, 201)


def _read_change(patch: Any, where: str, *, task: str | None = None) -> dict:
    """What a PATCH (or a task's own attributes) asks: {ackState, ackUserId, comment, clear,
    clearUserId}; 400 naming what is wrong."""
    if type(patch) is not dict:
        raise bad(f"{where}: expected a JSON object")
    what: dict[str, Any] = {}
    for key, value in patch.items():
        if task is not None and key in ("alarmPattern", "@type", "id", "href", "state"):
            continue
        if key not in PATCHABLE:
            raise bad(f"{where}.{key[:60]}: cannot be changed here; changeable: {', '.join(PATCHABLE)}")
        if key in ("ackUserId", "ackSystemId", "clearUserId", "clearSystemId"):
            if value is not None and (type(value) is not str or len(value) > 255 or "\x00" in value):
                raise bad(f"{where}.{key}: expected a name of at most 255 characters")
            what[key] = value
        elif key == "ackState":
            if value not in ("acknowledged", "unacknowledged"):
                raise bad(f"{where}.ackState: expected acknowledged or unacknowledged")
            what["ackState"] = value
        elif key == "comment":
            what["comment"] = _comments(value, f"{where}.comment")
        elif key in ("state", "perceivedSeverity"):
            if value != "cleared":
                raise bad(f"{where}.{key}: only cleared can be set (an alarm's severity and state come "
                          "from its source)")
            what["clear"] = True
    return what


def _comments(value: Any, where: str) -> list[dict]:
    if type(value) is not list or len(value) > 20:
        raise bad(f"{where}: expected a list of at most 20 comments")
    out = []
    for i, item in enumerate(value):
        text = item.get("comment") if type(item) is dict else None
        if type(text) is not str or not text.strip() or len(text) > 4000 or "\x00" in text:
            raise bad(f"{where}[{i}].comment: expected text of 1 to 4000 characters")
        user = item.get("userId")
        if user is not None and (type(user) is not str or len(user) > 255):
            raise bad(f"{where}[{i}].userId: expected a name of at most 255 characters")
        out.append({"comment": text, "userId": user, "time": None})
    return out


def alarm_routes(io: Intake, auth: Auth) -> APIRouter:
    desk = AlarmDesk(io)
    router = APIRouter(responses=AUTH_ANSWERS)
    read, act, ingest = Depends(auth.needs(READ)), Depends(auth.needs(ACT)), Depends(auth.needs(INGEST))

    def province(who: Principal, permission: str) -> None:
        check(who, permission, "the province", "alarms (they are the province's)")

    for root in BASES:
        tags = ["TMF642 alarms" + ("" if root == BASES[0] else " (alias path)")]

        def routes(root: str = root, tags: list[str] = tags) -> None:
            @router.post(root + "/alarm", status_code=201, tags=tags, openapi_extra=_CREATE_BODY,
                         responses={201: {"description": "taken: the alarm as it will be kept (Location)",
                                          "content": {"application/json": {"example": {
                                              **ALARM_EXAMPLE, "id": "gd-otn-nms-1:884213"}}}},
                                    **tmf_answers(400)})
            async def create_alarm(request: Request, who: Principal = ingest) -> Response:
                """Create an alarm: normalized, deduplicated and dead-lettered by ingest like any
                feed's (the body is refused at once, 400, when ingest would refuse it)."""
                province(who, INGEST)
                return await desk.create(request, root, who)

            @router.get(root + "/alarm", tags=tags,
                        responses={200: {**LIST_HEADERS[200], **example_answer([examples.TMF_ALARM])},
                                   **tmf_answers(400)})
            async def list_alarms(
                    request: Request, limit: Limit = 1000, offset: Offset = 0, fields: Fields = None,
                    state: Annotated[str | None, Query(description="raised | updated | cleared")] = None,
                    perceivedSeverity: Annotated[str | None, Query()] = None,
                    ackState: Annotated[str | None, Query()] = None,
                    sourceSystemId: Annotated[str | None, Query()] = None,
                    alarmedObject_id: Annotated[str | None, Query(alias="alarmedObject.id")] = None,
                    who: Principal = read) -> Response:
                """Alarms (the read model's), by first report; TMF630 filters on id,
                externalAlarmId, sourceSystemId, alarmedObject.id, probableCause, perceivedSeverity,
                state, ackState (OR by `,`), alarmReportingTime and alarmChangedTime (.gt/.gte/.lt/
                .lte); an unknown attribute is 400. X-Total-Count, X-Result-Count."""
                province(who, READ)
                return await desk.page(request, root, offset, limit, fields)

            @router.get(root + "/alarm/{alarm_id:alarm_id}", tags=tags,
                        responses={200: example_answer(examples.TMF_ALARM), **tmf_answers(404)})
            async def get_alarm(request: Request, alarm_id: str, fields: Fields = None,
                                who: Principal = read) -> Response:
                """One alarm by id (`<sourceSystemId>:<alarm id>`)."""
                province(who, READ)
                return one(select_fields(tmf_alarm(await desk.one_row(alarm_id), base_url(request), root),
                                         fields))

            @router.patch(root + "/alarm/{alarm_id:alarm_id}", tags=tags, openapi_extra=_PATCH_BODY,
                          responses=tmf_answers(400, 404, 409))
            async def patch_alarm(request: Request, alarm_id: str, who: Principal = act) -> Response:
                """Acknowledge or unacknowledge, comment, or clear one alarm (a clear reaches the
                rules as a clearing alarm). Setting a cleared alarm's severity again is 409."""
                province(who, ACT)
                row = await desk.one_row(alarm_id)
                body = await desk._json(request, "tmf642")
                if row["state"] == "cleared" and type(body) is dict \
                        and body.get("perceivedSeverity") not in (None, "cleared"):
                    raise HTTPException(409, f"alarm {alarm_id}: cleared; its severity can no longer be set")
                what = _read_change(body, "alarm")
                rows = await desk.change([row], who, what, f"PATCH {root}/alarm/{{id}}")
                return one(tmf_alarm(rows[0], base_url(request), root))

            for task, answer in TASKS.items():
                def task_route(task: str = task, answer: str = answer) -> None:
                    @router.post(root + "/" + task, status_code=201, tags=tags, openapi_extra=_TASK_BODY,
                                 responses=tmf_answers(400), name=f"{task} ({root})")
                    async def run_task(request: Request, who: Principal = act) -> Response:
                        """Apply the task to every alarm matching any alarmPattern item (at most 1000)."""
                        province(who, ACT)
                        return await desk.task(request, root, task, answer, who)
                task_route()

            _not_offered(router, root, tags, read)

        routes()
    return router


def _not_offered(router: APIRouter, root: str, tags: list[str], read: Any) -> None:
    """The TMF642 operations faultline answers 405, documented: DELETE (alarms are kept) and the
    grouping tasks (correlation groups alarms)."""
    @router.delete(root + "/alarm/{alarm_id:alarm_id}", status_code=405, tags=tags,
                   responses=tmf_answers(405))
    async def delete_alarm(alarm_id: str, who: Principal = read) -> Response:
        """Not offered: alarms are kept (留痕); clear one instead (PATCH state cleared)."""
        raise HTTPException(405, "alarms are kept: clear it instead (PATCH state cleared)",
                            headers={"Allow": "GET, PATCH"})

    for task in ("groupAlarms", "unGroupAlarms"):
        def not_offered(task: str = task) -> None:
            @router.post(root + "/" + task, status_code=405, tags=tags, responses=tmf_answers(405),
                         name=f"{task} ({root})")
            async def group(who: Principal = read) -> Response:
                """Not offered: faultline groups alarms itself, by correlation (RULES.md §2–3)."""
                raise HTTPException(405, f"{task}: faultline groups alarms by correlation "
                                         "(RULES.md §2-3); see GET /faults", headers={"Allow": ""})
        not_offered()
