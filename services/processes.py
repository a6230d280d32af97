"""Composition roots of the production processes (CONTRACT §4): `faultline correlate` and
`faultline dispatch` here, `faultline ingest` and `faultline api` in their own modules, all
on the shell of services/process_kit.py. Each builds its adapters when it runs — never at
import — serves /healthz, /readyz and /metrics on FAULTLINE_HTTP_PORT, and drains on
SIGTERM: the current batch is finished, stored, published and committed before the
process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.config import load_config
from services.metrics import EngineMetrics, OpenFaultsCollector, calendar_watch
from services.process_kit import (
    ProcessSettings,
    install_stop,
    ops_app,
    prepare,
    readiness,
    serve_until_stopped,
    watchdog,
    with_degraded,
)
from shared.kafka import KafkaTransport
from shared.timers import LIVE_CATCH_UP_S

log = logging.getLogger("faultline")


def _lag_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge("faultline_consumer_lag", "Messages not yet consumed, by topic", ["topic"],
                 registry=registry)


# ---------------------------------------------------------------------- correlate

async def correlate(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.kafka_stages import CorrelateLogic
    from services.router_runner import RouterRunner
    from services.shard_runner import ShardRunner
    from services.shardlog import ShardLog
    from shared.topics import ACTIONS, ALARMS, CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS

    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    n = settings.kafka.partitions
    engine = await prepare(settings, {t: n for t in (ALARMS, ACTIONS, CORRELATOR_INPUTS, FAULTS,
                                                     DECISIONS, DEADLETTER)})
    transport = KafkaTransport(settings.kafka)
    producer = transport.producer()
    await producer.start(deadline_s=None)
    registry = CollectorRegistry()
    lag = _lag_gauge(registry)
    router = RouterRunner(inventory, transport, producer, hold_s=settings.arrival_hold_s)
    late = Counter("faultline_router_late_messages", "Messages that reached the broker more than "
                   "FAULTLINE_ARRIVAL_HOLD_MS after later ones (handled in arrival order)", registry=registry)
    shards = ShardRunner(CorrelateLogic(inventory, rulebook), ShardLog(engine, "correlate"), transport,
                         producer, group_id="faultline-correlate",
                         wall_clock=time.time if settings.clock == "wall" else None,
                         metrics=EngineMetrics(registry))
    registry.register(OpenFaultsCollector(
        lambda: [f for st in list(shards.shards.values()) for f in st.core.correlator.open_faults.values()]))
    app = ops_app(lambda: router.healthy and shards.healthy,
                  lambda: with_degraded(shards.degraded, readiness(engine, settings.kafka)), registry,
                  calendar_watch(rulebook, registry, time.time), limits=settings.http)

    async def lag_loop():
        counted = 0
        while not stop.is_set():
            for topic in (ALARMS, ACTIONS):
                lag.labels(topic).set(sum(v for (t, _p), v in router.lag.items() if t == topic))
            late.inc(router.late - counted)
            counted = router.late
            await asyncio.sleep(5)

    try:
        await asyncio.gather(router.run(stop), shards.run(stop), lag_loop(),
                             serve_until_stopped(app, settings.http_port, stop, settings.http))
    finally:
        await producer.stop()
        await engine.dispose()


# ---------------------------------------------------------------------- dispatch

async def dispatch(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.kafka_stages import DispatchLogic
    from services.shard_runner import ShardRunner
    from services.shardlog import ShardLog
    from shared.topics import DEADLETTER, DECISIONS, FAULTS

    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    n = settings.kafka.partitions
    engine = await prepare(settings, {t: n for t in (FAULTS, DECISIONS, DEADLETTER)})
    transport = KafkaTransport(settings.kafka)
    producer = transport.producer()
    await producer.start(deadline_s=None)
    registry = CollectorRegistry()
    warn = lambda message: log.warning("%s", message)  # noqa: E731
    catch_up_s = LIVE_CATCH_UP_S if settings.clock == "wall" else None     # stream: as replay
    shards = ShardRunner(DispatchLogic(inventory, rulebook, warn, catch_up_s=catch_up_s),
                         ShardLog(engine, "dispatch"),
                         transport, producer, group_id="faultline-dispatch", wall_clock=None,
                         metrics=EngineMetrics(registry))
    app = ops_app(lambda: shards.healthy,
                  lambda: with_degraded(shards.degraded, readiness(engine, settings.kafka)), registry,
                  calendar_watch(rulebook, registry, time.time), limits=settings.http)
    try:
        await asyncio.gather(shards.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http))
    finally:
        await producer.stop()
        await engine.dispose()


def run_process(name: str, args) -> int:
    """Run one production process until SIGTERM; exit 0 after a clean drain."""
    logging.basicConfig(level=os.environ.get("FAULTLINE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = ProcessSettings.from_args(args)
    main = {"correlate": correlate, "dispatch": dispatch, "ingest": _ingest, "api": _api}[name]

    async def go() -> None:
        stop = asyncio.Event()
        install_stop(stop)
        asyncio.get_running_loop().create_task(watchdog(stop, settings.drain_s))
        await main(settings, stop)

    asyncio.run(go())
    return 0


async def _ingest(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.ingest_process import ingest
    await ingest(settings, stop)


async def _api(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.api_process import api
    await api(settings, stop)
