"""Which database failures are the data's fault, and which the database's.

A loop that stores a batch must tell them apart: a value the database refuses (too long for
its column, a NUL in text, JSON nested beyond what the encoder writes) is the fault of the
input that brought it — refuse that input, keep the rest — while a lost connection or a
fenced writer is the database's trouble — keep nothing, retry the batch later.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError


class UnstorableInput(ValueError):
    """An input, or what it produced, cannot be written (e.g. JSON nested beyond what the
    encoder takes): a fault of that one input, not of the database."""


def data_fault(err: BaseException) -> bool:
    """Did the database refuse the data itself rather than fail? UnstorableInput, or SQLSTATE
    class 22 (a value too long for its column, a NUL in text, a number out of range): then
    the input that brought it is at fault. A unique key (class 23) is never one input's
    fault: in the production stages it fences a zombie writer off."""
    if isinstance(err, (UnstorableInput, DataError)):
        return True
    orig = getattr(err, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(state, str) and state.startswith("22")
