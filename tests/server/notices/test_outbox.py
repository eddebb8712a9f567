"""The notices outbox: written with the event, delivered by the backends, never twice."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.notices.backends import notifiers
from fieldline.server.notices.models import Notice
from fieldline.server.notices.services import (
    backoff,
    check_arriving,
    deliver_pending,
    notices_for_event,
    write_follow_ups,
)
from fieldline.server.notices.texts import sms_segments
from fieldline.server.tasks.events import TaskEvent
from fieldline.settings import Settings, SettingsError, load_settings
from tests.server.notices.conftest import Endpoint
from tests.server.service_levels.factories import CALLER, SITE, make_crew, make_task

T0 = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)


def event(
    task_id: str,
    crew_id: str | None,
    action: str,
    from_state: str,
    to_state: str,
    at: datetime,
    eta_at: datetime | None = None,
) -> TaskEvent:
    if eta_at is None:
        return TaskEvent(task_id, crew_id, action, from_state, to_state, at)
    return EtaEvent(task_id, crew_id, action, from_state, to_state, at, eta_at=eta_at)


@dataclass(frozen=True)
class EtaEvent(TaskEvent):
    """An assignment that carries the ETA the crew was ranked by."""

    eta_at: datetime | None = None


def notice_settings(settings: Settings, **overrides: object) -> Settings:
    return load_settings(database_url=settings.database_url, **overrides)


def notices_of(session: Session, task_id: int) -> list[Notice]:
    return list(
        session.scalars(sa.select(Notice).where(Notice.task_id == task_id).order_by(Notice.id))
    )


def test_a_completed_job_reaches_the_webhook_once(
    session: Session, settings: Settings, endpoint: Endpoint
) -> None:
    hooked = notice_settings(settings, notice_backends="webhook", notice_webhook_url=endpoint.url)
    crew = make_crew(session)
    task = make_task(session, T0, crew=crew, state="completed", caller=CALLER)
    done = event(task.public_id, crew.public_id, "complete", "on_site", "completed", T0)
    assert notices_for_event(session, done, hooked) == 1
    assert notices_for_event(session, done, hooked) == 0  # a replayed event writes nothing
    channels = notifiers(hooked)
    assert deliver_pending(session, channels, T0, hooked).sent == 1
    assert deliver_pending(session, channels, T0 + timedelta(hours=1), hooked).sent == 0
    [(headers, body)] = endpoint.received
    [notice] = notices_of(session, task.id)
    assert body["id"] == notice.id and body["task_id"] == task.public_id
    assert body["kind"] == "job_done" and body["recipient"] == "+358401234567"
    assert body["text"] == notice.text and task.public_id in body["text"]
    assert headers["Idempotency-Key"] == f"notice-{notice.id}"
    assert (notice.status, notice.attempts, notice.sent_at) == ("sent", 1, T0)


def test_a_failing_endpoint_is_retried_with_backoff_then_marked_failed(
    session: Session, settings: Settings, endpoint: Endpoint
) -> None:
    hooked = notice_settings(
        settings,
        notice_backends="webhook",
        notice_webhook_url=endpoint.url,
        notice_max_attempts=3,
        notice_retry_base_s=30,
    )
    endpoint.statuses = [503]
    crew = make_crew(session)
    task = make_task(session, T0, crew=crew, caller=CALLER)
    notices_for_event(
        session, event(task.public_id, crew.public_id, "assign", "created", "assigned", T0), hooked
    )
    channels = notifiers(hooked)
    now = T0
    assert deliver_pending(session, channels, now, hooked).retrying == 1
    [notice] = notices_of(session, task.id)
    assert notice.next_attempt_at == now + timedelta(seconds=30)
    assert "503" in (notice.last_error or "")
    # Not due yet: nothing is sent.
    assert deliver_pending(session, channels, now + timedelta(seconds=29), hooked).retrying == 0
    assert len(endpoint.received) == 1
    now += timedelta(seconds=30)
    assert deliver_pending(session, channels, now, hooked).retrying == 1
    assert notice.next_attempt_at == now + timedelta(seconds=60)  # doubled
    now += timedelta(seconds=60)
    assert deliver_pending(session, channels, now, hooked).failed == 1
    assert (notice.status, notice.attempts) == ("failed", 3)
    assert (
        deliver_pending(session, channels, now + timedelta(days=1), hooked)
        == type(deliver_pending(session, channels, now, hooked))()
    )
    assert len(endpoint.received) == 3


def test_a_rejected_request_is_not_retried(
    session: Session, settings: Settings, endpoint: Endpoint
) -> None:
    hooked = notice_settings(settings, notice_backends="webhook", notice_webhook_url=endpoint.url)
    endpoint.statuses = [400]
    task = make_task(session, T0, state="completed", crew=make_crew(session), caller=CALLER)
    notices_for_event(
        session, event(task.public_id, None, "complete", "on_site", "completed", T0), hooked
    )
    assert deliver_pending(session, notifiers(hooked), T0, hooked).failed == 1
    [notice] = notices_of(session, task.id)
    assert notice.attempts == 1 and "400" in (notice.last_error or "")


def test_an_unreachable_endpoint_is_retried(session: Session, settings: Settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hooked = notice_settings(
        settings, notice_backends="webhook", notice_webhook_url=f"http://127.0.0.1:{port}/x"
    )
    task = make_task(session, T0, state="completed", crew=make_crew(session), caller=CALLER)
    notices_for_event(
        session, event(task.public_id, None, "complete", "on_site", "completed", T0), hooked
    )
    assert deliver_pending(session, notifiers(hooked), T0, hooked).retrying == 1
    [notice] = notices_of(session, task.id)
    assert notice.status == "pending" and "unreachable" in (notice.last_error or "")


def test_sms_gateway_gets_the_number_sender_and_one_segment(
    session: Session, settings: Settings, endpoint: Endpoint
) -> None:
    texting = notice_settings(
        settings,
        notice_backends="sms,recording",
        sms_gateway_url=endpoint.url,
        sms_gateway_token="secret-token",
        sms_sender="Vesi",
    )
    crew = make_crew(session)
    email_only = make_task(session, T0, crew=crew, caller={"name": "B", "email": "b@example.org"})
    task = make_task(session, T0, crew=crew, caller=CALLER)
    eta = T0 + timedelta(minutes=25)
    for t in (task, email_only):
        notices_for_event(
            session,
            event(t.public_id, crew.public_id, "assign", "created", "assigned", T0, eta),
            texting,
        )
    # No phone number: no SMS, only the recorded notice.
    assert [n.channel for n in notices_of(session, email_only.id)] == ["recording"]
    assert deliver_pending(session, notifiers(texting), T0, texting).sent == 3
    [(headers, body)] = endpoint.received
    assert headers["Authorization"] == "Bearer secret-token"
    assert (body["from"], body["to"]) == ("Vesi", "+358401234567")
    assert "10:25" in body["message"]  # the ETA on the clock of Europe/Helsinki (UTC+2)
    assert sms_segments(body["message"]) == 1


def test_tasks_without_a_caller_get_no_notices(session: Session, settings: Settings) -> None:
    crew = make_crew(session)
    task = make_task(session, T0, crew=crew, state="completed")
    done = event(task.public_id, crew.public_id, "complete", "on_site", "completed", T0)
    assert notices_for_event(session, done, settings) == 0
    assert notices_of(session, task.id) == []


def test_assigned_once_per_crew(session: Session, settings: Settings) -> None:
    first, second = make_crew(session), make_crew(session)
    task = make_task(session, T0, crew=first, caller=CALLER)
    for crew, action, minutes in (
        (first, "assign", 0),
        (first, "assign", 5),
        (second, "transfer", 9),
    ):
        step = event(
            task.public_id,
            crew.public_id,
            action,
            "created",
            "assigned",
            T0 + timedelta(minutes=minutes),
        )
        notices_for_event(session, step, settings)
    notices = notices_of(session, task.id)
    assert [(n.kind, n.occasion) for n in notices] == [
        ("crew_assigned", f"crew:{first.public_id}"),
        ("crew_assigned", f"crew:{second.public_id}"),
    ]
    assert all("expected" not in n.text for n in notices)  # no ETA given, none invented


def test_arriving_soon_from_the_crews_latest_fix(session: Session, settings: Settings) -> None:
    now = T0 + timedelta(hours=1)
    crew, far_crew, silent_crew = make_crew(session), make_crew(session), make_crew(session)
    near = make_task(session, T0, crew=crew, state="en_route", caller=CALLER)
    far = make_task(session, T0, crew=far_crew, state="en_route", caller=CALLER)
    silent = make_task(session, T0, crew=silent_crew, state="en_route", caller=CALLER)
    latest = {
        # About 600 m from the site, a minute ago.
        crew.public_id: {
            "lon": SITE[0] + 0.01,
            "lat": SITE[1],
            "fix_time": (now - timedelta(minutes=1)).isoformat(),
        },
        # About 55 km away: more than an hour even by straight line at 30 km/h.
        far_crew.public_id: {"lon": SITE[0] + 1.0, "lat": SITE[1], "fix_time": now.isoformat()},
        # Close, but the fix is an hour old (no signal): no estimate.
        silent_crew.public_id: {"lon": SITE[0], "lat": SITE[1], "fix_time": T0.isoformat()},
    }
    assert check_arriving(session, latest, now, settings) == 1
    assert check_arriving(session, latest, now + timedelta(minutes=1), settings) == 0
    [notice] = notices_of(session, near.id)
    assert notice.kind == "crew_arriving" and "min away" in notice.text
    assert notices_of(session, far.id) == notices_of(session, silent.id) == []


def test_follow_ups_after_the_set_hours_and_within_three_days(
    session: Session, settings: Settings
) -> None:
    now = T0 + timedelta(days=10)
    crew = make_crew(session)

    def done(hours_ago: float, caller: dict[str, str] | None = CALLER) -> int:
        completed = now - timedelta(hours=hours_ago)
        task = make_task(
            session,
            completed - timedelta(hours=1),
            crew=crew,
            state="completed",
            caller=caller,
            completed_at=completed,
        )
        return task.id

    due, early, stale, anonymous = done(25), done(23), done(24 * 4), done(30, None)
    assert write_follow_ups(session, now, settings) == 1
    assert write_follow_ups(session, now, settings) == 0
    assert [n.kind for n in notices_of(session, due)] == ["follow_up"]
    assert (
        notices_of(session, early)
        == notices_of(session, stale)
        == notices_of(session, anonymous)
        == []
    )


def test_notices_api_for_the_call_centre(
    session: Session, settings: Settings, client: FlaskClient
) -> None:
    crew = make_crew(session)
    task = make_task(session, T0, crew=crew, state="completed", caller=CALLER)
    other = make_task(session, T0, crew=crew, state="completed", caller=CALLER)
    for t in (task, other):
        notices_for_event(
            session, event(t.public_id, None, "complete", "on_site", "completed", T0), settings
        )
    body = client.get(f"/api/v1/notices?task={task.public_id}").get_json()
    assert [(n["task_id"], n["kind"], n["status"]) for n in body["notices"]] == [
        (task.public_id, "job_done", "pending")
    ]
    assert client.get("/api/v1/notices?task=T-999999").status_code == 404
    assert client.get("/api/v1/notices?limit=0").status_code == 400


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n, 30).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20, 30) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"notice_backends": "webhook"}, "FIELDLINE_NOTICE_WEBHOOK_URL"),
        ({"notice_backends": "sms"}, "FIELDLINE_SMS_GATEWAY_URL"),
        ({"notice_backends": "pigeon"}, "FIELDLINE_NOTICE_BACKENDS"),
        ({"sms_sender": "A much too long name"}, "FIELDLINE_SMS_SENDER"),
        ({"supervisor_contact": "the boss"}, "FIELDLINE_SUPERVISOR_CONTACT"),
        ({"timezone": "Mars/Olympus"}, "FIELDLINE_TIMEZONE"),
    ],
)
def test_bad_notice_settings_name_the_variable(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(**overrides)
