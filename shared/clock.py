"""Time on the wire and inside the engine.

Inside, an instant is a float of Unix seconds: cheap to compare and add. On the wire it is
ISO-8601 with an explicit offset; output is always in Asia/Shanghai (+08:00), which has had
no daylight saving since 1991, so a fixed offset is exact for the dates we handle.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8))

# The sane window for every time read from outside (inputs, --until): an NMS with a dead
# RTC sends 1970 or 2106, a typo sends 9999, and replay or a timer chain must never walk
# towards such a time. Start inclusive, end exclusive.
TIME_MIN_TEXT = "2000-01-01T00:00:00+08:00"
TIME_MAX_TEXT = "2100-01-01T00:00:00+08:00"
TIME_MIN = datetime.fromisoformat(TIME_MIN_TEXT).timestamp()
TIME_MAX = datetime.fromisoformat(TIME_MAX_TEXT).timestamp()

_parse_cache: dict[str, float] = {}
_fmt_cache: dict[float, str] = {}
_CACHE_LIMIT = 65536


class TimeFormatError(ValueError):
    """A time string that is not ISO-8601 with an explicit offset, or outside the window."""


def in_window(ts: float) -> bool:
    """Is the instant inside [TIME_MIN, TIME_MAX)? False for NaN too."""
    return TIME_MIN <= ts < TIME_MAX


def _short(text: str) -> str:
    # A reason quotes the value, but never the whole of a 10 MB string.
    return repr(text) if len(text) <= 64 else repr(text[:64]) + "…"


def parse_time(text: object) -> float:
    """Parse an ISO-8601 time that carries its offset and lies in the window; naive times
    and times outside [TIME_MIN_TEXT, TIME_MAX_TEXT) are refused."""
    if type(text) is not str:
        raise TimeFormatError(f"expected an ISO-8601 time string, got {type(text).__name__}")
    ts = _parse_cache.get(text)
    if ts is not None:
        return ts
    try:
        dt = datetime.fromisoformat(text)
        naive = dt.tzinfo is None
        ts = 0.0 if naive else dt.timestamp()
    except (ValueError, OverflowError):
        raise TimeFormatError(f"{_short(text)} is not an ISO-8601 time") from None
    if naive:
        raise TimeFormatError(f"{_short(text)} has no UTC offset (write e.g. +08:00)")
    if not in_window(ts):
        raise TimeFormatError(f"{_short(text)} is outside {TIME_MIN_TEXT} (inclusive) … "
                              f"{TIME_MAX_TEXT} (exclusive)")
    if len(_parse_cache) >= _CACHE_LIMIT:
        _parse_cache.clear()
    _parse_cache[text] = ts
    return ts


def parse_time_cached(text: object) -> float | None:
    """parse_time for the hot path: None instead of an exception for a bad value."""
    try:
        return _parse_cache[text]
    except (KeyError, TypeError):
        pass
    try:
        return parse_time(text)
    except TimeFormatError:
        return None


def fmt_time(ts: float) -> str:
    """Format an instant as ISO-8601 in +08:00 (seconds; microseconds only when present).

    Total: an instant that datetime cannot hold (before year 1, after 9999, ±inf, NaN)
    still gets a string, never an exception. Times read from outside are kept in the
    window, so only a bug could get here with one; it must not take the service down."""
    text = _fmt_cache.get(ts)
    if text is None:
        try:
            text = datetime.fromtimestamp(ts, SHANGHAI).isoformat()
        except (OverflowError, OSError, ValueError):
            return _fmt_far(ts)
        if len(_fmt_cache) >= _CACHE_LIMIT:
            _fmt_cache.clear()
        _fmt_cache[ts] = text
    return text


# The Gregorian calendar repeats every 400 years (146,097 days): an instant outside
# datetime's years 1…9999 is printed as its image in 2000…2399 with the year put back.
_CYCLE_S = 146097 * 86400
_CYCLE_BASE = datetime(2000, 1, 1, tzinfo=SHANGHAI).timestamp()


def _fmt_far(ts: float) -> str:
    if not math.isfinite(ts):
        return repr(ts)                   # 'nan', 'inf', '-inf': no instant to print
    offset = math.fmod(ts - _CYCLE_BASE, _CYCLE_S)
    if offset < 0:
        offset += _CYCLE_S
    cycles = round((ts - _CYCLE_BASE - offset) / _CYCLE_S)
    image = datetime.fromtimestamp(_CYCLE_BASE + offset, SHANGHAI)
    year = image.year + 400 * cycles
    # ISO 8601 expanded years: a sign and at least four digits outside 0001…9999.
    shown = f"{year:04d}" if 0 < year <= 9999 else f"{year:+05d}"
    return shown + image.isoformat()[4:]


def local(ts: float) -> datetime:
    """The instant as an aware datetime in Asia/Shanghai."""
    return datetime.fromtimestamp(ts, SHANGHAI)


def whole_seconds(start: float, end: float) -> int:
    """Whole seconds from start to end, never negative (RULES.md T-6)."""
    span = end - start
    return int(span) if span > 0 else 0
