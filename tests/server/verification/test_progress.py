"""Progress of work in hand for the crew's handheld: the crew's trace so far against the
task's pipes, checkpoints or site, measured as a verification run measures it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from shapely.geometry import Point
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.tasks.services import create_task, transition
from fieldline.server.verification.progress import task_progress
from fieldline.settings import Settings
from tests.server.verification.conftest import (
    HYDRANT_A,
    HYDRANT_SIDE,
    STREET_A,
    STREET_B,
    T0,
    at_site,
    insert_fixes,
    patrol,
    repair,
)


def test_a_patrol_shows_the_pipes_and_checkpoints_still_to_do(
    session: Session, crew: Crew, settings: Settings
) -> None:
    skipped = patrol(session, crew, skip_side=True)
    done = task_progress(session, skipped.task, skipped.walker.now, settings)
    assert done["type"] == "FeatureCollection"
    assert (done["task_id"], done["crew_id"]) == (skipped.task.public_id, crew.public_id)
    assert done["since"] == T0.isoformat()  # from the crew's acceptance
    pipes = {f["id"]: f for f in done["features"] if f["properties"]["role"] == "pipe"}
    assert set(pipes) == set(skipped.side_pipes)  # the streets walked are done
    assert all(f["geometry"]["type"] == "MultiLineString" for f in pipes.values())
    assert all(
        f["properties"]["ratio"] < settings.verification_min_coverage for f in pipes.values()
    )
    checkpoints = {
        f["id"]: f["properties"]["visited"]
        for f in done["features"]
        if f["properties"]["role"] == "checkpoint"
    }
    assert checkpoints == {HYDRANT_A: True, HYDRANT_SIDE: False}
    total = len(STREET_A) + len(STREET_B) + len(skipped.side_pipes)
    assert (done["pipes_total"], done["pipes_remaining"]) == (total, len(skipped.side_pipes))
    assert (done["checkpoints_total"], done["checkpoints_visited"]) == (2, 1)
    assert 0.5 < done["covered_share"] < settings.verification_min_coverage
    assert done["reached"] is None  # a patrol has no site

    # Earlier in the walk less is covered: the trace stops at `now`.
    early = task_progress(session, skipped.task, T0 + timedelta(minutes=4), settings)
    assert early["covered_share"] < done["covered_share"]
    assert early["pipes_remaining"] > done["pipes_remaining"]
    assert early["fixes"] < done["fixes"]


def test_work_at_a_site_shows_whether_the_crew_reached_it(
    session: Session, crew: Crew, client: FlaskClient
) -> None:
    now = datetime.now(UTC)
    task = create_task(session, repair("P-000001"), "dispatcher", now - timedelta(minutes=30))
    transition(
        session,
        task,
        "assign",
        actor="dispatcher",
        actor_kind="dispatcher",
        at=now - timedelta(minutes=20),
        crew=crew,
    )
    transition(
        session,
        task,
        "accept",
        actor=crew.public_id,
        actor_kind="crew",
        at=now - timedelta(minutes=19),
    )
    # The task as the handheld reads it carries the site and the assets to check.
    shown = client.get(f"/api/v1/tasks/{task.public_id}").get_json()
    assert set(shown["site"]) == {"lon", "lat"}
    assert [(a["layer"], a["id"], a["role"]) for a in shown["assets"]] == [
        ("pipes", "P-000001", "target")
    ]
    url = f"/api/v1/tasks/{task.public_id}/progress"
    away = client.get(url)
    assert away.status_code == 200 and away.mimetype == "application/geo+json"
    body = away.get_json()
    assert (body["reached"], body["arrived_at"], body["fixes"]) == (False, None, 0)

    walker = at_site(task, now - timedelta(minutes=10))
    walker.stay(Point(400, 0), 120).stay(Point(0, 0), 180)  # on the way, then at the site
    insert_fixes(session, crew, walker.fixes)
    session.flush()
    body = client.get(url).get_json()
    assert body["reached"] is True
    arrived = datetime.fromisoformat(body["arrived_at"])
    assert now - timedelta(minutes=8, seconds=30) < arrived < now - timedelta(minutes=7)
    (site,) = body["features"]
    assert site["properties"]["role"] == "site" and site["properties"]["reached"] is True
    assert site["geometry"]["type"] == "Point"
    assert body["covered_share"] is None and body["pipes_total"] == 0
    assert client.get("/api/v1/tasks/T-999999/progress").status_code == 404
