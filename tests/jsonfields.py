"""Field paths of a JSON example, for the fuzz tests that put every kind of value in every field."""

from __future__ import annotations


def field_paths(value: object, prefix: str = "") -> list[str]:
    """Every field path of an example (`alarm.severity`), nested objects included."""
    out = []
    if type(value) is dict:
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.append(path)
            out.extend(field_paths(v, path))
    return out
