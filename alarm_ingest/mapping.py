"""Vendor mappings: how a device's or an NMS's own words become a normalized alarm.

Data, not code: one YAML file per vendor or source (alarm_ingest/mappings/*.yaml built in;
an operator's directory, FAULTLINE_MAPPINGS, replaces or adds files by name). Each file is
validated when a process starts; a bad one stops it with every problem named by file and
path, like the rulebook. The format, with real-looking samples, is docs/feeds.md.

A mapping says, for one `format` (syslog, snmp, export):
- which messages it claims (`claims`: a regex on a syslog line's content; `traps`: trap OIDs;
  export mappings are named by the importer),
- `rules`, tried in order; the first that matches gives `cause`, `severity` and `state`,
  each a literal or a `{field}` template looked up in the `causes`, `severities` and
  `states` tables,
- how `resource_id` and `alarm_id` are built (`{field}` templates over the message's
  fields: `host`, `sender`, the regex's named groups, named varbinds, export columns).
A raise and its clear must build the same `alarm_id` (AL-1), so the default is
`{resource}:{cause}`. A claimed message that no rule matches becomes an `OTHER`
alarm keeping the vendor text when its severity is warning or worse, and is refused (with
the reason, to the dead letters) otherwise: it is a log line, not an alarm.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from alarm_ingest.snmp_v3 import V3Receiver, V3UsersError, load_v3_users
from shared.model import MAX_CAUSE, SEVERITIES
from shared.problems import format_pydantic_errors
from shared.rulebook.document import RulebookError
from shared.rulebook.load import _read_yaml

MAX_MAPPINGS = 200
_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
CAUSE_WORD = re.compile(r"[A-Z][A-Z0-9_]{0,%d}" % (MAX_CAUSE - 1))
STATES = ("raised", "cleared")


class MappingError(Exception):
    """Vendor mappings refused; `problems` names each bad entry by file and path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"vendor mappings refused ({len(self.problems)} problem(s)):\n{lines}")


# ---------------------------------------------------------------------------------------
# the document (pydantic: read once at start-up)

def _template_fields(text: str) -> list[str]:
    """The `{field}` (or `{first|second}`: the first the message gives) names of a template;
    ValueError for anything but plain names (no `{0.attr}`, no `{x[1]}`, no conversions: a
    template reads fields, nothing more)."""
    names = []
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not all(part.isidentifier() for part in name.split("|")) or spec or conversion:
            raise ValueError(f"{{{name}}}: a template field is a plain name, like {{interface}}, or "
                             "names to try in turn, like {ifName|ifDescr}")
        names.append(name)
    return names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleDoc(_Strict):
    id: str = Field(min_length=1, max_length=64)
    match: str | None = None          # syslog: regex searched in the content
    trap: str | None = None           # snmp: the trap OID
    name: str | None = None           # export: the alarm name column's value
    cause: str
    severity: str = "{severity}"
    state: str = "raised"
    resource: str | None = None       # this rule's resource template (else the mapping's)

    @field_validator("match")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise ValueError(f"not a regular expression: {err}") from None
        return v

    @field_validator("trap")
    @classmethod
    def _oid(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d+(\.\d+)+", v):
            raise ValueError(f"{v!r} is not a dotted OID")
        return v

    @field_validator("cause", "severity", "state", "resource")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None:
            _template_fields(v)
        return v


class MappingDoc(_Strict):
    name: str
    vendor: str = Field(min_length=1, max_length=64)
    format: Literal["syslog", "snmp", "export"]
    description: str = ""
    source: str = Field(min_length=1, max_length=255)
    claims: str | None = None
    hosts: str | None = None
    timezone: str = "Asia/Shanghai"
    resource: str
    alarm_id: str = "{resource}:{cause}"
    varbinds: dict[str, str] = {}
    columns: dict[str, str] = {}
    causes: dict[str, str] = {}
    severities: dict[str, str] = {}
    states: dict[str, str] = {}
    time_format: str | None = None
    rules: list[RuleDoc] = []

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError("lower-case letters, digits, '.', '_' and '-', at most 64")
        return v

    @field_validator("claims", "hosts")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return RuleDoc._regex(v)

    @field_validator("resource", "alarm_id", "source")
    @classmethod
    def _template(cls, v: str) -> str:
        _template_fields(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (like Asia/Shanghai)") from None
        return v

    @field_validator("varbinds")
    @classmethod
    def _varbinds(cls, v: dict[str, str]) -> dict[str, str]:
        for name, oid in v.items():
            if not name.isidentifier():
                raise ValueError(f"{name!r}: a varbind's name is a plain name, like ifDescr")
            if not re.fullmatch(r"\d+(\.\d+)+", oid):
                raise ValueError(f"{name}: {oid!r} is not a dotted OID")
        return v

    @field_validator("causes", "severities", "states")
    @classmethod
    def _table(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        fits, what = _TABLE_WORDS[info.field_name]
        for vendor, word in v.items():
            if not fits(word):
                raise ValueError(f"{vendor}: {word!r} is not {what}")
        return v


# What a vendor word may be mapped to, by table.
_TABLE_WORDS = {
    "causes": (lambda w: bool(CAUSE_WORD.fullmatch(w)), "a normalized cause (LOS, LINK_DOWN, …)"),
    "severities": (lambda w: w in SEVERITIES or w == "cleared",
                   f"one of cleared, {', '.join(sorted(SEVERITIES))}"),
    "states": (lambda w: w in STATES, "raised or cleared"),
}


# ---------------------------------------------------------------------------------------
# the runtime form (plain, compiled once)

@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    match: re.Pattern | None
    trap: str | None
    name: str | None
    cause: str
    severity: str
    state: str
    resource: str | None


@dataclass(frozen=True, slots=True)
class Mapping:
    name: str
    vendor: str
    format: str
    source: str
    claims: re.Pattern | None
    hosts: re.Pattern | None
    zone: ZoneInfo
    resource: str
    alarm_id: str
    varbinds: tuple[tuple[str, str], ...]     # (name, OID prefix), longest prefix first
    columns: dict[str, str]
    causes: dict[str, str]
    severities: dict[str, str]
    states: dict[str, str]
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Mappings:
    """Every mapping, in file-name order: the order claims are tried; and the SNMPv3 users
    traps may come from (alarm_ingest/snmp_v3.py; None: v3 traps are refused)."""

    all: tuple[Mapping, ...]
    snmp_v3: V3Receiver | None = None

    def of(self, fmt: str) -> list[Mapping]:
        return [m for m in self.all if m.format == fmt]

    def named(self, name: str) -> Mapping | None:
        return next((m for m in self.all if m.name == name), None)


def _build(doc: MappingDoc) -> Mapping:
    rules = tuple(Rule(r.id, re.compile(r.match) if r.match else None, r.trap, r.name, r.cause,
                       r.severity, r.state, r.resource) for r in doc.rules)
    return Mapping(doc.name, doc.vendor, doc.format, doc.source,
                   re.compile(doc.claims) if doc.claims else None,
                   re.compile(doc.hosts) if doc.hosts else None, ZoneInfo(doc.timezone),
                   doc.resource, doc.alarm_id,
                   tuple(sorted(doc.varbinds.items(), key=lambda kv: -len(kv[1]))),
                   dict(doc.columns), dict(doc.causes), dict(doc.severities), dict(doc.states), rules)


def _semantic(doc: MappingDoc, where: str) -> list[str]:
    """What pydantic cannot say: each rule has the key its format matches on, ids are unique,
    and literal causes and severities are normalized words."""
    problems = []
    key = {"syslog": "match", "snmp": "trap", "export": "name"}[doc.format]
    seen: set[str] = set()
    for i, rule in enumerate(doc.rules):
        at = f"{where}: rules[{i}] ({rule.id})"
        if getattr(rule, key) is None:
            problems.append(f"{at}: a {doc.format} rule needs `{key}`")
        for other in {"match", "trap", "name"} - {key}:
            if getattr(rule, other) is not None:
                problems.append(f"{at}: `{other}` is not used by a {doc.format} mapping (use `{key}`)")
        if rule.id in seen:
            problems.append(f"{at}: the id {rule.id} is used twice")
        seen.add(rule.id)
        if "{" not in rule.cause and not CAUSE_WORD.fullmatch(rule.cause):
            problems.append(f"{at}.cause: {rule.cause!r} is not a normalized cause (LOS, LINK_DOWN, …)")
        if "{" not in rule.severity and rule.severity not in SEVERITIES:
            problems.append(f"{at}.severity: {rule.severity!r} is not one of {', '.join(sorted(SEVERITIES))}")
        if "{" not in rule.state and rule.state not in STATES:
            problems.append(f"{at}.state: {rule.state!r} is not raised or cleared")
    if doc.format == "export":
        for needed in ("alarm_id", "name", "time"):
            if needed not in doc.columns:
                problems.append(f"{where}: columns: an export mapping names its `{needed}` column")
    if doc.format == "syslog" and doc.claims is None:
        problems.append(f"{where}: claims: a syslog mapping says which lines it claims (a regex; '' for all)")
    return problems


def parse_mapping(doc: object, where: str) -> tuple[Mapping | None, list[str]]:
    if not isinstance(doc, dict):
        return None, [f"{where}: (document): must be a mapping of fields"]
    try:
        model = MappingDoc.model_validate(doc)
    except ValidationError as err:
        return None, [f"{where}: {p}" for p in format_pydantic_errors(err.errors())]
    problems = _semantic(model, where)
    return (None if problems else _build(model)), problems


def builtin_dir() -> Path:
    return Path(str(resources.files("alarm_ingest") / "mappings"))


def load_mappings(directory: str | Path | None = None, v3_users: str | Path | None = None) -> Mappings:
    """The built-in mappings, with an operator's directory's files replacing or adding by file
    name, and the SNMPv3 users file; MappingError naming every problem of every file."""
    files = {p.name: p for p in sorted(builtin_dir().glob("*.yaml"))}
    if directory is not None:
        d = Path(directory)
        if not d.is_dir():
            raise MappingError([f"{d}: not a directory of vendor mappings (*.yaml)"])
        files.update({p.name: p for p in sorted(d.glob("*.yaml"))})
    if len(files) > MAX_MAPPINGS:
        raise MappingError([f"{directory}: {len(files)} mapping files, at most {MAX_MAPPINGS}"])
    problems: list[str] = []
    built: list[Mapping] = []
    names: dict[str, str] = {}
    for file_name in sorted(files):
        path = files[file_name]
        try:
            doc: Any = _read_yaml(path, str(path))
        except RulebookError as err:
            problems.extend(err.problems)
            continue
        mapping, found = parse_mapping(doc, str(path))
        problems.extend(found)
        if mapping is not None:
            if mapping.name in names:
                problems.append(f"{path}: name: {mapping.name} is also the name of {names[mapping.name]}")
            names[mapping.name] = str(path)
            built.append(mapping)
    receiver = None
    try:
        receiver = load_v3_users(v3_users)
    except V3UsersError as err:
        problems.extend(err.problems)
    if problems:
        raise MappingError(problems)
    return Mappings(tuple(built), receiver)


_default: Mappings | None = None


def default_mappings() -> Mappings:
    """The built-in mappings, read once (what replay and a process without
    FAULTLINE_MAPPINGS use)."""
    global _default
    if _default is None:
        _default = load_mappings()
    return _default
