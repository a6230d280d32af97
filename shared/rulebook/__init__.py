"""The rulebook: every threshold, list and table of RULES.md, loaded from YAML.

`load_rulebook()` reads the built-in Guangdong V2.2 rulebook (or an operator's file),
validates it completely with a pydantic schema, and returns a `Rulebook`: a plain
frozen dataclass with times in seconds, used in the hot path. A bad rulebook raises
`RulebookError` listing every problem, each named by its path in the document.

The package is split by role; import from `shared.rulebook` itself:

- `shared.rulebook.model`: the runtime `Rulebook`, `SeriousRow`, `RouteRow`, their
  lookups, office hours (TM-4) and `calendar_notice`; pure, no YAML, no file I/O.
- `shared.rulebook.document`: the vocabulary, the pydantic document (`RulebookDoc` and
  its `*Doc` sections) and `RulebookError`.
- `shared.rulebook.checks`: the semantic checks the schema cannot express.
- `shared.rulebook.load`: reading YAML safely, `extends: builtin`, building the Rulebook.

The built-in file stays in `shared/rulebooks/` (package data of `shared`).
"""

from __future__ import annotations

from shared.rulebook.document import LAYERS, TARGETS, RulebookError
from shared.rulebook.load import (
    BUILTIN_NAME,
    MAX_RULEBOOK_BYTES,
    builtin_path,
    load_rulebook,
    parse_rulebook,
)
from shared.rulebook.load import _Loader as _Loader  # private; tests read YAML with it
from shared.rulebook.model import RouteRow, Rulebook, SeriousRow, calendar_notice

__all__ = [
    "BUILTIN_NAME",
    "LAYERS",
    "MAX_RULEBOOK_BYTES",
    "TARGETS",
    "RouteRow",
    "Rulebook",
    "RulebookError",
    "SeriousRow",
    "builtin_path",
    "calendar_notice",
    "load_rulebook",
    "parse_rulebook",
]
