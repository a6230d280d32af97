"""Timers as data (RULES.md §7, T-3, T-7).

A timer is a due time and a payload. The queue orders timers that fall due at the same
instant by the order their faults opened, then by the rank of the §7 table (TM-1 first),
then by scheduling order, so firing is deterministic. Cancellation is lazy: the owner
checks, when a timer comes back, whether it still applies (a generation number or the
fault's state), which keeps cancel O(1) and makes a stale timer harmless.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

# Rank of each timer kind within one fault and instant (T-7: the order of the §7 table).
RANK = {
    "TM-1": 1, "TM-2": 2, "TM-3": 3, "TM-4": 4, "TM-5": 5, "TM-6": 6, "TM-7": 7,
    "TM-8": 8, "TM-9": 9, "TM-10": 10, "AL-5": 11,
}


_INF = float("inf")

# The live service's catch-up (TM-6 after a downtime): on the wall clock a timer fires
# within milliseconds of its due time; a clock that moves further than this in one step
# is time the service could not run (it was down, or the wall clock jumped), and a
# repeating timer does not walk through it slot by slot (Dispatcher.fire_next's skip_to).
LIVE_CATCH_UP_S = 60.0


class TimerQueue:
    """A min-heap of (due, fault_seq, rank, seq) keyed timers."""

    __slots__ = ("heap", "_seq")

    def __init__(self) -> None:
        # The hot path reads heap[0][0] (the next due time) directly; only this class writes it.
        self.heap: list[tuple[float, int, int, int, str, Any]] = []
        self._seq = 0

    def schedule(self, due: float, fault_seq: int, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (due, fault_seq, RANK[kind], self._seq, kind, payload))

    def next_due(self) -> float:
        """The due time of the next timer, or +inf: one comparison on the hot path."""
        heap = self.heap
        return heap[0][0] if heap else _INF

    def peek_key(self) -> tuple[float, int, int, int] | None:
        """The ordering key of the next timer, or None when there is none."""
        if not self.heap:
            return None
        head = self.heap[0]
        return head[0], head[1], head[2], head[3]

    def pop(self) -> tuple[float, str, Any]:
        due, _fs, _rank, _seq, kind, payload = heapq.heappop(self.heap)
        return due, kind, payload

    def __len__(self) -> int:
        return len(self.heap)

    def pending(self) -> list[tuple[float, int, str, Any]]:
        """Every pending timer in due order (for persistence and inspection)."""
        return [(t[0], t[1], t[4], t[5]) for t in sorted(self.heap)]


Key = tuple[float, float, float]
"""A timer's place in T-7 order: (due, fault seq, §7 rank). ±inf bound a walk."""


class TimerSource(Protocol):
    def next_timer_key(self) -> tuple[float, int, int, int] | None: ...


def due_in_order(sources: Sequence[TimerSource], bound: Key,
                 clock: Callable[[], float | None]) -> Iterator[tuple[int, float]]:
    """The one T-7 walk: of every timer of `sources` whose (due, fault, rank) key sorts
    before `bound`, in that order (a tie goes to the earlier source: the correlator's before
    the dispatcher's), yield (which source, the clock to fire it at — its due time, or
    `clock()` when it is overdue, T-3). The caller fires that timer before asking for the
    next: firing may schedule more. `(t, inf, inf)` bounds "every timer due by t"."""
    while True:
        best_i, best = -1, None
        for i, source in enumerate(sources):
            key = source.next_timer_key()
            if key is not None and (best is None or key[:3] < best):
                best_i, best = i, key[:3]
        if best is None or best >= bound:
            return
        now = clock()
        yield best_i, (best[0] if now is None or best[0] > now else now)
