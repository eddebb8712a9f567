"""Assigning a task through the API: the offer goes to the crew's inbox with its ETA, a wrong
state is a 409 naming it, a bad crew a 422; the candidates endpoint and the role table."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session

from fieldline.server import create_app
from fieldline.server.auth.policy import ROLE_PERMISSIONS
from fieldline.server.live.services import Live
from fieldline.server.tasks.inbox import inbox_topic
from fieldline.server.tasks.models import Task, TaskTransition
from fieldline.server.tasks.services import create_task, transition
from fieldline.settings import Settings
from tests.server.dispatch.conftest import on_shift_crew, report_fix
from tests.server.dispatch.roads import RoadModel
from tests.server.dispatch.test_candidates import central_site, nearby


def now_utc() -> datetime:
    return datetime.now(UTC)


def repair(session: Session, point: tuple[float, float], **fields: object) -> Task:
    body = {"kind": "repair", "priority": "P2", "source": "plan", "site": list(point)} | fields
    return create_task(session, body, "dispatch-test", now_utc())


@pytest.fixture
def inbox_messages(settings: Settings) -> Iterator[tuple[mqtt.Client, queue.Queue[dict]]]:
    received: queue.Queue[dict] = queue.Queue()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"dispatch-test-{uuid.uuid4().hex[:8]}"
    )
    client.on_message = lambda _c, _u, message: received.put(json.loads(message.payload))
    client.connect("localhost", 1883)
    client.loop_start()
    yield client, received
    client.loop_stop()
    client.disconnect()


def test_candidates_then_assign_sends_the_offer_with_its_eta(
    session: Session,
    roads: RoadModel,
    live: Live,
    dispatch_client: FlaskClient,
    inbox_messages: tuple[mqtt.Client, queue.Queue[dict]],
) -> None:
    site = central_site(roads)
    near, far = nearby(roads, site, 6)[1], nearby(roads, site, 6)[5]
    crews = []
    for name, spot in (("Near", near), ("Far", far)):
        crew = on_shift_crew(session, name, skills=["pipe_repair"], now=now_utc())
        report_fix(live, crew, now_utc() - timedelta(seconds=20), spot.point)
        crews.append(crew)
    task = repair(session, site.point, required_skills=["pipe_repair"])
    session.flush()

    response = dispatch_client.get(f"/api/v1/tasks/{task.public_id}/candidates?limit=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ranking"] == "road"
    ids = [c["crew_id"] for c in body["candidates"]]
    assert set(ids) == {c.public_id for c in crews}
    best = body["candidates"][0]
    assert best["position"]["source"] == "fix" and best["position"]["age_s"] >= 20
    eta_s = [c["eta_s"] for c in body["candidates"]]
    assert eta_s == sorted(eta_s)

    client, received = inbox_messages
    client.subscribe(inbox_topic(best["crew_id"]), qos=1)
    assigned = dispatch_client.post(
        f"/api/v1/tasks/{task.public_id}/assign", json={"crew": best["crew_id"]}
    )
    assert assigned.status_code == 200, assigned.get_json()
    result = assigned.get_json()
    assert result["task"]["state"] == "assigned" and result["task"]["crew"] == best["crew_id"]
    assert result["transition"]["action"] == "assign"
    assert result["eta"]["seconds"] == pytest.approx(best["eta_s"], abs=0.2)
    assert result["eta"]["by_road"] is True
    assert result["eta"]["at"] in result["transition"]["note"]
    assert [d["delivered"] for d in result["inbox"]] == [True]
    deadline = now_utc() + timedelta(seconds=10)
    while True:
        message = received.get(timeout=max(0.1, (deadline - now_utc()).total_seconds()))
        if message.get("task_id") == task.public_id:
            break
    assert message["kind"] == "task.assigned"
    assert message["task"]["id"] == task.public_id

    # Another crew now: a transfer, with the first told it was taken away.
    other = next(c.public_id for c in crews if c.public_id != best["crew_id"])
    moved = dispatch_client.post(f"/api/v1/tasks/{task.public_id}/assign", json={"crew": other})
    assert moved.status_code == 200
    assert moved.get_json()["transition"]["action"] == "transfer"
    assert moved.get_json()["task"]["crew"] == other


def test_assigning_a_task_in_the_wrong_state_is_a_409_naming_it(
    session: Session, roads: RoadModel, live: Live, dispatch_client: FlaskClient
) -> None:
    site = central_site(roads)
    crew = on_shift_crew(session, "Crew", now=now_utc())
    report_fix(live, crew, now_utc(), nearby(roads, site, 1)[0].point)
    task = repair(session, site.point)
    transition(session, task, "cancel", actor="d", actor_kind="dispatcher", at=now_utc())
    session.flush()
    steps_before = session.scalar(sa.select(sa.func.count()).select_from(TaskTransition))

    response = dispatch_client.post(
        f"/api/v1/tasks/{task.public_id}/assign", json={"crew": crew.public_id}
    )

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "cancelled" in response.get_json()["detail"]
    session.expire_all()
    assert session.get(Task, task.id).state == "cancelled"  # type: ignore[union-attr]
    assert session.scalar(sa.select(sa.func.count()).select_from(TaskTransition)) == steps_before


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"crew": "C-999999"}, 422, "crew"),
        ({}, 422, "crew"),
        ({"crew": 7}, 422, "crew"),
        ({"crew": "C-000001", "eta": 3}, 422, "eta"),
        ([1, 2], 422, "body"),
    ],
)
def test_a_bad_assign_body_is_a_4xx_naming_the_field(
    session: Session,
    roads: RoadModel,
    dispatch_client: FlaskClient,
    body: object,
    status: int,
    field: str,
) -> None:
    task = repair(session, central_site(roads).point)
    session.flush()
    response = dispatch_client.post(f"/api/v1/tasks/{task.public_id}/assign", json=body)
    assert response.status_code == status
    assert response.get_json()["field"] == field
    session.refresh(task)
    assert task.state == "created" and task.crew_id is None


def test_a_crew_without_the_skills_cannot_be_assigned(
    session: Session, roads: RoadModel, live: Live, dispatch_client: FlaskClient
) -> None:
    crew = on_shift_crew(session, "Readers", skills=["meter"], now=now_utc())
    task = repair(session, central_site(roads).point, required_skills=["welding"])
    session.flush()
    response = dispatch_client.post(
        f"/api/v1/tasks/{task.public_id}/assign", json={"crew": crew.public_id}
    )
    assert response.status_code == 422
    assert "welding" in response.get_json()["detail"]


def test_unknown_task_and_bad_query_parameters(dispatch_client: FlaskClient) -> None:
    assert dispatch_client.get("/api/v1/tasks/T-999999/candidates").status_code == 404
    assert (
        dispatch_client.post("/api/v1/tasks/T-999999/assign", json={"crew": "C-1"}).status_code
        == 404
    )
    for query, field in (
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("include_busy=2", "include_busy"),
    ):
        response = dispatch_client.get(f"/api/v1/tasks/T-000001/candidates?{query}")
        assert response.status_code == 400
        assert response.get_json()["field"] == field
    response = dispatch_client.post(
        "/api/v1/tasks/T-999999/assign", data="crew=C-1", content_type="text/plain"
    )
    assert response.status_code == 415


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_dispatch_follows_the_role_table(
    role: str,
    session: Session,
    roads: RoadModel,
    dispatch_settings: Settings,
    connection: sa.Connection,
) -> None:
    task = repair(session, central_site(roads).point)
    crew = on_shift_crew(session, "Crew", now=now_utc())
    session.flush()
    as_role = dispatch_settings.model_copy(update={"anonymous_role": role})
    client = create_app(as_role, bind=connection).test_client()

    read = client.get(f"/api/v1/tasks/{task.public_id}/candidates")
    batch = client.post("/api/v1/dispatch/batch", json={"tasks": [task.public_id]})  # dry run
    write = client.post(f"/api/v1/tasks/{task.public_id}/assign", json={"crew": crew.public_id})

    may_read = "dispatch:read" in ROLE_PERMISSIONS[role]
    may_write = "dispatch:write" in ROLE_PERMISSIONS[role]
    assert read.status_code == (200 if may_read else 403)
    assert write.status_code == (200 if may_write else 403)
    assert batch.status_code == (200 if may_write else 403)
    if not may_write:
        assert role in write.get_json()["detail"]
