"""Field paths of a JSON example, for the fuzz tests that put every kind of value in every field."""

from __future__ import annotations

import json

MISSING = object()       # `with_field`'s value that removes the field


def field_paths(value: object, prefix: str = "") -> list[str]:
    """Every field path of an example (`alarm.severity`), nested objects included."""
    out = []
    if type(value) is dict:
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.append(path)
            out.extend(field_paths(v, path))
    return out


def with_field(example: object, path: str, new: object) -> object:
    """A copy of `example` with the field at `path` replaced by `new` (MISSING: removed)."""
    doc = json.loads(json.dumps(example))
    parts = path.split(".")
    node = doc
    for p in parts[:-1]:
        node = node[p]
    if new is MISSING:
        del node[parts[-1]]
    else:
        node[parts[-1]] = new
    return doc
