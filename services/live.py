"""`faultline run`: the composition root of the live service on the embedded default.

Everything is built here when the command runs (never at import): the store, the bus,
the metrics registry, the engine and the HTTP app, in `create_app`'s lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from services.config import UsageError, load_config
from services.engine import Engine, EngineStopped, TryAgain
from services.http_api import ROUTERS
from services.http_guard import HttpLimits, IntakeSlots, harden, new_app, uvicorn_config
from services.metrics import EngineMetrics, OpenFaultsCollector, calendar_watch
from services.pipeline import Pipeline
from services.runtime import IntakeFirst, LiveSettings, Runtime
from shared.bus import Bus, InMemoryBus
from shared.db import redacted_url
from shared.db.migrate import current_revision
from shared.liveclock import Clock, ScaledClock, WallClock
from shared.store import Store
from shared.timers import LIVE_CATCH_UP_S
from shared.topics import ACTIONS, ALARMS

log = logging.getLogger("faultline")

Background = Callable[[Runtime], Awaitable[None]]


def _warn_once() -> Callable[[str], None]:
    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            logging.getLogger("faultline.rules").warning("%s", message)
    return warn


async def open_runtime(settings: LiveSettings, clock: Clock, registry: CollectorRegistry,
                       bus: Bus) -> Runtime:
    """Open the store, rebuild the engine from its log, and start the engine task."""
    store = await Store.open(settings.database_url)
    warn = _warn_once()
    # A real minute the engine could not run (down, or the wall clock jumped), in clock seconds.
    catch_up_s = LIVE_CATCH_UP_S / clock.real_seconds(1.0)
    factory = partial(Pipeline, settings.inventory, settings.rulebook, warn, catch_up_s=catch_up_s)
    engine = Engine(factory, store, bus, clock, EngineMetrics(registry))
    registry.register(OpenFaultsCollector(lambda: engine.pipeline.correlator.open_faults.values()))
    warnings = calendar_watch(settings.rulebook, registry, clock.now)
    try:
        await engine.start()
    except BaseException:
        await store.close()
        raise
    # The inventory and the recovered state out of the cyclic GC's full passes (as replay does):
    # one pass over a 40,000-circuit inventory takes ~0.35 s on the engine's loop, and reads
    # make garbage enough to trigger them (bench/http_reads.py).
    engine.pipeline.settle()
    gate = IntakeFirst(slots=IntakeSlots(settings.http.max_decoded_bodies))
    return Runtime(settings, store, bus, clock, registry, engine, warnings, gate)


def consume_inputs(rt: Runtime) -> Awaitable[None]:
    """Other in-process producers publish on faultline.alarms / faultline.actions (CONTRACT §4).

    Subscribes at once (an in-memory bus keeps nothing for late subscribers), then pumps.
    """
    alarms, actions = rt.bus.subscribe(ALARMS), rt.bus.subscribe(ACTIONS)

    async def pump(sub, wrap: Callable[[object], object]) -> None:
        async for msg in sub:
            try:
                body, refuse = wrap(orjson.loads(msg.value)), None
            except orjson.JSONDecodeError as err:
                body, refuse = msg.value.decode("utf-8", "replace"), f"message is not valid JSON: {err}"
            wait = 0.2
            while True:
                try:
                    await rt.engine.submit(body, "bus", refuse=refuse)
                    break
                except TryAgain:             # not kept (store down, a due timer failing): hold it
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 10.0)

    async def run() -> None:
        try:
            await asyncio.gather(pump(alarms, lambda a: {"kind": "alarm", "alarm": a}),
                                 pump(actions, lambda a: a))
        finally:
            alarms.close()
            actions.close()
    return run()


def create_app(settings: LiveSettings, *, clock: Clock | None = None,
               registry: CollectorRegistry | None = None, bus: Bus | None = None,
               background: Sequence[Background] = ()) -> FastAPI:
    """The HTTP app; its lifespan builds the runtime and runs `background` tasks beside it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await open_runtime(settings, clock or WallClock(), registry or CollectorRegistry(),
                                bus or InMemoryBus())
        app.state.runtime = rt
        tasks = [asyncio.create_task(make(rt)) for make in (consume_inputs, *background)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await rt.engine.stop()
            await rt.store.close()

    app = new_app(title="faultline", version="0.1.0", lifespan=lifespan,
                  description="Alarm correlation and fault dispatch for group-customer private lines")
    for router in ROUTERS:
        app.include_router(router)
    harden(app, settings.http)

    @app.exception_handler(EngineStopped)
    async def engine_stopped(_request, err: EngineStopped) -> JSONResponse:
        return JSONResponse({"status": "down", "detail": str(err)}, status_code=503)
    return app


# ---------------------------------------------------------------------- the command

def run_main(args) -> int:
    """Entry of `faultline run` (services/cli.py); returns the exit status."""
    from services import demo

    exit_after = getattr(args, "exit_after_demo", False)
    if exit_after and not args.demo:
        raise UsageError("--exit-after-demo: only with --demo")
    if args.speed is not None and args.speed <= 0:
        raise UsageError("--speed: must be positive")
    inventory_path = args.inventory or (str(demo.DEMO_INVENTORY) if args.demo else None)
    inventory, rulebook = load_config(inventory_path, args.rulebook)
    limits = HttpLimits.from_env()
    logging.basicConfig(level=logging.WARNING if args.demo else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.demo:
        settings = LiveSettings(inventory, rulebook, args.database_url, http_port=args.http_port, http=limits)
        current_revision(settings.database_url)      # unreachable: one line (DatabaseError), no server
        return asyncio.run(_serve(settings, WallClock(), ()))
    with tempfile.TemporaryDirectory(prefix="faultline-demo-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/demo.sqlite3"
        settings = LiveSettings(inventory, rulebook, url, http_port=args.http_port, http=limits)
        current_revision(url)
        speed = args.speed or 120.0
        clock = ScaledClock(time.time(), speed)
        print(f"faultline demo: clock ×{speed:g}, database {redacted_url(url)}, "
              f"http://{settings.http_host}:{settings.http_port}/faults", flush=True)
        steps = demo.load_scenario()

        def feed(rt: Runtime, stop: Callable[[], None]) -> Awaitable[None]:
            return demo.run_demo(rt, steps, exit_after=exit_after, on_done=stop)
        return asyncio.run(_serve(settings, clock, (feed,)))


class _Server(uvicorn.Server):
    """uvicorn, but Ctrl-C / SIGTERM end in a clean exit 0 instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self):
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)


async def _serve(settings: LiveSettings, clock: Clock,
                 background: Sequence[Callable[[Runtime, Callable[[], None]], Awaitable[None]]]) -> int:
    """Run uvicorn until Ctrl-C / SIGTERM, or until a background task calls its `stop`."""
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(settings, clock=clock, background=[partial(make, stop=stop) for make in background])
    server = _Server(uvicorn_config(app, settings.http_host, settings.http_port, settings.http,
                                    log_level="warning", lifespan="on"))
    await server.serve()
    return 0 if server.started else 1
