"""A crew member sees and moves only its own crew's tasks and signs in only for its own
crew; another crew's are not found, as if they did not exist."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.auth.models import User
from fieldline.server.crews.models import Crew
from fieldline.server.tasks import services as tasks
from fieldline.server.tasks.models import Task
from tests.server.auth.conftest import MakeUser, bearer
from tests.server.tasks.conftest import repair_on

TokenFor = Callable[[User], str]


def assigned_task(session: Session, crew: Crew) -> Task:
    now = datetime.now(UTC)
    task = tasks.create_task(session, repair_on("P-000001"), "test", now)
    tasks.transition(
        session, task, "assign", actor="test", actor_kind="dispatcher", at=now, crew=crew
    )
    session.flush()
    return task


@pytest.fixture
def member(make_user: MakeUser, token_for: TokenFor, crew: Crew) -> dict[str, str]:
    return bearer(token_for(make_user("north-1", "crew_member", crew)))


def test_a_crew_member_lists_and_reads_only_its_crews_tasks(
    client: FlaskClient, session: Session, member: dict[str, str], crew: Crew, other_crew: Crew
) -> None:
    own, other = assigned_task(session, crew), assigned_task(session, other_crew)
    listed = client.get("/api/v1/tasks?limit=1000", headers=member).json["tasks"]
    ids = {t["id"] for t in listed}
    assert own.public_id in ids and other.public_id not in ids
    asked_other = client.get(f"/api/v1/tasks?crew={other_crew.public_id}", headers=member)
    assert asked_other.json["tasks"] == []

    for suffix in ("", "/history", "/progress", "/route?from=24.94,60.17"):
        assert (
            client.get(f"/api/v1/tasks/{other.public_id}{suffix}", headers=member).status_code
            == 404
        )
        assert (
            client.get(f"/api/v1/tasks/{own.public_id}{suffix}", headers=member).status_code != 404
        )


def test_a_crew_member_moves_only_its_crews_tasks(
    client: FlaskClient, session: Session, member: dict[str, str], crew: Crew, other_crew: Crew
) -> None:
    own, other = assigned_task(session, crew), assigned_task(session, other_crew)
    refused = client.post(
        f"/api/v1/tasks/{other.public_id}/transitions", json={"action": "accept"}, headers=member
    )
    assert refused.status_code == 404
    session.refresh(other)
    assert other.state == "assigned"
    accepted = client.post(
        f"/api/v1/tasks/{own.public_id}/transitions", json={"action": "accept"}, headers=member
    )
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["task"]["state"] == "accepted"
    assert accepted.json["transition"]["actor"] == crew.public_id


def test_a_crew_member_signs_in_only_for_its_own_crew(
    client: FlaskClient, member: dict[str, str], crew: Crew, other_crew: Crew
) -> None:
    body = {"device_id": "handheld-9"}
    other = client.post(f"/api/v1/crews/{other_crew.public_id}/sign-in", json=body, headers=member)
    assert other.status_code == 404
    own = client.post(f"/api/v1/crews/{crew.public_id}/sign-in", json=body, headers=member)
    assert own.status_code == 422 and own.json["field"] == "device_id"  # not bound: but its own


def test_a_dispatcher_sees_every_crews_tasks(
    client: FlaskClient,
    session: Session,
    make_user: MakeUser,
    token_for: TokenFor,
    crew: Crew,
    other_crew: Crew,
) -> None:
    own, other = assigned_task(session, crew), assigned_task(session, other_crew)
    desk = bearer(token_for(make_user("desk", "dispatcher")))
    ids = {t["id"] for t in client.get("/api/v1/tasks?limit=1000", headers=desk).json["tasks"]}
    assert {own.public_id, other.public_id} <= ids
