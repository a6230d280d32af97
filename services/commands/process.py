"""How a production process runs (CONTRACT §4): `run_process` starts `faultline correlate`,
`dispatch`, `ingest` or `api` (their composition roots: services/commands/<name>.py) until
SIGTERM (what they share: services/commands/production.py). Each builds
its adapters when it runs — never at import — serves /healthz, /readyz and /metrics on
FAULTLINE_HTTP_PORT, and drains on SIGTERM: the current batch is finished, stored,
published and committed before the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging

from services.logs import setup_logging
from services.runtime.shell import install_stop, watchdog
from services.settings import Settings

log = logging.getLogger("faultline")


def run_process(name: str, args) -> int:
    """Run one production process until SIGTERM; exit 0 after a clean drain."""
    settings = Settings.from_args(args)
    setup_logging(settings.log_level, settings.log_format)
    main = {"correlate": _correlate, "dispatch": _dispatch, "ingest": _ingest, "api": _api}[name]

    async def go() -> None:
        stop = asyncio.Event()
        install_stop(stop)
        asyncio.get_running_loop().create_task(watchdog(stop, settings.drain_s))
        while True:
            # One generation per inventory: the process's loops drain when SIGTERM comes (and the
            # process ends), or when an inventory is loaded through the API (and they start
            # again on it: services/inventory_store.py).
            generation = asyncio.Event()
            relay = asyncio.get_running_loop().create_task(_relay(stop, generation))
            try:
                await main(settings, generation)
            finally:
                relay.cancel()
            if stop.is_set():
                return
            log.warning("faultline %s: restarting on the inventory loaded through the API", name)

    asyncio.run(go())
    return 0


async def _relay(stop: asyncio.Event, generation: asyncio.Event) -> None:
    await stop.wait()
    generation.set()


async def _correlate(settings: Settings, stop: asyncio.Event) -> None:
    from services.commands.correlate import correlate
    await correlate(settings, stop)


async def _dispatch(settings: Settings, stop: asyncio.Event) -> None:
    from services.commands.dispatch import dispatch
    await dispatch(settings, stop)


async def _ingest(settings: Settings, stop: asyncio.Event) -> None:
    from services.commands.ingest import ingest
    await ingest(settings, stop)


async def _api(settings: Settings, stop: asyncio.Event) -> None:
    from services.commands.api import api
    await api(settings, stop)
