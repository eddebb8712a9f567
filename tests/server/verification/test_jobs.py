"""The scheduler's `verification` job: due runs checked and committed, the reopened task
announced, the failed check on the live stream."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, cast

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline import scheduler as scheduling
from fieldline.scheduler import JobContext
from fieldline.server.crews.models import Crew
from fieldline.server.live.services import Live
from fieldline.server.tasks import events
from fieldline.server.verification import services
from fieldline.server.verification.jobs import VERIFY_EVERY_S, verification_job
from fieldline.settings import Settings
from tests.server.verification.conftest import patrol


def test_the_job_is_scheduled() -> None:
    jobs = {job.name: job.interval_s for job in scheduling.all_jobs()}
    assert jobs["verification"] == VERIFY_EVERY_S == 15


def test_a_failed_check_reopens_the_task_and_alerts_the_dispatchers(
    session: Session, crew: Crew, settings: Settings, connection: sa.Connection
) -> None:
    skipped = patrol(session, crew, skip_side=True)
    run = services.latest_run(session, skipped.task)
    assert run is not None
    session.flush()
    events.take(session)
    live = Live(
        redis.Redis.from_url(settings.redis_url, decode_responses=True),
        f"fieldline_test_verif_{uuid.uuid4().hex[:8]}",
    )
    listening = live.client.pubsub(ignore_subscribe_messages=True)
    listening.subscribe(live.keys.channel)
    try:
        # The job's sessions share the test's connection, so that all is rolled back after.
        bind = cast(sa.Engine, connection)
        context = JobContext(settings, bind, live, {}, clock=lambda: run.due_at)
        (checked,) = verification_job(context)
        assert (checked.task_id, checked.result, checked.action) == (
            skipped.task.public_id,
            "fail",
            "reject",
        )
        session.refresh(skipped.task)
        assert skipped.task.state == "assigned"
        published: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            m["type"] == "verification" for m in published
        ):
            message = listening.get_message(timeout=0.2)
            if message is not None:
                published.append(json.loads(message["data"]))
        kinds = [(m["type"], m.get("action")) for m in published]
        assert ("task", "reject") in kinds and ("verification", "reject") in kinds
        alert = next(m for m in published if m["type"] == "verification")
        assert alert["alert"] is True and alert["reasons"] == list(checked.reasons)
    finally:
        listening.close()
        live.client.close()
