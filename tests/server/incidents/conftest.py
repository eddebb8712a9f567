"""Incidents against the real database, Redis and the fixture city: alarms raised by the
alarms job from stored readings, the incidents job run with a set clock, the API with the
live channel listened to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.scheduler import JobContext
from fieldline.server import create_app
from fieldline.server.alarms import services as alarm_services
from fieldline.server.alarms.jobs import alarms_job
from fieldline.server.incidents.jobs import incidents_job
from fieldline.server.incidents.services import Intake
from fieldline.server.live.services import Live
from fieldline.settings import Settings, load_settings
from tests.server.alarms.conftest import STATION, listening, live, received, store

# Half an hour ago: the API takes calls at the server's clock, and a call joins an alarm's
# incident only within the grouping window.
T0 = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
LOW = {
    "station": STATION,
    "metric": "pressure_kpa",
    "kind": "low",
    "threshold": 250,
    "deadband": 20,
    "delay_s": 60,
    "severity": "high",
}

__all__ = ["LOW", "STATION", "T0", "listening", "live", "received", "store"]


@pytest.fixture
def incident_settings(settings: Settings) -> Settings:
    # No default alarm rules (each test says which it has); every notice recorded.
    return load_settings(
        database_url=settings.database_url, alarm_rules_default="", notice_backends="recording"
    )


class Jobs:
    """The alarms and incidents jobs as the scheduler runs them, with a clock."""

    def __init__(self, settings: Settings, connection: sa.Connection, live: Live) -> None:
        self.settings, self.connection, self.live = settings, connection, live

    def context(self, at: datetime) -> JobContext:
        bind = cast(sa.Engine, self.connection)  # the test's connection: all rolled back
        return JobContext(self.settings, bind, self.live, {}, clock=lambda: at)

    def alarms(self, at: datetime) -> Any:
        return alarms_job(self.context(at))

    def incidents(self, at: datetime) -> Intake:
        return incidents_job(self.context(at))


@pytest.fixture
def jobs(incident_settings: Settings, connection: sa.Connection, live: Live) -> Jobs:
    return Jobs(incident_settings, connection, live)


@pytest.fixture
def incident_client(
    incident_settings: Settings, connection: sa.Connection, live: Live
) -> FlaskClient:
    app = create_app(incident_settings, bind=connection)
    app.extensions["fieldline_live"] = live  # the views publish where the test listens
    return app.test_client()


def raise_low_pressure(session: Session, jobs: Jobs, start: datetime = T0) -> tuple[str, datetime]:
    """A low-pressure alarm at STATION raised by the alarms job; its id and the time after."""
    alarm_services.create_rule(session, LOW, "test", start)
    session.commit()
    end = store(session, [300.0] + [230.0] * 12, start + timedelta(seconds=10))
    run = jobs.alarms(end + timedelta(seconds=1))
    assert len(run.raised) == 1, run
    return run.raised[0], end + timedelta(seconds=2)
