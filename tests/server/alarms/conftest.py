"""Alarms against the real database and Redis: readings inserted as the gateway stores them
(telemetry rows, `ON CONFLICT DO NOTHING`, a null value for a stale reading or a Sparkplug
death), the scheduler's job run with a set clock, the live channel listened to."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.scheduler import JobContext
from fieldline.server import create_app
from fieldline.server.alarms.jobs import alarms_job
from fieldline.server.alarms.services import Run
from fieldline.server.live.services import Live
from fieldline.server.telemetry.models import TelemetryReading
from fieldline.settings import Settings, load_settings

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # a morning before the tests were written
STATION = "S-000004"  # Kruununhaka pressure 1: reports pressure_kpa


@pytest.fixture
def alarm_settings(settings: Settings) -> Settings:
    # No default rules: each test says which rules it has.
    return load_settings(database_url=settings.database_url, alarm_rules_default="")


def store(
    session: Session,
    values: list[float | None],
    start: datetime,
    every_s: float = 10.0,
    station: str = STATION,
    metric: str = "pressure_kpa",
) -> datetime:
    """Readings as the gateway writes them; returns the time of the last."""
    rows = [
        {"station_id": station, "metric": metric, "ts": start + timedelta(seconds=i * every_s),
         "value": value}
        for i, value in enumerate(values)
    ]  # fmt: skip
    session.execute(insert(TelemetryReading).values(rows).on_conflict_do_nothing())
    session.flush()
    return rows[-1]["ts"]  # type: ignore[no-any-return]


class Scheduler:
    """The alarms job as the scheduler runs it, one run per call, with a clock; each run
    makes its own sessions, so nothing but the database carries over between runs."""

    def __init__(self, settings: Settings, connection: sa.Connection, live: Live) -> None:
        self.settings, self.connection, self.live = settings, connection, live

    def run(self, at: datetime) -> Run:
        bind = cast(sa.Engine, self.connection)  # the test's connection: all rolled back
        context = JobContext(self.settings, bind, self.live, {}, clock=lambda: at)
        return alarms_job(context)


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    live = Live(
        redis.Redis.from_url(settings.redis_url, decode_responses=True),
        f"fieldline_test_alarms_{uuid.uuid4().hex[:8]}",
    )
    yield live
    live.client.close()


@pytest.fixture
def listening(live: Live) -> Iterator[Any]:
    pubsub = live.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.keys.channel)
    yield pubsub
    pubsub.close()


def received(pubsub: Any, count: int, wait_s: float = 3.0) -> list[dict[str, Any]]:
    """The events published so far (waiting until `count` came or `wait_s` passed)."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and len(events) < count:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            events.append(json.loads(message["data"]))
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        events.append(json.loads(message["data"]))
    return events


@pytest.fixture
def scheduler(alarm_settings: Settings, connection: sa.Connection, live: Live) -> Scheduler:
    return Scheduler(alarm_settings, connection, live)


@pytest.fixture
def alarm_client(alarm_settings: Settings, connection: sa.Connection, live: Live) -> FlaskClient:
    app = create_app(alarm_settings, bind=connection)
    app.extensions["fieldline_live"] = live  # the views publish where the test listens
    return app.test_client()
