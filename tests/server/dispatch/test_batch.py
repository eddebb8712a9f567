"""Batch dispatch over the fixture roads: a dry run plans without changing anything, with the
tasks in hand first and the travel the roads give (checked against networkx); applying it
offers the tasks in each crew's order; bad requests name the field."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import add_shift, create_crew
from fieldline.server.live.services import Live
from fieldline.server.tasks.inbox import inbox_topic
from fieldline.server.tasks.models import Task, TaskTransition
from fieldline.server.tasks.services import transition
from tests.server.dispatch.conftest import on_shift_crew, report_fix, task_at
from tests.server.dispatch.roads import RoadModel, Spot
from tests.server.dispatch.test_candidates import central_site, nearby


def now_utc() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def city(session: Session, roads: RoadModel, live: Live) -> dict[str, Any]:
    """Three driving crews and a walking one with fresh fixes, seven open tasks, and a task
    the first crew has accepted, all at distinct places on the roads."""
    site = central_site(roads)
    spots = [site, *nearby(roads, site, 40)[::3]]
    crews = []
    for i, spot in enumerate(spots[:3]):
        crew = on_shift_crew(session, f"Driving {i}", skills=["pipe_repair"], now=now_utc())
        report_fix(live, crew, now_utc(), spot.point)
        crews.append(crew)
    walker = on_shift_crew(session, "Walking", mode="foot", now=now_utc())
    report_fix(live, walker, now_utc(), spots[3].point)
    tasks = [task_at(session, spot.point, priority="P3") for spot in spots[4:11]]
    held = task_at(session, spots[11].point, priority="P2")
    transition(
        session, held, "assign", actor="d", actor_kind="dispatcher", at=now_utc(), crew=crews[0]
    )
    transition(session, held, "accept", actor="d", actor_kind="dispatcher", at=now_utc())
    session.flush()
    where = {crew.public_id: spot for crew, spot in zip(crews, spots, strict=False)}
    where |= {task.public_id: spot for task, spot in zip(tasks, spots[4:11], strict=True)}
    where[held.public_id] = spots[11]
    return {"crews": crews, "walker": walker, "tasks": tasks, "held": held, "where": where}


def route_seconds(roads: RoadModel, where: dict[str, Spot], crew: str, route: list[str]) -> float:
    total, here = 0.0, where[crew]
    for task_id in route:
        (leg,) = roads.seconds_to(where[task_id], [here], "vehicle")
        total, here = total + leg, where[task_id]
    return total


def test_a_dry_run_plans_every_task_keeps_work_in_hand_first_and_changes_nothing(
    session: Session, roads: RoadModel, city: dict[str, Any], dispatch_client: FlaskClient
) -> None:
    response = dispatch_client.post("/api/v1/dispatch/batch", json={})
    assert response.status_code == 200, response.get_json()
    plan = response.get_json()

    assert plan["dry_run"] is True
    routes = {c["crew_id"]: [t["task_id"] for t in c["tasks"]] for c in plan["crews"]}
    assert city["walker"].public_id not in routes  # the solver routes crews that drive
    first_crew = city["crews"][0].public_id
    assert routes[first_crew][0] == city["held"].public_id
    assert plan["crews"][[c["crew_id"] for c in plan["crews"]].index(first_crew)]["tasks"][0][
        "pinned"
    ]
    planned = [task_id for route in routes.values() for task_id in route]
    open_ids = {task.public_id for task in city["tasks"]}
    assert sorted(planned) == sorted([*open_ids, city["held"].public_id])
    assert plan["unassigned"] == []
    assert all(len(route) <= plan["totals"]["max_tasks_per_crew"] for route in routes.values())
    # The plan's travel is what the roads give for its routes, computed independently.
    expected = sum(route_seconds(roads, city["where"], c, r) for c, r in routes.items())
    assert plan["totals"]["travel_s"] == pytest.approx(expected, rel=0.01)
    assert plan["baseline"]["travel_s"] > 0
    assert plan["totals"]["travel_s"] <= plan["baseline"]["travel_s"] * 1.0001

    session.expire_all()
    assert {session.get(Task, t.id).state for t in city["tasks"]} == {"created"}  # type: ignore[union-attr]


@pytest.fixture
def inbox(settings: object) -> Iterator[tuple[mqtt.Client, queue.Queue[tuple[str, dict]]]]:
    received: queue.Queue[tuple[str, dict]] = queue.Queue()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"dispatch-test-{uuid.uuid4().hex[:8]}"
    )
    client.on_message = lambda _c, _u, m: received.put((m.topic, json.loads(m.payload)))
    client.connect("localhost", 1883)
    client.loop_start()
    yield client, received
    client.loop_stop()
    client.disconnect()


def test_applying_offers_each_crews_tasks_in_its_order(
    session: Session,
    city: dict[str, Any],
    dispatch_client: FlaskClient,
    inbox: tuple[mqtt.Client, queue.Queue[tuple[str, dict]]],
) -> None:
    client, received = inbox
    for crew in city["crews"]:
        client.subscribe(inbox_topic(crew.public_id), qos=1)
    chosen = [task.public_id for task in city["tasks"][:5]]

    response = dispatch_client.post(
        "/api/v1/dispatch/batch", json={"tasks": chosen, "dry_run": False}
    )

    assert response.status_code == 200, response.get_json()
    plan = response.get_json()
    assert plan["dry_run"] is False
    by_crew = {c["crew_id"]: c["tasks"] for c in plan["crews"]}
    assert sorted(t for ids in plan["offered"].values() for t in ids) == sorted(chosen)
    assert all(d["delivered"] for d in plan["inbox"])
    crew_ids = {crew.public_id: crew.id for crew in city["crews"]}
    session.expire_all()  # the request wrote through a session of its own
    for crew_id, planned in by_crew.items():
        offered = [t["task_id"] for t in planned if not t["pinned"]]
        assert plan["offered"].get(crew_id, []) == offered
        for item in planned:
            if item["pinned"]:
                continue
            task = session.scalar(sa.select(Task).where(Task.public_id == item["task_id"]))
            assert task is not None and task.state == "assigned"
            assert task.crew_id == crew_ids[crew_id]
            note = session.scalar(
                sa.select(TaskTransition.note).where(
                    TaskTransition.task_id == task.id, TaskTransition.action == "assign"
                )
            )
            assert note is not None
            assert note.startswith(f"batch plan: {item['sequence']} of {len(planned)}")

    # Each crew with new work gets its order: offers first, then the plan naming them.
    expected = {crew for crew, ids in plan["offered"].items() if ids}
    plans: dict[str, list[str]] = {}
    offers: dict[str, list[str]] = {}
    deadline = now_utc() + timedelta(seconds=10)
    while set(plans) != expected and now_utc() < deadline:
        try:
            topic, message = received.get(timeout=1)
        except queue.Empty:
            continue
        crew_id = topic.split("/")[2]
        if message["kind"] == "task.assigned" and message["task_id"] in chosen:
            offers.setdefault(crew_id, []).append(message["task_id"])
        elif message["kind"] == "dispatch.plan" and crew_id in expected:
            assert crew_id not in plans
            plans[crew_id] = [t["task_id"] for t in message["tasks"]]
            assert [t["sequence"] for t in message["tasks"]] == list(
                range(1, len(plans[crew_id]) + 1)
            )
            assert offers.get(crew_id) == plan["offered"][crew_id]
    assert plans == {c: [t["task_id"] for t in by_crew[c]] for c in expected}


def test_a_task_no_planned_crew_is_skilled_for_is_left_unassigned(
    session: Session, roads: RoadModel, city: dict[str, Any], dispatch_client: FlaskClient
) -> None:
    spot = nearby(roads, central_site(roads), 40)[1]
    welding = task_at(session, spot.point, priority="P1", skills=["welding"])
    session.flush()
    response = dispatch_client.post("/api/v1/dispatch/batch", json={"dry_run": False})
    assert response.status_code == 200
    body = response.get_json()
    assert [u["task_id"] for u in body["unassigned"]] == [welding.public_id]
    assert "skills" in body["unassigned"][0]["reason"]
    session.expire_all()
    assert welding.state == "created"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"tasks": ["T-999999"]}, 422, "tasks[0]"),
        ({"crews": ["C-999999"]}, 422, "crews[0]"),
        ({"tasks": []}, 422, "tasks"),
        ({"dry_run": "no"}, 422, "dry_run"),
        ({"plan": 1}, 422, "plan"),
    ],
)
def test_bad_batch_requests_name_the_field(
    city: dict[str, Any], dispatch_client: FlaskClient, body: object, status: int, field: str
) -> None:
    response = dispatch_client.post("/api/v1/dispatch/batch", json=body)
    assert response.status_code == status
    assert response.get_json()["field"] == field


def test_batch_refuses_tasks_not_open_and_crews_that_walk(
    city: dict[str, Any], dispatch_client: FlaskClient
) -> None:
    held = city["held"].public_id
    response = dispatch_client.post("/api/v1/dispatch/batch", json={"tasks": [held]})
    assert response.status_code == 409
    assert "accepted" in response.get_json()["detail"]
    walker: Crew = city["walker"]
    response = dispatch_client.post("/api/v1/dispatch/batch", json={"crews": [walker.public_id]})
    assert response.status_code == 422
    assert response.get_json()["field"] == "crews[0]"


def test_a_crew_is_planned_no_work_past_the_end_of_its_shift(
    session: Session,
    roads: RoadModel,
    live: Live,
    city: dict[str, Any],
    dispatch_client: FlaskClient,
) -> None:
    leaving = create_crew(session, "Leaving soon")
    now = now_utc()
    add_shift(session, leaving.public_id, now - timedelta(hours=7), now + timedelta(minutes=20))
    report_fix(live, leaving, now, city["where"][city["tasks"][0].public_id].point)
    session.flush()
    body = {"crews": [leaving.public_id], "tasks": [t.public_id for t in city["tasks"][:3]]}

    plan = dispatch_client.post("/api/v1/dispatch/batch", json=body).get_json()

    # A repair counts 90 minutes on site: none fits in the 20 minutes left.
    assert plan["crews"] == [{"crew_id": leaving.public_id, "tasks": []}]
    assert sorted(u["task_id"] for u in plan["unassigned"]) == sorted(body["tasks"])
    assert "shift" in plan["unassigned"][0]["reason"]
