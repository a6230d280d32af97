"""The rulebook is interpreted in one place (issue 8 §4): the engine classifies causes
(AL-2), picks the serious row and its threshold (SV-1, SF-1a…SF-5), routes by the level
rows (RT-2…RT-8) and tells a green channel (CP-2) through the very lookups that
tests/unit/test_rulebook.py tests, so the tested reading is the one that runs."""

from __future__ import annotations

from collections import Counter

import pytest
from scenario import Inv, alarm, complaint, run

from shared.rulebook import Rulebook, SeriousRow

LOOKUPS = {Rulebook: ("cause_class", "serious_row", "level_row", "is_green"), SeriousRow: ("long_applies",)}


@pytest.fixture
def calls(monkeypatch) -> Counter:
    seen: Counter = Counter()
    for cls, names in LOOKUPS.items():
        for name in names:
            real = getattr(cls, name)

            def spy(self, *args, _real=real, _name=name):
                seen[_name] += 1
                return _real(self, *args)
            monkeypatch.setattr(cls, name, spy)
    return seen


def test_AL_2_SV_1_RT_2_CP_2_the_engine_runs_the_rulebook_lookups(calls):
    inv = (Inv().customer("P", "provincial", "gold", hq_city="GZ").circuit("P-INT", "P")
           .customer("O").circuit("O-INT", "O"))
    res = run(inv, [alarm(0, "P-INT-OTN"), complaint(5, "O", channel="direct")], until=None)
    assert res.of("fault.opened") and res.of("work_order.created")
    assert set(calls) == {"cause_class", "serious_row", "level_row", "is_green", "long_applies"}


def test_SV_1_a_fault_without_a_root_layer_matches_only_rows_naming_no_layers():
    """The reading the engine always ran; the rulebook's own lookup used to match SF-2 here."""
    from shared.rulebook import load_rulebook

    rb = load_rulebook()
    assert rb.serious_row("gprs_apn", None, "APN_DOWN") is None        # SF-2 names root layers
    assert rb.serious_row("gprs_apn", "core", "APN_DOWN").id == "SF-2"
    assert rb.serious_row("internet", None, "LOS").id == "SF-3"        # SF-3 names none
