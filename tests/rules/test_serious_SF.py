"""RULES.md §3 serious-fault definitions SF-1a … SF-6b, and TM-1 that applies them."""

import pytest
from scenario import Inv, action, alarm, complaint, raise_clear, run, t


def sec(seconds: float) -> str:
    return t(seconds / 60)


def one_line(service_type: str, level: str = "provincial", grade: str = "gold", span: str = "local",
             z_city: str | None = None, layer_of: dict | None = None) -> Inv:
    """Customer X with circuit X-1 = [X-1-CPE cpe, X-1-OTN transmission, X-1-PE data,
    X-1-OLT access, X-1-CORE core, X-1-VAS vas] (one path)."""
    inv = Inv().customer("X", level, grade, hq_city="GZ" if level == "provincial" else None)
    inv.resource("X-1-VAS", "vas")
    return inv.circuit("X-1", "X", service_type, span=span, z_city=z_city,
                       paths=[["X-1-CPE", "X-1-OLT", "X-1-OTN", "X-1-CORE", "X-1-VAS", "X-1-PE"]])


def serious_of(res, fid: str) -> tuple | None:
    found = res.of("fault.serious", fault_id=fid)
    assert len(found) <= 1
    return (found[0]["at"], found[0]["rule"], found[0]["trigger"]) if found else None


CASES = [
    # SF-1a: sms, any outage other than GATEWAY_CONN_LOST, any root layer
    ("sms", "SMS_UPLINK_DOWN", "X-1-VAS", "SF-1a"),
    ("sms", "SMS_DOWNLINK_DOWN", "X-1-CORE", "SF-1a"),
    ("sms", "LOS", "X-1-OTN", "SF-1a"),
    ("sms", "POWER_FAILURE", "X-1-CPE", "SF-1a"),
    # SF-1b: the gateway connection
    ("sms", "GATEWAY_CONN_LOST", "X-1-VAS", "SF-1b"),
    ("sms", "GATEWAY_CONN_LOST", "X-1-CPE", "SF-1b"),
    # SF-2: gprs_apn, core network or access
    ("gprs_apn", "APN_DOWN", "X-1-CORE", "SF-2"),
    ("gprs_apn", "LINK_DOWN", "X-1-PE", "SF-2"),
    ("gprs_apn", "NE_DOWN", "X-1-VAS", "SF-2"),
    ("gprs_apn", "LOS", "X-1-OTN", "SF-2"),
    ("gprs_apn", "PORT_DOWN", "X-1-OLT", "SF-2"),
    ("gprs_apn", "POWER_FAILURE", "X-1-CPE", None),
    # SF-3: internet, any layer
    ("internet", "PROTOCOL_CONVERTER_DOWN", "X-1-CPE", "SF-3"),
    ("internet", "BGP_DOWN", "X-1-PE", "SF-3"),
    ("internet", "LOS", "X-1-OTN", "SF-3"),
    # SF-4: voice, any layer, the CPE included
    ("voice", "TRUNK_DOWN", "X-1-CORE", "SF-4"),
    ("voice", "POWER_FAILURE", "X-1-CPE", "SF-4"),
    # SF-5: circuit_lease, transmission or access
    ("circuit_lease", "LOS", "X-1-OTN", "SF-5"),
    ("circuit_lease", "PORT_DOWN", "X-1-OLT", "SF-5"),
    ("circuit_lease", "LINK_DOWN", "X-1-PE", None),
    ("circuit_lease", "NE_DOWN", "X-1-CORE", None),
    ("circuit_lease", "POWER_FAILURE", "X-1-CPE", None),
    # data lines have no row
    ("data", "LOS", "X-1-OTN", None),
    ("data", "TUNNEL_DOWN", "X-1-PE", None),
]


def _cases(pred) -> list:
    return [pytest.param(*c, id=f"{c[0]}-{c[1]}-{c[2].split('-')[-1]}-{c[3] or 'none'}")
            for c in CASES if pred(c)]


def _check_row(service_type, cause, resource, rule):
    res = run(one_line(service_type), [alarm(0, resource, cause)], until=t(600))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == ((t(30), rule, "duration") if rule else None)


@pytest.mark.parametrize(("service_type", "cause", "resource", "rule"),
                         _cases(lambda c: c[3] == "SF-1a" or (c[0] == "sms" and c[3] is None)))
def test_SF_1a_sms_uplink_or_downlink_interrupted_30_min(service_type, cause, resource, rule):
    _check_row(service_type, cause, resource, rule)


@pytest.mark.parametrize(("service_type", "cause", "resource", "rule"),
                         _cases(lambda c: c[3] == "SF-1b"))
def test_SF_1b_sms_gateway_connection_lost_30_min(service_type, cause, resource, rule):
    _check_row(service_type, cause, resource, rule)


@pytest.mark.parametrize(("service_type", "cause", "resource", "rule"),
                         _cases(lambda c: c[0] == "gprs_apn"))
def test_SF_2_gprs_apn_core_network_or_access_30_min(service_type, cause, resource, rule):
    _check_row(service_type, cause, resource, rule)


@pytest.mark.parametrize(("service_type", "cause", "resource", "rule"),
                         _cases(lambda c: c[0] == "internet"))
def test_SF_3_internet_any_cause_30_min(service_type, cause, resource, rule):
    _check_row(service_type, cause, resource, rule)


@pytest.mark.parametrize(("service_type", "cause", "resource", "rule"),
                         _cases(lambda c: c[0] == "voice"))
def test_SF_4_voice_any_cause_cpe_included_30_min(service_type, cause, resource, rule):
    _check_row(service_type, cause, resource, rule)


@pytest.mark.parametrize(("service_type", "cause", "resource", "rule"),
                         _cases(lambda c: c[0] in ("circuit_lease", "data")))
def test_SF_5_circuit_lease_transmission_or_access_30_min_and_data_has_no_row(
        service_type, cause, resource, rule):
    _check_row(service_type, cause, resource, rule)


@pytest.mark.parametrize(("level", "grade", "span", "z_city", "minutes"), [
    pytest.param("city", "standard", "cross_city", "FS", 480, id="city-standard-cross_city-8h"),
    pytest.param("city", "gold", "cross_city", "FS", 480, id="city-gold-cross_city-8h"),
    pytest.param("city", "diamond", "cross_city", "FS", 30, id="city-diamond-cross_city-30m"),
    pytest.param("provincial", "gold", "cross_city", "FS", 30, id="provincial-cross_city-30m"),
    pytest.param("city", "standard", "cross_province", "HN", 30, id="city-cross_province-30m"),
    pytest.param("provincial", "standard", "local", None, 30, id="provincial-local-30m"),
    pytest.param("city", "diamond", "local", None, 30, id="city-diamond-local-30m"),
])
def test_SF_5_city_level_cross_city_lease_waits_8_hours(level, grade, span, z_city, minutes):
    inv = one_line("circuit_lease", level, grade, span, z_city)
    res = run(inv, [alarm(0, "X-1-OTN")], until=t(600))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(minutes), "SF-5", "duration")


def test_SF_5_8h_case_not_serious_when_it_ends_at_7h59():
    inv = one_line("circuit_lease", "city", "standard", "cross_city", "FS")
    res = run(inv, raise_clear("X-1-OTN", 0, 479), until=t(600))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) is None
    assert res.one("fault.cleared", fault_id=fid)["severity"] == "general"


@pytest.mark.parametrize(("level", "grade", "span", "z_city", "important"), [
    pytest.param("city", "standard", "local", None, False, id="ordinary"),
    pytest.param("city", "gold", "local", None, False, id="ordinary-gold"),
    pytest.param("provincial", "standard", "local", None, True, id="provincial"),
    pytest.param("city", "diamond", "local", None, True, id="diamond"),
    pytest.param("city", "standard", "cross_city", "FS", True, id="cross_city-holder"),
    pytest.param("city", "standard", "cross_province", "HN", True, id="cross_province-holder"),
])
def test_SF_3_rows_apply_only_to_important_customers(level, grade, span, z_city, important):
    res = run(one_line("internet", level, grade, span, z_city), [alarm(0, "X-1-OTN")], until=t(120))
    opened = res.one("fault.opened")
    assert opened["important"] is important
    assert serious_of(res, opened["fault_id"]) == ((t(30), "SF-3", "duration") if important else None)


def test_SF_3_important_through_another_cross_city_circuit():
    inv = Inv().customer("X").circuit("X-LOCAL", "X").circuit("X-WIDE", "X", "data", span="cross_city",
                                                               z_city="FS")
    res = run(inv, [alarm(0, "X-LOCAL-OTN")], until=t(60))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(30), "SF-3", "duration")


# ---------------------------------------------------------------------- SF-6a


@pytest.mark.parametrize(("level", "grade", "cross", "service_type"), [
    pytest.param("provincial", "gold", False, "internet", id="provincial-internet"),
    pytest.param("city", "diamond", False, "voice", id="diamond-voice"),
    pytest.param("city", "standard", True, "sms", id="cross_city-holder-sms"),
    pytest.param("provincial", "standard", False, "data", id="provincial-data"),
    pytest.param("provincial", "standard", False, "circuit_lease", id="provincial-lease"),
])
def test_SF_6a_important_customer_all_users_complaint_serious_30_min_after_it(level, grade, cross,
                                                                               service_type):
    inv = Inv().customer("X", level, grade)
    if cross:
        inv.circuit("X-WIDE", "X", "data", a_city="SZ", z_city="FS", span="cross_city")
    res = run(inv, [complaint(7, "X", "GZ", service_type)], until=t(120))
    opened = res.one("fault.opened")
    assert (opened["kind"], opened["important"], opened["opened_at"]) == ("complaint", True, t(7))
    assert serious_of(res, opened["fault_id"]) == (t(37), "SF-6a", "duration")


def test_SF_6a_not_for_ordinary_customers():
    res = run(Inv().customer("O"), [complaint(0, "O")], until=t(120))
    opened = res.one("fault.opened")
    assert opened["important"] is False
    res.none("fault.serious")


def test_SF_6a_resolved_before_30_min_stays_general():
    res = run(Inv().customer("P", "provincial"), [
        complaint(0, "P"), action(29, "resolve", {"customer_id": "P", "service_type": "internet"})],
        until=t(120))
    fid = res.one("fault.opened")["fault_id"]
    res.none("fault.serious")
    cleared = res.one("fault.cleared", fault_id=fid)
    assert (cleared["severity"], cleared["ended_at"], cleared["duration_s"]) == ("general", t(29), 29 * 60)


# ---------------------------------------------------------------------- SF-6b


def ordinaries(n: int = 5) -> Inv:
    inv = Inv()
    for i in range(1, n + 1):
        inv.customer(f"O{i}")
    return inv


@pytest.mark.parametrize(("complaints", "opened_min"), [
    pytest.param([("O1", 0), ("O2", 10), ("O3", 20)], 20, id="three-within-20-min"),
    pytest.param([("O1", 0), ("O2", 10), ("O3", 30)], 30, id="first-and-third-exactly-30-min"),
    pytest.param([("O1", 0), ("O2", 10), ("O3", 30 + 1 / 60)], None, id="first-and-third-30m01s"),
    pytest.param([("O1", 0), ("O2", 10), ("O3", 31), ("O4", 35)], 35, id="window-slides"),
    pytest.param([("O1", 0), ("O1", 5), ("O2", 10)], None, id="two-distinct-customers-only"),
    pytest.param([("O1", 0), ("O1", 5), ("O2", 10), ("O3", 12)], 12, id="repeat-customer-then-third"),
])
def test_SF_6b_three_distinct_ordinary_customers_within_30_min(complaints, opened_min):
    events = [complaint(m, cid) for cid, m in complaints]
    res = run(ordinaries(), events, until=t(200))
    found = res.of("fault.opened", customer_id=None)
    if opened_min is None:
        assert found == []
        res.none("fault.serious")
        return
    assert len(found) == 1
    f = found[0]
    assert (f["kind"], f["city"], f["service_type"], f["important"], f["opened_at"], f["at"]) == \
        ("complaint", "GZ", "internet", False, t(opened_min), t(opened_min))
    assert f["circuit_id"] is None and f["root_resource"] is None
    assert serious_of(res, f["fault_id"]) == (t(opened_min + 30), "SF-6b", "duration")


@pytest.mark.parametrize(("cities", "types"), [
    pytest.param(["GZ", "GZ", "SZ"], ["internet"] * 3, id="other-city"),
    pytest.param(["GZ"] * 3, ["internet", "internet", "voice"], id="other-service-type"),
])
def test_SF_6b_needs_the_same_city_and_service_type(cities, types):
    events = [complaint(i, f"O{i + 1}", cities[i], types[i]) for i in range(3)]
    res = run(ordinaries(), events, until=t(120))
    res.none("fault.opened", customer_id=None)


def test_SF_6b_important_customers_do_not_count():
    inv = ordinaries().customer("P", "provincial")
    res = run(inv, [complaint(0, "O1"), complaint(1, "O2"), complaint(2, "P")], until=t(10))
    res.none("fault.opened", customer_id=None)


# ---------------------------------------------------------------------- TM-1


def test_TM_1_starts_at_opened_at_and_makes_the_fault_serious_at_the_threshold():
    res = run(one_line("internet"), [alarm(4, "X-1-OTN", event_min=2)], until=t(120))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(32), "SF-3", "duration")


def test_TM_1_does_not_fire_for_a_fault_that_ended_before_the_threshold():
    res = run(one_line("internet"), raise_clear("X-1-OTN", 0, 20), until=t(120))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) is None
    assert res.one("fault.cleared", fault_id=fid)["severity"] == "general"


def test_TM_1_a_new_fault_on_the_same_circuit_gets_its_own_timer():
    events = raise_clear("X-1-OTN", 0, 20) + [alarm(25, "X-1-OTN")]
    res = run(one_line("internet"), events, until=t(120))
    f1, f2 = (r["fault_id"] for r in res.of("fault.opened"))
    assert serious_of(res, f1) is None
    assert serious_of(res, f2) == (t(55), "SF-3", "duration")


def test_TM_1_not_started_for_degradation_faults():
    res = run(one_line("internet"), [alarm(0, "X-1-OTN", "PACKET_LOSS")], until=t(600))
    res.one("fault.opened", kind="degradation")
    res.none("fault.serious")


def test_TM_1_for_sf6b_starts_at_the_third_complaint():
    res = run(ordinaries(), [complaint(0, "O1"), complaint(5, "O2"), complaint(9, "O3")], until=t(60))
    f = res.one("fault.opened", customer_id=None)
    assert serious_of(res, f["fault_id"]) == (t(39), "SF-6b", "duration")
    # the three complaint faults of ordinary customers never become serious themselves
    assert len(res.of("fault.serious")) == 1
