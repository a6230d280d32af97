"""Every topic name (CONTRACT §4 and the stages' own), in one place.

Contract topics: raw feeds per source format, normalized alarms, operator inputs, the
decision records, each queue's work orders, and the dead letters. Internal topics: the
router's city-keyed inputs of the correlate stage, and the correlator's notices to the
dispatcher (both keyed by city; services/drivers/sharding.py).
"""

from __future__ import annotations

ALARMS = "faultline.alarms"
ACTIONS = "faultline.actions"
DECISIONS = "faultline.decisions"
DEADLETTER = "faultline.deadletter"
WORKORDERS_PREFIX = "faultline.workorders."
RAW_ALARMS_PREFIX = "faultline.alarms.raw."
CORRELATOR_INPUTS = "faultline.correlator.inputs"
ANSWERS = "faultline.correlator.answers"      # the shards' answers to the router's asks
FAULTS = "faultline.faults"


def workorders_topic(queue: str) -> str:
    """The topic of one queue's work-order records, e.g. faultline.workorders.prov.monitoring."""
    return WORKORDERS_PREFIX + queue


def raw_alarms_topic(fmt: str) -> str:
    """The raw feed of one source format, e.g. faultline.alarms.raw.syslog (CONTRACT §4)."""
    return RAW_ALARMS_PREFIX + fmt
