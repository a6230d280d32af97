"""The CONTRACT §3 input envelope, decoded in one place: replay's lines, the embedded
engine's inputs and log, the router's messages and the city shards' logged inputs all
read an input object (`{"kind": …, …}`) with `decode_input`. Pure: any JSON value in,
a domain event or Rejected out."""

from __future__ import annotations

from alarm_ingest.normalized import alarm_from_dict
from alarm_ingest.raw import normalize
from shared.clock import parse_time_cached
from shared.model import Rejected
from shared.wire import INPUT_KINDS, action_from_dict, complaint_from_dict, kind_refusal, show


def decode_input(obj: object, kinds: tuple[str, ...] = INPUT_KINDS) -> object:
    """An input object → an Alarm, Complaint or Action, or Rejected naming the field. `kinds`:
    those this way in takes (faultline.actions: complaints and operator actions)."""
    if type(obj) is not dict:
        return Rejected(f"expected a JSON object with kind, got {show(obj)}")
    kind = obj.get("kind")
    refused = kind_refusal(kind, kinds)
    if refused is not None:
        return Rejected(refused)
    if kind == "alarm":
        if obj.get("alarm") is None:
            return Rejected("alarm: missing field alarm")
        return alarm_from_dict(obj["alarm"])
    if kind == "complaint":
        if obj.get("complaint") is None:
            return Rejected("complaint: missing field complaint")
        return complaint_from_dict(obj["complaint"])
    if kind == "raw":
        if "payload" not in obj:
            return Rejected("raw: missing field payload")
        # replay's `at`: when a syslog line or trap came (the time of one that carries none)
        return normalize(obj.get("format"), obj["payload"], arrival=parse_time_cached(obj.get("at")))
    return action_from_dict(kind, obj)
