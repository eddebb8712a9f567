"""Crews on shift with live fixes, and tasks at a point, for the dispatch tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from fieldline.server import create_app
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import add_shift, create_crew
from fieldline.server.live.services import Live
from fieldline.server.tasks.models import Task
from fieldline.settings import Settings
from tests.server.dispatch.roads import RoadModel, road_model

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def roads(settings: Settings) -> RoadModel:
    return road_model(settings.routing_vehicle_speed_factor, settings.routing_walk_speed_mps)


def fix(at: datetime, point: Sequence[float]) -> dict[str, Any]:
    """A latest fix as the gateway keeps it in Redis."""
    return {"device": "handheld", "fix_time": at.isoformat(), "lon": point[0], "lat": point[1]}


def on_shift_crew(
    session: Session,
    name: str,
    *,
    skills: Sequence[str] = (),
    mode: str = "vehicle",
    now: datetime = NOW,
    depot: Sequence[float] | None = None,
) -> Crew:
    crew = create_crew(session, name, mode, skills=skills, depot=list(depot) if depot else None)
    add_shift(session, crew.public_id, now - timedelta(hours=2), now + timedelta(hours=6))
    return crew


def task_at(
    session: Session,
    point: Sequence[float] | None,
    *,
    priority: str = "P2",
    skills: Sequence[str] = (),
    kind: str = "repair",
) -> Task:
    task = Task(
        kind=kind,
        priority=priority,
        source="call_centre",
        title=f"{kind} test",
        site=None if point is None else from_shape(Point(*point), srid=4326),
        required_skills=list(skills),
        created_by="dispatch-test",
    )
    session.add(task)
    session.flush()
    session.refresh(task)
    return task


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    """Latest fixes and the live stream under a prefix of this test's own."""
    found = Live.from_url(settings.redis_url, f"dispatch-test-{uuid.uuid4().hex[:12]}")
    yield found
    keys = found.keys
    found.client.delete(keys.geo, keys.latest, keys.fix_ms)
    found.client.close()


def report_fix(live: Live, crew: Crew, at: datetime, point: Sequence[float]) -> dict[str, Any]:
    """Record a crew's latest fix as the gateway does; returns it."""
    body = fix(at, point) | {"crew_id": crew.public_id}
    live.update_latest(crew.public_id, int(at.timestamp() * 1000), point[0], point[1], body)
    return body


@pytest.fixture
def dispatch_settings(settings: Settings, live: Live) -> Settings:
    """The test database, this test's Redis prefix, P1 auto-dispatched, 5-minute offers."""
    return settings.model_copy(
        update={
            "redis_prefix": live.keys.prefix,
            "auto_dispatch_priorities": "P1",
            "offer_timeout_s": 300.0,
        }
    )


@pytest.fixture
def dispatch_client(dispatch_settings: Settings, connection: sa.Connection) -> FlaskClient:
    return create_app(dispatch_settings, bind=connection).test_client()
