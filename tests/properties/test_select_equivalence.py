"""Issue 13: the split pipeline (city shards, as production runs them) decides every input as
`faultline replay` does, ids aside — operator actions with every `select` form included, and
their CL-4 refusals, when the faults a select may mean sit in different shards.

Random event files (tests/select_files.py) on an inventory built for it: a provincial
customer whose internet circuits are in three cities of three correlation groups (one of
them cross-city), a GZ–SZ trunk that joins two cities into one group, ordinary customers
sharing an FS access node, a customer with no circuit of the services it complains about,
resources not in the inventory.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from scenario import action, alarm, complaint, t
from select_files import INVENTORY, event_files, refusals, run_mode

from services.drivers.pipeline import Pipeline
from services.drivers.sharding import Ask, select_shards
from services.drivers.split import SplitPipeline
from shared.model import Select
from tools.kafka_events import canonical


def test_the_inventory_puts_one_customers_service_in_three_shards():
    """What the generator relies on: a customer select without a city asks every shard."""
    assert {INVENTORY.group_of(c) for c in ("GZ", "SZ", "FS", "DG")} == {"GZ", "FS", "DG"}
    assert select_shards(INVENTORY, Select(customer_id="P-NH", service_type="internet")) == \
        Ask(("DG", "FS", "GZ", "HZ", "-"))


def assert_same_decisions(events: list[dict], until: str) -> None:
    one = run_mode(Pipeline, events, until)
    split = run_mode(SplitPipeline, events, until)
    a, b = canonical(one), canonical(split)
    assert a == b, {"only in replay": list((a - b).elements())[:5],
                    "only in split": list((b - a).elements())[:5]}
    ra, rb = refusals(one), refusals(split)
    assert ra == rb, {"only in replay": list((ra - rb).elements())[:5],
                      "only in split": list((rb - ra).elements())[:5]}


# ---------------------------------------------------------------------- the cases of the issue


def test_CL4_customer_select_on_a_complaint_fault_of_a_customer_without_a_circuit_of_that_service():
    """P-SZ has no voice circuit: its voice complaint in FS opens a complaint fault in FS's
    shard; {customer_id, service_type} finds it there, in both modes."""
    events = [complaint(0, "P-SZ", "FS", "voice", cid="K1"),
              action(5, "confirm", {"customer_id": "P-SZ", "service_type": "voice"}, impact="no_impact"),
              action(6, "resolve", {"customer_id": "P-SZ", "service_type": "voice"}),
              action(7, "resolve", {"customer_id": "P-SZ", "service_type": "voice"})]
    split = run_mode(SplitPipeline, events, t(60))
    assert [(r["type"], r.get("fault_id") or r.get("reason")) for r in split
            if r["type"] in ("fault.opened", "fault.cleared", "input.rejected")] == [
        ("fault.opened", "F-FS-000001"), ("fault.cleared", "F-FS-000001"),      # resolved at 10:06
        ("input.rejected", "select {customer_id=P-SZ, service_type=voice} matches no open fault")]
    assert_same_decisions(events, t(60))


def test_CL4_customer_select_whose_circuits_of_the_service_span_cities():
    """P-NH's internet circuits are in three shards. One fault open: the select means it (SV-3
    stops its TM-1 in the FS shard). Two open, in two shards: refused naming both, as replay."""
    events = [alarm(0, "NH-FS-1-CPE", alarm_id="X1"),
              action(1, "attribution", {"customer_id": "P-NH", "service_type": "internet"},
                     attribution="not_ours"),
              action(2, "confirm", {"customer_id": "P-NH", "service_type": "internet"}, impact="no_impact"),
              alarm(3, "NH-DG-1-CPE", alarm_id="X2"),
              action(4, "ack", {"customer_id": "P-NH", "service_type": "internet"}, queue="prov.monitoring"),
              alarm(5, "NH-FS-1-CPE", state="cleared", alarm_id="X1"),
              action(6, "escalate", {"customer_id": "P-NH", "service_type": "internet"}, reason="ES-6")]
    split = run_mode(SplitPipeline, events, t(120))
    assert [(r["fault_id"], r["attribution"]) for r in split if r["type"] == "fault.attributed"] == \
        [("F-FS-000001", "not_ours")]
    rejected = [(r["line"], r["reason"]) for r in split if r["type"] == "input.rejected"]
    assert rejected == [(5, "select {customer_id=P-NH, service_type=internet} matches 2 open faults "
                            "(F-FS-000001, F-DG-000001); name one by fault_id")]
    # Once the FS fault has cleared, the select means the DG one: escalated (ES-6).
    assert [(r["fault_id"], r["reason"]) for r in split if r["type"] == "escalation"] == \
        [("F-DG-000001", "ES-6")]
    assert_same_decisions(events, t(120))


def test_SV5_a_complaint_joins_the_earliest_fault_of_the_service_in_its_city_whichever_shard_holds_it():
    """P-NH's internet in GZ: NH-GZ-1 (GZ's shard) and NH-DG-1, DG→GZ (DG's shard). The DG
    fault opened first; its TM-1 is stopped (SV-3). A GZ complaint by all users joins it
    (SV-5) and starts SF-6a's 30 minutes on it; the same complaint id again, from FS,
    changes nothing (no complaint fault, no second TM-1)."""
    events = [alarm(0, "NH-DG-1-CPE", alarm_id="X1", event_min=-3),
              alarm(1, "NH-GZ-1-CPE", alarm_id="X2"),
              action(1.5, "confirm", {"circuit_id": "NH-DG-1"}, impact="no_impact"),
              complaint(2, "P-NH", "GZ", "internet", cid="K1"),
              complaint(3, "P-NH", "FS", "internet", cid="K1")]
    split = run_mode(SplitPipeline, events, t(60))
    assert [(r["fault_id"], r["kind"]) for r in split if r["type"] == "fault.opened"] == \
        [("F-DG-000001", "outage"), ("F-GZ-000001", "outage")]
    assert sorted((r["fault_id"], r["rule"], r["at"]) for r in split if r["type"] == "fault.serious") == [
        ("F-DG-000001", "SF-6a", t(32)),        # SF-6a: 30 minutes from the complaint it joined
        ("F-GZ-000001", "SF-3", t(31))]
    assert_same_decisions(events, t(60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_files())
def test_CL4_random_event_files_decide_in_the_split_pipeline_as_in_replay(file):
    events, until = file
    assert_same_decisions(events, until)
