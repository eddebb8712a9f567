"""Crews move their tasks over MQTT: status reports published to a running gateway (the real
Mosquitto, Redis and PostGIS), out of order and repeated, take the task to completed with each
step recorded once; a report about another crew's task lands in the dead letter with its reason.

The gateway commits with connections of its own, so every test uses fresh crews and tasks and
removes them afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import redis
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.device_gateway.worker import Gateway
from fieldline.gis.db import make_sessionmaker
from fieldline.server.crews.services import create_crew
from fieldline.server.tasks import events, services
from fieldline.settings import Settings, load_settings
from tests.conftest import load_fixture
from tests.device_gateway.test_gateway import wait_for

pytestmark = pytest.mark.slow


@dataclass
class Scene:
    settings: Settings
    gateway: Gateway
    publisher: mqtt.Client
    redis: Any
    crews: list[str]  # public ids
    tasks: list[str]  # the first with crews[0], the second with crews[1]

    def report(self, crew: str, task: str, status: str, ts: datetime, **extra: Any) -> Any:
        body = {"status": status, "ts": ts.isoformat(), **extra}
        topic = f"fieldline/crews/{crew}/tasks/{task}/status"
        return self.publisher.publish(topic, json.dumps(body), qos=1)


@pytest.fixture
def scene(settings: Settings, engine: sa.Engine) -> Iterator[Scene]:
    tag = uuid.uuid4().hex[:10]
    gateway_settings = load_settings(
        database_url=settings.database_url,
        redis_prefix=f"fieldline_test_tasks_{tag}",
        gateway_share_group=f"test_{tag}",
        gateway_client_id=f"fieldline-test-tasks-{tag}",
        # Long enough that a burst of reports is one batch, so the order they are applied in
        # is the batch's (by report time), not the order they happened to arrive in.
        gateway_flush_ms=1000,
        gateway_metrics_port=0,
        mqtt_session_expiry_s=60,
    )
    pipes = load_fixture("pipes")
    with make_sessionmaker(engine)() as session:
        crews = [create_crew(session, f"Handover {name} {tag}") for name in ("A", "B")]
        tasks = []
        for i, crew in enumerate(crews):
            body = {
                "kind": "repair",
                "priority": "P2",
                "source": "plan",
                "assets": [{"layer": "pipes", "id": pipes[60 + i]["id"]}],
            }
            task = services.create_task(session, body, "test", datetime.now(UTC))
            services.transition(
                session,
                task,
                "assign",
                actor="test",
                actor_kind="dispatcher",
                at=datetime.now(UTC) - timedelta(minutes=10),
                crew=crew,
            )
            tasks.append(task.public_id)
        session.commit()
        events.take(session)
        crew_ids = [crew.public_id for crew in crews]
    gateway = Gateway(gateway_settings)
    gateway.start()
    assert gateway.connected.wait(10), "the gateway did not connect to the broker"
    time.sleep(0.3)  # let the SUBACK come back before publishing
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-tasks-{tag}")
    publisher.connect("localhost", 1883)
    publisher.loop_start()
    client = redis.Redis.from_url(gateway_settings.redis_url, decode_responses=True)
    try:
        yield Scene(gateway_settings, gateway, publisher, client, crew_ids, tasks)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        gateway.stop()
        with engine.begin() as connection:
            for crew in crew_ids:
                connection.execute(
                    sa.text("DELETE FROM task_status_events WHERE crew_id = :c"), {"c": crew}
                )
                connection.execute(
                    sa.text("DELETE FROM dead_letters WHERE topic LIKE :t"),
                    {"t": f"fieldline/crews/{crew}/%"},
                )
            connection.execute(sa.text("DELETE FROM tasks WHERE public_id = ANY(:t)"), {"t": tasks})
            connection.execute(
                sa.text("DELETE FROM crews WHERE public_id = ANY(:c)"), {"c": crew_ids}
            )
        keys = list(client.scan_iter(f"{gateway_settings.redis_prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def _task(engine: sa.Engine, public_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT id, state, arrived_at, completed_at FROM tasks WHERE public_id = :t"),
            {"t": public_id},
        ).one()


def _steps(engine: sa.Engine, public_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT s.action, s.at, s.actor, s.actor_kind, s.note, "
                    "ST_X(s.position) AS lon, ST_Y(s.position) AS lat "
                    "FROM task_transitions s JOIN tasks t ON t.id = s.task_id "
                    "WHERE t.public_id = :t ORDER BY s.id"
                ),
                {"t": public_id},
            )
        )


def _outcomes(engine: sa.Engine, crew: str) -> dict[tuple[str, str, datetime], str | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT task_id, status, ts, outcome FROM task_status_events WHERE crew_id = :c"
            ),
            {"c": crew},
        )
        return {(r.task_id, r.status, r.ts): r.outcome for r in rows}


def test_reports_out_of_order_and_repeated_complete_the_task_once(
    scene: Scene, engine: sa.Engine
) -> None:
    crew, task = scene.crews[0], scene.tasks[0]
    pubsub = scene.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{scene.settings.redis_prefix}:live")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    t = [start + timedelta(minutes=m) for m in range(5)]
    burst = [
        ("completed", t[4], {"note": "clamp fitted", "lat": 60.171, "lon": 24.941}),
        ("on_site", t[3], {"lat": 60.17, "lon": 24.94}),
        ("accepted", t[1], {}),
        ("completed", t[4], {"note": "clamp fitted", "lat": 60.171, "lon": 24.941}),
        ("en_route", t[2], {}),
        ("on_site", t[3], {"lat": 60.17, "lon": 24.94}),
    ]
    sent = [scene.report(crew, task, status, ts, **extra) for status, ts, extra in burst]
    for info in sent:
        info.wait_for_publish(timeout=5)

    wait_for(lambda: _task(engine, task).state == "completed", timeout=15)
    steps = _steps(engine, task)
    assert [(s.action, s.at) for s in steps] == [
        ("assign", steps[0].at),
        ("accept", t[1]),
        ("start", t[2]),
        ("arrive", t[3]),
        ("complete", t[4]),
    ]
    assert all((s.actor, s.actor_kind) == (crew, "crew") for s in steps[1:])
    assert (steps[3].lon, steps[3].lat) == pytest.approx((24.94, 60.17))
    assert steps[4].note == "clamp fitted"
    row = _task(engine, task)
    assert (row.arrived_at, row.completed_at) == (t[3], t[4])
    outcomes = _outcomes(engine, crew)
    assert outcomes == {
        (task, "accepted", t[1]): "applied",
        (task, "en_route", t[2]): "applied",
        (task, "on_site", t[3]): "applied",
        (task, "completed", t[4]): "applied",
    }

    # A late report of a step already taken, and a redelivery: nothing changes.
    scene.report(crew, task, "on_site", t[3] + timedelta(seconds=30)).wait_for_publish(5)
    scene.report(crew, task, "completed", t[4], note="clamp fitted").wait_for_publish(5)
    wait_for(lambda: len(_outcomes(engine, crew)) == 5 and all(_outcomes(engine, crew).values()))
    assert _outcomes(engine, crew)[(task, "on_site", t[3] + timedelta(seconds=30))] == "no_change"
    time.sleep(1.5)  # a batch's worth: the redelivery would have been handed over by now
    assert len(_steps(engine, task)) == 5

    live = []
    deadline = time.monotonic() + 3
    while len(live) < 4 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message is not None:
            event = json.loads(message["data"])
            if event["type"] == "task" and event["task_id"] == task:
                live.append(event["action"])
    pubsub.close()
    assert live == ["accept", "start", "arrive", "complete"]


def test_a_report_on_another_crews_task_is_dead_lettered_with_its_reason(
    scene: Scene, engine: sa.Engine
) -> None:
    crew, others = scene.crews[0], scene.tasks[1]
    announced: list[dict[str, Any]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, m: announced.append(json.loads(m.payload))
    watcher.connect("localhost", 1883)
    watcher.subscribe("fieldline/deadletter", qos=1)
    watcher.loop_start()
    time.sleep(0.3)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    topic = f"fieldline/crews/{crew}/tasks/{others}/status"
    scene.report(crew, others, "accepted", at).wait_for_publish(5)
    scene.report(crew, "T-999999", "accepted", at).wait_for_publish(5)

    def dead_letters() -> list[Any]:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sa.text(
                        "SELECT topic, reason, detail, payload FROM dead_letters "
                        "WHERE topic LIKE :t ORDER BY id"
                    ),
                    {"t": f"fieldline/crews/{crew}/%"},
                )
            )

    rows = wait_for(lambda: len(dead_letters()) == 2 and dead_letters(), timeout=15)
    reasons = {r.topic: (r.reason, r.detail) for r in rows}
    assert reasons[topic][0] == "task_not_yours" and scene.crews[1] in reasons[topic][1]
    assert reasons[f"fieldline/crews/{crew}/tasks/T-999999/status"][0] == "unknown_task"
    payload = json.loads(bytes(next(r.payload for r in rows if r.topic == topic)))
    assert payload == {"status": "accepted", "ts": at.isoformat()}
    assert _outcomes(engine, crew)[(others, "accepted", at)] == "task_not_yours"
    # The other crew's task did not move.
    assert _task(engine, others).state == "assigned"
    assert [s.action for s in _steps(engine, others)] == ["assign"]

    stream = scene.redis.xrange(f"{scene.settings.redis_prefix}:deadletter")
    assert {entry["reason"] for _, entry in stream} >= {"task_not_yours", "unknown_task"}
    wait_for(lambda: any(a.get("topic") == topic for a in announced))
    watcher.loop_stop()
    watcher.disconnect()
