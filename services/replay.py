"""`faultline replay` (CONTRACT §3): the rulebook run on recorded events, on a simulated clock."""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO

import orjson

from alarm_ingest.normalized import alarm_from_dict
from alarm_ingest.raw import normalize
from services.pipeline import Pipeline
from shared.clock import TimeFormatError, fmt_time, parse_time, parse_time_cached
from shared.model import Alarm, Rejected
from shared.wire import INPUT_KINDS, action_from_dict, complaint_from_dict

EXIT_OK, EXIT_USAGE, EXIT_REJECTED = 0, 2, 3


def decode_event(obj: dict) -> object:
    """An input object (already known to be a dict with a kind) → a domain event or Rejected."""
    kind = obj["kind"]
    if kind == "alarm":
        return alarm_from_dict(obj.get("alarm"))
    if kind == "complaint":
        return complaint_from_dict(obj.get("complaint"))
    if kind == "raw":
        fmt = obj.get("format")
        if "payload" not in obj:
            return Rejected("raw: missing field payload")
        return normalize(fmt if isinstance(fmt, str) else repr(fmt), obj["payload"])
    return action_from_dict(kind, obj)


class Replay:
    """Feeds lines to a Pipeline and writes records; keeps the counts for --summary."""

    def __init__(self, pipeline: Pipeline, out: IO[bytes], progress: IO[str] | None = None) -> None:
        self.pipeline = pipeline
        self.out = out
        self.progress = progress
        self.rejected = 0
        self.counts: Counter[str] = Counter()
        self.serious_rules: Counter[str] = Counter()
        self.queues: Counter[str] = Counter()
        self._waiting: list[tuple[int, str]] = []   # rejections before the first readable `at`

    def write(self, records: list[dict]) -> None:
        dumps = orjson.dumps
        for rec in records:
            t = rec["type"]
            self.counts[t] += 1
            if t == "fault.serious":
                self.serious_rules[rec["rule"]] += 1
            elif t == "work_order.created":
                self.queues[rec["queue"]] += 1
        self.out.write(b"".join(dumps(r) + b"\n" for r in records))

    def reject(self, line: int, reason: str, at: float | None) -> None:
        self.rejected += 1
        if at is None:
            self._waiting.append((line, reason))
            return
        self.write([{"type": "input.rejected", "at": fmt_time(at), "line": line, "reason": reason}])

    def _flush_waiting(self, at: float | None) -> None:
        waiting, self._waiting = self._waiting, []
        self.rejected -= len(waiting)
        for line, reason in waiting:
            if at is None:
                self.rejected += 1
                self.write([{"type": "input.rejected", "at": None, "line": line, "reason": reason}])
            else:
                self.reject(line, reason, at)

    def feed_line(self, lineno: int, raw: bytes) -> None:
        pipe = self.pipeline
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            self.reject(lineno, f"not valid JSON: {err}", pipe.clock)
            return
        if type(obj) is not dict:
            self.reject(lineno, "expected a JSON object with kind and at", pipe.clock)
            return
        at = parse_time_cached(obj.get("at"))
        if at is None:
            try:
                parse_time(obj.get("at"))
            except TimeFormatError as err:
                self.reject(lineno, f"at: {err}", pipe.clock)
            return
        if pipe.clock is None:
            pipe.clock = at
            self._flush_waiting(at)
        elif at < pipe.clock:
            self.reject(lineno, f"at {obj['at']} is earlier than the clock {fmt_time(pipe.clock)}; "
                        "inputs must be in non-decreasing arrival order", pipe.clock)
            return
        kind = obj.get("kind")
        if kind == "alarm":                  # the hot path: straight to the correlator
            alarm = alarm_from_dict(obj.get("alarm"))
            if type(alarm) is Alarm:
                records = pipe.submit_alarm(alarm, at)
                if records:
                    self.write(records)
                return
        if kind not in INPUT_KINDS:
            self.write(pipe.advance(at))
            self.reject(lineno, f"kind: {kind!r} is not one of {', '.join(INPUT_KINDS)}", at)
            return
        event = decode_event(obj)
        if isinstance(event, Rejected):
            self.write(pipe.advance(at))
            self.reject(lineno, event.reason, at)
            return
        records, refused = pipe.submit(event, at)
        self.write(records)
        if refused is not None:
            self.reject(lineno, refused.reason, at)

    def finish(self, until: float | None) -> None:
        pipe = self.pipeline
        self._flush_waiting(pipe.clock)
        if pipe.clock is not None:
            end = until if until is not None and until > pipe.clock else pipe.clock
            self.write(pipe.advance(end))

    def run(self, stream: IO[bytes], until: float | None) -> int:
        for lineno, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            self.feed_line(lineno, raw)
            if self.progress is not None and lineno % 20000 == 0:
                self.progress.write(f"\rreplay: line {lineno:,}, {self.pipeline.alarms_in:,} alarms, "
                                    f"{self.counts['fault.opened']:,} faults")
                self.progress.flush()
        self.finish(until)
        if self.progress is not None:
            self.progress.write("\n")
        return EXIT_REJECTED if self.rejected else EXIT_OK

    def summary(self) -> str:
        c = self.counts
        lines = [
            "faultline replay summary",
            f"  alarms in: {self.pipeline.alarms_in:,}   unmapped: {c['alarm.unmapped']:,}   "
            f"rejected lines: {self.rejected:,}",
            f"  faults opened: {c['fault.opened']:,}   serious: {c['fault.serious']:,}   "
            f"cleared: {c['fault.cleared']:,}",
        ]
        if self.serious_rules:
            rules = sorted(self.serious_rules.items())
            lines.append("  serious by rule: " + ", ".join(f"{r} {n}" for r, n in rules))
        if self.queues:
            lines.append("  work orders per queue:")
            lines.extend(f"    {q:<40} {n:>6,}" for q, n in sorted(self.queues.items()))
        lines.append(f"  escalations: {c['escalation']:,}   sms: {c['sms']:,}   "
                     f"deadlines missed: {c['deadline.missed']:,}")
        return "\n".join(lines) + "\n"


def warn_to(stream: IO[str]):
    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            stream.write(f"warning: {message}\n")
    return warn


def replay_main(inventory, rulebook, events_path: str, until: float | None, summary: bool) -> int:
    pipeline = Pipeline(inventory, rulebook, warn_to(sys.stderr))
    pipeline.settle()
    out = sys.stdout.buffer
    progress = sys.stderr if sys.stderr.isatty() else None
    replay = Replay(pipeline, out, progress)
    with (sys.stdin.buffer if events_path == "-" else open(events_path, "rb")) as stream:
        status = replay.run(stream, until)
    out.flush()
    if summary:
        sys.stderr.write(replay.summary())
    return status
