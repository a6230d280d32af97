"""A started process freezes what start-up made and collects its young generation rarely
(services/runtime/shell.tune_gc): the heap of a service is large and long-lived."""

from __future__ import annotations

import gc

from services.runtime.shell import GC_THRESHOLDS, tune_gc


def test_tune_gc_freezes_start_up_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    kept = [{"inventory": [i]} for i in range(1000)]     # what start-up made (tracked: holds a list)
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
