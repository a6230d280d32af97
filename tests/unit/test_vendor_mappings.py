"""Vendor mappings (alarm_ingest/mapping.py, alarm_ingest/feeds.py): every built-in rule turns a
real-looking message into the normalized alarm CONTRACT §2 asks for; raise and clear pair by
alarm id (AL-1); unknown vendor words become OTHER with the text kept; bad mapping files are
refused naming the file and the entry; and the feeds are total on any input (fuzzed)."""

from __future__ import annotations

import base64
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pysnmp.proto import api

from alarm_ingest.feeds import from_export, from_syslog, from_trap
from alarm_ingest.mapping import MappingError, default_mappings, load_mappings
from alarm_ingest.raw import normalize
from shared.clock import fmt_time
from shared.model import Alarm, Rejected

M = default_mappings()
ARRIVAL = datetime(2026, 12, 7, 10, 0, 5, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
T0 = "2026-12-07T10:00:00+08:00"


def alarm(got) -> dict:
    assert isinstance(got, Alarm), got
    return {
        "source": got.source,
        "alarm_id": got.alarm_id,
        "resource_id": got.resource_id,
        "probable_cause": got.probable_cause,
        "severity": got.severity,
        "state": got.state,
        "event_time": fmt_time(got.event_time),
    }


def syslog(line: str, sender: str = "10.1.1.1"):
    return from_syslog(line.encode(), sender, ARRIVAL, M)


HW = "<187>Dec  7 2026 10:00:00 GZ-PE-01 %%01"
ZTE = ("<187>Dec  7 10:00:00 GZ-CE-02 An alarm 20008 ID 5314 level 3 {} at 10:00:00 12/07/2026 "
       "sent by ZXR10 MCP ")

# (sample line, resource_id, probable_cause, state) — one per built-in syslog rule
SYSLOG_RULES = {
    "HW-IFNET-LINK-DOWN": (
        HW + "IFNET/4/LINK_STATE(l)[12]:The line protocol IP on the interface "
        "GigabitEthernet0/0/1 has entered the DOWN state.",
        "GZ-PE-01:GigabitEthernet0/0/1",
        "LINK_DOWN",
        "raised",
    ),
    "HW-IFNET-LINK-UP": (
        HW + "IFNET/4/LINK_STATE(l)[13]:The line protocol IP on the interface "
        "GigabitEthernet0/0/1 has entered the UP state.",
        "GZ-PE-01:GigabitEthernet0/0/1",
        "LINK_DOWN",
        "cleared",
    ),
    "HW-IF-PHY-DOWN": (
        HW + "IFPDT/4/IF_STATE(l)[1]:Interface GigabitEthernet0/0/2 has turned into DOWN state.",
        "GZ-PE-01:GigabitEthernet0/0/2",
        "PORT_DOWN",
        "raised",
    ),
    "HW-IF-PHY-UP": (
        HW + "IFNET/4/IF_STATE(l)[2]:Interface GigabitEthernet0/0/2 has turned into UP state.",
        "GZ-PE-01:GigabitEthernet0/0/2",
        "PORT_DOWN",
        "cleared",
    ),
    "HW-BGP-DOWN": (
        HW + "BGP/3/STATE_CHG_UPDOWN(l)[3]:The status of the peer 10.1.1.2 changed from "
        "ESTABLISHED to IDLE. (InstanceName=Public, StateChangeReason=Hold Timer Expired)",
        "GZ-PE-01:bgp:10.1.1.2",
        "BGP_DOWN",
        "raised",
    ),
    "HW-BGP-UP": (
        HW + "BGP/3/STATE_CHG_UPDOWN(l)[4]:The status of the peer 10.1.1.2 changed from "
        "OPENCONFIRM to ESTABLISHED. (InstanceName=Public, StateChangeReason=Up)",
        "GZ-PE-01:bgp:10.1.1.2",
        "BGP_DOWN",
        "cleared",
    ),
    "HW-OSPF-NBR-DOWN": (
        HW + "OSPF/3/NBR_DOWN_REASON(l)[5]:Neighbor state leaves full or changed to Down. "
        "(ProcessId=1, NeighborRouterId=10.0.0.2, NeighborAreaId=0, "
        "NeighborInterface=GigabitEthernet0/0/3, NeighborDownImmediate reason=Neighbor Down)",
        "GZ-PE-01:GigabitEthernet0/0/3",
        "OSPF_NEIGHBOR_DOWN",
        "raised",
    ),
    "HW-OSPF-NBR-FULL": (
        HW + "OSPF/6/NBR_CHANGE_E(l)[6]:Neighbor changes event: neighbor status changed. "
        "(ProcessId=1, NeighborInterface=GigabitEthernet0/0/3, NeighborEvent=LoadingDone, "
        "NeighborPreviousState=Loading, NeighborCurrentState=Full)",
        "GZ-PE-01:GigabitEthernet0/0/3",
        "OSPF_NEIGHBOR_DOWN",
        "cleared",
    ),
    "HW-LDP-SESSION-DOWN": (
        HW + "LDP/4/LDP_SESSION_DOWN(l)[7]:MPLS LDP session went Down. (PID=hwMpls, "
        "PeerLsrId=2.2.2.2:0, VrfName=_public_, Reason=Hello Hold Timer Expired)",
        "GZ-PE-01:ldp:2.2.2.2:0",
        "LDP_SESSION_DOWN",
        "raised",
    ),
    "HW-LDP-SESSION-UP": (
        HW + "LDP/6/LDP_SESSION_UP(l)[8]:MPLS LDP session went Up. (PID=hwMpls, "
        "PeerLsrId=2.2.2.2:0, VrfName=_public_)",
        "GZ-PE-01:ldp:2.2.2.2:0",
        "LDP_SESSION_DOWN",
        "cleared",
    ),
    "HW-TUNNEL-DOWN": (
        HW + "TNLM/2/TNL_DOWN(l)[9]:The tunnel Tunnel10 changed to Down.",
        "GZ-PE-01:Tunnel10",
        "TUNNEL_DOWN",
        "raised",
    ),
    "HW-TUNNEL-UP": (
        HW + "TNLM/5/TNL_UP(l)[10]:The tunnel Tunnel10 changed to Up.",
        "GZ-PE-01:Tunnel10",
        "TUNNEL_DOWN",
        "cleared",
    ),
    "HW-POWER-FAIL": (
        HW + "DEVM/1/hwPowerFail_active(l)[11]:The power module failed. (EntityPhysicalIndex="
        "16777217, EntPhysicalName=PWR1, EntityTrapFaultID=136960)",
        "GZ-PE-01:PWR1",
        "POWER_FAILURE",
        "raised",
    ),
    "HW-POWER-FAIL-CLEAR": (
        HW + "DEVM/1/hwPowerFail_clear(l)[12]:The power module recovered. "
        "(EntityPhysicalIndex=16777217, EntPhysicalName=PWR1, EntityTrapFaultID=136960)",
        "GZ-PE-01:PWR1",
        "POWER_FAILURE",
        "cleared",
    ),
    "HW-BOARD-FAIL": (
        HW + "DEVM/1/hwBoardFail_active(l)[13]:The board partially failed. (EntityPhysicalIndex="
        "17, EntPhysicalName=LPU 1, EntityTrapFaultID=132130)",
        "GZ-PE-01:LPU 1",
        "BOARD_FAILURE",
        "raised",
    ),
    "HW-BOARD-FAIL-CLEAR": (
        HW + "DEVM/1/hwBoardFail_clear(l)[14]:The board resumed. (EntityPhysicalIndex=17, "
        "EntPhysicalName=LPU 1, EntityTrapFaultID=132130)",
        "GZ-PE-01:LPU 1",
        "BOARD_FAILURE",
        "cleared",
    ),
    "ZTE-PORT-DOWN": (
        ZTE.format("occurred") + "%PORT% Interface gei-0/1/0/1 is down",
        "GZ-CE-02:gei-0/1/0/1",
        "PORT_DOWN",
        "raised",
    ),
    "ZTE-PORT-UP": (
        ZTE.format("cleared") + "%PORT% Interface gei-0/1/0/1 is down",
        "GZ-CE-02:gei-0/1/0/1",
        "PORT_DOWN",
        "cleared",
    ),
    "ZTE-LINEPROTOCOL-DOWN": (
        "<189>Dec  7 10:00:00 GZ-CE-02 %LINEPROTOCOL-5-UPDOWN: Line protocol on Interface "
        "gei-0/2/0/1, changed state to down",
        "GZ-CE-02:gei-0/2/0/1",
        "LINK_DOWN",
        "raised",
    ),
    "ZTE-LINEPROTOCOL-UP": (
        "<189>Dec  7 10:00:00 GZ-CE-02 %LINEPROTOCOL-5-UPDOWN: Line protocol on Interface "
        "gei-0/2/0/1, changed state to up",
        "GZ-CE-02:gei-0/2/0/1",
        "LINK_DOWN",
        "cleared",
    ),
    "ZTE-BGP-DOWN": (
        ZTE.format("occurred") + "%BGP% BGP neighbor 10.2.2.2 state changed to Idle",
        "GZ-CE-02:bgp:10.2.2.2",
        "BGP_DOWN",
        "raised",
    ),
    "ZTE-BGP-UP": (
        ZTE.format("cleared") + "%BGP% BGP neighbor 10.2.2.2 state changed to Idle",
        "GZ-CE-02:bgp:10.2.2.2",
        "BGP_DOWN",
        "cleared",
    ),
    "ZTE-OSPF-DOWN": (
        ZTE.format("occurred") + "%OSPF% OSPF neighbor on interface xgei-0/1/1/1 is down",
        "GZ-CE-02:xgei-0/1/1/1",
        "OSPF_NEIGHBOR_DOWN",
        "raised",
    ),
    "ZTE-OSPF-UP": (
        ZTE.format("cleared") + "%OSPF% OSPF neighbor on interface xgei-0/1/1/1 is down",
        "GZ-CE-02:xgei-0/1/1/1",
        "OSPF_NEIGHBOR_DOWN",
        "cleared",
    ),
    "ZTE-LDP-DOWN": (
        ZTE.format("occurred") + "%LDP% LDP session 3.3.3.3:0 is down",
        "GZ-CE-02:ldp:3.3.3.3:0",
        "LDP_SESSION_DOWN",
        "raised",
    ),
    "ZTE-LDP-UP": (
        ZTE.format("cleared") + "%LDP% LDP session 3.3.3.3:0 is down",
        "GZ-CE-02:ldp:3.3.3.3:0",
        "LDP_SESSION_DOWN",
        "cleared",
    ),
    "ZTE-POWER-FAIL": (
        ZTE.format("occurred") + "%POWER% PWR-2 power supply failure",
        "GZ-CE-02:PWR-2",
        "POWER_FAILURE",
        "raised",
    ),
    "ZTE-POWER-OK": (
        ZTE.format("cleared") + "%POWER% PWR-2 power supply failure",
        "GZ-CE-02:PWR-2",
        "POWER_FAILURE",
        "cleared",
    ),
    "ZTE-BOARD-FAIL": (
        ZTE.format("occurred") + "%BOARD% The board 0/3 is offline",
        "GZ-CE-02:0/3",
        "BOARD_FAILURE",
        "raised",
    ),
    "ZTE-BOARD-OK": (
        ZTE.format("cleared") + "%BOARD% The board 0/3 is offline",
        "GZ-CE-02:0/3",
        "BOARD_FAILURE",
        "cleared",
    ),
}


def test_every_built_in_syslog_rule_has_a_sample_here():
    rules = {r.id for m in M.of("syslog") for r in m.rules}
    assert rules == set(SYSLOG_RULES)


@pytest.mark.parametrize("rule_id", sorted(SYSLOG_RULES))
def test_AL2_each_syslog_rule_normalizes_its_vendor_line(rule_id):
    line, resource, cause, state = SYSLOG_RULES[rule_id]
    got = alarm(syslog(line))
    assert (got["resource_id"], got["probable_cause"], got["state"], got["source"]) == (
        resource,
        cause,
        state,
        "syslog",
    )
    assert got["alarm_id"] == f"{resource}:{cause}"  # AL-1: a raise and its clear share it
    assert got["event_time"] == T0 and got["severity"] in (
        ("indeterminate",) if state == "cleared" else ("major", "critical")
    )


def test_AL1_a_line_without_a_host_takes_the_sender_address():
    got = alarm(
        syslog(
            "%%01IFNET/4/LINK_STATE(l)[12]:The line protocol IP on the interface GE0/0/1 has "
            "entered the DOWN state.",
            sender="10.9.9.9",
        )
    )
    assert got["resource_id"] == "10.9.9.9:GE0/0/1" and got["event_time"] == fmt_time(ARRIVAL)


def test_AL2_an_unknown_vendor_line_is_an_OTHER_alarm_keeping_its_text():
    got = syslog(HW + "FAN/4/FAN_STATE_ABNORMAL(l)[1]:The fan 1 is abnormal.")
    assert alarm(got)["probable_cause"] == "OTHER" and alarm(got)["resource_id"] == "GZ-PE-01"
    assert alarm(got)["severity"] == "major" and "FAN_STATE_ABNORMAL" in got.text
    again = syslog(HW + "FAN/4/FAN_STATE_ABNORMAL(l)[1]:The fan 1 is abnormal.")
    assert again.alarm_id == got.alarm_id  # a repeat is the same alarm (AL-1)


def test_a_notice_line_no_rule_knows_is_refused_as_not_an_alarm():
    got = syslog("<14>Dec  7 10:00:00 vm sshd[42]: Accepted publickey for noc")
    assert isinstance(got, Rejected)
    assert got.reason == (
        "syslog: mapping generic-syslog: no rule matches and the line's severity is "
        "informational (below warning): a log line, not an alarm"
    )


def _v2c_trap(trap_oid: str, varbinds: list[tuple[str, object]]) -> bytes:
    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = v2c.TrapPDU()
    v2c.apiTrapPDU.set_defaults(pdu)
    v2c.apiTrapPDU.set_varbinds(
        pdu,
        [
            (v2c.ObjectIdentifier("1.3.6.1.2.1.1.3.0"), v2c.TimeTicks(100)),
            (v2c.ObjectIdentifier("1.3.6.1.6.3.1.1.4.1.0"), v2c.ObjectIdentifier(trap_oid)),
            *((v2c.ObjectIdentifier(o), v) for o, v in varbinds),
        ],
    )
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, "public")
    v2c.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def test_AL2_if_mib_link_down_and_up_pair_on_the_interface():
    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    down = _v2c_trap(
        "1.3.6.1.6.3.1.1.5.3",
        [
            ("1.3.6.1.2.1.2.2.1.1.3", v2c.Integer(3)),
            ("1.3.6.1.2.1.2.2.1.2.3", v2c.OctetString(b"GigabitEthernet0/0/3")),
        ],
    )
    up = _v2c_trap("1.3.6.1.6.3.1.1.5.4", [("1.3.6.1.2.1.2.2.1.1.3", v2c.Integer(3))])
    d, u = alarm(from_trap(down, "10.1.1.1", ARRIVAL, M)), alarm(from_trap(up, "10.1.1.1", ARRIVAL, M))
    assert (d["resource_id"], d["probable_cause"], d["state"], d["severity"]) == (
        "10.1.1.1:GigabitEthernet0/0/3",
        "LINK_DOWN",
        "raised",
        "major",
    )
    assert (u["resource_id"], u["state"]) == ("10.1.1.1:3", "cleared")  # no ifDescr: the ifIndex
    assert d["event_time"] == fmt_time(ARRIVAL)


def test_AL2_an_x733_trap_maps_the_nms_cause_and_severity_and_clears_by_severity():
    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    base = "1.3.6.1.4.1.56789.1.1."

    def trap(cause: bytes, severity: int) -> bytes:
        return _v2c_trap(
            "1.3.6.1.4.1.56789.0.1",
            [
                (base + "1.0", v2c.OctetString(b"884213")),
                (base + "2.0", v2c.OctetString(b"GZ-OTN-A:1-3-1")),
                (base + "3.0", v2c.OctetString(cause)),
                (base + "4.0", v2c.Integer(severity)),
            ],
        )

    raised = alarm(from_trap(trap(b"R_LOS", 3), "10.2.2.2", ARRIVAL, M))
    assert raised == {
        "source": "nms:10.2.2.2",
        "alarm_id": "884213",
        "resource_id": "GZ-OTN-A:1-3-1",
        "probable_cause": "LOS",
        "severity": "critical",
        "state": "raised",
        "event_time": fmt_time(ARRIVAL),
    }
    cleared = alarm(from_trap(trap(b"R_LOS", 1), "10.2.2.2", ARRIVAL, M))
    assert (cleared["state"], cleared["alarm_id"]) == ("cleared", "884213")
    assert alarm(from_trap(trap(b"SOMETHING_NEW", 5), "10.2.2.2", ARRIVAL, M))["probable_cause"] == "OTHER"
    bad = from_trap(trap(b"R_LOS", 9), "10.2.2.2", ARRIVAL, M)
    assert isinstance(bad, Rejected) and "severity '9' is not one of" in bad.reason


def test_a_trap_no_mapping_knows_is_refused_naming_its_oid():
    got = from_trap(_v2c_trap("1.3.6.1.4.1.9.9.41.2.0.1", []), "10.1.1.1", ARRIVAL, M)
    assert got == Rejected("snmp: no snmp mapping knows the trap 1.3.6.1.4.1.9.9.41.2.0.1 (from 10.1.1.1)")


ROW = {
    "Log Serial Number": "884213",
    "Severity": "Critical",
    "Name": "R_LOS",
    "Alarm Source": "GZ-OTN-A",
    "Location Info": "1-3-1",
    "Occurrence Time": "2026-12-07 10:00:00",
    "Clearance Time": "",
}


def test_AL2_an_sdh_export_row_raises_and_a_row_with_a_clearance_time_clears():
    got = alarm(from_export({"mapping": "sdh-otn-export", "row": ROW, "source": "u2000-gz"}, M))
    assert got == {
        "source": "u2000-gz",
        "alarm_id": "884213",
        "resource_id": "GZ-OTN-A:1-3-1",
        "probable_cause": "LOS",
        "severity": "critical",
        "state": "raised",
        "event_time": T0,
    }
    cleared = alarm(
        from_export(
            {
                "mapping": "sdh-otn-export",
                "row": {**ROW, "Severity": "紧急", "Clearance Time": "2026/12/7 10:05:00"},
            },
            M,
        )
    )
    assert (cleared["state"], cleared["event_time"], cleared["source"]) == (
        "cleared",
        "2026-12-07T10:05:00+08:00",
        "import",
    )
    aisle = alarm(from_export({"mapping": "sdh-otn-export", "row": {**ROW, "Name": "MS_AIS"}}, M))
    assert aisle["probable_cause"] == "MS_AIS"  # a consequent alarm: kept, class other
    odd = from_export({"mapping": "sdh-otn-export", "row": {**ROW, "Name": "VENDOR_ODDITY"}}, M)
    assert odd.probable_cause == "OTHER" and "VENDOR_ODDITY" in odd.text


@pytest.mark.parametrize(
    "doc, words",
    [
        ([], "expected {mapping, row}"),
        ({"mapping": "nope", "row": {}}, "no export mapping named 'nope'"),
        ({"mapping": "if-mib", "row": {}}, "no export mapping named 'if-mib'"),
        ({"mapping": "sdh-otn-export", "row": {**ROW, "Name": ""}}, "missing the 'Name' column"),
        (
            {"mapping": "sdh-otn-export", "row": {**ROW, "Occurrence Time": "yesterday"}},
            "row['Occurrence Time']: 'yesterday' is not a time",
        ),
        ({"mapping": "sdh-otn-export", "row": {**ROW, "Severity": "Huge"}}, "severity 'Huge' is not one of"),
        ({"mapping": "sdh-otn-export", "row": {**ROW, "Location Info": ["x"]}}, "expected text, got list"),
    ],
)
def test_export_refusals_name_the_column(doc, words):
    got = from_export(doc, M)
    assert isinstance(got, Rejected) and words in got.reason, got


# ---------------------------------------------------------------------- mapping files


def _write(tmp_path, name: str, text: str):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """name: acme
vendor: ACME
format: syslog
source: syslog
claims: 'ACME-'
resource: "{host}:{port}"
rules:
  - id: ACME-DOWN
    match: 'ACME-LINK port (?P<port>\\S+) down'
    cause: LINK_DOWN
    severity: major
"""


def test_an_operator_directory_adds_a_vendor_and_is_tried_before_the_generic_mapping(tmp_path):
    mappings = load_mappings(_write(tmp_path, "15-acme.yaml", GOOD))
    assert [m.name for m in mappings.of("syslog")] == ["huawei-vrp", "acme", "zte-zxr10", "generic-syslog"]
    got = from_syslog(b"<187>Dec  7 10:00:00 box1 ACME-LINK port 7 down", None, ARRIVAL, mappings)
    assert alarm(got)["resource_id"] == "box1:7"


def test_an_operator_file_of_the_same_name_replaces_the_built_in_one(tmp_path):
    mappings = load_mappings(_write(tmp_path, "90-generic-syslog.yaml", GOOD.replace("acme", "quiet")))
    assert "generic-syslog" not in [m.name for m in mappings.all]


@pytest.mark.parametrize(
    "change, words",
    [
        (("claims: 'ACME-'", "claims: '(['"), "claims: value error, not a regular expression"),
        (
            ("cause: LINK_DOWN", "cause: link down"),
            "rules[0] (ACME-DOWN).cause: 'link down' is not a normalized cause",
        ),
        (("severity: major", "severity: huge"), "rules[0] (ACME-DOWN).severity: 'huge' is not one of"),
        (('resource: "{host}:{port}"', 'resource: "{host.__class__}"'), "a template field is a plain name"),
        (("format: syslog", "format: netconf"), "format: 'netconf' is not one of syslog, snmp, export"),
        (("    match: ", "    trap: 1.3.6.1.4.1.1\n    match: "), "`trap` is not used by a syslog mapping"),
        (("name: acme", "name: ACME Corp"), "name: value error, lower-case letters"),
        (("vendor: ACME\n", "vendor: ACME\ncolour: red\n"), "colour: "),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_file_and_the_entry(tmp_path, change, words):
    _write(tmp_path, "15-acme.yaml", GOOD.replace(*change))
    with pytest.raises(MappingError) as err:
        load_mappings(tmp_path)
    assert any(p.startswith(str(tmp_path / "15-acme.yaml")) and words in p for p in err.value.problems), (
        err.value.problems
    )


def test_every_problem_of_every_file_is_named_at_once(tmp_path):
    _write(tmp_path, "15-a.yaml", GOOD.replace("severity: major", "severity: huge"))
    _write(tmp_path, "16-b.yaml", "name: [")
    _write(tmp_path, "17-c.yaml", GOOD)  # the same name as 15-a
    with pytest.raises(MappingError) as err:
        load_mappings(tmp_path)
    text = "\n".join(err.value.problems)
    assert "15-a.yaml: rules[0] (ACME-DOWN).severity" in text and "16-b.yaml:1:" in text
    assert "17-c.yaml: name: acme is also the name of" not in text  # 15-a was refused: no clash
    assert len(err.value.problems) == 2


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(MappingError, match="not a directory of vendor mappings"):
        load_mappings(tmp_path / "nope")


# ---------------------------------------------------------------------- total on any input

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["syslog", "snmp", "export"]),
    JSONISH,
    st.one_of(st.none(), st.floats(-1e13, 1e13)),
    st.one_of(st.none(), st.text(max_size=20)),
)
def test_normalize_of_any_json_value_as_a_feed_gives_an_alarm_or_a_refusal(fmt, payload, arrival, sender):
    got = normalize(fmt, payload, arrival=arrival, sender=sender)
    assert isinstance(got, Alarm | Rejected)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(ROW)), JSONISH)
def test_any_value_in_any_export_column_is_decoded_or_refused(column, value):
    got = from_export({"mapping": "sdh-otn-export", "row": {**ROW, column: value}}, M)
    assert isinstance(got, Alarm | Rejected)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([v[0] for v in SYSLOG_RULES.values()]), st.integers(0, 400), st.binary(max_size=6))
def test_a_vendor_line_cut_or_spliced_anywhere_gives_an_alarm_or_a_refusal(line, at, junk):
    data = line.encode()
    got = from_syslog(data[:at] + junk + data[at:], "10.0.0.1", ARRIVAL, M)
    assert isinstance(got, Alarm | Rejected)


def test_a_base64_snmp_payload_is_decoded_and_a_bad_one_refused():
    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    data = _v2c_trap("1.3.6.1.6.3.1.1.5.3", [("1.3.6.1.2.1.2.2.1.1.9", v2c.Integer(9))])
    got = normalize("snmp", base64.b64encode(data).decode(), arrival=ARRIVAL, sender="10.1.1.1")
    assert alarm(got)["resource_id"] == "10.1.1.1:9"
    assert normalize("snmp", "%%%", arrival=ARRIVAL) == Rejected(
        "raw.payload: an SNMP trap is sent as base64 of the datagram; this is not base64"
    )
    assert normalize("syslog", "<13>Dec  7 10:00:00 h x: y") == Rejected(
        "raw: a syslog message needs the time it came (at)"
    )


# ---------------------------------------------------------------------- the documented samples

SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "samples"


@pytest.mark.parametrize("name", ["huawei-vrp.log", "zte-zxr10.log"])
def test_every_line_of_the_sample_feeds_is_an_alarm(name):
    lines = (SAMPLES / "feeds" / name).read_bytes().splitlines()
    got = [alarm(from_syslog(line, "10.0.0.1", ARRIVAL, M)) for line in lines]
    assert all(a["event_time"].startswith("2026-11-25T10:0") for a in got)
    assert {a["probable_cause"] for a in got} <= {"LINK_DOWN", "PORT_DOWN", "BGP_DOWN", "POWER_FAILURE"}


def test_the_sample_exports_read_as_documented():
    from services.commands.import_file import read_rows

    csv_rows = read_rows(SAMPLES / "exports" / "u2000-gz-current-alarms.csv")
    got = [alarm(from_export({"mapping": "sdh-otn-export", "row": r}, M)) for _where, r in csv_rows]
    assert [(a["resource_id"], a["probable_cause"], a["state"]) for a in got] == [
        ("GZ-OTN-A:1-3-1", "LOS", "raised"), ("GZ-OTN-A:1-3-2", "MS_AIS", "raised"),
        ("GZ-SDH-TH-07:1-1-3", "HIGH_BER", "cleared"), ("GZ-OTN-B:2-1", "TEMPERATURE", "raised")]
    assert [w for w, _r in csv_rows] == ["line 2", "line 3", "line 4", "line 5"]
    assert {a["source"] for a in got} == {"u2000-gz"}
    json_rows = read_rows(SAMPLES / "exports" / "u31-fs-history-alarms.json")
    got = [alarm(from_export({"mapping": "sdh-otn-export", "row": r}, M)) for _where, r in json_rows]
    assert [(a["alarm_id"], a["probable_cause"], a["state"], a["event_time"]) for a in got] == [
        ("510017", "LOF", "raised", "2026-11-25T09:40:00+08:00"),
        ("510017", "LOF", "cleared", "2026-11-25T09:41:10+08:00")]


def test_a_gb18030_csv_export_is_read(tmp_path):
    from services.commands.import_file import read_rows

    path = tmp_path / "export.csv"
    path.write_bytes("Log Serial Number,Severity,Name\n1,紧急,R_LOS\n".encode("gb18030"))
    assert read_rows(path) == [("line 2", {"Log Serial Number": "1", "Severity": "紧急", "Name": "R_LOS"})]
