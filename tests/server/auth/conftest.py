"""An app with no anonymous role (as a deployment runs), and people to sign in as: a user
per role, each with an API token."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server import create_app
from fieldline.server.auth import services
from fieldline.server.auth.models import User
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import create_crew
from fieldline.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
def locked_settings(settings: Settings) -> Settings:
    # Tasks moved here go out on the live stream: under a prefix of this run's own.
    prefix = f"fieldline-auth-{uuid.uuid4().hex[:8]}"
    return settings.model_copy(update={"anonymous_role": "", "redis_prefix": prefix})


@pytest.fixture
def app(locked_settings: Settings, connection: sa.Connection) -> Flask:
    return create_app(locked_settings, bind=connection)


@pytest.fixture
def crew(session: Session) -> Crew:
    return create_crew(session, "Crew north")


@pytest.fixture
def other_crew(session: Session) -> Crew:
    return create_crew(session, "Crew south")


MakeUser = Callable[..., User]


@pytest.fixture
def make_user(session: Session) -> MakeUser:
    def make(username: str, role: str, crew: Crew | None = None) -> User:
        user, _ = services.create_user(
            session, username, role, crew_id=crew.public_id if crew else None, password=PASSWORD
        )
        session.flush()
        return user

    return make


@pytest.fixture
def token_for(session: Session, locked_settings: Settings) -> Callable[[User], str]:
    def make(user: User) -> str:
        _token, secret = services.create_token(
            session, user, "test", datetime.now(UTC), locked_settings, actor="test"
        )
        session.flush()
        return secret

    return make


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> str:
    """Signs the client in; the session's CSRF token."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    token: str = response.json["csrf_token"]
    return token
