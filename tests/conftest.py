"""Shared test set-up: one migrated PostGIS test database with the fixture city loaded once,
and each test inside a transaction that is rolled back, so tests never see each other's writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql as psql
from sqlalchemy.orm import Session

from fieldline.gis.db import downgrade, make_engine, make_sessionmaker, upgrade
from fieldline.gis.importer import find_sources, import_path
from fieldline.local_services import database_name, ensure_database, libpq_url
from fieldline.server import create_app
from fieldline.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "fixtures" / "city"
# Most tests act as the local operator with every permission, as an unconfigured server did
# before sign-in existed; the environment carries it to settings tests build themselves and to
# the servers they start. Tests of sign-in and permissions ask for no anonymous role.
os.environ.setdefault("FIELDLINE_ANONYMOUS_ROLE", "admin")


@pytest.fixture(scope="session")
def settings() -> Settings:
    base = load_settings()
    # Any FIELDLINE_TEST_DATABASE_URL works: the database is created when missing, so
    # several test runs can use databases of their own side by side.
    ensure_database(base.test_database_url, report=lambda line: None)
    return load_settings(database_url=base.test_database_url, anonymous_role="admin")


def recreate_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            psql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psql.Identifier(name))
        )
    ensure_database(url, report=lambda line: None)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[sa.Engine]:
    # Down to nothing and up again: every run starts from the migrations alone. A test
    # database left by an older version of a migration may not go down: it is disposable.
    try:
        downgrade(settings.database_url)
    except sa.exc.SQLAlchemyError:
        recreate_database(settings.database_url)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        import_path(session, find_sources(CITY))
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        forget_broker_logins(connection)
        transaction.rollback()


def forget_broker_logins(connection: sa.Connection) -> None:
    """Devices' MQTT logins a test made live on the machine's broker, whose rows the rollback
    is about to forget, are removed from the broker too."""
    live = sa.text("SELECT username FROM device_credentials WHERE revoked_at IS NULL")
    try:
        inside = set(connection.execute(live).scalars())
    except sa.exc.DBAPIError:  # a test's failed statement aborted the transaction
        return
    if not inside:
        return
    with connection.engine.connect() as outside:
        made = inside - set(outside.execute(live).scalars())
    if made:
        from fieldline.server.mqtt_access import acl
        from fieldline.server.mqtt_access.broker import BrokerAdmin

        admin = BrokerAdmin.from_settings(load_settings())
        admin.send([command for name in sorted(made) for command in acl.delete_commands(name)])


def forget_database_logins(bind: sa.Engine | sa.Connection) -> None:
    """Remove from the machine's broker every live MQTT login a committed test database holds
    (the browser tests' server signs handhelds in for real)."""
    live = sa.text("SELECT username FROM device_credentials WHERE revoked_at IS NULL")
    with bind.connect() if isinstance(bind, sa.Engine) else nullcontext(bind) as connection:
        names = sorted(set(connection.execute(live).scalars()))
    if names:
        from fieldline.server.mqtt_access import acl
        from fieldline.server.mqtt_access.broker import BrokerAdmin

        admin = BrokerAdmin.from_settings(load_settings())
        admin.send([command for name in names for command in acl.delete_commands(name)])


@pytest.fixture
def session(connection: sa.Connection) -> Iterator[Session]:
    with make_sessionmaker(connection)() as session:
        yield session
        # Closing the session rolls back its savepoint, and what requests wrote after it.
        forget_broker_logins(session.connection())


@pytest.fixture
def app(settings: Settings, connection: sa.Connection) -> Flask:
    return create_app(settings, bind=connection)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def load_fixture(layer: str) -> list[dict[str, Any]]:
    """The fixture file as written: the independent side of comparisons with the API."""
    features: list[dict[str, Any]] = json.loads((CITY / f"{layer}.geojson").read_text())["features"]
    return features


@pytest.fixture(scope="session")
def fixture_features() -> Any:
    return load_fixture
