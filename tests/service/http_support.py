"""Helpers of the HTTP hardening tests: an app on a real uvicorn server in a thread, raw
sockets, and the production api built in-process (a recording producer, a SQLite read model)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import uvicorn
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.http_guard import HttpLimits, uvicorn_config

ROOT = Path(__file__).resolve().parents[2]


class ServerThread:
    """`make()` (run on the server's loop) builds the app; uvicorn serves it on 127.0.0.1 with
    the settings of services/http_guard.uvicorn_config, lifespan on, in a thread of its own, so
    a test can use blocking clients (schemathesis, hypothesis, raw sockets) against it."""

    def __init__(self, make: Callable[[], Awaitable[FastAPI]], limits: HttpLimits | None = None) -> None:
        self.make = make
        self.limits = limits or HttpLimits()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app: FastAPI | None = None
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.app = await self.make()
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
        self._thread.join(30)
        self.sock.close()

    def call(self, coro: Awaitable):
        """Run a coroutine on the server's loop (e.g. to look at the engine's state)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


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


MAX_REQUEST_SIZE = 1024 * 1024       # aiokafka's default max_request_size, as shared.kafka.Producer keeps it


class RecordingProducer:
    """Stands in for shared.kafka.Producer: keeps what `faultline api` would send, and checks it
    is what Kafka would take: bytes values, a JSON document each, and each record within
    aiokafka's own size check (AIOKafkaProducer._serialize: DefaultRecordBatchBuilder's estimate
    of key, value and framing against max_request_size; over it, send raises
    MessageSizeTooLargeError, which the api would answer 500). The check raises the same error."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def send_many(self, records) -> list[tuple[int, int]]:
        for topic, value, key, _partition, _ts in records:
            assert isinstance(topic, str) and isinstance(value, bytes), (topic, type(value))
            assert key is None or isinstance(key, str), key
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
                None if key is None else key.encode(), value, [])
            if size > MAX_REQUEST_SIZE:
                raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized ({topic})")
            orjson.loads(value)
        self.sent.extend(records)
        return [(0, i) for i in range(len(records))]


async def production_api(db_url: str, limits: HttpLimits | None = None):
    """`faultline api`'s app (services/api_process.create_api) on a SQLite read model built by
    the migrations, with a RecordingProducer instead of Kafka; returns (app, producer)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.api_process import create_api
    from services.process_kit import ProcessSettings
    from shared.db.migrate import upgrade_async
    from shared.kafka import KafkaConfig

    await upgrade_async(db_url)
    settings = ProcessSettings(KafkaConfig("127.0.0.1:9"), db_url, None, None, 0, "wall",
                               http=limits or HttpLimits())
    producer = RecordingProducer()
    app = create_api(settings, create_async_engine(db_url), producer, CollectorRegistry())
    return app, producer
