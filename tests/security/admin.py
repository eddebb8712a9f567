"""An app on the rolled-back test connection as admin, so that authorization hides no handler
from the hostile-input tests."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from fieldline.server import create_app
from fieldline.settings import Settings, load_settings


def admin_app(settings: Settings, connection: sa.Connection, **more: object) -> Flask:
    as_admin = load_settings(database_url=settings.database_url, anonymous_role="admin", **more)
    return create_app(as_admin, bind=connection)
