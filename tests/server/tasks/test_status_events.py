"""Stored crew reports that were not handed over when the gateway stored them (the database
went away in between) are replayed later, oldest first per task, each exactly once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.live.services import Live
from fieldline.server.tasks import events, services
from fieldline.server.tasks.status_events import (
    REPLAY_AFTER,
    StatusKey,
    hand_over,
    replay_pending_status_events,
)
from fieldline.server.telemetry.models import DeadLetter, TaskStatusEvent
from tests.server.tasks.conftest import NOW, repair_on


def _stored(
    session: Session, crew: str, task: str, status: str, minute: int, age: timedelta
) -> None:
    session.add(
        TaskStatusEvent(
            crew_id=crew,
            task_id=task,
            status=status,
            ts=NOW + timedelta(minutes=minute),
            received_at=NOW - age,
        )
    )
    session.flush()


def test_pending_reports_are_replayed_in_order_once(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    mine = services.create_task(session, repair_on(city["pipes"][70]["id"]), "d", NOW)
    theirs = services.create_task(session, repair_on(city["pipes"][71]["id"]), "d", NOW)
    for task, crew in ((mine, north), (theirs, south)):
        services.transition(
            session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=crew
        )
    session.commit()
    events.take(session)
    old = REPLAY_AFTER + timedelta(seconds=1)
    for status, minute in (("completed", 9), ("accepted", 2), ("on_site", 5)):
        _stored(session, north.public_id, mine.public_id, status, minute, old)
    _stored(session, north.public_id, theirs.public_id, "on_site", 3, old)
    _stored(session, north.public_id, mine.public_id, "en_route", 4, timedelta(seconds=1))  # new

    prefix = f"fieldline_test_tasks_{uuid.uuid4().hex[:8]}"
    live = Live.from_url("redis://localhost:6379/0", prefix)
    try:
        counts = replay_pending_status_events(session, now=NOW, live=live)
        stream = live.client.xrange(live.keys.deadletter)
    finally:
        live.client.delete(live.keys.deadletter)
        live.client.close()
    assert counts == {"applied": 3, "task_not_yours": 1}
    steps = services.history(session, mine)
    assert [(s.action, s.at) for s in steps] == [
        ("assign", NOW),
        ("accept", NOW + timedelta(minutes=2)),
        ("arrive", NOW + timedelta(minutes=5)),
        ("complete", NOW + timedelta(minutes=9)),
    ]
    pending = session.scalars(
        sa.select(TaskStatusEvent.status).where(
            TaskStatusEvent.crew_id == north.public_id, TaskStatusEvent.outcome.is_(None)
        )
    ).all()
    assert pending == ["en_route"]  # too recent: the gateway is handing it over
    letter = session.scalar(
        sa.select(DeadLetter).where(
            DeadLetter.topic == f"fieldline/crews/{north.public_id}/tasks/{theirs.public_id}/status"
        )
    )
    assert letter is not None and letter.reason == "task_not_yours"
    assert [entry["reason"] for _, entry in stream] == ["task_not_yours"]

    assert replay_pending_status_events(session, now=NOW) == {}
    later = NOW + REPLAY_AFTER * 2
    assert replay_pending_status_events(session, now=later) == {"no_change": 1}
    assert len(services.history(session, mine)) == 4


def test_a_report_is_handed_over_once(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north = crews[0]
    task = services.create_task(session, repair_on(city["pipes"][72]["id"]), "d", NOW)
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    events.take(session)
    _stored(session, north.public_id, task.public_id, "accepted", 1, timedelta(0))
    key = StatusKey(task.public_id, NOW + timedelta(minutes=1), north.public_id, "accepted")
    handed = hand_over(session, key)
    assert handed is not None and handed.outcome == "applied"
    assert [(e.action, e.actor_kind) for e in handed.events] == [("accept", "crew")]
    assert hand_over(session, key) is None
    assert task.state == "accepted"
