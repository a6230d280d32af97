"""Every operation the one HTTP app serves, in both modes (services/http/app.py): the set the
route tests and the fuzz test check the OpenAPI document against."""

from __future__ import annotations

from services.http.alarms642 import BASES
from services.http.face import TMF621, TMF621_BASE

_TMF642 = {op for root in BASES for op in (
    ("POST", f"{root}/alarm"), ("GET", f"{root}/alarm"), ("GET", f"{root}/alarm/{{alarm_id}}"),
    ("PATCH", f"{root}/alarm/{{alarm_id}}"), ("DELETE", f"{root}/alarm/{{alarm_id}}"),
    *(("POST", f"{root}/{task}") for task in ("ackAlarms", "unAckAlarms", "clearAlarms", "commentAlarms",
                                              "groupAlarms", "unGroupAlarms")))}

_HUB = {op for root in ("", TMF621_BASE) for op in (
    ("POST", f"{root}/hub"), ("GET", f"{root}/hub/{{id}}"), ("DELETE", f"{root}/hub/{{id}}"))}

_INVENTORY = {("POST", "/inventory"), ("GET", "/inventory"),
              *(("GET", f"/inventory/{kind}s") for kind in ("customer", "circuit", "resource")),
              *(("GET", f"/inventory/{kind}s/{{{kind}_id}}") for kind in ("customer", "circuit", "resource"))}

ROUTES = {("POST", "/alarms"), ("POST", "/alarms/import"),
          ("GET", "/wall"), ("GET", "/wall/summary"), ("POST", "/complaints"), ("POST", "/actions"),
          ("GET", "/faults"), ("GET", "/faults/{fault_id}"), ("GET", "/faults/{fault_id}/detail"),
          ("GET", "/faults/{fault_id}/report"), ("GET", "/workorders"),
          ("GET", "/workorders/{work_order_id}"), ("GET", "/decisions"),
          ("GET", TMF621), ("POST", TMF621), ("GET", f"{TMF621}/{{ticket_id}}"),
          ("PATCH", f"{TMF621}/{{ticket_id}}"), ("DELETE", f"{TMF621}/{{ticket_id}}"),
          ("GET", "/inputs/{input_id}"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
          ("GET", "/audit"), *_TMF642, *_HUB, *_INVENTORY}
