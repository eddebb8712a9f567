"""The gateway end to end against the real Mosquitto, Redis and PostGIS: publish over MQTT
(QoS 1), then look in the tables, in Redis and through the HTTP API.

The gateway commits with connections of its own, so what it writes is not rolled back with
each test: every test uses fresh names and removes its rows afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import redis
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

from fieldline.device_gateway.worker import Gateway, client_id
from fieldline.gis.db import make_sessionmaker
from fieldline.server import create_app
from fieldline.server.crews.services import bind_device, create_crew
from fieldline.settings import Settings, load_settings

pytestmark = pytest.mark.slow


@dataclass
class Running:
    settings: Settings
    gateway: Gateway
    publisher: mqtt.Client
    redis: Any
    crew_id: str
    user_device: str  # OwnTracks "user/device" bound to the crew

    def publish(self, topic: str, payload: bytes | str) -> None:
        info = self.publisher.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.fixture
def running(settings: Settings, engine: sa.Engine) -> Iterator[Running]:
    tag = uuid.uuid4().hex[:10]
    gateway_settings = load_settings(
        database_url=settings.database_url,
        redis_prefix=f"fieldline_test_{tag}",
        gateway_share_group=f"test_{tag}",
        gateway_client_id=f"fieldline-test-{tag}",
        gateway_flush_ms=20,
        gateway_metrics_port=0,
        mqtt_session_expiry_s=60,
    )
    with make_sessionmaker(engine)() as session:
        crew = create_crew(session, f"Test crew {tag}", "vehicle")
        user_device = f"u{tag}/phone"
        bind_device(session, crew.public_id, "owntracks", user_device)
        session.commit()
        crew_id = crew.public_id
    gateway = Gateway(gateway_settings)
    gateway.start()
    assert gateway.connected.wait(10), "the gateway did not connect to the broker"
    time.sleep(0.3)  # let the SUBACK come back before publishing
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{tag}")
    publisher.connect("localhost", 1883)
    publisher.loop_start()
    client = redis.Redis.from_url(gateway_settings.redis_url, decode_responses=True)
    try:
        yield Running(gateway_settings, gateway, publisher, client, crew_id, user_device)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        gateway.stop()
        # Nothing should stay behind: rows, the persistent session's keys in Redis.
        with engine.begin() as connection:
            for statement in (
                "DELETE FROM positions WHERE crew_id = :c",
                "DELETE FROM quarantined_fixes WHERE crew_id = :c",
            ):
                connection.execute(sa.text(statement), {"c": crew_id})
            connection.execute(
                sa.text("DELETE FROM dead_letters WHERE topic LIKE :t"), {"t": f"%{tag}%"}
            )
            connection.execute(sa.text("DELETE FROM crews WHERE public_id = :c"), {"c": crew_id})
        keys = list(client.scan_iter(f"{gateway_settings.redis_prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def owntracks_location(at: datetime, lat: float = 60.1699, lon: float = 24.9384) -> str:
    # As the Android app sends it.
    return json.dumps(
        {
            "_type": "location",
            "acc": 8,
            "batt": 80,
            "lat": lat,
            "lon": lon,
            "tid": "ph",
            "tst": int(at.timestamp()),
            "vel": 18,
            "conn": "m",
        }
    )


def stored_positions(engine: sa.Engine, crew_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT device, fix_time, lat, lon, speed_mps, received_at FROM positions "
                    "WHERE crew_id = :c ORDER BY fix_time"
                ),
                {"c": crew_id},
            )
        )


def test_owntracks_location_reaches_table_redis_api_and_live_stream(
    running: Running, engine: sa.Engine, connection: sa.Connection
) -> None:
    app = create_app(running.settings, bind=connection)
    client = app.test_client()
    events: list[dict[str, Any]] = []

    def ours(event: dict[str, Any]) -> bool:
        return event["type"] == "position" and event.get("crew_id") == running.crew_id

    def listen() -> None:
        # Other traffic on the shared broker may come first (it is dead-lettered here, and
        # announced live too): read until our crew's position arrives.
        response = client.get("/api/v1/live?limit=200&heartbeat=1", buffered=False)
        for chunk in response.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if text.startswith("data: "):
                events.append(json.loads(text.removeprefix("data: ")))
                if ours(events[-1]):
                    break
        response.close()

    listener = threading.Thread(target=listen)
    listener.start()
    channel = f"{running.settings.redis_prefix}:live"
    wait_for(lambda: running.redis.pubsub_numsub(channel)[0][1] > 0)

    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    running.publish(f"owntracks/{running.user_device}", owntracks_location(at))

    rows = wait_for(lambda: stored_positions(engine, running.crew_id))
    assert [(r.device, r.fix_time, r.lat, r.lon) for r in rows] == [
        (f"owntracks:{running.user_device}", at, 60.1699, 24.9384)
    ]
    assert rows[0].speed_mps == pytest.approx(5.0)  # 18 km/h
    assert rows[0].received_at >= at  # the server's time, kept apart from the fix time

    # Redis is updated after the commit: the row can be seen a moment before.
    latest = json.loads(
        wait_for(
            lambda: running.redis.hget(
                f"{running.settings.redis_prefix}:crews:latest", running.crew_id
            )
        )
    )
    assert latest["fix_time"] == at.isoformat()
    (position,) = running.redis.geopos(
        f"{running.settings.redis_prefix}:crews:geo", running.crew_id
    )
    assert position[0] == pytest.approx(24.9384, abs=1e-5)

    listener.join(timeout=10)
    assert [event for event in events if ours(event)]

    track = client.get(f"/api/v1/crews/{running.crew_id}/positions").get_json()
    (point,) = track["features"]
    assert point["geometry"] == {"type": "Point", "coordinates": [24.9384, 60.1699]}
    crews = client.get("/api/v1/crews").get_json()["crews"]
    mine = next(c for c in crews if c["id"] == running.crew_id)
    assert mine["latest"]["fix_time"] == at.isoformat()
    assert mine["devices"] == [{"kind": "owntracks", "identifier": running.user_device}]


def test_garbage_is_dead_lettered_with_its_reason_and_the_gateway_keeps_going(
    running: Running, engine: sa.Engine, connection: sa.Connection
) -> None:
    announced: list[bytes] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, message: announced.append(message.payload)
    watcher.connect("localhost", 1883)
    watcher.subscribe("fieldline/deadletter", qos=1)
    watcher.loop_start()
    time.sleep(0.3)
    topic = f"owntracks/{running.user_device}"
    garbage = b"\x00{not json " + uuid.uuid4().hex.encode()
    running.publish(topic, garbage)
    running.publish(f"owntracks/nobody{running.user_device}", owntracks_location(datetime.now(UTC)))

    def dead_letters() -> list[Any]:
        with engine.connect() as c:
            return list(
                c.execute(
                    sa.text(
                        "SELECT topic, reason, payload FROM dead_letters WHERE topic LIKE :t "
                        "ORDER BY id"
                    ),
                    {"t": f"%{running.user_device}"},
                )
            )

    rows = wait_for(lambda: len(dead_letters()) == 2 and dead_letters())
    assert {(r.topic, r.reason) for r in rows} == {
        (topic, "bad_json"),
        (f"owntracks/nobody{running.user_device}", "unknown_device"),
    }
    assert bytes(next(r.payload for r in rows if r.reason == "bad_json")) == garbage

    # The stream is written after the commit that made the rows.
    def streamed() -> set[str]:
        stream = running.redis.xrange(f"{running.settings.redis_prefix}:deadletter")
        return {entry["reason"] for _, entry in stream}

    assert wait_for(lambda: len(streamed()) == 2 and streamed()) == {"bad_json", "unknown_device"}
    wait_for(lambda: any(json.loads(p)["topic"] == topic for p in announced))
    told = next(json.loads(p) for p in announced if json.loads(p)["topic"] == topic)
    assert told["reason"] == "bad_json" and told["payload_bytes"] == len(garbage)
    watcher.loop_stop()
    watcher.disconnect()

    app = create_app(running.settings, bind=connection)
    listed = app.test_client().get("/api/v1/deadletter?reason=bad_json&limit=50").get_json()
    assert any(d["topic"] == topic for d in listed["dead_letters"])

    # Still running: a good fix after the garbage is stored.
    running.publish(topic, owntracks_location(datetime.now(UTC)))
    wait_for(lambda: stored_positions(engine, running.crew_id))
    assert running.gateway.writer.is_alive()


def lag_observations() -> float:
    return REGISTRY.get_sample_value("fieldline_gateway_lag_seconds_count") or 0.0


def test_each_committed_batch_reports_its_lag(running: Running, engine: sa.Engine) -> None:
    before = lag_observations()
    running.publish(f"owntracks/{running.user_device}", owntracks_location(datetime.now(UTC)))
    wait_for(lambda: stored_positions(engine, running.crew_id))
    assert lag_observations() >= before + 1
    slowest = REGISTRY.get_sample_value("fieldline_gateway_lag_seconds_bucket", {"le": "60.0"})
    assert slowest == lag_observations()  # every lag observed is under a minute here


def test_a_repeated_message_is_stored_once(running: Running, engine: sa.Engine) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    payload = owntracks_location(at)
    for _ in range(3):
        running.publish(f"owntracks/{running.user_device}", payload)
    wait_for(lambda: stored_positions(engine, running.crew_id))
    time.sleep(0.5)  # room for the repeats to be written, were they to be
    assert len(stored_positions(engine, running.crew_id)) == 1
    with engine.connect() as c:
        quarantined: int = c.execute(
            sa.text("SELECT count(*) FROM quarantined_fixes WHERE crew_id = :c"),
            {"c": running.crew_id},
        ).scalar_one()
    assert quarantined == 0


def test_an_older_fix_is_stored_but_does_not_replace_the_latest(
    running: Running, engine: sa.Engine
) -> None:
    newer = datetime.now(UTC).replace(microsecond=0)
    older = newer - timedelta(minutes=2)
    topic = f"fieldline/crews/{running.crew_id}/position"
    running.publish(topic, json.dumps({"ts": newer.isoformat(), "lat": 60.17, "lon": 24.94}))
    wait_for(lambda: stored_positions(engine, running.crew_id))
    running.publish(topic, json.dumps({"ts": int(older.timestamp()), "lat": 60.16, "lon": 24.93}))
    rows = wait_for(
        lambda: (
            len(stored_positions(engine, running.crew_id)) == 2
            and stored_positions(engine, running.crew_id)
        )
    )
    assert [r.fix_time for r in rows] == [older, newer]
    # Redis is updated after the commit: the row can be seen a moment before.
    latest = json.loads(
        wait_for(
            lambda: running.redis.hget(
                f"{running.settings.redis_prefix}:crews:latest", running.crew_id
            )
        )
    )
    assert latest["fix_time"] == newer.isoformat()


def test_a_rejected_fix_is_quarantined_with_the_filter_name(
    running: Running, engine: sa.Engine
) -> None:
    topic = f"fieldline/crews/{running.crew_id}/position"
    at = datetime.now(UTC).replace(microsecond=0)
    running.publish(topic, json.dumps({"ts": at.isoformat(), "lat": 0, "lon": 0}))

    def quarantined() -> list[Any]:
        with engine.connect() as c:
            return list(
                c.execute(
                    sa.text("SELECT reason, fix_time FROM quarantined_fixes WHERE crew_id = :c"),
                    {"c": running.crew_id},
                )
            )

    assert [(r.reason, r.fix_time) for r in wait_for(quarantined)] == [("zero", at)]
    assert stored_positions(engine, running.crew_id) == []


def test_scada_readings_are_stored_and_read_back(
    running: Running, engine: sa.Engine, connection: sa.Connection
) -> None:
    metric = f"test_{running.crew_id.replace('-', '').lower()}_{uuid.uuid4().hex[:6]}_kpa"
    at = datetime.now(UTC).replace(microsecond=0)
    running.publish(
        "fieldline/scada/S-000001", json.dumps({"ts": at.isoformat(), "metrics": {metric: 401.5}})
    )
    try:

        def stored() -> list[Any]:
            with engine.connect() as c:
                return list(
                    c.execute(
                        sa.text("SELECT ts, value FROM telemetry WHERE metric = :m"), {"m": metric}
                    )
                )

        assert [(r.ts, r.value) for r in wait_for(stored)] == [(at, 401.5)]
        app = create_app(running.settings, bind=connection)
        since = (at - timedelta(seconds=1)).isoformat()
        body = (
            app.test_client()
            .get(
                "/api/v1/stations/S-000001/telemetry",
                query_string={"metric": metric, "since": since},
            )
            .get_json()
        )
        assert body["readings"] == [{"metric": metric, "ts": at.isoformat(), "value": 401.5}]
    finally:
        with engine.begin() as c:
            c.execute(sa.text("DELETE FROM telemetry WHERE metric = :m"), {"m": metric})


ANOTHER_PROCESS_ID = (
    "from fieldline.device_gateway.worker import client_id;"
    "from fieldline.settings import load_settings;"
    "print(client_id(load_settings()))"
)


def test_a_worker_keeps_its_client_id_across_restarts(settings: Settings) -> None:
    """The broker hands a stopped worker's share of the shared subscription only to the same
    client id: a default that changed on every start would strand those messages."""
    here = client_id(settings.model_copy(update={"gateway_client_id": ""}))
    elsewhere = subprocess.run(
        [sys.executable, "-c", ANOTHER_PROCESS_ID],
        env=os.environ | {"FIELDLINE_GATEWAY_CLIENT_ID": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert here == elsewhere and here.startswith("fieldline-gw-")
    assert client_id(settings.model_copy(update={"gateway_client_id": "gw-2"})) == "gw-2"
