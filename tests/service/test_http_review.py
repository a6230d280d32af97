"""The HTTP hardening as a reviewer probed it (issue 7 part 4), on the one app in both modes: no
500 from a body within the limit whose record or dead letter would exceed a Kafka message; no
connection slot held by a client that never completes a request head; no body left unread
under any method; bounded decoded bodies; refusals sent whole; `Expect: 100-continue` told
at once; and both modes refusing the same input with the same reason.

"embedded" is `faultline run` (a real services/commands/run.Embedded), "production" is `faultline api`
(services/commands/api.create_api over a RecordingProducer and a migrated SQLite read model);
see service/http_support.py."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from service.http_support import (
    MAX_REQUEST_SIZE,
    MODES,
    RecordingProducer,
    ServerThread,
    asgi_client,
    one_app,
    production_api,
    status_of,
)
from service.support import T0, FakeClock
from services.drivers.dead_letters import MAX_LETTER, MAX_VALUE, dead_letter
from services.http.app import build_ops_app
from services.http.guard import MAX_ALARMS, HttpGuard, HttpLimits, IntakeSlots
from services.http.ops import Ops
from shared.transport.port import Msg

JSON = {"content-type": "application/json"}
MiB = 1024 * 1024
TMF642 = "/tmf-api/alarmManagement/v4/alarm"


def _recv_all(s: socket.socket, until: float) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection before `until` (monotonic)."""
    out = b""
    while time.monotonic() < until:
        s.settimeout(max(0.05, until - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            return out, False
        except ConnectionResetError:
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


# ---------------------------------------------------------------------- 1. Kafka-sized records

async def _api(tmp_path, limits: HttpLimits | None = None):
    api = await production_api(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}", limits)
    return api, asgi_client(api.app, api.headers)


async def test_the_api_dead_letters_any_refused_body_within_the_limit_cut_to_fit_a_message(tmp_path):
    api, http = await _api(tmp_path)
    text = b'{"text":"' + b"b" * (MiB - 11) + b'"}'
    assert len(text) == MiB                                     # at the limit: taken, then refused
    probes = [("/alarms", b"\xff" * 400_000),                   # not JSON; ~1.2 MB once decoded with U+FFFD
              ("/alarms", b"\x01" * 200_000),                   # not JSON; each byte escaped to \u0001
              ("/complaints", text),                            # JSON, refused: no complaint fields
              ("/actions", b'{"kind": "ack", "x": "' + b"\x7f" * (MiB - 30) + b'"}'),
              ("/alarms", b"[" + b"0," * 200_000 + b"0]")]      # a list over the cap, as text
    async with http:
        for path, body in probes:
            resp = await http.post(path, content=body, headers=JSON)
            assert resp.status_code == 422, (path, body[:20], resp.status_code, resp.text[:200])
    await api.engine.dispose()
    sent = [value for topic, value, *_ in api.producer.sent if topic == "faultline.deadletter"]
    assert len(sent) == len(probes) and api.producer.published() == []
    for (_path, body), value in zip(probes, sent, strict=True):
        letter = orjson.loads(value)
        assert len(value) <= MAX_LETTER and letter["stage"] == "api" and letter["reason"]
        assert letter["source"] is None and letter["topic"] is None     # refused before it was published
        assert isinstance(letter["value"], str) and letter["truncated"] > len(letter["value"])
        assert body.decode("utf-8", "replace").startswith(letter["value"][:1000]) or body[:1] == b"{"


@pytest.mark.parametrize("mode", MODES)
async def test_an_accepted_value_too_large_for_a_message_is_413_and_nothing_is_sent(settings, mode):
    tmf = {"id": "T-1", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
           "perceivedSeverity": "critical", "state": "raised", "eventTime": "2026-11-25T10:00:00+08:00"}
    big_tmf = orjson.dumps(tmf | {"alarmDetails": "d" * (MiB - 300)})
    alarm = {"source": "nms", "alarm_id": "1", "resource_id": "GZ-OTN-A:1-3-1", "probable_cause": "LOS",
             "severity": "critical", "state": "raised", "event_time": "2026-11-25T10:00:00+08:00"}
    big_alarm = orjson.dumps(alarm | {"text": "t" * (MiB - 300)})
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        for path, body in ((TMF642, big_tmf), ("/alarms", big_alarm),
                           ("/alarms", orjson.dumps([alarm, alarm | {"text": "t" * (MiB - 400)}]))):
            assert len(body) <= MiB
            resp = await app.client.post(path, content=body, headers=JSON)
            assert resp.status_code == 413, (path, resp.status_code, resp.text[:200])
            assert f"at most {MAX_VALUE}" in resp.json()["detail"]
        assert app.published() == 0 and await app.letters() == []    # not even the list's first alarm
        if app.producer is not None:
            assert app.producer.sent == []
        ok = await app.client.post(TMF642, json=tmf)
        assert ok.status_code == 201 and app.published() == 1


async def test_the_recording_producer_refuses_what_aiokafka_would():
    from aiokafka.errors import MessageSizeTooLargeError

    producer = RecordingProducer()
    await producer.send_many([("t", b'"' + b"x" * (MAX_REQUEST_SIZE - 200) + b'"', None, None, 0)])
    with pytest.raises(MessageSizeTooLargeError):
        await producer.send_many([("t", b'"' + b"x" * MAX_REQUEST_SIZE + b'"', None, None, 0)])


@pytest.mark.parametrize("value", [
    "\x01" * 300_000, "\ufffd" * 400_000, "\ud800" * 1000 + "x" * 500_000, ["\x01" * 100_000] * 3,
    {"a": "é" * 600_000}, 10**30, None])
def test_a_dead_letter_always_fits_and_keeps_what_it_can(value):
    encoded = dead_letter("why " * 5000, "api", value)
    letter = orjson.loads(encoded)
    assert len(encoded) <= MAX_LETTER and letter["stage"] == "api" and len(letter["reason"]) == 4096
    small = dead_letter("why", "router", {"a": [1, 2]}, msg=Msg("t", 0, 3, None, b'{"a": [1, 2]}', 0))
    assert orjson.loads(small) == {"reason": "why", "stage": "router", "source": None, "topic": "t",
                                   "partition": 0, "offset": 3, "value": {"a": [1, 2]}}
    deep = [[[[]]]]
    for _ in range(300):
        deep = [deep]
    kept = orjson.loads(dead_letter("deep", "api", deep, raw=b"[[[ as sent"))
    assert kept["value"] == "[[[ as sent" and "truncated" not in kept


# ---------------------------------------------------------------------- 2. request heads

HEAD_LIMITS = HttpLimits(body_timeout_s=1.0, max_connections=4)


def _ops_server(limits: HttpLimits = HEAD_LIMITS) -> ServerThread:
    async def ready() -> list[str]:
        return []

    async def make():
        return build_ops_app(Ops(CollectorRegistry(), lambda: None, ready), limits)
    return ServerThread(make, limits)


def _trickle(s: socket.socket, stop: threading.Event, every: float) -> None:
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    n = 0
    while not stop.wait(every):
        try:
            s.sendall(b"x-slow-%d: 1\r\n" % n)
        except OSError:
            return
        n += 1


def test_connections_that_never_complete_a_request_head_are_closed_and_free_their_slots():
    with _ops_server() as srv:
        stop = threading.Event()
        silent = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]
        slow = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]
        threads = [threading.Thread(target=_trickle, args=(s, stop, 0.2), daemon=True) for s in slow]
        for t in threads:
            t.start()
        try:
            started = time.monotonic()
            closed = [_recv_all(s, started + 4)[1] for s in silent + slow]
            assert closed == [True] * 4, closed                      # silent and trickling alike
            assert time.monotonic() - started < 3
            with httpx.Client(base_url=srv.base_url, timeout=5) as http:
                assert http.get("/healthz").status_code == 200       # the slots are free again
        finally:
            stop.set()
            for s in silent + slow:
                s.close()


def test_after_an_answer_the_next_head_has_the_same_deadline_however_it_trickles():
    with _ops_server() as srv, socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        first, _ = _recv_all(s, time.monotonic() + 0.5)
        assert status_of(first) == 200
        stop = threading.Event()
        threading.Thread(target=_trickle, args=(s, stop, 0.2), daemon=True).start()
        try:
            started = time.monotonic()
            rest, closed = _recv_all(s, started + 4)
            # Closed at the 1 s head deadline, not at the 5 s keep-alive (which data would cancel).
            assert closed and rest == b"" and time.monotonic() - started < 2.5
        finally:
            stop.set()


def test_a_whole_head_disarms_the_deadline_and_keep_alive_still_works():
    with _ops_server() as srv, socket.create_connection(("127.0.0.1", srv.port)) as s:
        for _ in range(3):                                       # three requests, 0.6 s apart: 1.8 s > 1 s
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            answer, closed = _recv_all(s, time.monotonic() + 0.6)
            assert status_of(answer) == 200 and not closed


# ---------------------------------------------------------------------- 3. bodies on any method

@pytest.mark.parametrize("framing", [b"content-length: 100000000\r\n", b"transfer-encoding: chunked\r\n"])
@pytest.mark.parametrize("method", [b"GET", b"DELETE", b"OPTIONS"])
def test_a_request_of_any_method_with_a_body_is_refused_and_closed_at_once(method, framing):
    with _ops_server(HttpLimits(body_timeout_s=5)) as srv, \
            socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(method + b" /healthz HTTP/1.1\r\nhost: x\r\n" + framing + b"\r\n" + b"0123456789")
        started = time.monotonic()
        answer, closed = _recv_all(s, started + 3)
        assert status_of(answer) == 400 and b"carries no body" in answer, answer[:200]
        assert closed and time.monotonic() - started < 1
    # A body-less GET (no length, or a length of 0) is answered as ever.
    with _ops_server() as srv, httpx.Client(base_url=srv.base_url) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/healthz", headers={"content-length": "0"}).status_code == 200


# ---------------------------------------------------------------------- 4. decoded bodies

@pytest.mark.parametrize("mode", MODES)
async def test_an_over_cap_alarm_list_is_kept_as_the_text_it_came_as(settings, mode):
    """Successor of "the embedded app hands an over-cap list to the engine as text": intake
    refuses the list whole before decoding its items into alarms, and the dead letter keeps
    the body as it came (a string), not the 1,001 decoded items."""
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        raw = b"[" + b"{}, " * MAX_ALARMS + b"{}]"
        resp = await app.client.post("/alarms", content=raw, headers=JSON)
        reason = f"a list of {MAX_ALARMS + 1} alarms; at most {MAX_ALARMS} in one request"
        assert resp.status_code == 422 and resp.json()["reasons"][0]["reason"] == reason
        assert await app.letters() == [{"reason": reason, "body": raw.decode()}]     # kept as it came
        assert app.published() == 0
        if app.producer is not None:
            assert app.producer.letters()[0]["value"] == raw.decode()


# (path, body, status): held while publishing or dead-lettering, each in its slot.
SLOTTED = [("/alarms", b"[]", 202), ("/complaints", b"{}", 422), ("/actions", b"{}", 422),
           (TMF642, b"null", 400), ("/actions", b"null", 422), ("/complaints", b"null", 422),
           ("/alarms", b"null", 422)]


@pytest.mark.parametrize("mode", MODES)
async def test_intake_decodes_and_holds_at_most_its_slots_of_bodies(settings, mode):
    limited = dataclasses.replace(settings, http=HttpLimits(max_decoded_bodies=2))
    async with one_app(mode, limited, FakeClock(T0 + 5)) as app:
        producer = app.intake_producer
        inside, most, release = 0, 0, asyncio.Event()
        send = producer.send_many

        async def held(records):
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1
            return await send(records)
        producer.send_many = held
        posts = [asyncio.create_task(app.client.post(path, content=body, headers=JSON))
                 for path, body, _status in SLOTTED]
        for _ in range(1000):                  # until two are in (a loaded machine is slow to get there)
            if inside == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)               # and the others had time to get in, if they could
        assert (inside, most) == (2, 2)
        release.set()
        answers = await asyncio.gather(*posts)
        assert [r.status_code for r in answers] == [status for _p, _b, status in SLOTTED]
        assert most == 2


async def test_intake_slots_let_in_at_most_their_number_the_others_wait_undecoded():
    """Successor of "intake slots and the read gate together" (the embedded engine's IntakeFirst
    is gone): the slots alone; that a read never waits for them is test_http_guard's
    test_a_read_is_answered_while_intake_is_in_flight."""
    slots = IntakeSlots(1)
    entered = []

    async def one(i: int) -> None:
        async with slots.slot():
            entered.append(i)
            await asyncio.sleep(0.1)
    tasks = [asyncio.create_task(one(i)) for i in range(3)]
    await asyncio.sleep(0.05)
    assert entered == [0]                                        # one slot: the others wait undecoded
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2]


# ---------------------------------------------------------------------- 5. refusals whole

@pytest.mark.parametrize("content_type, length, status", [(b"text/plain", b"10", 415),
                                                         (b"application/json", b"999999999", 413)])
async def test_a_refusal_is_sent_whole_even_when_sending_outlasts_the_body_timeout(content_type, length,
                                                                                    status):
    async def app(scope, receive, send):            # never reached
        raise AssertionError("the app got a refused request")
    guard = HttpGuard(app, HttpLimits(max_body_bytes=100, body_timeout_s=0.1))
    scope = {"type": "http", "method": "POST", "path": "/alarms", "query_string": b"",
             "headers": [(b"content-type", content_type), (b"content-length", length)]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"0123456789", "more_body": False}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.start":
            await asyncio.sleep(0.3)                 # a slow socket: longer than the body timeout
    await guard(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == status


# ---------------------------------------------------------------------- 6. Expect: 100-continue

@pytest.mark.parametrize("headers, status", [
    (b"content-type: text/plain\r\ncontent-length: 10\r\n", 415),
    (b"content-type: application/json\r\ncontent-length: 2000000\r\n", 413)])
def test_a_client_that_expects_100_continue_is_refused_at_once_not_invited(headers, status):
    with _ops_server(HttpLimits(body_timeout_s=3)) as srv, \
            socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"POST /alarms HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n" + headers + b"\r\n")
        started = time.monotonic()
        answer, closed = _recv_all(s, started + 2)
        assert status_of(answer) == status, answer[:100]          # not "100 Continue", then 408
        assert closed and time.monotonic() - started < 1
    # Within the rules, the client is invited and its body read.
    with _ops_server(HttpLimits(body_timeout_s=3)) as srv, \
            socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"POST /nowhere HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                  b"content-type: application/json\r\ncontent-length: 2\r\n\r\n")
        invited, _ = _recv_all(s, time.monotonic() + 0.5)
        assert invited.startswith(b"HTTP/1.1 100 ")
        s.sendall(b"{}")
        answer, _ = _recv_all(s, time.monotonic() + 0.5)
        assert status_of(answer) == 404


# ---------------------------------------------------------------------- 8. one answer in both modes

async def test_both_modes_refuse_the_same_action_with_the_same_reason(settings, tmp_path):
    bodies = [b"[]", b"null", b'"ack"', b"1.5", b"{}", b'{"kind": null}', b'{"kind": ["ack"]}']
    answers, kept = {}, {}
    for mode in MODES:
        async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
            replies = [(await app.client.post("/actions", content=b, headers=JSON)).json() for b in bodies]
            assert all(r["detail"] == r["reasons"][0]["reason"] == r["refused"][0] for r in replies)
            answers[mode] = [r["detail"] for r in replies]
            kept[mode] = [k["reason"] for k in await app.letters()]
    api = answers["production"]
    assert answers["embedded"] == api
    assert api[:3] == ["expected a JSON object, got a list", "expected a JSON object, got null",
                       "expected a JSON object, got 'ack'"]
    assert api[4:7] == ["missing field kind", "missing field kind",     # as replay words it
                        "kind: expected a string, got a list"]
    assert kept["production"] == kept["embedded"] == api


@pytest.mark.parametrize("mode", MODES)
async def test_decisions_are_limited_as_every_other_list(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        schema = (await app.client.get("/openapi.json")).json()
        params = {p["name"]: p["schema"] for p in schema["paths"]["/decisions"]["get"]["parameters"]}
        faults = {p["name"]: p["schema"] for p in schema["paths"]["/faults"]["get"]["parameters"]}
        assert params["limit"] | {"default": 0} == faults["limit"] | {"default": 0}
        assert params["limit"]["default"] == 500
        assert (await app.client.get("/decisions", params={"limit": 5001})).status_code == 422
