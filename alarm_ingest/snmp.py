"""SNMP trap datagrams → `Trap` values: SNMPv1 Trap-PDUs, SNMPv2c SNMPv2-Trap-PDUs and
SNMPv2c InformRequest-PDUs, as they arrive in one UDP datagram. Anything else (SNMPv3,
requests and responses, broken BER) is a `Rejected` naming what was wrong; `decode_trap`
never raises, whatever the bytes.

BER is parsed by pysnmp (the maintained SNMP library) with its pyasn1 decoder, which is
fuzzed upstream and bounds nesting depth, tag, length and OID-arc sizes; this module adds
the limits of a trap receiver (datagram size, varbind count, text length, RFC 2578 OIDs).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyasn1.codec.ber import decoder
from pyasn1.type import univ
from pysnmp.proto import api, rfc1155, rfc1902

from alarm_ingest.snmp_v3 import V3Receiver
from shared.model import Rejected

MAX_DATAGRAM = 8192         # traps fit a packet (~1,500 bytes); pyasn1 takes ~0.35 s on 64 KiB, so a
                            # flood of huge datagrams is refused before parsing, not decoded
MAX_VARBINDS = 256
MAX_TEXT = 1024             # characters of one value (and of the community)
MAX_REASON = 300
MAX_OID_ARCS = 128          # RFC 2578 §3.5: at most 128 sub-identifiers, each < 2**32

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
_GENERIC_TRAPS = "1.3.6.1.6.3.1.1.5."     # RFC 3584 §3.1: coldStart(0) is .1 … egpNeighborLoss(5) .6

_VERSIONS = {api.SNMP_VERSION_1: "v1", api.SNMP_VERSION_2C: "v2c"}


@dataclass(frozen=True, slots=True)
class Trap:
    version: str                 # "v1", "v2c" or "v3"
    community: str               # UTF-8, undecodable bytes as U+FFFD
    trap_oid: str                # dotted; for v1 the v2c-equivalent OID (RFC 3584 §3.1)
    uptime: int | None           # sysUpTime.0 (v2c) / time-stamp (v1), hundredths of a second
    agent: str | None            # v1 agent-addr as a dotted quad; None for v2c
    varbinds: tuple[tuple[str, str], ...]   # (OID, value as text); v2c without sysUpTime.0, snmpTrapOID.0


class _Refused(Exception):
    """A reason to refuse the datagram, raised from deep inside and caught by `decode_trap`."""


def decode_trap(data: bytes, v3: V3Receiver | None = None) -> Trap | Rejected:
    """One datagram → a Trap, or the reason it is refused. `v3`: the SNMPv3 users (None: v3
    traps are refused, naming the setting that admits them)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return Rejected(f"snmp: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        return Rejected("snmp: empty datagram")
    if len(data) > MAX_DATAGRAM:
        return Rejected(f"snmp: {len(data):,} bytes, more than a trap's {MAX_DATAGRAM:,}")
    try:
        return _decode(bytes(data), v3)
    except _Refused as refused:
        return Rejected(_cap(str(refused), MAX_REASON))
    except Exception as err:     # total by contract: a decoder bug is a refusal, not a crash
        return Rejected(_cap(f"snmp: the message could not be decoded ({_error(err)})", MAX_REASON))


def _decode(data: bytes, v3: V3Receiver | None) -> Trap:
    number = _version(data)
    if number == 3:
        return _v3(data, v3)
    if number not in _VERSIONS:
        shown = number if abs(number) < 10**6 else "(too large to show)"
        raise _Refused(f"snmp: unknown SNMP version number {shown} (v1 and v2c traps only)")
    version = _VERSIONS[number]
    p_mod = api.PROTOCOL_MODULES[number]
    try:
        message, rest = decoder.decode(data, asn1Spec=p_mod.Message())
    except Exception as err:
        raise _Refused(f"snmp: not a valid SNMP{version} message ({_error(err)})") from None
    if rest:
        raise _Refused(f"snmp: {_bytes(len(rest))} of trailing data after the SNMP{version} message")

    community = _cap(bytes(p_mod.apiMessage.get_community(message)).decode("utf-8", "replace"))
    pdu = p_mod.apiMessage.get_pdu(message)
    kind = type(pdu).__name__.removesuffix("PDU")      # GetRequest, SNMPv2Trap, InformRequest, Trap…
    if kind not in ("Trap", "SNMPv2Trap", "InformRequest"):
        raise _Refused(f"snmp: a {kind} PDU, not a trap")
    # The v1 Trap-PDU keeps its varbinds after enterprise … time-stamp; each version's apiTrapPDU
    # knows where (v2c's is the generic PDU API, so it serves InformRequest too).
    count = len(p_mod.apiTrapPDU.get_varbind_list(pdu))
    if count > MAX_VARBINDS:
        raise _Refused(f"snmp: {count} varbinds, more than the {MAX_VARBINDS} accepted")
    varbinds = [(_oid(name), value) for name, value in p_mod.apiTrapPDU.get_varbinds(pdu)]

    if kind == "Trap":
        return _v1(p_mod, pdu, community, varbinds)
    return _v2(version, community, varbinds)


def _v3(data: bytes, v3: V3Receiver | None) -> Trap:
    if v3 is None:
        raise _Refused("snmp: an SNMPv3 trap, and no SNMPv3 users are configured "
                       "(FAULTLINE_SNMP_V3_USERS)")
    got = v3.receive(data)
    if got is None:
        raise _Refused("snmp: SNMPv3 message refused by USM: an unknown user or engine id, wrong keys, "
                       "outside the time window, or not a trap")
    if len(got) > MAX_VARBINDS:
        raise _Refused(f"snmp: {len(got)} varbinds, more than the {MAX_VARBINDS} accepted")
    return _v2("v3", "", [(_oid(name), value) for name, value in got])


def _v2(version: str, community: str, varbinds: list) -> Trap:
    trap_oid = next((value for name, value in varbinds if name == SNMP_TRAP_OID), None)
    if trap_oid is None:
        raise _Refused("snmp: the trap has no snmpTrapOID.0 varbind")
    if not isinstance(trap_oid, univ.ObjectIdentifier):
        raise _Refused("snmp: snmpTrapOID.0 is not an OBJECT IDENTIFIER")
    uptime = next((value for name, value in varbinds if name == SYS_UPTIME), None)
    return Trap(version=version, community=community, trap_oid=_oid(trap_oid),
                uptime=int(uptime) if isinstance(uptime, univ.Integer) else None, agent=None,
                varbinds=tuple((name, _text(value)) for name, value in varbinds
                               if name not in (SYS_UPTIME, SNMP_TRAP_OID)))


def _version(data: bytes) -> int:
    try:
        return int(api.decodeMessageVersion(data))
    except Exception as err:     # ProtocolError; TypeError on some non-SEQUENCE starts
        reason = _error(err)
    # pysnmp's version peek also fails on a whole message followed by more bytes: name those.
    for p_mod in api.PROTOCOL_MODULES.values():
        try:
            _, rest = decoder.decode(data, asn1Spec=p_mod.Message())
        except Exception:
            continue
        if rest:
            raise _Refused(f"snmp: {_bytes(len(rest))} of trailing data after the SNMP message")
    raise _Refused(f"snmp: not a BER-encoded SNMP message ({reason})")


def _v1(p_mod, pdu, community: str, varbinds: list) -> Trap:
    enterprise = _oid(p_mod.apiTrapPDU.get_enterprise(pdu))
    generic = int(p_mod.apiTrapPDU.get_generic_trap(pdu))
    specific = int(p_mod.apiTrapPDU.get_specific_trap(pdu))
    if 0 <= generic <= 5:
        trap_oid = f"{_GENERIC_TRAPS}{generic + 1}"
    elif generic == 6 and 0 <= specific < 2**32:
        trap_oid = f"{enterprise}.0.{specific}"
    elif generic == 6:
        raise _Refused("snmp: specific-trap is out of range (0 to 4294967295)")
    else:
        raise _Refused("snmp: generic-trap is out of range (0 to 6)")
    return Trap(version="v1", community=community, trap_oid=trap_oid,
                uptime=int(p_mod.apiTrapPDU.get_timestamp(pdu)),
                agent=_ipv4(p_mod.apiTrapPDU.get_agent_address(pdu)),
                varbinds=tuple((name, _text(value)) for name, value in varbinds))


def _oid(value: univ.ObjectIdentifier) -> str:
    arcs = value.asTuple()
    if len(arcs) > MAX_OID_ARCS:
        raise _Refused(f"snmp: an OID with {len(arcs)} sub-identifiers (at most {MAX_OID_ARCS})")
    if any(arc >= 2**32 for arc in arcs):
        raise _Refused("snmp: an OID sub-identifier above 4294967295")
    return ".".join(map(str, arcs))


def _ipv4(value: univ.OctetString) -> str:
    octets = value.asOctets()
    return ".".join(map(str, octets)) if len(octets) == 4 else "0x" + octets.hex()


def _text(value: object) -> str:
    """A varbind value as text: the forms an operator reads, at most MAX_TEXT characters."""
    if isinstance(value, univ.Null):               # also noSuchObject, noSuchInstance, endOfMibView
        return ""
    if isinstance(value, univ.ObjectIdentifier):
        return _oid(value)
    if isinstance(value, rfc1155.IpAddress | rfc1902.IpAddress):
        return _ipv4(value)
    if isinstance(value, univ.Integer):            # Integer32, Counter, Gauge, TimeTicks, Counter64
        number = int(value)
        if number.bit_length() > 64:               # only v1 INTEGER is unbounded in the ASN.1
            raise _Refused("snmp: an integer value wider than 64 bits")
        return str(number)
    if isinstance(value, univ.OctetString):        # also Opaque and Bits
        octets = value.asOctets()
        try:
            text = octets.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
            return _cap(text)
        return _cap("0x" + octets[:MAX_TEXT].hex())
    return _cap(str(value))


def _cap(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _error(err: Exception) -> str:
    return _cap(f"{type(err).__name__}: {err}", 200)


def _bytes(count: int) -> str:
    return "1 byte" if count == 1 else f"{count} bytes"
