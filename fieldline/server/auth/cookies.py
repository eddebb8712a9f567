"""The web session: Flask's signed cookie, HttpOnly, SameSite=Lax, Secure when the site is
served over HTTPS, signed with FIELDLINE_SECRET_KEY or else with a key the server generated
once and keeps in the database (so every web process, and a restarted one, agrees)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from fieldline.settings import Settings

log = logging.getLogger(__name__)
COOKIE_NAME = "fieldline_session"


class DatabaseKeySessions(SecureCookieSessionInterface):
    """Reads the generated key on the first request that needs it, not when the app is
    built: building an app does not need the database."""

    def get_signing_serializer(self, app: Flask) -> Any:
        if not app.secret_key:
            from fieldline.server.auth.services import session_key

            try:
                with app.extensions["fieldline"].sessions() as session:
                    key = session_key(session)
                    session.commit()
            except sa.exc.SQLAlchemyError:
                # No database: no sessions (health checks still answer); the next request tries.
                log.warning("the session key cannot be read from the database", exc_info=True)
                return None
            app.secret_key = key
        return super().get_signing_serializer(app)


def configure_sessions(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=settings.secret_key or None,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
    )
    app.session_interface = DatabaseKeySessions()
