"""`faultline ingest`: raw feeds → normalized alarms on faultline.alarms (CONTRACT §2, §4).

Consumes faultline.alarms.raw.<format>; each message is normalized by alarm_ingest and
published to faultline.alarms keyed by its resource, keeping the message's own time as the
arrival. A message that cannot be normalized goes to faultline.deadletter with the reason
and its topic, partition and offset. Offsets are committed after the broker acknowledged
what they became (at least once; the correlator's dedup makes a repeat harmless, AL-1).

No message stops ingest: one whose normalizing raises is dead-lettered with the error and
committed like any refusal. A failure of the broker restarts the consumer session after a
backoff, with /healthz down until a pass of the loop completes again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable

import orjson
from prometheus_client import CollectorRegistry, Counter

from alarm_ingest.mapping import Mappings
from alarm_ingest.raw import FORMATS, normalize
from services.drivers.city_router import dead
from services.drivers.dead_letters import MAX_VALUE
from services.runtime.sessions import SessionLoop, joined
from shared.clock import fmt_time
from shared.topics import ALARMS, raw_alarms_topic
from shared.transport.port import Msg, Producer, Transport, next_offsets
from shared.wire import INTERNAL, describe

log = logging.getLogger("faultline.ingest")

RAW_TOPICS = {raw_alarms_topic(f): f for f in FORMATS}


Out = tuple[str, bytes, str | None, int | None]


def normalize_message(msg: Msg, mappings: Mappings | None = None) -> Out:
    """(topic, value, key, timestamp_ms) of what one raw message becomes. A syslog line or a
    trap: the key is the address it came from (shared/listeners.py), the message's time its
    arrival; a refused one is dead-lettered with its bytes whole (base64) beside the text."""
    fmt = RAW_TOPICS[msg.topic]
    if fmt == "snmp":                                   # binary BER: base64, the payload's form
        payload: object = base64.b64encode(msg.value).decode()
    else:
        payload = msg.value.decode("utf-8", errors="replace")
    kept = payload
    if fmt in ("normalized", "tmf642", "export"):
        try:
            payload = kept = orjson.loads(msg.value)
        except orjson.JSONDecodeError as err:
            topic, value, key = dead(msg, f"not valid JSON: {err}", stage="ingest")
            return topic, value, key, None
    alarm = normalize(fmt, payload, f"{fmt} message", arrival=msg.timestamp_ms / 1000, sender=msg.key,
                      mappings=mappings)
    if not hasattr(alarm, "resource_id"):
        if fmt in ("syslog", "snmp"):                   # the sender, and the bytes whole
            raw = payload if fmt == "snmp" else base64.b64encode(msg.value).decode()
            kept = {"sender": msg.key, "base64": raw} if fmt == "snmp" else \
                {"sender": msg.key, "text": payload, "base64": raw}
        topic, value, key = dead(msg, alarm.reason, kept, "ingest")
        return topic, value, key, None
    body = {"source": alarm.source, "alarm_id": alarm.alarm_id, "resource_id": alarm.resource_id,
            "probable_cause": alarm.probable_cause, "severity": alarm.severity, "state": alarm.state,
            "event_time": payload["event_time"] if fmt == "normalized" else fmt_time(alarm.event_time),
            "text": alarm.text}
    value = orjson.dumps(body)
    if len(value) > MAX_VALUE:                # could never be sent: refuse, do not retry forever
        reason = f"alarm too large: {len(value)} bytes, at most {MAX_VALUE}"
        topic, value, key = dead(msg, reason, stage="ingest")
        return topic, value, key, None
    return ALARMS, value, alarm.resource_id, msg.timestamp_ms


def normalize_or_dead(msg: Msg, mappings: Mappings | None = None) -> Out:
    """normalize_message(), but an unexpected error on one message dead-letters that message."""
    try:
        return normalize_message(msg, mappings)
    except Exception as err:
        log.exception("internal error while normalizing %s[%d]@%d; dead-lettered", msg.topic,
                      msg.partition, msg.offset, extra={"stage": "ingest", "input_id": msg.coordinates})
        topic, value, key = dead(msg, f"{INTERNAL}: {describe(err)}", stage="ingest")
        return topic, value, key, None


def raw_publisher(producer: Producer, now_ms: Callable[[], int]) -> Callable[[list[tuple[str, bytes, str]]],
                                                                            Awaitable[None]]:
    """What the raw listeners publish with: each message unchanged to its raw topic, keyed by
    the address it came from, stamped with its arrival (the service's clock)."""
    async def publish(batch: list[tuple[str, bytes, str]]) -> None:
        stamp = now_ms()
        await producer.send_many([(raw_alarms_topic(fmt), data, sender[:255], None, stamp)
                                  for fmt, data, sender in batch])
    return publish


class IngestRunner(SessionLoop):
    """The consume → normalize → produce → commit loop of the raw topics (any transport)."""

    def __init__(self, transport: Transport, producer: Producer, registry: CollectorRegistry,
                 mappings: Mappings | None = None) -> None:
        self.transport = transport
        self.mappings = mappings
        self.producer = producer
        self.normalized = Counter("faultline_ingest_messages", "Raw messages handled, by feed format "
                                  "and outcome (alarm, refused: dead-lettered)", ["format", "outcome"],
                                  registry=registry)
        for fmt in FORMATS:                                   # 0 before the first message
            for outcome in ("alarm", "refused"):
                self.normalized.labels(fmt, outcome)
        self.group_id = "faultline-ingest"
        self.name = "ingest"

    async def _session(self, stop: asyncio.Event) -> None:
        async with joined(self.transport.consumer(list(RAW_TOPICS), self.group_id), stop) as consumer:
            while consumer is not None and not stop.is_set():
                msgs = await consumer.fetch(timeout_ms=200, max_records=1000)
                if msgs:
                    outs = [normalize_or_dead(m, self.mappings) for m in msgs]
                    await self.producer.send_many([(t, v, k, None, ts) for t, v, k, ts in outs])
                    for m, (t, *_rest) in zip(msgs, outs, strict=True):
                        outcome = "alarm" if t == ALARMS else "refused"
                        self.normalized.labels(RAW_TOPICS[m.topic], outcome).inc()
                    await consumer.commit(next_offsets(msgs))
                self.healthy = True
