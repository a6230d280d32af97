"""Many rows through one statement at the driver's cost, not SQLAlchemy's per row.

`conn.execute(stmt, rows)` with a list of dicts makes SQLAlchemy process every row's
parameters in Python (the profile of a storm had that at ~10% of a stage's CPU). Here the
statement is compiled once per dialect and the rows go to the driver's executemany as
tuples in the compiled order: the same SQL, the same rows. For statements whose values are
plain str, int, float, bool, bytes or None (what the log, outbox and read model write);
a value with a SQLAlchemy type conversion would skip it. A column's scalar default (the
models' `default=`) is filled in; a callable one is not supported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect

_MAX_CACHED = 512
_COMPILED: dict[tuple[str, int], tuple[Any, str, tuple[str, ...], dict[str, Any]]] = {}


def driver_rows(dialect: Dialect, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[tuple]]:
    """(SQL, parameter tuples) for `exec_driver_sql`: `rows` keyed by the statement's bind
    parameter names; a name a row lacks takes the value the statement gave it. `stmt` is
    one built once and kept (its compiled form is cached by identity)."""
    key = (dialect.name, id(stmt))
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not stmt:
        if len(_COMPILED) >= _MAX_CACHED:        # statements built per call would grow it
            _COMPILED.clear()
        compiled = stmt.compile(dialect=dialect, for_executemany=True)
        names = tuple(compiled.positiontup or ())
        if not compiled.positional:
            raise ValueError(f"{dialect.name}: a positional paramstyle is expected, not {dialect.paramstyle}")
        defaults = dict(compiled.params)
        table = getattr(stmt, "table", None)
        for column in getattr(table, "columns", ()):
            # A column's scalar Python-side default: SQLAlchemy's execution fills it, and the
            # driver's does not, so the compiled parameter takes it here.
            if (column.default is not None and column.default.is_scalar and column.key in names
                    and defaults.get(column.key) is None):
                defaults[column.key] = column.default.arg
        hit = _COMPILED[key] = (stmt, compiled.string, names, defaults)
    _stmt, sql, names, defaults = hit
    if any(name not in rows[0] for name in names):
        return sql, [tuple(row[n] if n in row else defaults.get(n) for n in names) for row in rows]
    return sql, [tuple(row[n] for n in names) for row in rows]


def insert_statement(table: Any, columns: Sequence[str]) -> Any:
    """INSERT of these columns with bind parameters named as the columns are, prefixed `p_`
    (SQLAlchemy keeps a column's own name for itself)."""
    from sqlalchemy import bindparam, insert
    return insert(table).values(**{c: bindparam(f"p_{c}") for c in columns})
