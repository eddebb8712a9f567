"""The gateway stores every QoS 1 message exactly once across failures: the gateway killed
with SIGKILL, the broker restarted, the database down for a while.

Each test runs `fieldline gateway` as a process of its own against a private Mosquitto (so that
thousands of test messages never reach other subscribers of the machine's broker; both in
workers.py), publishes a stream of own-JSON fixes for a fresh crew, breaks something
mid-stream, and counts the rows.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
from fieldline.local_services import ensure_database
from fieldline.server.crews.services import create_crew
from fieldline.settings import Settings
from tests.device_gateway.workers import Broker, GatewayProcess, running
from tests.postgres_cluster import PG_BIN, Postgres
from tests.processes import wait_until

pytestmark = pytest.mark.slow

FIXES = 20_000
SETTLE_S = 120.0  # the fixes left after a fault, on a busy two-core machine


@dataclass
class Crew:
    engine: sa.Engine
    crew_id: str

    def counts(self) -> tuple[int, int, int, int]:
        """Rows, distinct fix times, quarantined fixes and dead letters of the crew."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM positions WHERE crew_id = :c),"
                    " (SELECT count(DISTINCT fix_time) FROM positions WHERE crew_id = :c),"
                    " (SELECT count(*) FROM quarantined_fixes WHERE crew_id = :c),"
                    " (SELECT count(*) FROM dead_letters WHERE topic LIKE '%/' || :c || '/%')"
                ),
                {"c": self.crew_id},
            ).one()
        rows, distinct, quarantined, dead = (int(value) for value in row)
        return rows, distinct, quarantined, dead

    def stored(self) -> int:
        return self.counts()[0]


def new_crew(engine: sa.Engine) -> Crew:
    with make_sessionmaker(engine)() as session:
        crew = create_crew(session, f"Fault test crew {uuid.uuid4().hex[:8]}", "vehicle")
        session.commit()
        return Crew(engine, crew.public_id)


def remove_crew(crew: Crew) -> None:
    with crew.engine.begin() as connection:
        for statement in (
            "DELETE FROM positions WHERE crew_id = :c",
            "DELETE FROM quarantined_fixes WHERE crew_id = :c",
            "DELETE FROM dead_letters WHERE topic LIKE '%/' || :c || '/%'",
            "DELETE FROM crews WHERE public_id = :c",
        ):
            connection.execute(sa.text(statement), {"c": crew.crew_id})


@pytest.fixture
def gateway_env(settings: Settings, broker: Broker, tmp_path: Path) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    env = {
        **os.environ,
        "FIELDLINE_DATABASE_URL": settings.database_url,
        "FIELDLINE_REDIS_URL": settings.redis_url,
        "FIELDLINE_MQTT_URL": broker.url,
        "FIELDLINE_REDIS_PREFIX": f"fieldline_test_{tag}",
        "FIELDLINE_GATEWAY_SHARE_GROUP": f"test_{tag}",
        # Fixed: the second run resumes the first one's persistent session.
        "FIELDLINE_GATEWAY_CLIENT_ID": f"fieldline-fault-{tag}",
        "FIELDLINE_MQTT_SESSION_EXPIRY_S": "600",
        "FIELDLINE_GATEWAY_METRICS_PORT": "0",
        "FIELDLINE_GATEWAY_SPARKPLUG": "false",
        # One crew stands for a whole fleet's 20,000 messages: above any device's rate.
        "FIELDLINE_RATE_LIMIT_DEVICE": "1000000",
    }
    yield env
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(f"{env['FIELDLINE_REDIS_PREFIX']}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def gateway(gateway_env: dict[str, str], tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(gateway_env, tmp_path)
    try:
        yield process
    finally:
        process.stop()
        print(process.log_text())  # shown by pytest when the test fails


# -- publishing -------------------------------------------------------------------------------


class Publisher:
    """QoS 1 with a persistent session: what the broker has not acknowledged is sent again
    after a reconnect."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-publisher-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.start: datetime | None = None  # of the stream

    def publish(self, crew_id: str, count: int, first: int = 0) -> None:
        """Fixes `first` to `first + count` of a stream of FIXES: one fix a second, ending a
        minute ago, so that every fix passes the GPS filters."""
        if self.start is None:
            self.start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=FIXES + 60)
        start = self.start
        topic = f"fieldline/crews/{crew_id}/position"
        for i in range(first, first + count):
            at = start + timedelta(seconds=i)
            payload = json.dumps({"ts": at.isoformat(), "lat": 60.17, "lon": 24.94})
            self.infos.append(self.client.publish(topic, payload, qos=1))

    def acknowledged(self) -> int:
        return sum(info.is_published() for info in self.infos)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    client = Publisher(broker)
    try:
        yield client
    finally:
        client.close()


def settle(crew: Crew, expected: int, timeout: float) -> tuple[int, int, int, int]:
    """Wait for the expected count, then a little longer for anything extra to show."""
    wait_until(lambda: crew.stored() >= expected, timeout, f"{expected} rows")
    time.sleep(1.0)
    return crew.counts()


# -- the faults -------------------------------------------------------------------------------


@pytest.mark.timeout(200)
def test_a_killed_gateway_loses_nothing_and_stores_nothing_twice(
    gateway: GatewayProcess, publisher: Publisher, engine: sa.Engine
) -> None:
    crew = new_crew(engine)
    try:
        gateway.start()
        started = time.monotonic()
        publisher.publish(crew.crew_id, FIXES)
        wait_until(lambda: crew.stored() >= FIXES // 4, 60, "a quarter of the fixes")
        receiving = gateway.receiver_pid()
        gateway.kill()
        killed_at = crew.stored()
        assert killed_at < FIXES, "the stream ended before the kill"
        # Orphaned, the receiving process exits without acknowledging anything more.
        wait_until(lambda: not running(receiving), 10, "the receiving process to exit")
        gateway.start()
        counts = settle(crew, FIXES, SETTLE_S)
        print(f"{FIXES} fixes in {time.monotonic() - started:.1f} s; killed at {killed_at}")
        assert counts == (FIXES, FIXES, 0, 0)
        wait_until(lambda: publisher.acknowledged() == FIXES, 10, "the broker's PUBACKs")
    finally:
        gateway.stop()
        remove_crew(crew)


@pytest.mark.timeout(200)
def test_a_killed_receiving_process_stops_the_worker_and_loses_nothing(
    gateway: GatewayProcess, publisher: Publisher, engine: sa.Engine
) -> None:
    crew = new_crew(engine)
    try:
        gateway.start()
        publisher.publish(crew.crew_id, FIXES)
        wait_until(lambda: crew.stored() >= FIXES // 4, 60, "a quarter of the fixes")
        os.kill(gateway.receiver_pid(), signal.SIGKILL)
        killed_at = crew.stored()
        assert killed_at < FIXES, "the stream ended before the kill"
        # Nothing can be acknowledged any more: the worker stops and says so by its exit
        # status, for whatever runs it to start it again.
        assert gateway.process is not None
        assert gateway.process.wait(timeout=30) == 1
        assert "the receiving process ended" in gateway.log_text()
        gateway.start()
        assert settle(crew, FIXES, SETTLE_S) == (FIXES, FIXES, 0, 0)
        wait_until(lambda: publisher.acknowledged() == FIXES, 10, "the broker's PUBACKs")
    finally:
        gateway.stop()
        remove_crew(crew)


@pytest.mark.timeout(200)
def test_a_gateway_stopped_mid_stream_flushes_and_the_next_run_stores_the_rest_once(
    gateway: GatewayProcess, publisher: Publisher, engine: sa.Engine
) -> None:
    crew = new_crew(engine)
    try:
        gateway.start()
        publisher.publish(crew.crew_id, FIXES)
        wait_until(lambda: crew.stored() >= FIXES // 4, 60, "a quarter of the fixes")
        assert gateway.process is not None
        gateway.process.terminate()
        assert gateway.process.wait(timeout=30) == 0
        stopped_at = crew.stored()
        assert stopped_at < FIXES, "the stream ended before the stop"
        # What it handed over was committed before it stopped (no batch was left unwritten).
        assert "unwritten" not in gateway.log_text()
        gateway.start()
        assert settle(crew, FIXES, SETTLE_S) == (FIXES, FIXES, 0, 0)
        wait_until(lambda: publisher.acknowledged() == FIXES, 10, "the broker's PUBACKs")
    finally:
        gateway.stop()
        remove_crew(crew)


@pytest.mark.timeout(200)
def test_a_broker_restart_loses_nothing_and_stores_nothing_twice(
    gateway: GatewayProcess, broker: Broker, publisher: Publisher, engine: sa.Engine
) -> None:
    crew = new_crew(engine)
    try:
        gateway.start()
        publisher.publish(crew.crew_id, FIXES // 4)
        wait_until(lambda: crew.stored() >= FIXES // 4, 60, "a quarter of the fixes")
        # Every fix accepted by the broker, most still queued in the gateway's session when it
        # stops: the worker is paused meanwhile, since it keeps up with this publisher.
        # (Mosquitto 2.0 does not restore `$share` subscriptions from its persistence file:
        # what is published after a restart and before the worker subscribes again reaches
        # nobody, a window of the broker's that a publisher still sending would hit.)
        gateway.pause()
        publisher.publish(crew.crew_id, FIXES - FIXES // 4, first=FIXES // 4)
        wait_until(lambda: publisher.acknowledged() == FIXES, 60, "the broker's PUBACKs")
        broker.stop()
        gateway.resume()  # what it holds is committed; its acknowledgements reach no broker
        time.sleep(1.0)
        assert crew.stored() < FIXES, "the stream ended before the broker stopped"
        broker.start()
        assert settle(crew, FIXES, SETTLE_S) == (FIXES, FIXES, 0, 0)
        assert gateway.alive()
    finally:
        gateway.stop()
        remove_crew(crew)


# -- a private PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL 15 server binaries in {PG_BIN}")
    cluster = Postgres()
    try:
        cluster.init()
        cluster.start()
        ensure_database(cluster.url, report=lambda line: None)
        upgrade(cluster.url)
        yield cluster
    finally:
        if cluster.log.exists():
            print(f"--- postgres.log\n{cluster.log.read_text(errors='replace')}")
        cluster.remove()


@pytest.mark.timeout(200)
def test_the_database_down_for_ten_seconds_loses_nothing_and_stores_nothing_twice(
    gateway: GatewayProcess, publisher: Publisher, postgres: Postgres
) -> None:
    engine = make_engine(postgres.url)
    crew = new_crew(engine)
    try:
        gateway.env["FIELDLINE_DATABASE_URL"] = postgres.url
        gateway.start()
        publisher.publish(crew.crew_id, FIXES)
        wait_until(lambda: crew.stored() >= FIXES // 4, 60, "a quarter of the fixes")
        engine.dispose()
        postgres.stop()
        time.sleep(10)
        assert gateway.alive()
        postgres.start()
        assert settle(crew, FIXES, SETTLE_S) == (FIXES, FIXES, 0, 0)
        assert gateway.alive()
        assert "database unavailable" in gateway.log_text()
    finally:
        gateway.stop()
        engine.dispose()
