"""Signing in and out, who is signed in, the lockout after repeated failures, CSRF on the
session's unsafe requests, disabled users, and the pages that send a browser to sign in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.auth import services
from fieldline.server.auth.models import SecurityEvent
from fieldline.settings import Settings
from tests.server.auth.conftest import PASSWORD, MakeUser, sign_in


def events(session: Session, kind: str, subject: str) -> list[SecurityEvent]:
    return list(
        session.scalars(
            sa.select(SecurityEvent).where(
                SecurityEvent.kind == kind, SecurityEvent.subject == subject
            )
        )
    )


def test_nobody_signed_in_gets_401_with_a_bearer_challenge(client: FlaskClient) -> None:
    response = client.get("/api/v1/tasks")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/api/v1/auth/me").status_code == 401


def test_sign_in_me_and_sign_out(
    client: FlaskClient, session: Session, make_user: MakeUser, crew: object
) -> None:
    make_user("disp", "dispatcher")
    response = client.post("/api/v1/auth/login", json={"username": "disp", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json
    assert body["username"] == "disp" and body["role"] == "dispatcher" and body["crew_id"] is None
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json["username"] == "disp" and me.json["csrf_token"] == body["csrf_token"]
    assert client.get("/api/v1/tasks").status_code == 200
    assert client.get("/api/v1/users").status_code == 403  # signed in, not allowed

    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401
    assert client.get("/api/v1/tasks").status_code == 401
    assert [e.kind for e in events(session, "login", "disp")] == ["login"]
    assert len(events(session, "logout", "disp")) == 1


def test_secure_cookies_setting(
    settings: Settings, connection: sa.Connection, make_user: MakeUser
) -> None:
    from fieldline.server import create_app

    secure = settings.model_copy(update={"anonymous_role": "", "secure_cookies": True})
    make_user("sec", "viewer")
    client = create_app(secure, bind=connection).test_client()
    response = client.post("/api/v1/auth/login", json={"username": "sec", "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_password_or_unknown_user_gets_the_same_answer_and_is_recorded(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    make_user("anna", "viewer")
    wrong = client.post("/api/v1/auth/login", json={"username": "anna", "password": "nope"})
    unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json["detail"] == unknown.json["detail"] == "wrong user name or password"
    assert "Set-Cookie" not in wrong.headers
    assert events(session, "login_failed", "anna")[0].detail == {"reason": "password"}
    assert events(session, "login_failed", "nobody")[0].detail == {"reason": "unknown user"}


def test_repeated_failures_lock_the_name_for_a_while(
    client: FlaskClient, session: Session, make_user: MakeUser, locked_settings: Settings
) -> None:
    make_user("bruce", "viewer")
    for _ in range(locked_settings.login_max_failures):
        answer = client.post("/api/v1/auth/login", json={"username": "bruce", "password": "x"})
        assert answer.status_code == 401
    locked = client.post("/api/v1/auth/login", json={"username": "bruce", "password": PASSWORD})
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= locked_settings.login_lockout_minutes * 60
    # Once the window has passed, the right password works again.
    later = datetime.now(UTC) + timedelta(minutes=locked_settings.login_lockout_minutes + 1)
    user = services.authenticate(session, "bruce", PASSWORD, later, locked_settings)
    assert user.username == "bruce"


def test_a_session_needs_the_csrf_header_on_unsafe_requests(
    client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("sup", "supervisor")
    csrf = sign_in(client, "sup")
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
        "properties": {"label": "csrf"},
    }
    missing = client.post("/api/v1/assets/markers", json=body)
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json["detail"]
    wrong = client.post("/api/v1/assets/markers", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    right = client.post("/api/v1/assets/markers", json=body, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 201
    assert client.get("/api/v1/assets/markers?limit=1").status_code == 200  # reads need none
    # Logging out is unsafe too.
    assert client.post("/api/v1/auth/logout").status_code == 403


def test_a_disabled_user_cannot_sign_in_and_its_session_ends(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    make_user("carl", "viewer")
    sign_in(client, "carl")
    assert client.get("/api/v1/tasks").status_code == 200
    services.update_user(session, "carl", {"disabled": True}, actor="test")
    session.flush()
    assert client.get("/api/v1/tasks").status_code == 401
    again = client.post("/api/v1/auth/login", json={"username": "carl", "password": PASSWORD})
    assert again.status_code == 401


def test_a_password_change_ends_earlier_sessions(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    user = make_user("dora", "viewer")
    sign_in(client, "dora")
    services.set_password(session, user, "another long password", actor="test")
    session.flush()
    assert client.get("/api/v1/tasks").status_code == 401


def test_pages_send_the_browser_to_the_login_page_and_back(
    client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("eve", "dispatcher")
    page = client.get("/map")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=%2Fmap"
    assert client.get("/crew/").headers["Location"] == "/login?next=%2Fcrew%2F"
    form = client.get("/login?next=/map")
    assert form.status_code == 200 and b'name="password"' in form.data

    failed = client.post("/login", data={"username": "eve", "password": "no", "next": "/map"})
    assert failed.status_code == 401 and b"wrong user name or password" in failed.data
    done = client.post("/login", data={"username": "eve", "password": PASSWORD, "next": "/map"})
    assert done.status_code == 303 and done.headers["Location"] == "/map"
    shown = client.get("/map")
    assert shown.status_code == 200 and b'name="csrf-token"' in shown.data


def test_the_login_page_never_sends_elsewhere(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("fay", "viewer")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        done = client.post("/login", data={"username": "fay", "password": PASSWORD, "next": target})
        assert done.headers["Location"] == "/map"
