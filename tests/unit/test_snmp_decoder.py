"""`alarm_ingest.snmp.decode_trap`: real traps from net-snmp's `snmptrap`, traps built with
pysnmp's own encoder, the refusals, and a fuzz test that it never raises."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pysnmp.proto import api

from alarm_ingest.snmp import SNMP_TRAP_OID, SYS_UPTIME, Trap, decode_trap
from alarm_ingest.snmp_v3 import V3UsersError, load_v3_users
from shared.model import Rejected

V1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
IF_INDEX, IF_DESCR, IF_ADMIN, IF_OPER = (f"1.3.6.1.2.1.2.2.1.{column}.3" for column in (1, 2, 7, 8))
LINK_DOWN_VARBINDS = ((IF_INDEX, "3"), (IF_DESCR, "GigabitEthernet0/0/3"), (IF_ADMIN, "1"), (IF_OPER, "2"))

# An SNMPv3 noAuthNoPriv trap as net-snmp 5.9.3 sent it (`snmptrap -v 3 -e 0x8000000001020304
# -u faultline -l noAuthNoPriv HOST '' 1.3.6.1.6.3.1.1.5.3`).
NET_SNMP_V3_TRAP = bytes.fromhex(
    "30818c020103301102044788c01b020300ffe3040100020103042330210408800000000102030402010102030d60ca"
    "04096661756c746c696e6504000400304f041180001f888057a05720d29e166b000000000400a7380204434df2f2"
    "020100020100302a300f06082b0601020101030043030d60ca3017060a2b06010603010104010006092b0601060301"
    "010503")


# --- building messages with pysnmp's encoder ---------------------------------------------------

def _message(p_mod, pdu, community: str = "public") -> bytes:
    msg = p_mod.Message()
    p_mod.apiMessage.set_defaults(msg)
    p_mod.apiMessage.set_community(msg, community)
    p_mod.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def _v2c(varbinds, pdu_class=V2C.TrapPDU, community: str = "public") -> bytes:
    pdu = pdu_class()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    return _message(V2C, pdu, community)


def _v2c_trap(trap_oid: str, varbinds=(), uptime: int = 12345, **kw) -> bytes:
    head = [(SYS_UPTIME, V2C.TimeTicks(uptime)), (SNMP_TRAP_OID, V2C.ObjectIdentifier(trap_oid))]
    return _v2c(head + list(varbinds), **kw)


def _v1_trap(enterprise: str, generic: int, specific: int, varbinds=(), agent: str = "10.1.2.3",
             timestamp: int = 4321) -> bytes:
    pdu = V1.TrapPDU()       # fields set one by one: set_defaults would look up this host's address
    V1.apiTrapPDU.set_enterprise(pdu, V1.ObjectIdentifier(enterprise))
    V1.apiTrapPDU.set_agent_address(pdu, V1.IpAddress(agent))
    V1.apiTrapPDU.set_generic_trap(pdu, generic)
    V1.apiTrapPDU.set_specific_trap(pdu, specific)
    V1.apiTrapPDU.set_timestamp(pdu, V1.TimeTicks(timestamp))
    V1.apiTrapPDU.set_varbinds(pdu, list(varbinds))
    return _message(V1, pdu)


def _link_down_v2c(**kw) -> bytes:
    return _v2c_trap(LINK_DOWN, [
        (IF_INDEX, V2C.Integer(3)), (IF_DESCR, V2C.OctetString("GigabitEthernet0/0/3")),
        (IF_ADMIN, V2C.Integer(1)), (IF_OPER, V2C.Integer(2))], **kw)


def _trap(data: bytes) -> Trap:
    result = decode_trap(data)
    assert isinstance(result, Trap), result
    return result


def _refused(data: bytes, *words: str) -> str:
    result = decode_trap(data)
    assert isinstance(result, Rejected), result
    assert result.reason.startswith("snmp: ") and len(result.reason) <= 300, result.reason
    for word in words:
        assert word in result.reason, result.reason
    return result.reason


# --- in-process traps ----------------------------------------------------------------------------

def test_v2c_link_down() -> None:
    assert _trap(_link_down_v2c(uptime=867464)) == Trap(
        version="v2c", community="public", trap_oid=LINK_DOWN, uptime=867464, agent=None,
        varbinds=LINK_DOWN_VARBINDS)


def test_v2c_inform_is_accepted() -> None:
    trap = _trap(_link_down_v2c(pdu_class=V2C.InformRequestPDU, community="ops"))
    assert (trap.version, trap.community, trap.trap_oid, trap.varbinds) == (
        "v2c", "ops", LINK_DOWN, LINK_DOWN_VARBINDS)


def test_v2c_value_texts() -> None:
    ent = "1.3.6.1.4.1.2011.9"
    values = [
        V2C.Integer(-7), V2C.OctetString("链路中断 port 3\n".encode()), V2C.OctetString(b"\x0a\x0b"),
        V2C.ObjectIdentifier("1.3.6.1.4.1.2011"), V2C.IpAddress("192.0.2.1"), V2C.Counter32(4294967295),
        V2C.Gauge32(80), V2C.TimeTicks(100), V2C.Counter64(2**64 - 1), V2C.null, V2C.NoSuchObject(""),
        V2C.EndOfMibView(""), V2C.OctetString("x" * 2000), V2C.OctetString(b"\xff" * 600),
        V2C.OctetString(""),
    ]
    trap = _trap(_v2c_trap(f"{ent}.0.1", [(f"{ent}.{i}", v) for i, v in enumerate(values)]))
    texts = [text for _, text in trap.varbinds]
    assert texts[:12] == ["-7", "链路中断 port 3\n", "0x0a0b", "1.3.6.1.4.1.2011", "192.0.2.1",
                          "4294967295", "80", "100", str(2**64 - 1), "", "", ""]
    assert len(texts[12]) == 1024 and texts[12].startswith("xxx")
    assert len(texts[13]) == 1024 and texts[13].startswith("0xffff")
    assert texts[14] == ""
    assert [name for name, _ in trap.varbinds] == [f"{ent}.{i}" for i in range(len(values))]


def test_v2c_trap_oid_need_not_be_second_and_uptime_may_be_missing() -> None:
    data = _v2c([(IF_INDEX, V2C.Integer(3)), (SNMP_TRAP_OID, V2C.ObjectIdentifier(LINK_DOWN))])
    trap = _trap(data)
    assert (trap.trap_oid, trap.uptime, trap.varbinds) == (LINK_DOWN, None, ((IF_INDEX, "3"),))


def test_community_bytes_are_decoded_with_replacement() -> None:
    assert _trap(_link_down_v2c(community=b"pub\xfflic")).community == "pub\ufffdlic"


@pytest.mark.parametrize(("generic", "specific", "trap_oid"), [
    (0, 0, "1.3.6.1.6.3.1.1.5.1"),          # coldStart
    (2, 0, "1.3.6.1.6.3.1.1.5.3"),          # linkDown
    (5, 0, "1.3.6.1.6.3.1.1.5.6"),          # egpNeighborLoss
    (6, 17, "1.3.6.1.4.1.2011.0.17"),       # enterpriseSpecific
])
def test_v1_trap_oid_per_rfc3584(generic: int, specific: int, trap_oid: str) -> None:
    data = _v1_trap("1.3.6.1.4.1.2011", generic, specific, [(IF_INDEX, V1.Integer(3))])
    assert _trap(data) == Trap(version="v1", community="public", trap_oid=trap_oid, uptime=4321,
                               agent="10.1.2.3", varbinds=((IF_INDEX, "3"),))


def test_v1_value_texts() -> None:
    values = [V1.OctetString("up"), V1.IpAddress("198.51.100.7"), V1.Counter(9), V1.Gauge(10),
              V1.TimeTicks(11), V1.ObjectIdentifier("1.3.6.1"), V1.null]
    trap = _trap(_v1_trap("1.3.6.1.4.1.9", 6, 1, [(f"1.3.6.1.4.1.9.{i}", v) for i, v in enumerate(values)]))
    assert [text for _, text in trap.varbinds] == ["up", "198.51.100.7", "9", "10", "11", "1.3.6.1", ""]


def test_v1_out_of_range_generic_trap() -> None:
    _refused(_v1_trap("1.3.6.1.4.1.9", 7, 0), "generic-trap")


# --- refusals ------------------------------------------------------------------------------------

def test_empty() -> None:
    _refused(b"", "empty")


def test_truncated_ber() -> None:
    _refused(b"\x30\x03\x02\x01", "not a BER-encoded SNMP message")


def test_truncated_trap() -> None:
    data = _link_down_v2c()
    _refused(data[:-5], "not a valid SNMPv2c message")


def test_trailing_garbage() -> None:
    _refused(_link_down_v2c() + b"\x00\x01", "2 bytes of trailing data")
    _refused(_v1_trap("1.3.6.1.4.1.9", 2, 0) + b"z", "1 byte of trailing data")


@pytest.mark.parametrize("data", [b"garbage!", random.Random(7).randbytes(64), b"\xff" * 100, b"\x04\x02hi"])
def test_random_bytes(data: bytes) -> None:
    _refused(data, "snmp:")


def test_get_request() -> None:
    pdu = V2C.GetRequestPDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_varbinds(pdu, [(SYS_UPTIME, V2C.null)])
    _refused(_message(V2C, pdu), "a GetRequest PDU, not a trap")


def test_v1_get_request() -> None:
    pdu = V1.GetRequestPDU()
    V1.apiPDU.set_defaults(pdu)
    V1.apiPDU.set_varbinds(pdu, [(SYS_UPTIME, V1.null)])
    _refused(_message(V1, pdu), "a GetRequest PDU, not a trap")


def test_snmpv3_without_users_is_refused_naming_the_setting() -> None:
    _refused(NET_SNMP_V3_TRAP, "no SNMPv3 users are configured (FAULTLINE_SNMP_V3_USERS)")
    _refused(b"\x30\x03\x02\x01\x03", "no SNMPv3 users are configured")


def test_unknown_version() -> None:
    _refused(b"\x30\x03\x02\x01\x07", "unknown SNMP version number 7")


def test_v2c_without_trap_oid() -> None:
    _refused(_v2c([(SYS_UPTIME, V2C.TimeTicks(1)), (IF_INDEX, V2C.Integer(3))]),
             "the trap has no snmpTrapOID.0 varbind")


def test_trap_oid_not_an_oid() -> None:
    _refused(_v2c([(SNMP_TRAP_OID, V2C.OctetString("linkDown"))]), "not an OBJECT IDENTIFIER")


def test_too_many_varbinds() -> None:
    data = _v2c_trap(LINK_DOWN, [(f"1.3.6.1.4.1.9.{i}", V2C.Integer(i)) for i in range(300)])
    _refused(data, "302 varbinds", "256")
    assert isinstance(decode_trap(_v2c_trap(LINK_DOWN, [(IF_INDEX, V2C.Integer(1))] * 254)), Trap)


def test_oversized_oid() -> None:
    _refused(_v2c_trap(LINK_DOWN, [(".".join(["1.3"] + ["1"] * 200), V2C.null)]), "sub-identifiers")


def test_more_than_a_trap_is_refused_before_decoding() -> None:
    _refused(b"\x30" * 70_000, "70,000 bytes", "8,192")
    _refused(b"\x30" * 8193, "8,193 bytes")


def test_not_bytes() -> None:
    _refused("30 03 02 01 01", "expected bytes")       # type: ignore[arg-type]


# --- real traps from net-snmp --------------------------------------------------------------------

SNMPTRAP = shutil.which("snmptrap") or "/usr/bin/snmptrap"


def _snmptrap(tmp_path, *args: str) -> bytes:
    """Run `snmptrap ARGS` (HOST standing for our socket) and return the datagram it sent."""
    if not os.access(SNMPTRAP, os.X_OK):
        print(f"skipping: {SNMPTRAP} is absent (install net-snmp's snmp package)")
        pytest.skip(f"{SNMPTRAP} is absent (install net-snmp's snmp package)")
    # Its own config and state dir: no ~/.snmp/snmp.conf, nothing written to /var/lib/snmp.
    env = {**os.environ, "SNMPCONFPATH": str(tmp_path), "SNMP_PERSISTENT_DIR": str(tmp_path)}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        host = f"127.0.0.1:{sock.getsockname()[1]}"
        argv = [SNMPTRAP, "-m", "", *(host if a == "HOST" else a for a in args)]
        with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as proc:
            try:
                data, _ = sock.recvfrom(65535)
            finally:
                out, err = proc.communicate(timeout=10)
    print(f"{' '.join(argv)} -> rc {proc.returncode} {out!r} {err!r}")
    return data


def test_snmptrap_v2c_link_down(tmp_path) -> None:
    data = _snmptrap(tmp_path, "-v", "2c", "-c", "public", "HOST", "", LINK_DOWN,
                     IF_INDEX, "i", "3", IF_DESCR, "s", "GigabitEthernet0/0/3",
                     IF_ADMIN, "i", "1", IF_OPER, "i", "2")
    trap = _trap(data)
    assert (trap.version, trap.community, trap.trap_oid, trap.agent, trap.varbinds) == (
        "v2c", "public", LINK_DOWN, None, LINK_DOWN_VARBINDS)
    assert isinstance(trap.uptime, int) and trap.uptime >= 0


def test_snmptrap_v1_link_down(tmp_path) -> None:
    data = _snmptrap(tmp_path, "-v", "1", "-c", "public", "HOST", "1.3.6.1.4.1.2011", "10.1.2.3",
                     "2", "0", "", IF_INDEX, "i", "3")
    trap = _trap(data)
    assert (trap.version, trap.community, trap.trap_oid, trap.agent, trap.varbinds) == (
        "v1", "public", LINK_DOWN, "10.1.2.3", ((IF_INDEX, "3"),))
    assert isinstance(trap.uptime, int)


def test_snmptrap_v1_enterprise_specific_values(tmp_path) -> None:
    ent = "1.3.6.1.4.1.2011"
    data = _snmptrap(tmp_path, "-v", "1", "-c", "private", "HOST", ent, "10.1.2.3", "6", "17", "1234",
                     f"{ent}.5", "x", "0a0b", f"{ent}.6", "a", "192.0.2.1", f"{ent}.7", "o", "1.3.6.1.4",
                     f"{ent}.8", "c", "99", f"{ent}.9", "t", "1234", f"{ent}.10", "u", "7")
    assert _trap(data) == Trap(
        version="v1", community="private", trap_oid=f"{ent}.0.17", uptime=1234, agent="10.1.2.3",
        varbinds=((f"{ent}.5", "0x0a0b"), (f"{ent}.6", "192.0.2.1"), (f"{ent}.7", "1.3.6.1.4"),
                  (f"{ent}.8", "99"), (f"{ent}.9", "1234"), (f"{ent}.10", "7")))


def test_snmptrap_v2c_inform(tmp_path) -> None:
    # Nobody answers: one try with a short timeout, then snmpinform gives up ("Timeout", rc 1).
    data = _snmptrap(tmp_path, "-v", "2c", "-Ci", "-r", "0", "-t", "0.2", "-c", "public", "HOST", "",
                     LINK_DOWN, IF_INDEX, "i", "3")
    trap = _trap(data)
    assert (trap.version, trap.trap_oid, trap.varbinds) == ("v2c", LINK_DOWN, ((IF_INDEX, "3"),))


def test_snmptrap_v3_without_users_is_refused(tmp_path) -> None:
    data = _snmptrap(tmp_path, "-v", "3", "-e", "0x8000000001020304", "-u", "faultline",
                     "-l", "noAuthNoPriv", "HOST", "", LINK_DOWN)
    _refused(data, "no SNMPv3 users are configured")


USERS = """users:
  - {name: noc, engine_id: "8000000001020304", auth: SHA, auth_key: authpass123, priv: AES,
     priv_key: privpass123}
  - {name: plain, engine_id: "0x8000000001020304"}
"""


def test_snmptrap_v3_auth_priv_is_decoded_with_its_user_and_refused_without_the_keys(tmp_path) -> None:
    (tmp_path / "users.yaml").write_text(USERS)
    v3 = load_v3_users(tmp_path / "users.yaml")
    data = _snmptrap(tmp_path, "-v", "3", "-e", "0x8000000001020304", "-u", "noc", "-l", "authPriv",
                     "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123", "HOST", "",
                     LINK_DOWN, IF_INDEX, "i", "3")
    trap = decode_trap(data, v3)
    assert isinstance(trap, Trap), trap
    assert (trap.version, trap.trap_oid, trap.varbinds) == ("v3", LINK_DOWN, ((IF_INDEX, "3"),))
    noauth = _snmptrap(tmp_path, "-v", "3", "-e", "0x8000000001020304", "-u", "plain", "-l", "noAuthNoPriv",
                       "HOST", "", LINK_DOWN)
    assert decode_trap(noauth, v3).version == "v3"
    (tmp_path / "wrong.yaml").write_text(USERS.replace("privpass123", "otherpass99"))
    got = decode_trap(data, load_v3_users(tmp_path / "wrong.yaml"))
    assert isinstance(got, Rejected) and "refused by USM" in got.reason
    stranger = _snmptrap(tmp_path, "-v", "3", "-e", "0x8000000001020304", "-u", "mallory",
                         "-l", "noAuthNoPriv", "HOST", "", LINK_DOWN)
    assert "refused by USM" in decode_trap(stranger, v3).reason


@pytest.mark.parametrize("text, words", [
    ("users: [{name: noc, engine_id: xyz}]", "engine_id: value error, an snmpEngineID in hex"),
    ("users: [{name: noc, engine_id: '8000000001020304', auth: SHA}]", "auth SHA needs auth_key"),
    ("users: [{name: noc, engine_id: '8000000001020304', priv: AES, priv_key: '12345678'}]",
     "privacy needs authentication"),
    ("users: [{name: noc, engine_id: '8000000001020304', auth: SHA, auth_key: 4242}]", "(hidden)"),
    ("users: [{name: noc, engine_id: '8000000001020304', auth: ROT13}]", "'ROT13' is not one of"),
])
def test_a_bad_users_file_names_the_entry_and_never_echoes_a_key(tmp_path, text, words) -> None:
    (tmp_path / "users.yaml").write_text(text)
    with pytest.raises(V3UsersError) as err:
        load_v3_users(tmp_path / "users.yaml")
    said = "\n".join(err.value.problems)
    assert words in said and "4242" not in said


# --- never raises --------------------------------------------------------------------------------

SAMPLES = [
    _link_down_v2c(),
    _link_down_v2c(pdu_class=V2C.InformRequestPDU),
    _v1_trap("1.3.6.1.4.1.2011", 6, 17, [(IF_INDEX, V1.Integer(3)), (IF_DESCR, V1.OctetString("Gi0/3"))]),
    NET_SNMP_V3_TRAP,
]


@st.composite
def _mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=512), st.binary(max_size=64).map(lambda b: b"\x30\x82" + b), _mutated()))
def test_never_raises(data: bytes) -> None:
    result = decode_trap(data)
    assert isinstance(result, Trap | Rejected)
    if isinstance(result, Rejected):
        assert result.reason.startswith("snmp: ") and len(result.reason) <= 300
    else:
        assert result.version in ("v1", "v2c") and len(result.varbinds) <= 256
        assert all(len(text) <= 1024 for _, text in result.varbinds)
