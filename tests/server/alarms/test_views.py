"""`/api/v1/alarm-rules` and `/api/v1/alarms`: validation naming the field, the rule's
lifecycle, the alarm list and detail, acknowledging, permissions, the live event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.alarms import services
from fieldline.settings import Settings
from tests.server.alarms.conftest import STATION, T0, Scheduler, received, store
from tests.server.alarms.test_jobs import LOW
from tests.server.test_policy import client_as


def raise_one(session: Session, scheduler: Scheduler) -> str:
    services.create_rule(session, dict(LOW, delay_s=0), "test", T0)
    session.commit()
    end = store(session, [300, 200, 210], T0 + timedelta(seconds=10))
    (alarm_id,) = scheduler.run(end + timedelta(seconds=1)).raised
    return alarm_id


def test_rules_are_created_read_changed_and_deleted(alarm_client: FlaskClient) -> None:
    created = alarm_client.post("/api/v1/alarm-rules", json=LOW)
    assert created.status_code == 201, created.json
    rule = created.json
    assert rule["id"].startswith("AR-") and created.headers["Location"].endswith(rule["id"])
    assert rule["term"] == "S-000004/pressure_kpa<250:high:deadband=20:delay=1m"
    assert rule["condition"] == "pressure_kpa below 250 for 1m (clears above 270)"
    assert alarm_client.get(f"/api/v1/alarm-rules/{rule['id']}").json == rule
    listed = alarm_client.get("/api/v1/alarm-rules").json["rules"]
    assert [r["id"] for r in listed] == [rule["id"]]
    changed = alarm_client.patch(
        f"/api/v1/alarm-rules/{rule['id']}", json={"kind": "stale", "stale_after_s": 900}
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["kind"], changed.json["threshold"], changed.json["stale_after_s"]) == (
        "stale", None, 900
    )  # fmt: skip
    # The whole rule as shown goes back unchanged.
    shown = {k: v for k, v in changed.json.items() if k in services.CONDITION_FIELDS}
    assert alarm_client.patch(f"/api/v1/alarm-rules/{rule['id']}", json=shown).status_code == 200
    assert alarm_client.delete(f"/api/v1/alarm-rules/{rule['id']}").status_code == 204
    assert alarm_client.get(f"/api/v1/alarm-rules/{rule['id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": None}, "metric"),
        ({"kind": "between"}, "kind"),
        ({"threshold": "low"}, "threshold"),
        ({"deadband": -2}, "deadband"),
        ({"delay_s": 10**9}, "delay_s"),
        ({"severity": "urgent"}, "severity"),
        ({"station": "S-999999"}, "station"),
        ({"station_kind": "flow"}, "station_kind"),
        ({"window_s": 60}, "window_s"),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_rule_is_422_naming_the_field(
    alarm_client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    response = alarm_client.post("/api/v1/alarm-rules", json=LOW | change)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field


def test_a_bad_patch_is_422_and_changes_nothing(alarm_client: FlaskClient) -> None:
    rule = alarm_client.post("/api/v1/alarm-rules", json=LOW).json
    response = alarm_client.patch(f"/api/v1/alarm-rules/{rule['id']}", json={"threshold": None})
    assert response.status_code == 422 and response.json["field"] == "threshold"
    assert alarm_client.get(f"/api/v1/alarm-rules/{rule['id']}").json["threshold"] == 250
    body = alarm_client.post("/api/v1/alarm-rules", data="[]", content_type="application/json")
    assert body.status_code == 422 and body.json["field"] == "body"


def test_acknowledge_with_who_and_when_and_the_live_event(
    session: Session, scheduler: Scheduler, alarm_client: FlaskClient, listening: Any
) -> None:
    alarm_id = raise_one(session, scheduler)
    received(listening, 1)  # the raise
    response = alarm_client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge", json={"note": "crew sent"}
    )
    assert response.status_code == 200, response.json
    assert response.json["state"] == "acknowledged"
    assert response.json["acknowledged_by"] == "local-operator"
    assert response.json["acknowledged_at"] is not None and response.json["allowed_actions"] == []
    (event,) = [e for e in received(listening, 1) if e["type"] == "alarm"]
    assert (event["id"], event["action"], event["state"], event["actor"]) == (
        alarm_id, "acknowledge", "acknowledged", "local-operator"
    )  # fmt: skip
    # Once only; the history says who did what.
    again = alarm_client.post(f"/api/v1/alarms/{alarm_id}/acknowledge")
    assert again.status_code == 409 and "acknowledged" in again.json["detail"]
    detail = alarm_client.get(f"/api/v1/alarms/{alarm_id}").json
    assert [(h["action"], h["actor"], h["note"]) for h in detail["history"]] == [
        ("raise", services.SYSTEM_ACTOR, "pressure_kpa below 250 (clears above 270)"),
        ("acknowledge", "local-operator", "crew sent"),
    ]
    # The readings around it, the one that raised it among them.
    assert [r["value"] for r in detail["readings"]] == [300, 200, 210]
    # Recovery clears an acknowledged alarm.
    end = store(session, [280], T0 + timedelta(seconds=60))
    assert scheduler.run(end + timedelta(seconds=1)).cleared == [alarm_id]
    assert alarm_client.get(f"/api/v1/alarms/{alarm_id}").json["state"] == "cleared"
    cleared = alarm_client.post(f"/api/v1/alarms/{alarm_id}/acknowledge")
    assert cleared.status_code == 409


def test_the_alarm_list_filters(
    session: Session, scheduler: Scheduler, alarm_client: FlaskClient
) -> None:
    alarm_id = raise_one(session, scheduler)
    listed = alarm_client.get("/api/v1/alarms?state=open&station=S-000004&severity=high")
    assert [a["id"] for a in listed.json["alarms"]] == [alarm_id]
    (shown,) = listed.json["alarms"]
    assert (shown["station_id"], shown["station_name"], shown["state"]) == (
        STATION, "Kruununhaka pressure 1", "active"
    )  # fmt: skip
    assert alarm_client.get("/api/v1/alarms?state=cleared").json["alarms"] == []
    assert alarm_client.get("/api/v1/alarms?severity=low").json["alarms"] == []
    assert alarm_client.get("/api/v1/alarms?station=S-000005").json["alarms"] == []
    bad = alarm_client.get("/api/v1/alarms?state=sleeping")
    assert bad.status_code == 400 and bad.json["field"] == "state"
    assert alarm_client.get("/api/v1/alarms/AL-999999").status_code == 404


def test_changing_a_rule_s_condition_clears_its_open_alarm(
    session: Session, scheduler: Scheduler, alarm_client: FlaskClient
) -> None:
    alarm_id = raise_one(session, scheduler)
    (rule,) = alarm_client.get("/api/v1/alarm-rules").json["rules"]
    # Severity alone leaves it open; a new threshold clears it, in the user's name.
    alarm_client.patch(f"/api/v1/alarm-rules/{rule['id']}", json={"severity": "critical"})
    assert alarm_client.get(f"/api/v1/alarms/{alarm_id}").json["state"] == "active"
    alarm_client.patch(f"/api/v1/alarm-rules/{rule['id']}", json={"threshold": 150})
    alarm = alarm_client.get(f"/api/v1/alarms/{alarm_id}").json
    assert alarm["state"] == "cleared" and alarm["cleared_by"] == "local-operator"
    assert alarm["history"][-1]["note"] == "rule changed: threshold"


def test_a_default_rule_cannot_be_deleted_only_switched_off(
    session: Session, settings: Settings, alarm_client: FlaskClient
) -> None:
    services.sync_default_rules(session, settings, T0)
    rules = alarm_client.get("/api/v1/alarm-rules").json["rules"]
    assert rules and all(rule["origin"] == "setting" for rule in rules)
    refused = alarm_client.delete(f"/api/v1/alarm-rules/{rules[0]['id']}")
    assert refused.status_code == 409 and "FIELDLINE_ALARM_RULES_DEFAULT" in refused.json["detail"]
    off = alarm_client.patch(f"/api/v1/alarm-rules/{rules[0]['id']}", json={"enabled": False})
    assert off.status_code == 200 and off.json["enabled"] is False


@pytest.mark.parametrize("role", ["viewer", "dispatcher", "supervisor"])
def test_permissions(role: str, settings: Settings, connection: Any) -> None:
    client = client_as(role, settings, connection)
    assert client.get("/api/v1/alarms").status_code == 200
    assert client.get("/api/v1/alarm-rules").status_code == 200
    created = client.post("/api/v1/alarm-rules", json=LOW)
    assert created.status_code == (201 if role == "supervisor" else 403)
    acknowledged = client.post("/api/v1/alarms/AL-999999/acknowledge")
    assert acknowledged.status_code == (403 if role == "viewer" else 404)
