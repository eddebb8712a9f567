"""`/api/v1/tasks/{id}/verification` and `/api/v1/verifications` over HTTP: the run as JSON
with its GeoJSON layers, the printable report, a fresh run, the override, and who may do
what."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from shapely.geometry import Point
from sqlalchemy.orm import Session

from fieldline.server import create_app
from fieldline.server.crews.models import Crew
from fieldline.server.tasks import events
from fieldline.server.tasks.models import Task
from fieldline.server.tasks.services import create_task
from fieldline.server.verification import services
from fieldline.server.verification.evidence import LAYER_NAMES
from fieldline.settings import Settings, load_settings
from tests.server.verification.conftest import (
    HYDRANT_SIDE,
    T0,
    at_site,
    complete,
    insert_fixes,
    patrol,
    repair,
)

PROBLEM = "application/problem+json"


def client_as(role: str, settings: Settings, connection: sa.Connection) -> FlaskClient:
    # Live events go to a channel of this test's own.
    own = load_settings(
        database_url=settings.database_url,
        anonymous_role=role,
        redis_prefix=f"fieldline_test_verif_{uuid.uuid4().hex[:8]}",
    )
    app: Flask = create_app(own, bind=connection)
    return app.test_client()


@pytest.fixture
def api(settings: Settings, connection: sa.Connection) -> FlaskClient:
    return client_as("dispatcher", settings, connection)


def checked_patrol(session: Session, crew: Crew, settings: Settings) -> tuple[Task, list[str]]:
    """The patrol that skipped the side street, its run come due and checked."""
    skipped = patrol(session, crew, skip_side=True)
    run = services.latest_run(session, skipped.task)
    assert run is not None
    events.take(session)
    services.run_due(session, run.due_at, settings)
    session.flush()
    return skipped.task, skipped.side_pipes


def good_repair(session: Session, crew: Crew) -> Task:
    """A repair completed after 20 minutes at the site."""
    task = complete(session, crew, repair("P-000300"), T0, T0 + timedelta(minutes=40))
    walker = at_site(task, T0 + timedelta(minutes=1), every_s=5).stay(Point(0, 0), 20 * 60)
    insert_fixes(session, crew, walker.fixes)
    session.flush()
    return task


def test_the_run_as_json_with_its_layers(
    api: FlaskClient, session: Session, crew: Crew, settings: Settings
) -> None:
    task, side_pipes = checked_patrol(session, crew, settings)
    response = api.get(f"/api/v1/tasks/{task.public_id}/verification")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["task_id"], body["run"], body["status"]) == (task.public_id, 1, "done")
    assert (body["result"], body["effective_result"], body["override"]) == ("fail", "fail", None)
    assert f"checkpoint {HYDRANT_SIDE} not visited" in body["reasons"]
    assert body["window"]["from"] == T0.isoformat()
    failed = {row["asset_id"] for row in body["summary"]["pipes"] if not row["passed"]}
    assert failed == set(side_pipes)

    layers = body["layers"]
    assert set(layers) == set(LAYER_NAMES)
    assert all(layer["type"] == "FeatureCollection" for layer in layers.values())
    missed = {f["properties"]["asset_id"] for f in layers["missed"]["features"]}
    covered = {f["properties"]["asset_id"] for f in layers["covered"]["features"]}
    assert set(side_pipes) <= missed and not set(side_pipes) & covered
    assert all(f["geometry"]["type"] == "LineString" for f in layers["missed"]["features"])
    lon, lat = layers["missed"]["features"][0]["geometry"]["coordinates"][0]
    assert 24 < lon < 26 and 59 < lat < 61  # WGS 84, longitude first
    hits = {
        f["properties"]["asset_id"]: f["properties"]["visited"]
        for f in layers["checkpoints"]["features"]
    }
    assert hits[HYDRANT_SIDE] is False
    assert layers["trace"]["features"]

    lean = api.get(f"/api/v1/tasks/{task.public_id}/verification?layers=false&run=1").get_json()
    assert "layers" not in lean and lean["reasons"] == body["reasons"]
    assert api.get(f"/api/v1/tasks/{task.public_id}/verification?run=2").status_code == 404
    bad = api.get(f"/api/v1/tasks/{task.public_id}/verification?run=first")
    assert bad.status_code == 422 and bad.get_json()["field"] == "run"
    assert api.get(f"/api/v1/tasks/{task.public_id}/verification?layers=no").status_code == 422


def test_approve_is_not_a_transition_of_the_tasks_api(
    api: FlaskClient, session: Session, crew: Crew
) -> None:
    task = good_repair(session, crew)
    response = api.post(f"/api/v1/tasks/{task.public_id}/transitions", json={"action": "approve"})
    assert response.status_code == 422 and response.get_json()["field"] == "action"
    assert "verification/override" in response.get_json()["detail"]


def test_no_verification_is_404(api: FlaskClient, session: Session) -> None:
    task = create_task(session, repair("P-000300"), "dispatcher", T0)
    session.flush()
    response = api.get(f"/api/v1/tasks/{task.public_id}/verification")
    assert response.status_code == 404 and response.mimetype == PROBLEM
    assert api.get("/api/v1/tasks/T-999999/verification").status_code == 404


def test_the_printable_report(
    api: FlaskClient, session: Session, crew: Crew, settings: Settings
) -> None:
    task, side_pipes = checked_patrol(session, crew, settings)
    response = api.get(f"/api/v1/tasks/{task.public_id}/verification/report")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert task.public_id in page and crew.public_id in page
    assert "<svg" in page and 'class="missed"' in page and 'class="covered"' in page
    assert all(pipe in page for pipe in side_pipes)
    assert f"checkpoint {HYDRANT_SIDE} not visited" in page
    assert "History of the task" in page and "reject" in page


def test_a_fresh_run_and_the_override(
    api: FlaskClient, session: Session, crew: Crew, settings: Settings
) -> None:
    task = good_repair(session, crew)
    path = f"/api/v1/tasks/{task.public_id}/verification"
    fresh = api.post(path)
    assert fresh.status_code == 201, fresh.get_json()
    body = fresh.get_json()
    assert (body["run"], body["result"], body["task"]["state"]) == (2, "pass", "verified")
    assert fresh.headers["Location"].endswith(f"{path}?run=2")
    again = api.post(path)  # verified: nothing left to check
    assert again.status_code == 409 and again.mimetype == PROBLEM

    missing = api.post(f"{path}/override", json={"result": "fail"})
    assert missing.status_code == 422 and missing.get_json()["field"] == "reason"
    wrong = api.post(f"{path}/override", json={"result": "maybe", "reason": "x"})
    assert wrong.status_code == 422 and wrong.get_json()["field"] == "result"
    decided = api.post(f"{path}/override", json={"result": "fail", "reason": "still leaking"})
    assert decided.status_code == 200, decided.get_json()
    body = decided.get_json()
    assert (body["result"], body["effective_result"]) == ("pass", "fail")
    assert body["override"]["reason"] == "still leaking" and body["override"]["by"]
    assert body["task"]["state"] == "assigned"
    assert body["task"]["history"][-1]["note"] == "still leaking"
    assert [d["kind"] for d in body["inbox"]] == ["task.reopened"]
    # Passing it now would undo a dispatcher's decision, not the check's: refused.
    assert api.post(f"{path}/override", json={"result": "pass", "reason": "x"}).status_code == 409


def test_the_follow_up_list(
    api: FlaskClient, session: Session, crew: Crew, settings: Settings
) -> None:
    task, _ = checked_patrol(session, crew, settings)
    failed = api.get("/api/v1/verifications?result=fail").get_json()["verifications"]
    assert [(row["task_id"], row["run"]) for row in failed] == [(task.public_id, 1)]
    assert failed[0]["task"]["state"] == "assigned" and failed[0]["reasons"]
    assert api.get("/api/v1/verifications?result=pass").get_json()["verifications"] == []
    assert api.get("/api/v1/verifications?result=maybe").status_code == 422
    assert len(api.get("/api/v1/verifications").get_json()["verifications"]) == 1


@pytest.mark.parametrize(
    ("role", "reads", "writes"),
    [("viewer", True, False), ("crew_member", False, False), ("supervisor", True, True)],
)
def test_who_may_read_and_override(
    role: str,
    reads: bool,
    writes: bool,
    session: Session,
    crew: Crew,
    settings: Settings,
    connection: sa.Connection,
) -> None:
    task, _ = checked_patrol(session, crew, settings)
    client = client_as(role, settings, connection)
    path = f"/api/v1/tasks/{task.public_id}/verification"
    assert client.get(path).status_code == (200 if reads else 403)
    assert client.get(f"{path}/report").status_code == (200 if reads else 403)
    override = client.post(f"{path}/override", json={"result": "pass", "reason": "seen it"})
    assert override.status_code == (200 if writes else 403)


def test_the_task_shows_the_arrival_found_in_the_trace(
    api: FlaskClient, session: Session, crew: Crew, settings: Settings
) -> None:
    task = good_repair(session, crew)
    path = f"/api/v1/tasks/{task.public_id}"
    assert api.get(path).get_json()["trace_arrived_at"] is None  # not checked yet
    run = services.latest_run(session, task)
    assert run is not None
    events.take(session)
    services.run_due(session, run.due_at, settings)
    session.flush()
    shown = api.get(path).get_json()
    assert shown["state"] == "verified"
    assert shown["trace_arrived_at"] == task.trace_arrived_at.isoformat()
    assert T0 < task.trace_arrived_at < T0 + timedelta(minutes=2)
