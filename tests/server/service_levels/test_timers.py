"""Service-level timers with an injected clock: each warning once, none after the end."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.live.services import Live
from fieldline.server.notices.models import Notice
from fieldline.server.service_levels.models import SlaEscalation, SlaWarning
from fieldline.server.service_levels.services import announce, evaluate, timer_status
from fieldline.settings import Settings, load_settings
from tests.server.service_levels.factories import CALLER, make_crew, make_task

T0 = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)
ARRIVE_BY = T0 + timedelta(minutes=45)
COMPLETE_BY = T0 + timedelta(hours=4)


@pytest.fixture
def sla_settings(settings: Settings) -> Settings:
    return load_settings(
        database_url=settings.database_url,
        sla_due_soon_minutes=15,
        supervisor_contact="+358 50 765 4321",
        notice_backends="recording,sms",
        sms_gateway_url="http://127.0.0.1:9/sms",
    )


def levels(session: Session, task_id: int) -> list[tuple[str, str]]:
    rows = session.execute(
        sa.select(SlaWarning.timer, SlaWarning.level).where(SlaWarning.task_id == task_id)
    )
    return sorted((timer, level) for timer, level in rows)


def raised_at(session: Session, now: datetime, settings: Settings) -> list[tuple[str, str]]:
    return [(w.timer, w.level) for w in evaluate(session, now, settings)]


def test_each_level_is_raised_once_and_at_its_time(
    session: Session, sla_settings: Settings
) -> None:
    crew = make_crew(session)
    task = make_task(
        session,
        T0,
        crew=crew,
        promised_arrival_at=ARRIVE_BY,
        promised_completion_at=COMPLETE_BY,
    )
    # Before the due-soon mark (45 - 15 = 30 minutes in) nothing; at it, due_soon.
    assert raised_at(session, T0 + timedelta(minutes=29, seconds=59), sla_settings) == []
    assert raised_at(session, T0 + timedelta(minutes=30), sla_settings) == [("arrival", "due_soon")]
    for minutes in (30, 31, 40, 45):  # however often it runs, and at the promise itself
        assert raised_at(session, T0 + timedelta(minutes=minutes), sla_settings) == []
    assert raised_at(session, ARRIVE_BY + timedelta(seconds=1), sla_settings) == [
        ("arrival", "overdue")
    ]
    assert raised_at(session, ARRIVE_BY + timedelta(minutes=5), sla_settings) == []
    assert levels(session, task.id) == [("arrival", "due_soon"), ("arrival", "overdue")]
    escalations = session.scalars(
        sa.select(SlaEscalation).where(SlaEscalation.task_id == task.id)
    ).all()
    assert [e.contact for e in escalations] == ["+358 50 765 4321"]


def test_no_arrival_warning_after_arrival(session: Session, sla_settings: Settings) -> None:
    crew = make_crew(session)
    task = make_task(
        session,
        T0,
        crew=crew,
        promised_arrival_at=ARRIVE_BY,
        promised_completion_at=COMPLETE_BY,
    )
    task.state, task.arrived_at = "on_site", T0 + timedelta(minutes=20)
    session.flush()
    assert raised_at(session, ARRIVE_BY + timedelta(hours=1), sla_settings) == []
    assert timer_status(task, ARRIVE_BY + timedelta(hours=1))["arrival"]["status"] == "met"
    # The completion timer still runs.
    assert raised_at(session, COMPLETE_BY + timedelta(minutes=1), sla_settings) == [
        ("completion", "due_soon"),
        ("completion", "overdue"),
    ]


def test_completed_and_cancelled_tasks_raise_nothing(
    session: Session, sla_settings: Settings
) -> None:
    crew = make_crew(session)
    done = make_task(
        session,
        T0,
        crew=crew,
        state="completed",
        promised_arrival_at=ARRIVE_BY,
        promised_completion_at=COMPLETE_BY,
        arrived_at=ARRIVE_BY + timedelta(minutes=10),  # late
        completed_at=T0 + timedelta(hours=2),
    )
    cancelled = make_task(
        session,
        T0,
        state="cancelled",
        promised_arrival_at=ARRIVE_BY,
        promised_completion_at=COMPLETE_BY,
    )
    assert raised_at(session, T0 + timedelta(days=1), sla_settings) == []
    status = timer_status(done, T0 + timedelta(days=1))
    assert (status["arrival"]["status"], status["completion"]["status"]) == ("missed", "met")
    assert timer_status(cancelled, T0)["arrival"]["status"] == "stopped"


def test_an_overdue_task_raises_both_levels_and_an_escalation(
    session: Session, sla_settings: Settings
) -> None:
    crew = make_crew(session)
    task = make_task(
        session,
        T0,
        crew=crew,
        caller=CALLER,
        promised_arrival_at=ARRIVE_BY,
        title="Water in the street outside number 12",
    )
    raised = raised_at(session, ARRIVE_BY + timedelta(hours=2), sla_settings)
    assert raised == [("arrival", "due_soon"), ("arrival", "overdue")]
    assert raised_at(session, ARRIVE_BY + timedelta(hours=3), sla_settings) == []
    overdue = session.scalars(
        sa.select(SlaWarning).where(SlaWarning.task_id == task.id, SlaWarning.level == "overdue")
    ).one()
    escalation = session.scalars(
        sa.select(SlaEscalation).where(SlaEscalation.task_id == task.id)
    ).one()
    assert escalation.warning_id == overdue.id
    # The supervisor is told over every configured channel that can reach a phone number.
    notices = session.scalars(
        sa.select(Notice).where(Notice.task_id == task.id, Notice.kind == "escalation")
    ).all()
    assert sorted((n.channel, n.recipient) for n in notices) == [
        ("recording", "+358507654321"),
        ("sms", "+358507654321"),
    ]
    assert all(task.public_id in n.text and "OVERDUE arrival" in n.text for n in notices)


def test_without_a_supervisor_contact_the_escalation_is_recorded_only(
    session: Session, settings: Settings
) -> None:
    quiet = load_settings(database_url=settings.database_url, supervisor_contact="")
    task = make_task(session, T0, promised_arrival_at=ARRIVE_BY)  # not even assigned yet
    evaluate(session, ARRIVE_BY + timedelta(minutes=1), quiet)
    escalation = session.scalars(
        sa.select(SlaEscalation).where(SlaEscalation.task_id == task.id)
    ).one()
    assert escalation.contact is None
    assert session.scalar(sa.select(sa.func.count()).where(Notice.task_id == task.id)) == 0


@pytest.fixture
def live() -> Iterator[Live]:
    prefix = f"fieldline_test_sla_{uuid.uuid4().hex[:8]}"
    found = Live(redis.Redis.from_url("redis://localhost:6379/0", decode_responses=True), prefix)
    yield found
    found.client.close()


def test_warnings_go_live_and_to_the_crew_once(
    session: Session, sla_settings: Settings, live: Live
) -> None:
    crew = make_crew(session)
    unassigned = make_task(session, T0, promised_arrival_at=ARRIVE_BY)
    assigned = make_task(session, T0, crew=crew, promised_arrival_at=ARRIVE_BY)
    evaluate(session, T0 + timedelta(minutes=31), sla_settings)
    pubsub = live.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.keys.channel)
    pubsub.get_message(timeout=1)  # the subscription is confirmed
    inbox: list[tuple[str, dict[str, Any]]] = []

    def deliver(crew: str, message: dict[str, Any]) -> bool:
        inbox.append((crew, message))
        return True

    now = T0 + timedelta(minutes=31)
    assert announce(session, live, deliver, now) == 2
    assert announce(session, live, deliver, now) == 0
    events = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        events.append(json.loads(message["data"]))
    pubsub.close()
    assert sorted((e["type"], e["task_id"], e["level"]) for e in events) == sorted(
        ("sla", t.public_id, "due_soon") for t in (unassigned, assigned)
    )
    assert [(c, m["kind"], m["task_id"]) for c, m in inbox] == [
        (crew.public_id, "sla.warning", assigned.public_id)
    ]


def test_the_dispatchers_list_and_acknowledgement(
    session: Session, sla_settings: Settings, client: FlaskClient
) -> None:
    late = make_task(session, T0, promised_arrival_at=ARRIVE_BY)
    soon = make_task(session, T0, promised_arrival_at=ARRIVE_BY + timedelta(minutes=10))
    arrived = make_task(
        session,
        T0,
        crew=make_crew(session),
        promised_arrival_at=ARRIVE_BY,
        promised_completion_at=COMPLETE_BY,
    )
    evaluate(session, ARRIVE_BY + timedelta(minutes=1), sla_settings)
    arrived.state, arrived.arrived_at = "on_site", ARRIVE_BY + timedelta(minutes=2)
    session.flush()

    def active() -> list[tuple[str, str]]:
        response = client.get("/api/v1/warnings?active=true")
        assert response.status_code == 200
        return [(w["task_id"], w["level"]) for w in response.get_json()["warnings"]]

    # Overdue first; a due_soon superseded by its overdue and an arrived task's are not active.
    assert active() == [(late.public_id, "overdue"), (soon.public_id, "due_soon")]
    everything = client.get("/api/v1/warnings").get_json()["warnings"]
    assert len(everything) == 5
    warning_id = next(
        w["id"] for w in everything if w["task_id"] == late.public_id and w["level"] == "overdue"
    )
    acknowledged = client.post(f"/api/v1/warnings/{warning_id}/acknowledge")
    assert acknowledged.status_code == 200
    assert acknowledged.get_json()["acknowledged_by"] == "local-operator"
    first = acknowledged.get_json()["acknowledged_at"]
    again = client.post(f"/api/v1/warnings/{warning_id}/acknowledge").get_json()
    assert again["acknowledged_at"] == first
    assert active() == [(soon.public_id, "due_soon")]
    inactive = client.get("/api/v1/warnings?active=false").get_json()["warnings"]
    assert len(inactive) == 4

    missing = client.post("/api/v1/warnings/999999999/acknowledge")
    assert missing.status_code == 404
    bad = client.get("/api/v1/warnings?active=maybe")
    assert bad.status_code == 400 and bad.get_json()["field"] == "active"


def test_a_viewer_reads_warnings_but_cannot_acknowledge(
    session: Session, settings: Settings, connection: sa.Connection
) -> None:
    from fieldline.server import create_app

    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    client = create_app(viewer, bind=connection).test_client()
    assert client.get("/api/v1/warnings").status_code == 200
    assert client.post("/api/v1/warnings/1/acknowledge").status_code == 403


def test_a_warning_the_crew_did_not_get_is_announced_again(
    session: Session, sla_settings: Settings, live: Live
) -> None:
    crew = make_crew(session)
    task = make_task(session, T0, crew=crew, promised_arrival_at=ARRIVE_BY)
    evaluate(session, T0 + timedelta(minutes=31), sla_settings)
    tries: list[str] = []

    def broker_down(crew_id: str, message: dict[str, Any]) -> bool:
        tries.append(message["task_id"])
        return False

    assert announce(session, live, broker_down, T0) == 0
    assert announce(session, live, lambda c, m: True, T0) == 1
    assert announce(session, live, broker_down, T0) == 0
    assert tries == [task.public_id]
