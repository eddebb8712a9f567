"""Through the task services: a P1 repair moved along its states writes the customer's
notices in the transitions' transactions, and left alone raises both warning levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.notices.models import Notice
from fieldline.server.service_levels.models import SlaEscalation
from fieldline.server.service_levels.services import evaluate
from fieldline.server.tasks import services as tasks
from fieldline.server.tasks.models import Task
from fieldline.settings import Settings
from tests.server.service_levels.factories import CALLER, SITE, make_crew

T0 = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)


def repair(session: Session, settings: Settings) -> Task:
    body = {
        "kind": "repair",
        "priority": "P1",
        "source": "call_centre",
        "title": "Burst main",
        "caller": {"name": CALLER["name"], "phone": CALLER["phone"]},
        "site": {"lon": SITE[0], "lat": SITE[1]},
    }
    return tasks.create_task(session, body, "dispatcher-1", T0, settings)


def test_transitions_write_the_customers_notices(session: Session, settings: Settings) -> None:
    task = repair(session, settings)
    crew = make_crew(session)
    steps = [
        ("assign", crew),
        ("accept", None),
        ("start", None),
        ("arrive", None),
        ("complete", None),
    ]
    for minutes, (action, target) in enumerate(steps):
        tasks.transition(
            session,
            task,
            action,
            actor="dispatcher-1",
            actor_kind="dispatcher",
            at=T0 + timedelta(minutes=minutes),
            crew=target,
            settings=settings,
        )
    kinds = session.scalars(
        sa.select(Notice.kind).where(Notice.task_id == task.id).order_by(Notice.id)
    ).all()
    assert kinds == ["crew_assigned", "job_done"]


def test_a_task_left_alone_raises_both_levels_and_is_escalated(
    session: Session, settings: Settings
) -> None:
    task = repair(session, settings)
    assert task.promised_arrival_at is not None
    late = task.promised_arrival_at + timedelta(minutes=1)
    assert sorted((w.timer, w.level) for w in evaluate(session, late, settings)) == [
        ("arrival", "due_soon"),
        ("arrival", "overdue"),
    ]
    assert evaluate(session, late + timedelta(minutes=5), settings) == []
    assert session.scalar(sa.select(sa.func.count()).where(SlaEscalation.task_id == task.id)) == 1
