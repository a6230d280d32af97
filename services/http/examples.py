"""Examples of the OpenAPI document (issue 10: an example for every operation), one place for
all: request and answer bodies of the sample scenario (samples/), as an operator would see
them. services/http/models.py puts them on its models; routes name them in `responses`."""

from __future__ import annotations

FAULT = {
    "fault_id": "F-GZ-000001", "incident_id": "I-GZ-000001", "kind": "outage",
    "circuit_id": "GZ-INT-0001", "customer_id": "C-NH", "customer_name": "南方航空集团公司",
    "city": "GZ", "service_type": "internet", "important": True, "cause_side": "core",
    "root_resource": "GZ-OTN-A:1-3-1", "layer": "transmission", "probable_cause": "LOS",
    "opened_at": "2026-11-25T10:00:00+08:00", "severity": "serious",
    "serious_at": "2026-11-25T10:30:00+08:00", "rule": "SF-3", "trigger": "duration",
    "ended_at": None, "attribution": "ours", "customer_reported": False, "complaints": [],
    "work_orders": ["W-GZ-000001"], "duration_s": None, "updated_at": "2026-11-25T10:30:00+08:00",
}

WORK_ORDER = {
    "work_order_id": "W-GZ-000001", "queue": "prov.specialist.transmission",
    "fault_ids": ["F-GZ-000001"], "cc": [], "priority": "normal",
    "title": "【集团客户一般故障】南方航空集团公司 互联网专线中断", "rule": "RT-2",
    "status": "acknowledged", "contact_by": None, "arrive_by": None,
    "created_at": "2026-11-25T10:00:05+08:00", "updated_at": "2026-11-25T10:00:05+08:00",
    "resolved_at": None,
}

FAULT_DETAIL = {
    "fault": FAULT,
    "customer": {"customer_id": "C-NH", "name": "南方航空集团公司", "level": "provincial",
                 "grade": "diamond"},
    "circuit": {"circuit_id": "GZ-INT-0001", "service_type": "internet", "a_city": "GZ",
                "z_city": None, "span": "local"},
    "alarms": [{"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
                "probable_cause": "LOS", "severity": "critical", "state": "raised",
                "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}],
    "alarms_more": False, "complaints": [], "work_orders": [WORK_ORDER],
    "escalations": [], "notifications": [],
    "timers": [{"kind": "TM-6", "due": "2026-11-25T12:30:00+08:00", "stage": "dispatch", "shard": "GZ"}],
    "incident": None,
}

COMPLAINT = {
    "complaint_id": "CSP-20261125-0031", "channel": "10086-8", "customer_id": "C-FS-017",
    "city": "FS", "service_type": "internet", "scope": "all_users", "text": "全部无法上网",
}

ACTION = {"kind": "ack", "select": {"fault_id": "F-GZ-000001"}, "queue": "city.GZ.monitoring"}

INTAKE_ANSWER = {
    "accepted": 1, "rejected": 0, "reasons": [], "records": None, "refused": [],
    "input_ids": ["faultline.actions:0:41@1764036000000"], "pending": 1,
}

INPUT_OUTCOME = {
    "input_id": "faultline.actions:0:41@1764036000000", "status": "refused",
    "reason": "ack F-GZ-000001: queue city.FS.monitoring holds no open work order of this fault",
    "records": 0,
}

DECISIONS = {
    "decisions": [{"seq": 1, "record": {"type": "fault.serious", "at": "2026-11-25T10:30:00+08:00",
                                        "fault_id": "F-GZ-000001", "rule": "SF-3", "trigger": "duration"}}],
    "last_seq": 1,
}

AUDIT = {
    "changes": [{"id": 7, "at": 1764036000.0, "token_id": 3, "actor": "GZ monitoring room",
                 "role": "city-operator", "city": "GZ",
                 "action": "PATCH /tmf-api/troubleTicket/v4/troubleTicket/{id}", "inputs": 1,
                 "detail": {"work_order_id": "W-GZ-000002", "before": {"status": "acknowledged"},
                            "after": {"status": "inProgress"}}}],
    "last_id": 7,
}

STATUS = {"status": "ready", "detail": None, "problems": [], "warnings": []}

TICKET = {
    "id": "W-GZ-000001", "href": "http://faultline:8080/tmf-api/troubleTicket/v4/troubleTicket/W-GZ-000001",
    "@type": "TroubleTicket", "name": "【集团客户一般故障】南方航空集团公司 互联网专线中断",
    "description": "【集团客户一般故障】南方航空集团公司 互联网专线中断 (faults F-GZ-000001)",
    "severity": "general", "priority": "normal", "ticketType": "RT-2", "status": "acknowledged",
    "statusChangeDate": "2026-11-25T10:00:05+08:00", "statusChangeReason": "created by RT-2",
    "statusChange": [{"changeDate": "2026-11-25T10:00:05+08:00", "status": "acknowledged",
                      "changeReason": "created by RT-2"}],
    "creationDate": "2026-11-25T10:00:05+08:00", "lastUpdate": "2026-11-25T10:00:05+08:00",
    "resolutionDate": None, "expectedResolutionDate": None,
    "channel": {"name": "prov.specialist.transmission"}, "note": [],
    "relatedEntity": [{"id": "F-GZ-000001", "role": "fault", "@referredType": "Fault",
                       "href": "http://faultline:8080/faults/F-GZ-000001"},
                      {"id": "GZ-INT-0001", "role": "circuit", "@referredType": "Circuit"}],
    "relatedParty": [{"id": "prov.specialist.transmission", "role": "owner", "@referredType": "Queue",
                      "name": "prov.specialist.transmission"},
                     {"id": "C-NH", "role": "customer", "@referredType": "Customer",
                      "name": "南方航空集团公司"}],
}

TMF_ALARM = {
    "id": "gd-otn-nms-1:884213",
    "href": "http://faultline:8080/tmf-api/alarm/v4/alarm/gd-otn-nms-1%3A884213", "@type": "Alarm",
    "externalAlarmId": "884213", "alarmType": None, "perceivedSeverity": "critical",
    "probableCause": "LOS", "specificProblem": "R_LOS", "alarmedObjectType": "Resource",
    "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "sourceSystemId": "gd-otn-nms-1",
    "reportingSystemId": "gd-otn-nms-1", "state": "raised", "ackState": "unacknowledged",
    "ackUserId": None, "alarmRaisedTime": "2026-11-25T10:00:00+08:00",
    "alarmReportingTime": "2026-11-25T10:00:05+08:00", "alarmChangedTime": "2026-11-25T10:00:05+08:00",
    "alarmClearedTime": None, "clearUserId": None, "comment": [], "alarmDetails": None,
}

ERROR_405 = {"@type": "Error", "code": "405", "reason": "Method Not Allowed",
             "message": "trouble tickets are kept: PATCH status cancelled instead", "status": "405",
             "detail": "trouble tickets are kept: PATCH status cancelled instead"}

REPORT_MARKDOWN = ("# 技术版故障处理报告 (Technical fault report) F-GZ-000001\n\n"
                   "## 一、故障概况 (Summary)\n\n- 客户 (Customer): 南方航空集团公司 (C-NH)\n")

METRICS = ('# HELP faultline_faults_open Open faults by city and severity\n'
           '# TYPE faultline_faults_open gauge\nfaultline_faults_open{city="GZ",severity="serious"} 1.0\n')


def answer(example: object, media: str = "application/json") -> dict:
    """A 2xx answer's OpenAPI entry with this example."""
    return {"content": {media: {"example": example}}}
