"""`faultline run`: the production runtime in one process, on the embedded default.

CONTRACT §4: `faultline run` runs the same processes in one process. Here they are — the
raw-feed ingest, the router, the correlate and dispatch shard runners and the HTTP app,
built by services/runtime/assembly.py and services/http/app.py exactly as `faultline ingest`,
`correlate`, `dispatch` and `api` build them — over the local transport (Kafka's semantics,
kept in the database: shared/transport/local.py) and one SQLite file migrated like
PostgreSQL. Nothing to install; the same decisions, logs, outbox and dead letters.

Everything is built when the command runs (never at import). `Embedded` is also what the
service tests drive: `settle()` waits until every loop has handled what was sent, `tick()`
fires the timers due by the clock now.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CollectorRegistry

from alarm_ingest.mapping import Mappings
from services.access import TokenStore
from services.config import UsageError, load_config, load_mappings_dir
from services.http.app import build_app
from services.http.face import Face
from services.http.guard import HttpLimits, serve_until_stopped
from services.inventory_store import startup_inventory, watch
from services.logs import setup_logging
from services.runtime.assembly import (
    CORRELATE_TOPICS,
    DISPATCH_TOPICS,
    INGEST_TOPICS,
    correlate_loops,
    deadletter_keeper,
    dispatch_loop,
    ingest_loop,
    router_metrics,
    wiring,
)
from services.runtime.ingest_loop import raw_publisher
from services.runtime.metrics import ListenerCollector, calendar_watch
from services.runtime.shell import install_stop, loops_health, readiness, tune_gc
from services.settings import RawListeners, Recovery
from shared.db import redacted_url
from shared.db.migrate import open_database
from shared.inventory import Inventory
from shared.listeners import Listeners, start_listeners
from shared.liveclock import Clock, ScaledClock, WallClock
from shared.rulebook import Rulebook
from shared.transport.local import LocalTransport

log = logging.getLogger("faultline")

TICK_EVERY_S = 0.25          # real seconds between timer ticks (a demo clock runs ×120)


class Embedded:
    """Every loop of the production runtime in this process, over the local transport."""

    def __init__(self, inventory: Inventory, rulebook: Rulebook, database_url: str | None, clock: Clock, *,
                 http: HttpLimits | None = None, registry: CollectorRegistry | None = None,
                 tick_every_s: float = TICK_EVERY_S, stream: bool = False,
                 recovery: Recovery | None = None, raw: RawListeners | None = None,
                 mappings: Mappings | None = None) -> None:
        self.seed = self.inventory = inventory   # the file's; the database's version wins at start
        self.inventory_version: int | None = None
        self.rulebook = rulebook
        self.database_url = database_url
        self.clock = clock
        self.http = http or HttpLimits()
        self.registry = registry or CollectorRegistry()
        self.tick_every_s = tick_every_s
        self.stream = stream         # FAULTLINE_CLOCK=stream: only the inputs' times move the clock
        self.recovery = recovery     # snapshots and log retention (Settings.recovery); None: defaults
        self.raw = raw or RawListeners()  # syslog and SNMP listeners (Settings.raw_listeners): off
        self.mappings = mappings     # vendor mappings (Settings.mappings_dir); None: the built-in ones
        self.listeners: Listeners | None = None
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.db = db = await open_database(self.database_url)
        self.inventory, self.inventory_version = await startup_inventory(db, self.seed, "run")
        clock = self.clock

        def now_ms() -> int:                 # the message time of what is sent here: the service's clock
            return int(clock.now() * 1000)
        self.transport = LocalTransport(db, partitions=1, now_ms=now_ms)
        topics = {*CORRELATE_TOPICS, *DISPATCH_TOPICS, *INGEST_TOPICS}
        await self.transport.ensure_topics({t: 1 for t in topics})
        self.producer = self.transport.producer()
        await self.producer.start()
        w = wiring(self.inventory, self.rulebook, db, self.transport, self.producer, self.registry,
                   message_clock=clock.now)
        # One partition per topic, read in append order: nothing to hold back for (hold 0).
        self.router, self.correlate = correlate_loops(w, clock=None if self.stream else clock.now, hold_s=0.0,
                                                      tick_every_s=self.tick_every_s, recovery=self.recovery)
        self.dispatch = dispatch_loop(w, real_seconds=None if self.stream else clock.real_seconds,
                                      recovery=self.recovery)
        self.ingest = ingest_loop(w, self.mappings)
        self.keeper = deadletter_keeper(w)
        self.warnings = calendar_watch(self.rulebook, self.registry, clock.now)
        self.registry.register(ListenerCollector(lambda: self.listeners and self.listeners.counts))
        self.app = build_app(Face(producer=self.producer, db=db, registry=self.registry, health=self._health,
                                  ready=self._ready, warnings=self.warnings, limits=self.http,
                                  now_ms=now_ms, inventory=self.inventory,
                                  inventory_version=self.inventory_version, mappings=self.mappings))
        stop = self.stop_event
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("router", self.router.run(stop)), ("correlate", self.correlate.run(stop)),
            ("dispatch", self.dispatch.run(stop)), ("ingest", self.ingest.run(stop)),
            ("deadletter", self.keeper.run(stop)), ("hub", self.app.state.hub.run(stop)),
            ("router-metrics", router_metrics(self.router, self.registry, stop)))]
        # Started: every loop has joined its group and made a first pass (or, after 30 s,
        # /healthz says which has not).
        deadline = asyncio.get_running_loop().time() + 30
        while self._health() is not None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        raw = self.raw
        self.listeners = await start_listeners(
            raw_publisher(self.producer, now_ms), syslog_udp=raw.syslog_udp, syslog_tcp=raw.syslog_tcp,
            snmp_udp=raw.snmp_udp, host=raw.host)

    def again(self) -> Embedded:
        """A new runtime with this one's arguments (it takes the inventory current at its start)."""
        return Embedded(self.seed, self.rulebook, self.database_url, self.clock, http=self.http,
                        tick_every_s=self.tick_every_s, stream=self.stream, recovery=self.recovery,
                        raw=self.raw, mappings=self.mappings)

    async def stop(self) -> None:
        """Drain: the listeners stop taking messages and publish what waits; each loop finishes,
        stores and commits its batch; then the database closes."""
        if self.listeners is not None:
            await self.listeners.close()
            self.listeners = None
        self.stop_event.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=30)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.producer.stop()
        await self.db.dispose()

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until every loop has handled (and committed) every message sent so far."""
        groups = [loop.group_id for loop in self.loops.values()]
        if not await self.transport.settled(timeout_s, groups):
            raise TimeoutError(f"the loops did not settle in {timeout_s:g}s")

    async def tick(self) -> None:
        """Fire the timers due by the clock now (the correlate loop does this every tick_every_s
        by itself), and wait until what they made has gone through. On stream time only the
        inputs move the clock: there is nothing to fire."""
        await self.settle()
        if not self.stream:
            await self.correlate.tick_now()
            await self.settle()

    @property
    def loops(self) -> dict[str, object]:
        return {"router": self.router, "correlate": self.correlate, "dispatch": self.dispatch,
                "ingest": self.ingest, "deadletter": self.keeper}

    def _health(self) -> str | None:
        ended = [t.get_name() for t in self._tasks if t.done() and not self.stop_event.is_set()]
        if ended:
            return f"loop(s) ended: {', '.join(ended)}"
        return loops_health(self.loops)()

    async def _ready(self) -> list[str]:
        """No shard's timers failing, the database (and the transport kept in it) answering."""
        return await readiness(self.db, self.transport, (self.correlate, self.dispatch))


# ---------------------------------------------------------------------- the command

def run_main(args) -> int:
    """Entry of `faultline run` (services/cli.py); returns the exit status."""
    from services.commands import demo
    from services.settings import Settings

    exit_after = getattr(args, "exit_after_demo", False)
    if exit_after and not args.demo:
        raise UsageError("--exit-after-demo: only with --demo")
    if args.speed is not None and args.speed <= 0:
        raise UsageError("--speed: must be positive")
    settings = Settings.load(args, command="run")
    inventory_path = settings.inventory_path or (str(demo.DEMO_INVENTORY) if args.demo else None)
    inventory, rulebook = load_config(inventory_path, settings.rulebook_path)
    mappings = load_mappings_dir(settings.mappings_dir, settings.snmp_v3_users)
    setup_logging(logging.WARNING if args.demo else settings.log_level, settings.log_format)
    if not args.demo:
        service = Embedded(inventory, rulebook, settings.database_url, WallClock(), http=settings.http,
                           stream=settings.clock == "stream", recovery=settings.recovery,
                           raw=settings.raw_listeners, mappings=mappings)
        return asyncio.run(_serve(service, settings.http_host, settings.http_port, ()))
    with tempfile.TemporaryDirectory(prefix="faultline-demo-") as tmp:
        url = settings.DATABASE_URL or f"sqlite+aiosqlite:///{tmp}/demo.sqlite3"
        speed = args.speed or 120.0
        clock = ScaledClock(time.time(), speed)
        service = Embedded(inventory, rulebook, url, clock, http=settings.http, recovery=settings.recovery,
                           raw=settings.raw_listeners, mappings=mappings)
        print(f"faultline demo: clock ×{speed:g}, database {redacted_url(url)}, "
              f"http://{settings.http_host}:{settings.http_port}/faults", flush=True)
        steps = demo.load_scenario()

        def feed(svc: Embedded, stop: Callable[[], None]) -> Awaitable[None]:
            return demo.run_demo(svc, steps, exit_after=exit_after, on_done=stop)
        return asyncio.run(_serve(service, settings.http_host, settings.http_port, (feed,)))


async def first_admin_token(db) -> None:
    """On a database with no live token (the first start), make an admin token and print it
    once, alone on its line, so a newcomer can use the API at once (it is not kept: only its
    hash is; `faultline token create` makes more)."""
    store = TokenStore(db)
    if await store.any_active():
        return
    token_id, token = await store.create("admin", name="faultline run: first start")
    log.warning("faultline run: no API token yet; made admin token %d, shown once on standard output "
                "(Authorization: Bearer <token>; faultline token create makes more)", token_id)
    sys.stdout.write(token + "\n")
    sys.stdout.flush()


async def _serve(service: Embedded, host: str, port: int,
                 background: Sequence[Callable[[Embedded, Callable[[], None]], Awaitable[None]]]) -> int:
    """Run until Ctrl-C / SIGTERM, or until a background task calls its `stop`; then drain. An
    inventory loaded through the API drains every loop and the HTTP server, and starts them
    again on it (services/inventory_store.py); the background tasks (the demo) run once."""
    stop = asyncio.Event()
    install_stop(stop)
    while True:
        generation = asyncio.Event()
        relay = asyncio.create_task(_relay(stop, generation))
        await service.start()
        await first_admin_token(service.db)
        tune_gc()                    # started: the inventory and the shards rebuilt are long-lived
        tasks = [asyncio.create_task(make(service, stop.set)) for make in background]
        tasks.append(asyncio.create_task(watch(service.db, service.inventory_version,
                                               lambda _version, g=generation: g.set(), generation)))
        try:
            await serve_until_stopped(service.app, port, generation, service.http, host=host)
        finally:
            relay.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, relay, return_exceptions=True)
            await service.stop()
        if stop.is_set():
            return 0
        log.warning("faultline run: restarting on the inventory loaded through the API")
        service, background = service.again(), ()


async def _relay(stop: asyncio.Event, generation: asyncio.Event) -> None:
    await stop.wait()
    generation.set()
