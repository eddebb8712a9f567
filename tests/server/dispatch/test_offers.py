"""Offers that run out, with an injected clock: taken back by the system, offered to the next
best crew when the priority is auto-dispatched, never to a crew that had it before; tasks
auto-dispatched as they are created; a warning when no crew is left."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.scheduler import JobContext, all_jobs
from fieldline.server.crews.models import Crew
from fieldline.server.dispatch.services import (
    OFFER_TIMED_OUT,
    auto_dispatch,
    dispatch_waiting,
    expire_offers,
)
from fieldline.server.live.services import Live
from fieldline.server.tasks import events
from fieldline.server.tasks.models import Task, TaskTransition
from fieldline.server.tasks.services import create_task, transition
from fieldline.settings import Settings, SettingsError, get_settings, load_settings
from tests.server.dispatch.conftest import NOW, fix, on_shift_crew, task_at
from tests.server.dispatch.roads import RoadModel
from tests.server.dispatch.test_candidates import central_site, nearby

TIMEOUT = timedelta(seconds=300)


@pytest.fixture
def three_crews(session: Session, roads: RoadModel) -> tuple[list[Crew], dict[str, Any], Any]:
    """Three free crews at increasing road times from a central site; their latest fixes."""
    site = central_site(roads)
    spots = nearby(roads, site, 9)
    chosen = [spots[0], spots[4], spots[8]]
    times = roads.seconds_to(site, chosen, "vehicle")
    chosen = [spot for _, spot in sorted(zip(times, chosen, strict=True), key=lambda p: p[0])]
    crews, latest = [], {}
    for i, spot in enumerate(chosen):
        crew = on_shift_crew(session, f"Crew {i}", now=NOW)
        latest[crew.public_id] = fix(NOW, spot.point)
        crews.append(crew)
    return crews, latest, site


def reported_at(latest: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The same positions, reported again at `at`."""
    return {crew_id: body | {"fix_time": at.isoformat()} for crew_id, body in latest.items()}


def offered_to(session: Session, task: Task) -> list[int | None]:
    """The crews the task was offered to, in order, from its history."""
    return list(
        session.scalars(
            sa.select(TaskTransition.crew_id)
            .where(TaskTransition.task_id == task.id, TaskTransition.action == "assign")
            .order_by(TaskTransition.id)
        )
    )


@pytest.fixture
def listening(live: Live) -> Iterator[Any]:
    pubsub = live.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.keys.channel)
    yield pubsub
    pubsub.close()


def dispatch_warnings(pubsub: Any, wait_s: float = 1.0) -> list[dict[str, Any]]:
    """The dispatch warnings published within `wait_s`."""
    found = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)  # None also for the subscription itself
        if message is not None:
            found.append(json.loads(message["data"]))
    return [event for event in found if event.get("type") == "dispatch"]


def test_an_urgent_offer_that_runs_out_goes_to_the_next_crew_never_back(
    session: Session,
    three_crews: tuple[list[Crew], dict[str, Any], Any],
    dispatch_settings: Settings,
    live: Live,
    listening: Any,
) -> None:
    crews, latest, site = three_crews
    task = task_at(session, site.point, priority="P1")
    kwargs = {"latest": latest, "settings": dispatch_settings, "live": live}

    first = auto_dispatch(session, task, NOW, **kwargs)
    assert first is not None and first.crew.id == crews[0].id
    assert task.offer_expires_at == NOW + TIMEOUT

    # Not yet expired: nothing happens, even a microsecond before.
    assert expire_offers(session, NOW + TIMEOUT - timedelta(microseconds=1), **kwargs) == []
    assert task.state == "assigned"

    clock = NOW
    for expected in crews[1:]:
        clock += TIMEOUT
        kwargs["latest"] = reported_at(latest, clock)  # the crews keep reporting
        assert expire_offers(session, clock, **kwargs) == [task.public_id]
        assert task.state == "assigned" and task.crew_id == expected.id
        assert task.offer_expires_at == clock + TIMEOUT

    clock += TIMEOUT
    kwargs["latest"] = reported_at(latest, clock)
    assert expire_offers(session, clock, **kwargs) == [task.public_id]
    assert task.state == "created" and task.crew_id is None
    assert offered_to(session, task) == [crew.id for crew in crews]
    declines = session.execute(
        sa.select(TaskTransition.crew_id, TaskTransition.actor_kind, TaskTransition.note)
        .where(TaskTransition.task_id == task.id, TaskTransition.action == "decline")
        .order_by(TaskTransition.id)
    ).all()
    assert declines == [(crew.id, "system", OFFER_TIMED_OUT) for crew in crews]

    # The warning that nobody is left goes out once the change is committed, not before.
    assert dispatch_warnings(listening, 0.3) == []
    session.commit()
    warnings = dispatch_warnings(listening)
    assert [w["task_id"] for w in warnings] == [task.public_id]
    assert "declined" in warnings[0]["detail"]


def test_an_offer_of_a_priority_not_auto_dispatched_waits_for_a_dispatcher(
    session: Session,
    three_crews: tuple[list[Crew], dict[str, Any], Any],
    dispatch_settings: Settings,
    live: Live,
) -> None:
    crews, latest, site = three_crews
    task = task_at(session, site.point, priority="P3")
    transition(
        session,
        task,
        "assign",
        actor="d",
        actor_kind="dispatcher",
        at=NOW,
        crew=crews[1],
        settings=dispatch_settings,
    )
    accepted = task_at(session, site.point, priority="P1")
    transition(
        session, accepted, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=crews[2]
    )
    transition(session, accepted, "accept", actor="d", actor_kind="dispatcher", at=NOW)

    expired = expire_offers(
        session, NOW + TIMEOUT, latest=latest, settings=dispatch_settings, live=live
    )

    assert expired == [task.public_id]
    assert task.state == "created" and task.crew_id is None
    assert accepted.state == "accepted" and accepted.crew_id == crews[2].id


def test_urgent_tasks_are_dispatched_as_they_are_created(
    session: Session,
    three_crews: tuple[list[Crew], dict[str, Any], Any],
    live: Live,
    monkeypatch: pytest.MonkeyPatch,
    listening: Any,
) -> None:
    crews, latest, site = three_crews
    # The listener reads the process's settings and the latest fixes from Redis.
    monkeypatch.setenv("FIELDLINE_REDIS_PREFIX", live.keys.prefix)
    monkeypatch.setenv("FIELDLINE_AUTO_DISPATCH_PRIORITIES", "P1,P2")
    get_settings.cache_clear()
    for crew_id, body in latest.items():
        at = datetime.fromisoformat(body["fix_time"])
        live.update_latest(crew_id, int(at.timestamp() * 1000), body["lon"], body["lat"], body)
    body = {"kind": "repair", "source": "plan", "site": list(site.point)}
    try:
        urgent = create_task(session, body | {"priority": "P1"}, "dispatch-test", NOW)
        second = create_task(session, body | {"priority": "P2"}, "dispatch-test", NOW)
        routine = create_task(session, body | {"priority": "P3"}, "dispatch-test", NOW)
        skilled = create_task(
            session,
            body | {"priority": "P1", "required_skills": ["welding"]},
            "dispatch-test",
            NOW,
        )
    finally:
        get_settings.cache_clear()
    recorded = [(e.task_id, e.action) for e in events.take(session)]

    assert (urgent.state, urgent.crew_id) == ("assigned", crews[0].id)
    assert (second.state, second.crew_id) == ("assigned", crews[1].id)  # crews[0] is busy
    assert (routine.state, routine.crew_id) == ("created", None)
    assert (skilled.state, skilled.crew_id) == ("created", None)  # nobody welds
    assert (urgent.public_id, "assign") in recorded
    assert dispatch_warnings(listening, 0.3) == []  # not before the commit
    session.commit()
    warnings = dispatch_warnings(listening)
    assert [w["task_id"] for w in warnings] == [skilled.public_id]
    assert "skills" in warnings[0]["detail"]


def test_expired_offers_are_a_scheduler_job_that_commits_and_tells_the_crew(
    session: Session,
    connection: sa.Connection,
    three_crews: tuple[list[Crew], dict[str, Any], Any],
    dispatch_settings: Settings,
    live: Live,
    listening: Any,
) -> None:
    (job,) = [job for job in all_jobs() if job.name == "expire_offers"]
    crews, _, site = three_crews
    task = task_at(session, site.point, priority="P3")
    at = datetime.now(UTC) - TIMEOUT - timedelta(seconds=1)
    transition(session, task, "assign", actor="d", actor_kind="dispatcher", at=at, crew=crews[0])
    session.commit()
    # The job's sessions share the test's connection, so its commit stays inside the test.
    context = JobContext(dispatch_settings, connection, live, {})  # type: ignore[arg-type]

    assert job.run(context) == [task.public_id]

    session.expire_all()
    assert (task.state, task.crew_id) == ("created", None)
    published = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not published:
        message = listening.get_message(timeout=0.5)
        if message is not None:
            event = json.loads(message["data"])
            if event.get("type") == "task" and event["task_id"] == task.public_id:
                published.append(event)
    assert published and published[0]["action"] == "decline"


def test_the_auto_dispatched_priorities_are_checked_at_start_up() -> None:
    assert load_settings(auto_dispatch_priorities=" p1, P2,P1 ").auto_dispatch_priority_names == (
        "P1",
        "P2",
    )
    assert load_settings(auto_dispatch_priorities="").auto_dispatch_priority_names == ()
    with pytest.raises(SettingsError, match="FIELDLINE_AUTO_DISPATCH_PRIORITIES"):
        load_settings(auto_dispatch_priorities="P1,P5")


def test_urgent_tasks_waiting_for_a_crew_go_to_one_that_becomes_free(
    session: Session,
    three_crews: tuple[list[Crew], dict[str, Any], Any],
    dispatch_settings: Settings,
    live: Live,
    listening: Any,
) -> None:
    """Every crew busy when they came in: the periodic job offers the waiting urgent tasks,
    most urgent first, once crews are free; a priority not auto-dispatched keeps waiting."""
    crews, latest, site = three_crews
    kwargs = {"latest": latest, "settings": dispatch_settings, "live": live}
    busy = [task_at(session, site.point, priority="P1") for _ in crews]
    for task in busy:
        assert auto_dispatch(session, task, NOW, **kwargs) is not None
    waiting = task_at(session, site.point, priority="P1")
    assert auto_dispatch(session, waiting, NOW, **kwargs) is None
    routine = task_at(session, site.point, priority="P3")
    assert dispatch_waiting(session, NOW, **kwargs) == []  # all crews still busy

    transition(session, busy[1], "cancel", actor="dispatcher", actor_kind="dispatcher", at=NOW)
    later = NOW + timedelta(minutes=1)
    kwargs["latest"] = reported_at(latest, later)
    assert dispatch_waiting(session, later, **kwargs) == [waiting.public_id]
    assert waiting.state == "assigned" and waiting.crew_id == crews[1].id
    assert routine.state == "created"
    # Already warned about when it came in: the periodic job adds no warning.
    session.commit()
    assert [w["task_id"] for w in dispatch_warnings(listening)] == [waiting.public_id]
