"""The whole chain on the fixture city: a low-pressure alarm opens an incident; a call joins
it; the dispatcher confirms the broken pipe; valve and repair tasks go out through the tasks
domain in the trace's order; the valves closed, the repair verified, the valves opened
again, the incident closed; the customers of the affected meters and the callers told each
message once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import create_crew
from fieldline.server.incidents import services
from fieldline.server.incidents.models import Incident, IncidentStep
from fieldline.server.network.params import IsolationQuery
from fieldline.server.network.services import isolation
from fieldline.server.notices.models import CustomerContact, Notice
from fieldline.server.tasks.models import Task
from fieldline.server.tasks.services import get_task, transition
from fieldline.settings import Settings
from tests.conftest import load_fixture
from tests.server.incidents.conftest import Jobs, raise_low_pressure, received
from tests.server.incidents.test_intake import east_of, station_point

CALLER_PHONE = "+358401110000"
LATE_CALLER_PHONE = "+358402220000"
PATH = {
    "created": "assign",
    "assigned": "accept",
    "accepted": "arrive",
    "on_site": "complete",
    "completed": "verify",
}


def clock() -> datetime:
    return datetime.now(UTC)


def drive(session: Session, task_id: str, crew: Crew, until: str) -> None:
    """Take a task along the crew's path up to `until`, as dispatcher, crew and check would."""
    task = get_task(session, task_id)
    while task.state != until:
        action = PATH[task.state]
        kind = "system" if action == "verify" else "dispatcher"
        crew_arg = crew if action == "assign" else None
        transition(session, task, action, actor="test", actor_kind=kind, at=clock(), crew=crew_arg)
        session.commit()
        task = get_task(session, task_id)


def a_pipe_that_leaves_customers_dry(session: Session, suggested: Sequence[dict[str, Any]]) -> Any:
    for pipe in suggested:
        answer = isolation(session, IsolationQuery(pipe_id=pipe["pipe_id"]))
        if answer.trace.valves_to_close and answer.meters:
            return answer
    raise AssertionError("no suggested pipe near the station leaves customers dry")


def outage_notices(session: Session, kind: str) -> list[Notice]:
    session.expire_all()
    return list(session.scalars(sa.select(Notice).where(Notice.kind == kind).order_by(Notice.id)))


def test_alarm_to_closed_incident_with_its_tasks_and_notices(
    session: Session,
    jobs: Jobs,
    incident_client: FlaskClient,
    incident_settings: Settings,
    listening: Any,
) -> None:
    _, after = raise_low_pressure(session, jobs)
    jobs.incidents(after)
    (incident_id,) = session.scalars(sa.select(Incident.public_id))
    here = station_point(session)
    lon, lat = east_of(here, 30)
    caller = {"name": "Aino Virtanen", "phone": CALLER_PHONE}
    joined = incident_client.post(
        "/api/v1/incidents",
        json={"lon": lon, "lat": lat, "description": "No water", "caller": caller},
    )
    assert joined.status_code == 200 and joined.get_json()["id"] == incident_id

    detail = incident_client.get(f"/api/v1/incidents/{incident_id}").get_json()
    answer = a_pipe_that_leaves_customers_dry(session, detail["suggested_pipes"])
    pipe_id = answer.trace.pipe
    # The customers fed from the shut-off and dry pipes, from the fixture files: one reached
    # by phone (the caller's own number: told once), one by e-mail, one not reachable.
    dry = set(answer.trace.isolated_pipes) | set(answer.trace.dry_pipes)
    accounts = sorted(
        f["properties"]["customer_account"]
        for f in load_fixture("meters")
        if f["properties"]["pipe"] in dry
    )
    contacts: dict[str, str] = {}
    for i, account in enumerate(accounts):
        if i == len(accounts) - 1 and len(accounts) > 2:
            continue  # no contact on file
        phone = CALLER_PHONE if i == 0 else None
        email = None if i == 0 else f"{account.lower()}@example.fi"
        session.add(CustomerContact(customer_account=account, phone=phone, email=email))
        contacts[account] = phone or email or ""
    session.commit()
    expected = set(contacts.values()) | {CALLER_PHONE}

    response = incident_client.post(
        f"/api/v1/incidents/{incident_id}/isolate", json={"pipe_id": pipe_id}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["state"], body["pipe_id"]) == ("isolating", pipe_id)
    assert body["isolation"]["customers"] == len(accounts)
    assert {m["customer_account"] for m in body["isolation"]["meters"]} == set(accounts)
    valves = [v.public_id for v in answer.trace.valves_to_close]
    closes = [t for t in body["tasks"] if t["role"] == "close_valve"]
    assert [(t["valve_id"], t["order"]) for t in closes] == [
        (v, i) for i, v in enumerate(valves, start=1)
    ]
    (repair,) = [t for t in body["tasks"] if t["role"] == "repair"]
    for shown in closes:
        task = get_task(session, shown["id"])
        assert (task.kind, task.priority) == ("valve_operation", "P1")
        assert shown["valve_id"] in task.title and incident_id in task.title
    repair_task = get_task(session, repair["id"])
    assert (repair_task.kind, repair_task.priority, repair_task.source) == (
        "repair", "P1", "scada_alarm"
    )  # fmt: skip
    # Restoration from the pipe's diameter band in the setting, from the fixture's diameter.
    diameter = next(f for f in load_fixture("pipes") if f["id"] == pipe_id)["properties"].get(
        "diameter_mm"
    )
    hours = next(
        h
        for limit, h in incident_settings.incident_restoration_bands
        if limit is None or (diameter is not None and diameter <= limit)
    )
    isolated_at = datetime.fromisoformat(body["isolated_at"])
    assert datetime.fromisoformat(body["estimated_restoration"]) == isolated_at + timedelta(
        hours=hours
    )
    water_off = outage_notices(session, "water_off")
    assert {n.recipient for n in water_off} == expected
    assert len(water_off) == len(expected)  # the caller who is also a customer: once
    assert all(incident_id in n.text for n in water_off)

    # A second call about the same outage joins it and is told at once; isolating again is
    # refused.
    late = {"name": "Late caller", "phone": LATE_CALLER_PHONE}
    again = incident_client.post(
        "/api/v1/incidents",
        json={"lon": here[0], "lat": here[1], "description": "Dry too", "caller": late},
    )
    assert again.status_code == 200 and again.get_json()["id"] == incident_id
    expected.add(LATE_CALLER_PHONE)
    assert {n.recipient for n in outage_notices(session, "water_off")} == expected
    assert len(outage_notices(session, "water_off")) == len(expected)
    refused = incident_client.post(
        f"/api/v1/incidents/{incident_id}/isolate", json={"pipe_id": pipe_id}
    )
    assert refused.status_code == 409

    crew = create_crew(session, "Crew east", skills=["valve_operation", "pipe_repair"])
    session.commit()
    for shown in closes:
        assert state_of(session, incident_id) == "isolating"
        drive(session, shown["id"], crew, "completed")
    assert state_of(session, incident_id) == "repairing"

    # A new estimate: an update to each, once however often it is sent.
    eta = (clock() + timedelta(hours=hours + 2)).replace(microsecond=0)
    for _ in range(2):
        patched = incident_client.patch(
            f"/api/v1/incidents/{incident_id}", json={"estimated_restoration": eta.isoformat()}
        )
        assert patched.status_code == 200, patched.get_json()
    updates = outage_notices(session, "water_update")
    assert {n.recipient for n in updates} == expected and len(updates) == len(expected)

    drive(session, repair["id"], crew, "completed")
    assert state_of(session, incident_id) == "repairing"  # done, not yet verified
    drive(session, repair["id"], crew, "verified")
    assert state_of(session, incident_id) == "restoring"
    detail = incident_client.get(f"/api/v1/incidents/{incident_id}").get_json()
    opens = [t for t in detail["tasks"] if t["role"] == "open_valve"]
    assert [(t["valve_id"], t["order"]) for t in opens] == [
        (v, i) for i, v in enumerate(valves, start=1)
    ]
    assert all(get_task(session, t["id"]).kind == "valve_operation" for t in opens)
    assert outage_notices(session, "water_restored") == []

    for shown in opens:
        assert state_of(session, incident_id) == "restoring"
        drive(session, shown["id"], crew, "completed")
    assert state_of(session, incident_id) == "closed"
    restored = outage_notices(session, "water_restored")
    assert {n.recipient for n in restored} == expected and len(restored) == len(expected)
    for shown in opens:  # the check passing afterwards changes nothing
        drive(session, shown["id"], crew, "verified")
    assert len(outage_notices(session, "water_restored")) == len(expected)

    final = incident_client.get(f"/api/v1/incidents/{incident_id}").get_json()
    assert [s["action"] for s in final["history"]] == [
        "open", "link", "isolate", "link", *(["valves_closed"] if valves else []),
        "estimate", "repaired", "restored",
    ]  # fmt: skip
    assert final["closed_at"] is not None
    assert {n["kind"] for n in final["notices"]} == {"water_off", "water_update", "water_restored"}
    # The steps taken inside the tasks' transactions go out with the job's next run.
    jobs.incidents(clock())
    session.expire_all()
    assert (
        session.scalar(sa.select(sa.func.count()).where(IncidentStep.announced_at.is_(None))) == 0
    )
    events = [e for e in received(listening, 8) if e["type"] == "incident"]
    assert [e["action"] for e in events] == [s["action"] for s in final["history"]]
    assert events[-1]["state"] == "closed"
    assert session.scalar(sa.select(sa.func.count()).select_from(Task)) == len(valves) * 2 + 1


def state_of(session: Session, incident_id: str) -> str:
    session.expire_all()
    return services.get_incident(session, incident_id).state
