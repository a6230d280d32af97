"""Time on the wire and inside the engine.

Inside, an instant is a float of Unix seconds: cheap to compare and add. On the wire it is
ISO-8601 with an explicit offset; output is always in Asia/Shanghai (+08:00), which has had
no daylight saving since 1991, so a fixed offset is exact for the dates we handle.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8))

_parse_cache: dict[str, float] = {}
_fmt_cache: dict[float, str] = {}
_CACHE_LIMIT = 65536


class TimeFormatError(ValueError):
    """A time string that is not ISO-8601 with an explicit offset."""


def parse_time(text: object) -> float:
    """Parse an ISO-8601 time that carries its offset; naive times are refused."""
    if type(text) is not str:
        raise TimeFormatError(f"expected an ISO-8601 time string, got {type(text).__name__}")
    ts = _parse_cache.get(text)
    if ts is not None:
        return ts
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise TimeFormatError(f"{text!r} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        raise TimeFormatError(f"{text!r} has no UTC offset (write e.g. +08:00)")
    ts = dt.timestamp()
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
    """Format an instant as ISO-8601 in +08:00 (seconds; microseconds only when present)."""
    text = _fmt_cache.get(ts)
    if text is None:
        text = datetime.fromtimestamp(ts, SHANGHAI).isoformat()
        if len(_fmt_cache) >= _CACHE_LIMIT:
            _fmt_cache.clear()
        _fmt_cache[ts] = text
    return text


def local(ts: float) -> datetime:
    """The instant as an aware datetime in Asia/Shanghai."""
    return datetime.fromtimestamp(ts, SHANGHAI)


def whole_seconds(start: float, end: float) -> int:
    """Whole seconds from start to end, never negative (RULES.md T-6)."""
    span = end - start
    return int(span) if span > 0 else 0
