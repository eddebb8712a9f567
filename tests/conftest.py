"""Shared test set-up: one migrated PostGIS test database with the fixture city loaded once,
and each test inside a transaction that is rolled back, so tests never see each other's writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def settings() -> Settings:
    base = load_settings()
    # Any FIELDLINE_TEST_DATABASE_URL works: the database is created when missing, so
    # several test runs can use databases of their own side by side.
    ensure_database(base.test_database_url, report=lambda line: None)
    return load_settings(database_url=base.test_database_url)


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
        transaction.rollback()


@pytest.fixture
def session(connection: sa.Connection) -> Iterator[Session]:
    with make_sessionmaker(connection)() as session:
        yield session


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
