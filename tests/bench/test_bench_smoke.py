"""Smoke test of bench/engine.py: the generator and one measured pass at a small size.

No timing is asserted (the machine is shared); this only keeps the benchmark runnable and
its storm meaningful: faults open, and only the deliberately bad lines are rejected.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from shared.rulebook import load_rulebook

_PATH = Path(__file__).resolve().parents[2] / "bench" / "engine.py"
_spec = importlib.util.spec_from_file_location("faultline_bench_engine", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench   # dataclasses look their module up
_spec.loader.exec_module(bench)


def test_generator_and_one_pass():
    sc = bench.build(500, 5_000, seed=7)
    assert len(sc.lines) >= 5_000
    assert sc.n_bad >= 1
    rulebook = load_rulebook()

    full = bench.run_full(sc.inv, rulebook, sc.lines)
    assert full.faults > 0
    assert full.rejected == sc.n_bad
    assert full.alarms == len(sc.lines) - sc.n_bad
    assert full.records > full.faults

    events = bench.decode_all(sc.lines)
    assert len(events) == len(sc.lines) - sc.n_bad
    engine = bench.run_engine(sc.inv, rulebook, events)
    assert engine.faults == full.faults


def test_generator_is_seeded():
    a = bench.build(300, 2_000, seed=3)
    b = bench.build(300, 2_000, seed=3)
    assert a.lines == b.lines
