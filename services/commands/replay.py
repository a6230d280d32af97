"""`faultline replay` (CONTRACT §3): the rulebook run on recorded events, on a simulated clock."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import IO

import orjson

from alarm_ingest.normalized import alarm_from_dict
from services.drivers.envelope import decode_input
from services.drivers.pipeline import Pipeline
from shared.clock import TimeFormatError, fmt_time, parse_time, parse_time_cached
from shared.model import Alarm, Rejected

EXIT_OK, EXIT_USAGE, EXIT_REJECTED = 0, 2, 3
# A replay line longer than this is refused (a line holds one input; 10 MB ones are fine).
MAX_LINE_BYTES = 64 << 20
MAX_SKIP_BYTES = 1 << 30     # past this, a line that never ends stops the reading
# stdout closed by its reader (`faultline replay … | head`): the shell's status for SIGPIPE
# (128 + 13), which is what a command killed by the signal would report.
EXIT_BROKEN_PIPE = 141
# A gap between two lines longer than this streams the timers it fires (see feed_line).
LONG_GAP_S = 3600.0


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
            # Unreadable, or outside the window: refused at the clock, which does not move
            # (a line dated 9999 must not drag the clock and its timers there).
            if obj.get("at") is None:
                reason = "missing field at"
            else:
                try:
                    parse_time(obj["at"])
                    reason = "at: not a time"
                except TimeFormatError as err:
                    reason = f"at: {err}"
            self.reject(lineno, reason, pipe.clock)
            return
        clock = pipe.clock
        if clock is None:
            pipe.clock = at
            self._flush_waiting(at)
        elif at < clock:
            self.reject(lineno, f"at {obj['at']} is earlier than the clock {fmt_time(clock)}; "
                        "inputs must be in non-decreasing arrival order", clock)
            return
        elif at - clock > LONG_GAP_S:
            # After a long quiet gap, fire the timers due by `at` first and write them as they
            # fire, rather than as one list inside submit (same records, same order: T-3).
            self._advance(at)
        kind = obj.get("kind")
        if kind == "alarm":                  # the hot path: straight to the correlator
            alarm = alarm_from_dict(obj.get("alarm"))
            if type(alarm) is Alarm:
                records = pipe.submit_alarm(alarm, at)
                if records:
                    self.write(records)
                return
        event = decode_input(obj)
        if isinstance(event, Rejected):
            self._advance(at)
            self.reject(lineno, event.reason, at)
            return
        records, refused = pipe.submit(event, at)
        self.write(records)
        if refused is not None:
            self.reject(lineno, refused.reason, at)

    def _advance(self, to: float) -> None:
        """The pipeline's clock to `to`, writing the timers' records in bounded chunks."""
        for chunk in self.pipeline.advance_chunks(to):
            self.write(chunk)

    def finish(self, until: float | None) -> None:
        pipe = self.pipeline
        self._flush_waiting(pipe.clock)
        if pipe.clock is not None:
            self._advance(until if until is not None and until > pipe.clock else pipe.clock)

    def run(self, stream: IO[bytes], until: float | None) -> int:
        lineno = 0
        try:
            for lineno, raw in enumerate(_lines(stream), 1):
                if raw is None:
                    self.reject(lineno, f"line longer than {MAX_LINE_BYTES:,} bytes", self.pipeline.clock)
                    continue
                if not raw.strip():
                    continue
                self.feed_line(lineno, raw)
                self._progress(lineno)
        except LineTooLong as err:
            self.reject(lineno + 1, str(err), self.pipeline.clock)
        self.finish(until)
        if self.progress is not None:
            self.progress.write("\n")
        return EXIT_REJECTED if self.rejected else EXIT_OK

    def _progress(self, lineno: int) -> None:
        if self.progress is not None and lineno % 20000 == 0:
            self.progress.write(f"\rreplay: line {lineno:,}, {self.pipeline.alarms_in:,} alarms, "
                                f"{self.counts['fault.opened']:,} faults")
            self.progress.flush()

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


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """The stream's lines, each read with a bound; None for a line over MAX_LINE_BYTES,
    whose rest is read and dropped in pieces, up to MAX_SKIP_BYTES: `--events /dev/zero`
    is one endless line, which must cost bounded memory and end."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES:
            yield line
            continue
        skipped = len(line)
        while not line.endswith(b"\n"):
            if skipped > MAX_SKIP_BYTES:
                raise LineTooLong(f"a line longer than {MAX_SKIP_BYTES:,} bytes; the rest of the "
                                  "events was not read")
            line = stream.readline(1 << 20)
            if not line:
                break
            skipped += len(line)
        yield None


class LineTooLong(Exception):
    """An events line that does not end within MAX_SKIP_BYTES: reading stops there."""


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
    try:
        with (sys.stdin.buffer if events_path == "-" else open(events_path, "rb")) as stream:
            status = replay.run(stream, until)
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. The recipe of the Python docs
        # (signal module, "Note on SIGPIPE"): point stdout at devnull, so the interpreter's
        # own flush of the unwritten rest at exit does not fail with a second traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    if summary:
        sys.stderr.write(replay.summary())
    return status
