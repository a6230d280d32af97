"""The dead-letter keeper: faultline.deadletter → the `rejected` table.

Every refused input is kept (services/drivers/dead_letters.py gives the letter's shape). The city
shards store their refusals in `rejected` with the batch that refused them; the stages with
no database of their own — the api, the router, ingest — only send the letter. This loop, of
`faultline correlate` and of `faultline run`, stores those letters, each once (the digest
of the message it came as is unique), so `rejected` holds every refusal and the outcome of
an input (GET /inputs/{id}) can name any of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from services.drivers.dead_letters import MAX_REASON, MAX_SOURCE, kept_text
from services.runtime.sessions import SessionLoop, joined
from shared.clock import fmt_time, in_window
from shared.db.projection import keep_refusal
from shared.topics import DEADLETTER
from shared.transport.port import Msg, Transport, next_offsets

log = logging.getLogger("faultline.deadletter")

KEPT_BY_THEIR_STAGE = frozenset({"correlate", "dispatch"})   # stored with the batch that refused them


class DeadLetterKeeper(SessionLoop):
    """faultline.deadletter → `rejected`: keeps the letters of the stages that hold no
    database of their own (api, router, ingest). A letter that is not one (not JSON, not an
    object) is kept too, as the text it came as: nothing on the topic is dropped."""

    def __init__(self, transport: Transport, db: AsyncEngine, group_id: str = "faultline-deadletter") -> None:
        self.transport = transport
        self.db = db
        self.group_id = group_id
        self.name = "dead-letter keeper"

    async def _session(self, stop: asyncio.Event) -> None:
        async with joined(self.transport.consumer([DEADLETTER], self.group_id), stop) as consumer:
            while consumer is not None and not stop.is_set():
                msgs = await consumer.fetch(timeout_ms=200, max_records=1000)
                rows = [row for m in msgs if (row := refusal_row(m)) is not None]
                if rows:
                    async with self.db.begin() as conn:
                        for row in rows:
                            await conn.run_sync(lambda sync, r=row: keep_refusal(sync, **r))
                if msgs:
                    await consumer.commit(next_offsets(msgs))
                self.healthy = True


def refusal_row(msg: Msg) -> dict | None:
    """The `rejected` row of a letter, or None when its stage already stored it."""
    try:
        letter = orjson.loads(msg.value)
    except orjson.JSONDecodeError:
        letter = None
    if type(letter) is not dict:
        letter = {"reason": "not a dead letter", "stage": None, "source": None,
                  "value": msg.value.decode("utf-8", "replace")}
    stage = letter.get("stage")
    if stage in KEPT_BY_THEIR_STAGE:
        return None
    source = letter.get("source")
    reason = letter.get("reason")
    return {"at": fmt_time(msg.timestamp_ms / 1000) if in_window(msg.timestamp_ms / 1000) else "",
            "stage": stage if type(stage) is str and len(stage) <= 32 and "\x00" not in stage else "unknown",
            "source_key": kept_text(source if type(source) is str else msg.coordinates, MAX_SOURCE),
            "reason": kept_text(reason, MAX_REASON),
            "body": kept_text(letter.get("value")),
            "digest": _digest(msg, source)}


def _digest(msg: Msg, source: object) -> str:
    """One row per refused input. A letter naming its input (`source`: the message it came
    as) is the same bytes whenever the router or ingest refuses that message again after a
    crash, so the letter is its own key; a letter without one (an HTTP body refused before it
    was published) is sent once, so its own message names it (two equal bodies refused are
    two rows)."""
    key = msg.value if type(source) is str else msg.coordinates.encode() + b"\0" + msg.value
    return hashlib.sha256(key).hexdigest()
