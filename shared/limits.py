"""Bounds for the files read at start-up (inventory, rulebook): size and nesting depth.

A path may name something that never ends (`/dev/zero`, a FIFO) or a document nested so
deep that a recursive parser or validator overflows the stack; both must end in a named
problem, not in memory exhaustion or a RecursionError.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["MAX_DEPTH", "FileTooLarge", "read_bounded", "too_deep"]

#: Containers (mappings and lists) allowed on one path from the document's root, the root
#: included. The contract's documents need 5; 64 leaves room for operators' extra fields.
MAX_DEPTH = 64

_CHUNK = 1 << 20


class FileTooLarge(Exception):
    """The file holds more than `limit` bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"larger than the limit of {human_bytes(limit)}")


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def read_bounded(path: str | Path, limit: int) -> bytearray:
    """The file's bytes, or FileTooLarge once more than `limit` bytes turn up; OSError as usual.

    Reads in chunks, at most limit+1 bytes in all, so a device or pipe that never ends
    costs no more memory than a file at the limit. A bytearray, not bytes: converting
    would copy a file of up to `limit` bytes once more (orjson and .decode take either).
    """
    with open(path, "rb", buffering=0) as f:
        info = os.fstat(f.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise FileTooLarge(limit)  # no need to read what the size already tells
        data = bytearray()
        while len(data) <= limit:
            chunk = f.read(min(_CHUNK, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether some path of dicts/lists from `value` holds more than `limit` containers.

    Iterative, so it works where recursion would overflow. YAML aliases can make a
    document a DAG (one node reached many ways: each container is walked once, its height
    remembered) or even a cycle (`&a [*a]`: its path never ends, so it is too deep).
    """
    if not isinstance(value, (dict, list)):
        return False
    height: dict[int, int] = {}  # id(container) -> containers on its longest downward path
    # the current path: [container, iterator over its children, tallest child so far]
    path: list[list[Any]] = [[value, _children(value), 0]]
    while path:
        top = path[-1]
        child = next(top[1], _END)
        if child is _END:
            path.pop()
            h = top[2] + 1
            height[id(top[0])] = h
            if path:
                path[-1][2] = max(path[-1][2], h)
            continue
        if not isinstance(child, (dict, list)):
            continue
        known = height.get(id(child))
        if known is not None:
            if len(path) + known > limit:
                return True
            top[2] = max(top[2], known)
            continue
        if len(path) + 1 > limit:
            return True
        path.append([child, _children(child), 0])
    return False


_END = object()


def _children(value: dict | list):
    return iter(value.values() if isinstance(value, dict) else value)
