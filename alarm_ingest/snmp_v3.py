"""SNMPv3 traps (USM, RFC 3414; AES, RFC 3826): who may send them, and their decoding.

The users are an operator's file (FAULTLINE_SNMP_V3_USERS, YAML), validated at start-up like
the vendor mappings, every problem named by entry:

    users:
      - name: noc                       # the USM user name the device sends as
        engine_id: "8000000001020304"   # the sending device's snmpEngineID, hex
        auth: SHA                       # none | MD5 | SHA | SHA224 | SHA256 | SHA384 | SHA512
        auth_key: "authpass123"         # pass phrase (8+ characters)
        priv: AES                       # none | DES | AES | AES192 | AES256
        priv_key: "privpass123"

A trap's receiver is not authoritative: each device's engine id is needed to localize its
keys, so each (user, device) pair is one entry. Decoding is pysnmp's own SNMP engine with no
transport: authentication, the time window and decryption as the RFCs say (privacy needs the
`cryptography` package). The keys stay in this object: never logged, never in a reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.problems import format_pydantic_errors
from shared.rulebook.document import RulebookError
from shared.rulebook.load import _read_yaml

MAX_USERS = 10000


class V3UsersError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("SNMPv3 users refused:\n" + "\n".join(f"  {p}" for p in self.problems))


class _User(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32)
    engine_id: str
    auth: Literal["none", "MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "none"
    auth_key: str | None = Field(default=None, min_length=8)
    priv: Literal["none", "DES", "AES", "AES192", "AES256"] = "none"
    priv_key: str | None = Field(default=None, min_length=8)

    @field_validator("engine_id")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.removeprefix("0x")
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){5,32}", v):
            raise ValueError("an snmpEngineID in hex, 5 to 32 octets (like 8000000001020304)")
        return v.lower()


class _UsersDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[_User] = Field(max_length=MAX_USERS)


def _problems_of(doc: _UsersDoc, where: str) -> list[str]:
    problems = []
    seen: set[tuple[str, str]] = set()
    for i, u in enumerate(doc.users):
        at = f"{where}: users[{i}] ({u.name})"
        if u.auth == "none" and u.priv != "none":
            problems.append(f"{at}: privacy needs authentication (auth: none with priv: {u.priv})")
        if u.auth != "none" and not u.auth_key:
            problems.append(f"{at}: auth {u.auth} needs auth_key")
        if u.priv != "none" and not u.priv_key:
            problems.append(f"{at}: priv {u.priv} needs priv_key")
        if (u.name, u.engine_id) in seen:
            problems.append(f"{at}: user {u.name} of engine {u.engine_id} is given twice")
        seen.add((u.name, u.engine_id))
    return problems


class V3Receiver:
    """Decodes SNMPv3 trap datagrams from the configured users (one pysnmp engine, no transport)."""

    def __init__(self, users: list[_User]) -> None:
        self.users = users
        self._engine = None
        self._got: list = []

    def _engine_for(self):
        if self._engine is None:                  # built once, when the first v3 trap comes
            from pysnmp.entity import config, engine
            from pysnmp.entity.rfc3413 import ntfrcv
            from pysnmp.proto.api import v2c

            auth = {"none": config.USM_AUTH_NONE, "MD5": config.USM_AUTH_HMAC96_MD5,
                    "SHA": config.USM_AUTH_HMAC96_SHA, "SHA224": config.USM_AUTH_HMAC128_SHA224,
                    "SHA256": config.USM_AUTH_HMAC192_SHA256, "SHA384": config.USM_AUTH_HMAC256_SHA384,
                    "SHA512": config.USM_AUTH_HMAC384_SHA512}
            priv = {"none": config.USM_PRIV_NONE, "DES": config.USM_PRIV_CBC56_DES,
                    "AES": config.USM_PRIV_CFB128_AES, "AES192": config.USM_PRIV_CFB192_AES,
                    "AES256": config.USM_PRIV_CFB256_AES}
            eng = engine.SnmpEngine()
            for u in self.users:
                config.add_v3_user(eng, u.name, auth[u.auth], u.auth_key, priv[u.priv], u.priv_key,
                                   securityEngineId=v2c.OctetString(hexValue=u.engine_id))

            def received(_engine, _ref, _context_engine, _context, varbinds, _ctx) -> None:
                self._got.append(list(varbinds))
            ntfrcv.NotificationReceiver(eng, received)
            self._engine = eng
        return self._engine

    def receive(self, data: bytes, sender: tuple[str, int] = ("0.0.0.0", 162)) -> list | None:
        """The trap's varbinds [(OID, value)], or None when USM refused it (unknown user or
        engine, wrong keys, outside the time window, a report or request PDU)."""
        eng = self._engine_for()
        self._got.clear()
        try:
            eng.message_dispatcher.receive_message(eng, (1, 3, 6, 1, 6, 1, 1), sender, data)
        except Exception:                         # pysnmp's own refusal paths raise at times
            return None
        return self._got[0] if self._got else None


def load_v3_users(path: str | Path | None) -> V3Receiver | None:
    """The receiver of the users in `path` (None: no SNMPv3 users, v3 traps are refused), or
    V3UsersError naming every problem."""
    if path is None:
        return None
    where = str(path)
    try:
        raw = _read_yaml(Path(path), where)
    except RulebookError as err:
        raise V3UsersError(err.problems) from None
    try:
        doc = _UsersDoc.model_validate(raw)
    except ValidationError as err:
        errors = [{**e, "input": "(hidden)"} if set(e.get("loc", ())) & {"auth_key", "priv_key"} else e
                  for e in err.errors()]              # a key's value is never echoed
        raise V3UsersError([f"{where}: {p}" for p in format_pydantic_errors(errors)]) from None
    problems = _problems_of(doc, where)
    if problems:
        raise V3UsersError(problems)
    return V3Receiver(doc.users)
