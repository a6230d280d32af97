"""The clocks the live service reads (RULES.md T-1: the clock is when the service handles things).

The engine asks a `Clock` for `now()` once per input or tick and passes it down; the rules
never read time themselves. `real_seconds` converts a span of clock time into how long to
sleep, so an accelerated demo clock and the wall clock share one timer loop.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds."""
        ...

    def real_seconds(self, clock_seconds: float) -> float:
        """How long to sleep for this clock to move on by `clock_seconds`."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds


class ScaledClock:
    """Starts at `origin` and runs `speed` times faster than real time (the demo's clock)."""

    def __init__(self, origin: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.origin = origin
        self.speed = speed
        self._start = time.monotonic()

    def now(self) -> float:
        return self.origin + (time.monotonic() - self._start) * self.speed

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds / self.speed
