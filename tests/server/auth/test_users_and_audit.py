"""Admins keep the users; every change, sign-in and override lands in the audit log, which
only admins read."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.auth import passwords, services
from fieldline.server.auth.models import User
from fieldline.server.crews.models import Crew
from tests.server.auth.conftest import PASSWORD, MakeUser, bearer

TokenFor = Callable[[User], str]


def test_admins_add_change_and_list_users(
    client: FlaskClient, session: Session, make_user: MakeUser, token_for: TokenFor, crew: Crew
) -> None:
    admin = bearer(token_for(make_user("root", "admin")))
    made = client.post("/api/v1/users", json={"username": "mia", "role": "viewer"}, headers=admin)
    assert made.status_code == 201
    generated = made.json["password"]
    assert passwords.verify_password(services.get_user(session, "mia").password_hash, generated)

    no_crew = client.post(
        "/api/v1/users", json={"username": "kim", "role": "crew_member"}, headers=admin
    )
    assert no_crew.status_code == 422 and no_crew.json["field"] == "crew_id"
    taken = client.post("/api/v1/users", json={"username": "mia", "role": "viewer"}, headers=admin)
    assert taken.status_code == 422 and taken.json["field"] == "username"

    changed = client.patch(
        "/api/v1/users/mia",
        json={"role": "crew_member", "crew_id": crew.public_id, "password": PASSWORD},
        headers=admin,
    )
    assert changed.status_code == 200
    assert changed.json["role"] == "crew_member" and changed.json["crew_id"] == crew.public_id
    assert "password" not in changed.json
    listed = client.get("/api/v1/users", headers=admin).json["users"]
    assert {"mia", "root"} <= {u["username"] for u in listed}

    viewer = bearer(token_for(make_user("val", "viewer")))
    assert client.get("/api/v1/users", headers=viewer).status_code == 403
    assert (
        client.patch("/api/v1/users/val", json={"role": "admin"}, headers=viewer).status_code == 403
    )


def test_the_audit_log_records_and_only_admins_read_it(
    client: FlaskClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    make_user("sam", "dispatcher")
    admin = bearer(token_for(make_user("root", "admin")))
    client.post("/api/v1/auth/login", json={"username": "sam", "password": "wrong"})
    client.post("/api/v1/auth/login", json={"username": "sam", "password": PASSWORD})
    client.patch("/api/v1/users/sam", json={"disabled": True}, headers=admin)

    log = client.get("/api/v1/audit?limit=50", headers=admin)
    assert log.status_code == 200
    kinds = [(e["kind"], e["subject"]) for e in log.json["events"]]
    # Newest first.
    assert kinds.index(("user_changed", "sam")) < kinds.index(("login", "sam"))
    assert kinds.index(("login", "sam")) < kinds.index(("login_failed", "sam"))
    changed = next(e for e in log.json["events"] if e["kind"] == "user_changed")
    assert changed["actor"] == "root" and changed["detail"] == {"disabled": True}

    failed = client.get("/api/v1/audit?kind=login_failed&actor=sam", headers=admin).json["events"]
    assert [e["kind"] for e in failed] == ["login_failed"]
    assert failed[0]["detail"] == {"reason": "password"}
    paged = client.get("/api/v1/audit?limit=1", headers=admin).json
    assert len(paged["events"]) == 1 and paged["links"][-1]["rel"] == "next"
    following = client.get(paged["links"][-1]["href"], headers=admin).json["events"]
    assert following[0]["id"] < paged["events"][0]["id"]
    empty = client.get("/api/v1/audit?since=2999-01-01T00:00:00Z", headers=admin).json
    assert empty["events"] == []
    for cursor in ("x", "²", str(2**63)):  # not a number, not ASCII digits, beyond bigint
        assert client.get(f"/api/v1/audit?cursor={cursor}", headers=admin).status_code == 422

    for role in ("supervisor", "dispatcher", "viewer"):
        other = bearer(token_for(make_user(f"{role}-1", role)))
        assert client.get("/api/v1/audit", headers=other).status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_record_event_is_written_with_the_callers_transaction(session: Session) -> None:
    event = services.record_event(
        session, "device_credentials_created", "root", "C-000001", {"device": "h1"}
    )
    assert event.id and event.at is not None
    found = services.list_events(session, services.EventQuery(kind="device_credentials_created"))
    assert [(e.actor, e.subject, e.detail) for e in found] == [
        ("root", "C-000001", {"device": "h1"})
    ]


def test_the_first_admin_is_made_once(session: Session) -> None:
    session.query(User).delete()
    session.flush()
    password = services.ensure_first_admin(session)
    assert password is not None
    admin = services.get_user(session, "admin")
    assert admin.role == "admin" and passwords.verify_password(admin.password_hash, password)
    assert services.ensure_first_admin(session) is None
    assert session.query(User).count() == 1
