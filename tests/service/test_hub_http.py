"""The TMF hub routes (services/http/hub_routes.py) on an app of their own, with the real bearer
tokens of services/http/auth.py on a migrated SQLite file: register (201 + Location), read,
delete (204), 404s, refused callbacks and queries, a city operator's listener limited to its
city; and the pure checks of services/hub.py (query parsing and matching, callback URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tokens import bearer

from services.access import AuditTrail
from services.http.auth import Auth
from services.http.hub_routes import hub_routes
from services.hub import Filter, Hub, backoff_s, callback_problem, parse_query
from shared.db.migrate import upgrade_async
from shared.db.models import hub_listeners

CALLBACK = "https://noc.example.com/tmf621/listener"
TMF_BASE = "/tmf-api/troubleTicket/v4"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    await upgrade_async(url)
    eng = create_async_engine(url)
    yield eng
    await eng.dispose()


@pytest.fixture
def app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    app.include_router(hub_routes(Hub(engine), Auth(engine)))
    app.include_router(hub_routes(Hub(engine), Auth(engine)), prefix=TMF_BASE)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c


async def test_register_read_and_delete_a_listener(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    reader = await bearer(engine, "read-only")
    query = "eventType=TroubleTicketCreateEvent,TroubleTicketResolvedEvent&city=GZ"
    made = await client.post("/hub", json={"callback": CALLBACK, "query": query}, headers=reader)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body == {"id": body["id"], "callback": CALLBACK, "query": query}
    assert made.headers["location"] == f"/hub/{body['id']}"

    got = await client.get(made.headers["location"], headers=reader)
    assert got.status_code == 200
    assert got.json() == {"id": body["id"], "callback": CALLBACK, "query": query, "failing_since": None,
                          "disabled_at": None, "disabled_reason": None, "pending": 0, "last_error": None}

    gone = await client.delete(f"/hub/{body['id']}", headers=reader)
    assert (gone.status_code, gone.content) == (204, b"")
    assert (await client.get(f"/hub/{body['id']}", headers=reader)).status_code == 404
    assert (await client.delete(f"/hub/{body['id']}", headers=reader)).status_code == 404

    trail = await AuditTrail(engine).after(0, 10)
    assert [(c["action"], c["detail"]) for c in trail] == [
        ("POST /hub", {"listener": body["id"], "host": "noc.example.com"}),
        ("DELETE /hub", {"listener": body["id"], "host": "noc.example.com"})]


async def test_under_the_tmf_base_path_location_names_it(client: httpx.AsyncClient,
                                                         engine: AsyncEngine) -> None:
    admin = await bearer(engine, "admin")
    made = await client.post(f"{TMF_BASE}/hub", json={"callback": CALLBACK}, headers=admin)
    assert made.status_code == 201
    assert made.json()["query"] == ""
    assert made.headers["location"] == f"{TMF_BASE}/hub/{made.json()['id']}"
    assert (await client.get(made.headers["location"], headers=admin)).status_code == 200


async def test_unknown_ids_are_404(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    admin = await bearer(engine, "admin")
    for path in ("/hub/999", "/hub/abc", "/hub/0", "/hub/-1", "/hub/99999999999999999999999"):
        assert (await client.get(path, headers=admin)).status_code == 404, path
        assert (await client.delete(path, headers=admin)).status_code == 404, path


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"callback": "ftp://noc.example.com/x"}, "callback", "only http and https"),
    ({"callback": "https://user:pw@noc.example.com/x"}, "callback", "credentials"),
    ({"callback": "https:///no-host"}, "callback", "no host"),
    ({"callback": "https://noc.example.com/a b"}, "callback", "space"),
    ({"callback": "noc.example.com"}, "callback", "scheme"),
    ({"callback": CALLBACK, "query": "severity=critical"}, "query", "'severity'"),
    ({"callback": CALLBACK, "query": "eventType=TroubleTicketExplodedEvent"}, "query",
     "TroubleTicketExplodedEvent"),
    ({"callback": CALLBACK, "query": "event.order.status=x"}, "query", "'order'"),
    ({"callback": CALLBACK, "query": "city="}, "query", "empty"),
])
async def test_a_bad_callback_or_query_is_refused_naming_it(client: httpx.AsyncClient, engine: AsyncEngine,
                                                            body: dict, field: str, words: str) -> None:
    reader = await bearer(engine, "read-only")
    answer = await client.post("/hub", json=body, headers=reader)
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"{field}: ") and words in detail
    assert "pw@" not in detail
    async with engine.connect() as conn:
        assert (await conn.execute(select(hub_listeners))).all() == []


@pytest.mark.parametrize("body", [{}, {"query": ""}, {"callback": 7},
                                  {"callback": "https://x.example/" + "a" * 2048},
                                  {"callback": CALLBACK, "query": ["a"]}])
async def test_a_body_of_the_wrong_shape_is_refused_naming_the_field(client: httpx.AsyncClient,
                                                                     engine: AsyncEngine, body: dict) -> None:
    reader = await bearer(engine, "read-only")
    answer = await client.post("/hub", json=body, headers=reader)
    assert answer.status_code == 422
    assert any(p["loc"][:2] in (["body", "callback"], ["body", "query"]) for p in answer.json()["detail"])


async def test_a_token_is_needed_and_one_that_may_read(client: httpx.AsyncClient,
                                                       engine: AsyncEngine) -> None:
    assert (await client.post("/hub", json={"callback": CALLBACK})).status_code == 401
    ingest = await bearer(engine, "ingest-only")
    assert (await client.post("/hub", json={"callback": CALLBACK}, headers=ingest)).status_code == 403
    assert (await client.get("/hub/1", headers=ingest)).status_code == 403


async def test_a_city_operators_listener_is_limited_to_its_city(client: httpx.AsyncClient,
                                                                 engine: AsyncEngine) -> None:
    gz = await bearer(engine, "city-operator", "GZ")
    for query in ("city=FS", "city=GZ,FS", "queue=city.FS.monitoring", "queue=prov.netservice"):
        answer = await client.post("/hub", json={"callback": CALLBACK, "query": query}, headers=gz)
        assert answer.status_code == 403, query
        assert "GZ's" in answer.json()["detail"]
    expected = {"": "city=GZ",
                "eventType=TroubleTicketCreateEvent": "eventType=TroubleTicketCreateEvent&city=GZ",
                "city=GZ": "city=GZ", "queue=city.GZ.monitoring": "queue=city.GZ.monitoring&city=GZ"}
    for query, stored in expected.items():
        answer = await client.post("/hub", json={"callback": CALLBACK, "query": query}, headers=gz)
        assert answer.status_code == 201, answer.text
        assert answer.json()["query"] == stored
        assert parse_query(stored).cities == frozenset({"GZ"})


async def test_a_listener_is_seen_and_deleted_by_its_token_or_an_admin(client: httpx.AsyncClient,
                                                                       engine: AsyncEngine) -> None:
    mine, other, admin = (await bearer(engine, "read-only"), await bearer(engine, "province-operator"),
                          await bearer(engine, "admin"))
    made = (await client.post("/hub", json={"callback": CALLBACK}, headers=mine)).json()
    assert (await client.get(f"/hub/{made['id']}", headers=other)).status_code == 403
    assert (await client.delete(f"/hub/{made['id']}", headers=other)).status_code == 403
    assert (await client.get(f"/hub/{made['id']}", headers=admin)).status_code == 200
    assert (await client.delete(f"/hub/{made['id']}", headers=admin)).status_code == 204


async def test_the_operations_are_documented_with_examples(app: FastAPI) -> None:
    doc = app.openapi()
    post = doc["paths"]["/hub"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert all("callback" in e["value"] for e in examples.values())
    assert {"201", "400", "401", "403"} <= set(post["responses"])
    assert "Location" in post["responses"]["201"]["headers"]
    assert set(doc["paths"]["/hub/{id}"]) == {"get", "delete"}
    assert "204" in doc["paths"]["/hub/{id}"]["delete"]["responses"]
    orjson.dumps(doc)


# ---------------------------------------------------------------------- the pure checks

def envelope(event_type: str = "TroubleTicketCreateEvent", **ticket) -> dict:
    return {"eventId": "e", "eventTime": "t", "eventType": event_type,
            "event": {"troubleTicket": {"id": "W-1", "status": "resolved", "channel": {"name": "q"},
                                        "relatedEntity": [{"id": "F-1"}, {"id": "F-2"}], **ticket}}}


def test_a_query_filters_by_event_type_queue_city_and_attributes() -> None:
    flt = parse_query("eventType=TroubleTicketCreateEvent,TroubleTicketResolvedEvent"
                      "&event.troubleTicket.status=resolved&queue=city.GZ.monitoring&city=GZ")
    assert isinstance(flt, Filter)
    assert flt.matches(envelope(), "city.GZ.monitoring", "GZ")
    assert flt.matches(envelope("TroubleTicketResolvedEvent"), "city.GZ.monitoring", "GZ")
    assert not flt.matches(envelope("TroubleTicketStatusChangeEvent"), "city.GZ.monitoring", "GZ")
    assert not flt.matches(envelope(status="acknowledged"), "city.GZ.monitoring", "GZ")
    assert not flt.matches(envelope(), "city.GZ.other", "GZ")
    assert not flt.matches(envelope(), "city.GZ.monitoring", "FS")
    assert not flt.matches(envelope(), None, None)


def test_values_are_ored_keys_anded_and_paths_walk_lists() -> None:
    by_repeat = parse_query("city=GZ&city=FS")
    by_semicolon = parse_query("?city=GZ;FS")
    assert by_repeat == by_semicolon and by_repeat.cities == frozenset({"GZ", "FS"})
    related = parse_query("event.troubleTicket.relatedEntity.id=F-2")
    assert related.matches(envelope()) and not related.matches(envelope(relatedEntity=[]))
    nested = parse_query("event.troubleTicket.channel.name=q&event.troubleTicket.id=W-1")
    assert nested.matches(envelope()) and not nested.matches(envelope(id="W-2"))
    assert parse_query("event.troubleTicket.flag=true").matches(envelope(flag=True))
    assert parse_query("").matches({}) and parse_query(None) == Filter()
    assert parse_query("city=G%5A").cities == frozenset({"GZ"})        # URL-encoded
    assert parse_query("event.troubleTicket.name=a%2Cb").attributes[0][2] == frozenset({"a,b"})


@pytest.mark.parametrize(("query", "words"), [
    ("nonsense", "'nonsense': expected key=value"),
    ("queue=a&bogus.key=1", "unknown query key 'bogus.key'"),
    ("event.troubleTicket=1", "unknown query key 'event.troubleTicket'"),
    ("event.alarm.x-y=1", "unknown query key"),
    ("eventType=Nope", "eventType: unknown event type(s) Nope"),
    ("city=GZ,", "empty"),
    ("q" * 5000, "longer than"),
])
def test_a_bad_query_is_refused_naming_the_key(query: str, words: str) -> None:
    problem = parse_query(query)
    assert isinstance(problem, str) and words in problem, problem


def test_callbacks() -> None:
    assert callback_problem(CALLBACK) is None
    assert callback_problem("http://127.0.0.1:8080/hook?token=x") is None
    assert "2048" in callback_problem("https://x.example/" + "a" * 2048)
    assert callback_problem("https://x.example:99999/") == "not a URL"
    assert callback_problem(None) == callback_problem("") == "expected an http or https URL"
    assert "credentials" in callback_problem("https://token@x.example/")
    assert "control" in callback_problem("https://x.example/\x00")


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    assert [backoff_s(n, 1.0, 300.0, 0.999999) for n in (1, 2, 3)] == pytest.approx([1, 2, 4], rel=1e-5)
    assert backoff_s(1, 1.0, 300.0, 0.0) == 0.5
    assert backoff_s(20, 1.0, 300.0, 0.999999) == pytest.approx(300, rel=1e-5)
    assert backoff_s(10_000, 1.0, 300.0, 0.5) == 225.0
