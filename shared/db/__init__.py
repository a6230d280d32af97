"""The SQL store of the production path (CONTRACT §4).

- `shared.db.models`: the tables (input log, outbox, shard ownership, read model).
- `shared.db.projection`: output records applied to the read model.
- `shared.db.migrate`: the Alembic migrations (`faultline db upgrade`).

This module only names the database: it imports neither SQLAlchemy engines nor Alembic
(`redacted_url` imports SQLAlchemy's URL parser when called).
"""

from __future__ import annotations

import os
import re
from typing import Any


class DatabaseError(Exception):
    """The database cannot be used; the message is one line, without the password."""

    #: the exit status of a command that stops on it: 1 the database failed, 2 the URL is unusable
    exit_status = 1


class DatabaseURLError(DatabaseError):
    """The URL itself is unusable: unparseable, unknown dialect, driver not installed."""

    exit_status = 2


#: The database used when no URL is given (FAULTLINE_DATABASE_URL unset).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.faultline/faultline.sqlite3"

_ASYNC_DRIVERS = (
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("sqlite://", "sqlite+aiosqlite://"),
)


def database_url(url: str | None = None) -> str:
    """The async SQLAlchemy URL to use.

    None or empty: FAULTLINE_DATABASE_URL, else the local SQLite file. Plain
    `postgresql://` (and `postgres://`) URLs are read as `postgresql+asyncpg://`, plain
    `sqlite://` as `sqlite+aiosqlite://`; other URLs are returned unchanged. For an SQLite
    file the directory that holds it is created.
    """
    if not url:
        url = os.environ.get("FAULTLINE_DATABASE_URL") or DEFAULT_DATABASE_URL
    for plain, driver in _ASYNC_DRIVERS:
        if url.startswith(plain):
            url = driver + url[len(plain):]
            break
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix):].split("?", 1)[0]
        if path and path != ":memory:":
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
    return url


# query parameters that carry a credential (asyncpg and libpq take `password`, `sslpassword`)
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)


def redacted_url(url: Any) -> str:
    """The database URL fit for a log or console line: any password shown as `***`.

    Total: never raises. An URL SQLAlchemy cannot parse keeps its scheme and the part
    after the last `@`, everything between is masked; a string that is no URL at all is
    not shown (it may be a secret pasted into the wrong place).
    """
    text = url if isinstance(url, str) else str(url)
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(text)
        if parsed.host and "@" in parsed.host:
            # `user:p@ss@host`: SQLAlchemy splits at the first '@', so part of the password
            # would show as the host; mask up to the last '@' instead
            return _mask_authority(text)
        secret = {k for k in parsed.query if _SECRET_KEY.search(k)}
        if parsed.password is None and not secret:
            return text  # nothing to hide: shown as given (rendering would re-quote it)
        if secret:
            parsed = parsed.set(query={k: ("***" if k in secret else v) for k, v in parsed.query.items()})
        return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except Exception:  # unparseable: fall back to a masking that cannot leak
        return _mask_authority(text)


def _mask_authority(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return "<not a database URL>"
    at = rest.rfind("@")
    if at < 0:
        return text
    user = rest[:at].split(":", 1)[0] if ":" in rest[:at] else rest[:at]
    return f"{scheme}://{user}:***@{rest[at + 1:]}"
