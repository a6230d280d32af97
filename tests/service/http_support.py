"""Helpers of the HTTP tests: the one app (services/http/app.py) in each of its two modes, on
a real uvicorn server in a thread or over ASGI, raw sockets, and what each mode kept of a
refused input.

- embedded: `faultline run`'s runtime (services/commands/run.Embedded: every loop running over the
  local transport and a migrated SQLite file), as tests/service/support.live_service starts it;
- production: `faultline api`'s app (services/commands/api.create_api) on a SQLite read model
  built by the migrations, with a RecordingProducer instead of Kafka (the real broker is
  covered by tests/integration) and no stage behind it: what it publishes stays pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import uvicorn
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tokens import bearer

from service.support import LiveSettings, Service, live_service
from services.http.guard import HttpLimits, uvicorn_config
from shared.db.migrate import upgrade_async
from shared.db.models import rejected
from shared.inventory import Inventory
from shared.topics import ACTIONS, ALARMS, DEADLETTER, raw_alarms_topic
from shared.transport.kafka import KafkaConfig

ROOT = Path(__file__).resolve().parents[2]
INTAKE_TOPICS = (ALARMS, ACTIONS, raw_alarms_topic("tmf642"))
NO_BROKER = "127.0.0.1:9"            # nothing listens there: the api's /readyz says kafka is unreachable

Make = Callable[[], Awaitable[FastAPI] | AbstractAsyncContextManager[FastAPI]]


class ServerThread:
    """`make()` (run on the server's loop) builds the app — a coroutine giving it, or an async
    context manager yielding it (left once the server has stopped, on the same loop); uvicorn
    serves it on 127.0.0.1 with the settings of services/http/guard.uvicorn_config, lifespan
    on, in a thread of its own, so a test can use blocking clients (schemathesis, hypothesis,
    raw sockets) against it."""

    def __init__(self, make: Make, limits: HttpLimits | None = None) -> None:
        self.make = make
        self.limits = limits or HttpLimits()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app: FastAPI | None = None
        self.service: Service | None = None           # the embedded runtime, when serving one
        self.producer: RecordingProducer | None = None  # the production api's, when serving one
        self.headers: dict[str, str] = {}              # an admin token's Authorization header
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            async with contextlib.AsyncExitStack() as stack:
                made = self.make()
                if isinstance(made, AbstractAsyncContextManager):
                    self.app = await stack.enter_async_context(made)
                else:
                    self.app = await made
                # log_config None: records reach the root logger, where caplog sees them.
                config = uvicorn_config(self.app, "127.0.0.1", self.port, self.limits, log_config=None,
                                        log_level="warning", lifespan="on")
                self.server = uvicorn.Server(config)
                self.server.install_signal_handlers = lambda: None
                await self.server.serve(sockets=[self.sock])
        try:
            asyncio.run(main())
        except BaseException as err:   # noqa: BLE001 - reported by __enter__/__exit__
            self.error = err

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not (self.server is not None and self.server.started):
            assert self.error is None and self._thread.is_alive(), f"server did not start: {self.error!r}"
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self._thread.join(60)
        self.sock.close()
        assert not self._thread.is_alive(), "the server did not stop within 60 s"
        assert self.error is None, f"the server's loop failed: {self.error!r}"

    def call(self, coro: Awaitable):
        """Run a coroutine on the server's loop (e.g. to read what the runtime kept)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


def embedded_server(settings: LiveSettings, clock) -> ServerThread:
    """`faultline run`'s app over a real Embedded runtime (support.live_service), served by
    uvicorn; `srv.service` is the runtime and its ASGI client, stopped with the server."""
    srv: ServerThread

    @asynccontextmanager
    async def make() -> AsyncIterator[FastAPI]:
        async with live_service(settings, clock) as svc:
            srv.service = svc
            srv.headers = {"Authorization": svc.client.headers["authorization"]}
            yield svc.app
    srv = ServerThread(make, settings.http)
    return srv


def production_server(db_url: str, limits: HttpLimits | None = None, *, broker: bool = False,
                      inventory: Inventory | None = None) -> ServerThread:
    """`faultline api`'s app (production_api) served by uvicorn; `srv.producer` is its
    RecordingProducer. `broker`: a TCP listener stands in for the broker's port, so that
    /readyz, which only checks that the database answers and the broker's port accepts,
    is ready (the RecordingProducer stands in for the rest of Kafka)."""
    srv: ServerThread

    @asynccontextmanager
    async def make() -> AsyncIterator[FastAPI]:
        async with contextlib.AsyncExitStack() as stack:
            bootstrap = NO_BROKER
            if broker:
                listener = await asyncio.start_server(_hang_up, "127.0.0.1", 0)
                stack.push_async_callback(listener.wait_closed)
                stack.callback(listener.close)
                bootstrap = "127.0.0.1:%d" % listener.sockets[0].getsockname()[1]
            api = await production_api(db_url, limits, inventory=inventory, bootstrap=bootstrap)
            stack.push_async_callback(api.engine.dispose)
            srv.producer = api.producer
            srv.headers = api.headers
            yield api.app
    srv = ServerThread(make, limits)
    return srv


async def _hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def raw_request(port: int, head: bytes, body: bytes = b"", *, timeout: float = 15.0) -> bytes:
    """Send bytes as they are, read the answer until the server closes or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head + body)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


# ---------------------------------------------------------------------- the production mode

MAX_REQUEST_SIZE = 1024 * 1024       # aiokafka's default max_request_size (shared.transport.kafka.Producer)


class RecordingProducer:
    """Stands in for shared.transport.kafka.Producer: keeps what `faultline api` would send, and checks it
    is what Kafka would take: bytes values, a JSON document each, and each record within
    aiokafka's own size check (AIOKafkaProducer._serialize: DefaultRecordBatchBuilder's estimate
    of key, value and framing against max_request_size; over it, send raises
    MessageSizeTooLargeError, which the api would answer 500). The check raises the same error.
    Acknowledges each record as Kafka would, with its partition (0: one partition per topic
    here) and the next offset of that topic, so input ids differ."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.ends: dict[str, int] = {}

    async def send_many(self, records) -> list[tuple[int, int]]:
        for topic, value, key, _partition, ts in records:
            assert isinstance(topic, str) and isinstance(value, bytes), (topic, type(value))
            assert key is None or isinstance(key, str), key
            assert isinstance(ts, int), ts
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
                None if key is None else key.encode(), value, [])
            if size > MAX_REQUEST_SIZE:
                raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized ({topic})")
            orjson.loads(value)
        acks = []
        for topic, *_rest in records:
            acks.append((0, self.ends.get(topic, 0)))
            self.ends[topic] = acks[-1][1] + 1
        self.sent.extend(records)
        return acks

    def letters(self) -> list[dict]:
        """The dead letters sent (faultline.deadletter), decoded."""
        return [orjson.loads(value) for topic, value, *_ in self.sent if topic == DEADLETTER]

    def published(self) -> list[tuple]:
        """The records sent to the intake topics (what the stages would consume)."""
        return [r for r in self.sent if r[0] in INTAKE_TOPICS]


@dataclass
class ProductionApi:
    app: FastAPI
    producer: RecordingProducer
    engine: AsyncEngine                # the read model's database (dispose when done)
    headers: dict[str, str]            # an admin token's Authorization header


async def production_api(db_url: str, limits: HttpLimits | None = None, *,
                         inventory: Inventory | None = None, bootstrap: str = NO_BROKER) -> ProductionApi:
    """`faultline api`'s app as its composition root builds it (services/commands/api.create_api)
    on a SQLite read model built by the migrations, with a RecordingProducer instead of Kafka.
    The settings stand-in has what create_api reads: `.kafka` (readiness dials its bootstrap)
    and `.http` (the HTTP limits)."""
    from services.commands.api import create_api

    await upgrade_async(db_url)
    settings = SimpleNamespace(kafka=KafkaConfig(bootstrap), http=limits or HttpLimits())
    producer = RecordingProducer()
    engine = create_async_engine(db_url)
    app = create_api(settings, engine, producer, CollectorRegistry(), inventory)  # type: ignore[arg-type]
    return ProductionApi(app, producer, engine, await bearer(engine))


# ---------------------------------------------------------------------- the embedded mode

async def kept_refusals(svc: Service) -> list[dict[str, Any]]:
    """The HTTP refusals `faultline run` kept: its dead-letter keeper stores the letters intake
    sends to faultline.deadletter in `rejected` (stage "api"); waits until every loop has
    handled what was sent. Each: {reason, body} (body: the refused value as kept, as text)."""
    await svc.settle()
    async with svc.runtime.db.connect() as conn:
        rows = await conn.execute(select(rejected.c.reason, rejected.c.body)
                                  .where(rejected.c.stage == "api").order_by(rejected.c.id))
        return [{"reason": reason, "body": body} for reason, body in rows]


def intake_published(svc: Service) -> int:
    """How many messages intake has published to the intake topics of `faultline run`'s transport."""
    transport = svc.runtime.transport
    return sum(transport.end((topic, p)) for topic in INTAKE_TOPICS for p in range(transport.partitions))


# ---------------------------------------------------------------------- either mode, over ASGI

MODES = ("embedded", "production")


@dataclass
class Mode:
    """The one app in one mode, with an ASGI client, and what the mode kept of refused inputs."""

    name: str
    app: FastAPI
    client: httpx.AsyncClient
    service: Service | None = None                # embedded: the runtime
    producer: RecordingProducer | None = None     # production: what the api sent
    engine: AsyncEngine | None = None             # the database the app reads (and its tokens)

    async def letters(self) -> list[dict[str, str]]:
        """The refusals intake dead-lettered, oldest first: {reason, body}, the body as kept
        (text: a string as it is, anything else as its JSON)."""
        if self.service is not None:
            return await kept_refusals(self.service)
        assert self.producer is not None
        return [{"reason": d["reason"], "body": _as_text(d.get("value"))} for d in self.producer.letters()]

    def published(self) -> int:
        """How many messages intake published to the intake topics."""
        if self.service is not None:
            return intake_published(self.service)
        assert self.producer is not None
        return len(self.producer.published())

    @property
    def intake_producer(self) -> Any:
        """The producer intake publishes with (the Face's): embedded, the runtime's, which its
        loops share; production, the RecordingProducer."""
        return self.service.runtime.producer if self.service is not None else self.producer

    async def settle(self) -> None:
        """Embedded: wait until the loops have handled what was published (production: no stage)."""
        if self.service is not None:
            await self.service.settle()


def asgi_client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers)


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@asynccontextmanager
async def one_app(mode: str, settings: LiveSettings, clock) -> AsyncIterator[Mode]:
    """The app of `faultline run` (mode "embedded": a real Embedded on `settings`, `clock`) or of
    `faultline api` (mode "production": on a SQLite read model at settings.database_url, its
    HTTP limits settings.http, no inventory, a RecordingProducer)."""
    if mode == "embedded":
        async with live_service(settings, clock) as svc:
            yield Mode(mode, svc.app, svc.client, service=svc, engine=svc.runtime.db)
        return
    assert mode == "production", mode
    api = await production_api(settings.database_url, settings.http)
    try:
        async with asgi_client(api.app, api.headers) as client:
            yield Mode(mode, api.app, client, producer=api.producer, engine=api.engine)
    finally:
        await api.engine.dispose()
