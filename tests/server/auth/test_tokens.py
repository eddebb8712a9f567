"""API tokens: made, used, listed, expired, revoked, refused for a disabled user, and never
stored in a form that gives the secret back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.auth import services
from fieldline.server.auth.models import ApiToken, User
from tests.server.auth.conftest import MakeUser, bearer, sign_in

TokenFor = Callable[[User], str]


def test_a_token_made_through_the_api_works_and_its_secret_is_not_stored(
    client: FlaskClient, session: Session, make_user: MakeUser, connection: sa.Connection
) -> None:
    make_user("integ", "integration")
    csrf = sign_in(client, "integ")
    made = client.post(
        "/api/v1/tokens", json={"name": "billing sync", "days": 30}, headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code == 201
    secret = made.json["token"]
    expires = datetime.fromisoformat(made.json["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    # Nothing in the database holds the secret or its random part.
    _scheme, prefix, random_part = secret.split("_")
    dump = connection.execute(sa.text("SELECT api_tokens::text FROM api_tokens")).scalars().all()
    assert dump and not any(random_part in row or secret in row for row in dump)
    events = connection.execute(sa.text("SELECT detail::text FROM security_events")).scalars().all()
    assert not any(random_part in row for row in events)

    other = client.application.test_client()  # no cookie
    me = other.get("/api/v1/auth/me", headers=bearer(secret))
    assert me.status_code == 200
    assert me.json["username"] == "integ" and me.json["via"] == "token"
    assert other.get("/api/v1/tasks", headers=bearer(secret)).status_code == 200
    # A token's request needs no CSRF header: it is not sent by a browser on its own.
    assert other.post("/api/v1/tasks", json={}, headers=bearer(secret)).status_code == 422
    token = session.scalar(sa.select(ApiToken).where(ApiToken.prefix == prefix))
    assert token is not None and token.last_used_at is not None

    listed = client.get("/api/v1/tokens").json["tokens"]
    assert [t["name"] for t in listed] == ["billing sync"]
    assert "token" not in listed[0] and listed[0]["prefix"] == prefix


def test_wrong_expired_and_revoked_tokens_get_401(
    client: FlaskClient, session: Session, make_user: MakeUser, token_for: TokenFor
) -> None:
    user = make_user("viewer1", "viewer")
    secret = token_for(user)
    assert client.get("/api/v1/tasks", headers=bearer(secret)).status_code == 200
    for wrong in (secret[:-1] + ("0" if secret[-1] != "0" else "1"), "fl_nope_nope", "garbage"):
        answer = client.get("/api/v1/tasks", headers=bearer(wrong))
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/api/v1/tasks", headers={"Authorization": "Basic eDp5"}).status_code == 401

    token = session.scalar(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    assert token is not None
    token.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.flush()
    assert client.get("/api/v1/tasks", headers=bearer(secret)).status_code == 401

    fresh = token_for(user)
    newest = session.scalars(sa.select(ApiToken).order_by(ApiToken.id.desc())).first()
    assert newest is not None
    services.revoke_token(session, newest, datetime.now(UTC), actor="test")
    session.flush()
    assert client.get("/api/v1/tasks", headers=bearer(fresh)).status_code == 401


def test_a_disabled_users_tokens_stop_working(
    client: FlaskClient, session: Session, make_user: MakeUser, token_for: TokenFor
) -> None:
    make_user("gone", "dispatcher")
    secret = token_for(services.get_user(session, "gone"))
    assert client.get("/api/v1/tasks", headers=bearer(secret)).status_code == 200
    services.update_user(session, "gone", {"disabled": True}, actor="test")
    session.flush()
    assert client.get("/api/v1/tasks", headers=bearer(secret)).status_code == 401


def test_users_revoke_their_own_tokens_admins_anyones(
    client: FlaskClient, session: Session, make_user: MakeUser, token_for: TokenFor
) -> None:
    alice, bob = make_user("alice", "dispatcher"), make_user("bob", "dispatcher")
    admin = make_user("root", "admin")
    alice_secret, bob_secret = token_for(alice), token_for(bob)
    bob_token = session.scalars(sa.select(ApiToken).where(ApiToken.user_id == bob.id)).one()
    alice_token = session.scalars(sa.select(ApiToken).where(ApiToken.user_id == alice.id)).one()

    # Alice neither sees nor revokes Bob's token.
    mine = client.get("/api/v1/tokens", headers=bearer(alice_secret)).json["tokens"]
    assert [(t["id"], t["username"]) for t in mine] == [(alice_token.id, "alice")]
    assert (
        client.delete(f"/api/v1/tokens/{bob_token.id}", headers=bearer(alice_secret)).status_code
        == 404
    )
    assert (
        client.post(
            "/api/v1/tokens", json={"name": "x", "user": "bob"}, headers=bearer(alice_secret)
        ).status_code
        == 403
    )
    revoked = client.delete(f"/api/v1/tokens/{alice_token.id}", headers=bearer(alice_secret))
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None

    admin_secret = token_for(admin)
    everyone = client.get("/api/v1/tokens", headers=bearer(admin_secret)).json["tokens"]
    assert {t["username"] for t in everyone} >= {"alice", "bob", "root"}
    assert (
        client.delete(f"/api/v1/tokens/{bob_token.id}", headers=bearer(admin_secret)).status_code
        == 200
    )
    assert client.get("/api/v1/tasks", headers=bearer(bob_secret)).status_code == 401
    made = client.post(
        "/api/v1/tokens",
        json={"name": "for bob", "user": "bob", "days": 1},
        headers=bearer(admin_secret),
    )
    assert made.status_code == 201 and made.json["username"] == "bob"


def test_a_token_lives_at_most_the_longest_allowed(
    client: FlaskClient, make_user: MakeUser, token_for: TokenFor, locked_settings: object
) -> None:
    secret = token_for(make_user("longer", "viewer"))
    too_long = client.post(
        "/api/v1/tokens", json={"name": "x", "days": 100_000}, headers=bearer(secret)
    )
    assert too_long.status_code == 422 and too_long.json["field"] == "days"
    default = client.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(secret))
    expires = datetime.fromisoformat(default.json["expires_at"])
    assert expires - datetime.now(UTC) <= timedelta(days=locked_settings.token_max_days)  # type: ignore[attr-defined]
