"""The outside systems a running server talks to, built once per app from settings.

Tests hand in a database connection that is rolled back after each test; everything else
builds its own engine, and a second one on FIELDLINE_DATABASE_READ_URL when that is set.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from fieldline.gis.db import make_engine, make_sessionmaker
from fieldline.redis_client import sync_client
from fieldline.server.tasks.inbox import Inbox, process_inbox
from fieldline.settings import Settings


@dataclass
class Resources:
    settings: Settings
    bind: sa.Engine | sa.Connection
    # The read replica's engine; None: every read goes to `bind`.
    read_bind: sa.Engine | None = None
    sessions: sessionmaker[Session] = field(init=False)
    read_sessions: sessionmaker[Session] | None = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = make_sessionmaker(self.bind)
        self.read_sessions = make_sessionmaker(self.read_bind) if self.read_bind else None

    @classmethod
    def from_settings(
        cls, settings: Settings, bind: sa.Engine | sa.Connection | None = None
    ) -> Resources:
        read_url = settings.database_read_url
        return cls(
            settings,
            bind if bind is not None else make_engine(settings.database_url),
            make_engine(read_url) if read_url else None,
        )

    def inbox(self) -> Inbox:
        """The process's client for the crews' inbox topics, connected on first use."""
        return process_inbox(self.settings.mqtt_url, self.settings.inbox_timeout_s)

    def check_database(self) -> None:
        for sessions in (self.sessions, self.read_sessions):
            if sessions is not None:
                with sessions() as session:
                    session.execute(sa.text("SELECT 1"))

    def check_redis(self) -> None:
        client: Any = sync_client(self.settings.redis_url, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()

    def check_broker(self) -> None:
        url = urlsplit(self.settings.mqtt_url)
        port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        # An MQTT CONNECT needs credentials once devices are authenticated; reachability of
        # the listener is what readiness asks here.
        with socket.create_connection((url.hostname or "localhost", port), timeout=2):
            pass


def resources() -> Resources:
    found: Resources = current_app.extensions["fieldline"]
    return found


def db() -> Session:
    """The request's session; closed (rolled back if not committed) when the request ends."""
    if "db_session" not in g:
        g.db_session = resources().sessions()
    session: Session = g.db_session
    return session


def replica() -> Session:
    """The request's session for reads that may lag the latest writes by a moment (a crew's
    track, telemetry, map tiles, OGC items, exports, KPIs): on FIELDLINE_DATABASE_READ_URL
    when it is set, else the same session as `db()`. Never for writes, nor for reads that must
    see what was just written (task states, assignment, sign-in): those use `db()`."""
    sessions = resources().read_sessions
    if sessions is None:
        return db()
    if "replica_session" not in g:
        g.replica_session = sessions()
    session: Session = g.replica_session
    return session


def close_db(_exc: BaseException | None = None) -> None:
    for name in ("db_session", "replica_session"):
        session = g.pop(name, None)
        if session is not None:
            session.close()
