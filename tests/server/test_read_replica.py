"""FIELDLINE_DATABASE_READ_URL: with a hot standby named, the heavy reads that tolerate lag
(a crew's track, OGC items, map tiles) come from it, and every write still reaches the primary.

A private primary and a streaming replica of it (pg_basebackup -R) run on free ports. The
replica's replay is paused while the primary takes new rows: a read served by the primary
would see them at once, a read served by the replica only after replay resumes. The replica
is read-only, so a write sent there would fail.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
from fieldline.local_services import ensure_database
from fieldline.server import create_app
from fieldline.server.crews.services import create_crew
from fieldline.settings import load_settings
from tests.postgres_cluster import PG_BIN, Postgres
from tests.processes import wait_until

pytestmark = pytest.mark.slow

PIPES = "/ogc/collections/pipes/items"


class Pair:
    def __init__(self, primary: Postgres, replica: Postgres) -> None:
        self.primary_engine = make_engine(primary.url)
        self.replica_engine = make_engine(replica.url)

    def caught_up(self) -> bool:
        with self.primary_engine.connect() as primary:
            sent = primary.execute(sa.text("SELECT pg_current_wal_lsn()")).scalar_one()
        with self.replica_engine.connect() as replica:
            replayed = replica.execute(
                sa.text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": sent}
            ).scalar_one()
        return bool(replayed)

    def replay(self, on: bool) -> None:
        call = "pg_wal_replay_resume" if on else "pg_wal_replay_pause"
        with self.replica_engine.connect() as replica:
            replica.execute(sa.text(f"SELECT {call}()"))
            if not on:
                wait_until(
                    lambda: (
                        replica.execute(
                            sa.text("SELECT pg_get_wal_replay_pause_state()")
                        ).scalar_one()
                        == "paused"
                    ),
                    10,
                    "the replica's replay to pause",
                )

    def on_primary(self, statement: str, **params: Any) -> Any:
        with self.primary_engine.begin() as primary:
            result = primary.execute(sa.text(statement), params)
            return result.scalar() if result.returns_rows else None


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL 15 server binaries in {PG_BIN}")
    primary, replica = Postgres(), Postgres()
    try:
        primary.init()
        primary.start()
        ensure_database(primary.url, report=lambda line: None)  # postgis and the rest
        upgrade(primary.url)
        replica.init_standby_of(primary)
        replica.start()
        found = Pair(primary, replica)
        with found.replica_engine.connect() as connection:
            assert connection.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one()
        yield found
        found.primary_engine.dispose()
        found.replica_engine.dispose()
    finally:
        for cluster in (replica, primary):
            cluster.remove()


@pytest.fixture
def client(pair: Pair) -> Iterator[FlaskClient]:
    settings = load_settings(
        database_url=str(pair.primary_engine.url.render_as_string(hide_password=False)),
        database_read_url=str(pair.replica_engine.url.render_as_string(hide_password=False)),
        anonymous_role="admin",
        redis_prefix=f"fieldline-test-{uuid.uuid4().hex[:10]}",
    )
    app = create_app(settings)
    yield app.test_client()
    resources = app.extensions["fieldline"]
    resources.bind.dispose()
    resources.read_bind.dispose()


def pipe(diameter_mm: int) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[24.9401, 60.1701], [24.9412, 60.1705]]},
        "properties": {"material": "PE", "diameter_mm": diameter_mm, "pressure_zone": "PZ-9"},
    }


def tile_of(lon: float, lat: float, z: int) -> str:
    """The pipes' vector tile holding the point (Web Mercator XYZ)."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return f"/tiles/pipes/{z}/{int((lon + 180) / 360 * n)}/{int(y)}.mvt"


def item_ids(client: FlaskClient) -> set[str]:
    response = client.get(f"{PIPES}?limit=1000")
    assert response.status_code == 200, response.get_data(as_text=True)
    return {feature["id"] for feature in response.json["features"]}


def track_size(client: FlaskClient, crew_id: str, since: datetime) -> int:
    response = client.get(
        f"/api/v1/crews/{crew_id}/positions", query_string={"since": since.isoformat()}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    fixes = [f for f in response.json["features"] if f["geometry"]["type"] == "Point"]
    return len(fixes)


def add_fix(pair: Pair, crew_id: str, at: datetime) -> None:
    # As the gateway stores a fix (storage.py); the track is what the API reads.
    pair.on_primary(
        "INSERT INTO positions (crew_id, device, fix_time, lat, lon) "
        "VALUES (:crew, 'handheld:1', :at, 60.17, 24.94)",
        crew=crew_id,
        at=at,
    )


def test_writes_reach_the_primary_and_lag_tolerant_reads_come_from_the_replica(
    pair: Pair, client: FlaskClient
) -> None:
    # (a) A write through the API lands on the primary.
    created = client.post(PIPES, json=pipe(160))
    assert created.status_code == 201, created.get_data(as_text=True)
    first = created.json["id"]
    on_primary = "SELECT count(*) FROM pipes WHERE public_id = :id"
    assert pair.on_primary(on_primary, id=first) == 1

    # (b) After replication the replica serves it: OGC items and a crew's track.
    with make_sessionmaker(pair.primary_engine)() as session:
        crew_id = create_crew(session, "Replica crew", "vehicle").public_id
        session.commit()
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    add_fix(pair, crew_id, since + timedelta(minutes=1))
    wait_until(pair.caught_up, 20, "the replica to replay the primary's writes")
    assert first in item_ids(client)
    assert track_size(client, crew_id, since) == 1
    tile = client.get(tile_of(24.9405, 60.1703, 15))
    assert tile.status_code == 200 and tile.data  # the new pipe, drawn from the replica

    pair.replay(on=False)
    try:
        # (c) Writes still work with the replica frozen: nothing that writes goes there.
        second = client.post(PIPES, json=pipe(200))
        assert second.status_code == 201, second.get_data(as_text=True)
        patched = client.patch(
            f"{PIPES}/{first}",
            json={"properties": {"diameter_mm": 180}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 204, patched.get_data(as_text=True)
        diameter = "SELECT diameter_mm FROM pipes WHERE public_id = :id"
        assert pair.on_primary(diameter, id=first) == 180
        add_fix(pair, crew_id, since + timedelta(minutes=2))
        assert pair.on_primary(on_primary, id=second.json["id"]) == 1
        # The reads come from the replica: what it has not replayed yet, they do not show.
        assert second.json["id"] not in item_ids(client)
        assert track_size(client, crew_id, since) == 1
    finally:
        pair.replay(on=True)
    wait_until(pair.caught_up, 20, "the replica to replay the paused writes")
    assert {first, second.json["id"]} <= item_ids(client)
    assert track_size(client, crew_id, since) == 2
