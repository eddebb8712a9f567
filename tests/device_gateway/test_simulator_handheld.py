"""Planned work for the crew a person works on the handheld app: a job whenever it has none
open, at most once a minute, assigned to it through the dispatcher's API."""

from __future__ import annotations

import itertools
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.device_gateway.simulator import HandheldPlanner, TaskApi, plan_handheld_work
from fieldline.device_gateway.simulator.callcentre import ApiError, Catalogue
from fieldline.device_gateway.simulator.handheld import HANDHELD_MIX, OPEN_STATES
from fieldline.server.crews.models import CREW_SKILLS
from fieldline.server.crews.services import create_crew
from fieldline.server.tasks.states import ACTIVE_STATES
from tests.conftest import load_fixture

CITY = Path(__file__).resolve().parents[2] / "fixtures" / "city"
CREW = "C-000042"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue(CITY)


class FakeApi:
    """The task API as the planner sees it: the crew's open tasks, and what was asked."""

    def __init__(self) -> None:
        self.open: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.assigned: list[tuple[str, str]] = []
        self.looks: list[tuple[str, tuple[str, ...]]] = []
        self.ids = itertools.count(1)

    def open_tasks(self, crew_id: str, states: tuple[str, ...]) -> list[dict[str, Any]]:
        self.looks.append((crew_id, states))
        return self.open

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return {"id": f"T-{next(self.ids):06d}", "state": "created"} | body

    def assign(self, task_id: str, crew_id: str) -> dict[str, Any]:
        self.assigned.append((task_id, crew_id))
        # What the planner sent, as the server echoes it.
        return {"task": self.created[-1] | {"id": task_id, "state": "assigned", "crew": crew_id}}


def test_a_crew_with_nothing_open_gets_a_job_then_none_for_a_minute(
    catalogue: Catalogue,
) -> None:
    api = FakeApi()
    planner = HandheldPlanner(catalogue, CREW, random.Random(1))
    line = planner.step(api, now=1000.0)
    assert api.looks == [(CREW, OPEN_STATES)]
    assert len(api.created) == 1 and api.assigned == [("T-000001", CREW)]
    assert line is not None and line.startswith("T-000001") and CREW in line
    # Nothing open again at once (the offer timed out, or the work was quick): still one job.
    assert planner.step(api, now=1059.0) is None
    assert len(api.created) == 1
    assert planner.step(api, now=1060.0) is not None
    assert api.assigned[-1] == ("T-000002", CREW)


def test_a_crew_with_an_open_task_gets_nothing(catalogue: Catalogue) -> None:
    api = FakeApi()
    api.open = [{"id": "T-000009", "state": "en_route"}]
    planner = HandheldPlanner(catalogue, CREW, random.Random(2))
    assert planner.step(api, now=0.0) is None
    assert planner.step(api, now=3600.0) is None
    assert api.created == [] and api.assigned == []
    api.open = []
    assert planner.step(api, now=3605.0) is not None
    assert len(api.assigned) == 1


def test_open_means_with_the_crew_and_not_done() -> None:
    assert set(OPEN_STATES) == set(ACTIVE_STATES)


def test_the_jobs_are_routine_planned_work_at_fixture_assets(catalogue: Catalogue) -> None:
    planner = HandheldPlanner(catalogue, CREW, random.Random(3))
    jobs = [planner.job() for _ in range(500)]
    assert {job["priority"] for job in jobs} == {"P3", "P4"}
    assert {job["kind"] for job in jobs} == {
        "inspection",
        "meter_reading",
        "valve_operation",
        "patrol",
    }
    known = {
        layer: {f["id"] for f in load_fixture(layer)}
        for layer in ("pipes", "valves", "hydrants", "meters")
    }
    assert all(a["id"] in known[a["layer"]] for job in jobs for a in job["assets"])
    assert len(HANDHELD_MIX) == 7


def test_a_refusing_server_is_reported_and_asked_again_later(catalogue: Catalogue) -> None:
    class Refusing(FakeApi):
        def assign(self, task_id: str, crew_id: str) -> dict[str, Any]:
            super().assign(task_id, crew_id)
            raise ApiError("422 from there: crew lacks the skills")

    api = Refusing()
    planner = HandheldPlanner(catalogue, CREW, random.Random(4))
    stop = threading.Event()
    times = iter(range(0, 140, 20))  # a look every 20 s of the planner's clock, 0 to 120 s

    def clock() -> float:
        now = next(times)
        if now == 120:
            stop.set()  # this look is the last
        return float(now)

    lines: list[str] = []
    assert plan_handheld_work(planner, api, stop, lines.append, clock=clock, look_every_s=0) == 0
    # Only the looks at 0, 60 and 120 s asked the server (once a minute); each was refused.
    assert len(api.looks) == len(api.created) == len(api.assigned) == len(lines) == 3
    assert all(line.startswith(f"no work planned for {CREW}: 422") for line in lines)


def test_each_job_planned_is_reported(catalogue: Catalogue) -> None:
    api = FakeApi()
    planner = HandheldPlanner(catalogue, CREW, random.Random(7))
    stop = threading.Event()
    times = iter(range(0, 200, 60))

    def clock() -> float:
        now = next(times)
        if now == 180:
            stop.set()
        return float(now)

    lines: list[str] = []
    assert plan_handheld_work(planner, api, stop, lines.append, clock=clock, look_every_s=0) == 4
    assert [line.split()[0] for line in lines] == [task_id for task_id, _ in api.assigned]


# --- against the real server ---------------------------------------------------------------


def test_the_planner_keeps_the_crew_in_work_through_the_api(
    catalogue: Catalogue, server: str, session: Session, client: FlaskClient
) -> None:
    crew = create_crew(session, "Handheld", "vehicle", skills=list(CREW_SKILLS))
    session.flush()
    api = TaskApi(server)
    planner = HandheldPlanner(catalogue, crew.public_id, random.Random(5))
    line = planner.step(api, now=0.0)
    assert line is not None
    first = api.open_tasks(crew.public_id, OPEN_STATES)
    assert len(first) == 1 and first[0]["state"] == "assigned"
    assert first[0]["crew"] == crew.public_id and first[0]["priority"] in ("P3", "P4")
    assert line.startswith(first[0]["id"])
    assert planner.step(api, now=120.0) is None  # it has one open
    # The crew declines it (as a timed-out offer does): a minute after the last, a new one.
    declined = client.post(
        f"/api/v1/tasks/{first[0]['id']}/transitions",
        json={"action": "decline", "note": "not today"},
    )
    assert declined.status_code == 200, declined.json
    assert api.open_tasks(crew.public_id, OPEN_STATES) == []
    assert planner.step(api, now=121.0) is not None
    second = api.open_tasks(crew.public_id, OPEN_STATES)
    assert len(second) == 1 and second[0]["id"] != first[0]["id"]


def test_a_job_another_crew_was_offered_first_is_transferred(
    catalogue: Catalogue, server: str, session: Session
) -> None:
    """In the demo every priority is auto-dispatched, so a simulated crew may be offered the
    job as it is created: the dispatcher's assign then transfers it to the handheld crew."""
    handheld = create_crew(session, "Handheld", "vehicle", skills=list(CREW_SKILLS))
    other = create_crew(session, "Truck", "vehicle", skills=list(CREW_SKILLS))
    session.flush()

    class OfferedFirst(TaskApi):
        def create(self, body: dict[str, Any]) -> dict[str, Any]:
            task = super().create(body)
            return super().assign(task["id"], other.public_id)["task"]

    api = OfferedFirst(server)
    assert HandheldPlanner(catalogue, handheld.public_id, random.Random(6)).step(api, 0.0)
    [task] = api.open_tasks(handheld.public_id, OPEN_STATES)
    assert task["state"] == "assigned" and task["transfer_count"] == 1
    assert api.open_tasks(other.public_id, OPEN_STATES) == []
