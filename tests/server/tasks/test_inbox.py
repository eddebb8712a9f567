"""The crews' inbox end to end with the real Mosquitto and Redis: a handheld subscribed to its
inbox topic gets the task when a dispatcher assigns it through the API, the old crew hears of a
transfer, the new one of a cancellation; the live stream carries every change. With the broker
away the change still commits and the failed delivery is reported."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.server import create_app
from fieldline.server.crews.models import Crew
from fieldline.server.tasks.inbox import Inbox, inbox_topic
from fieldline.settings import Settings, load_settings
from tests.server.tasks.conftest import repair_on

pytestmark = pytest.mark.slow


class Handheld:
    """A crew's device: subscribed to its inbox at QoS 1, keeping what comes for `tag`."""

    def __init__(self, crew_id: str, tag: str) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.subscribed = threading.Event()
        self.tag = tag
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"handheld-{tag}-{crew_id}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("localhost", 1883)
        self.client.subscribe(inbox_topic(crew_id), qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(5), "no SUBACK"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        # Crew ids repeat in other test databases on the same broker: keep ours only.
        if self.tag in json.dumps(body):
            self.received.put(body | {"_qos": message.qos})

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def inbox_app(settings: Settings, connection: sa.Connection) -> tuple[Flask, str]:
    prefix = f"fieldline_test_tasks_{uuid.uuid4().hex[:8]}"
    own = load_settings(database_url=settings.database_url, redis_prefix=prefix)
    return create_app(own, bind=connection), prefix


@pytest.fixture
def handhelds(crews: list[Crew]) -> Iterator[tuple[str, list[Handheld]]]:
    tag = uuid.uuid4().hex[:10]
    devices = [Handheld(crew.public_id, tag) for crew in crews]
    yield tag, devices
    for device in devices:
        device.close()


def test_assignment_reaches_the_crews_inbox_and_the_live_stream(
    inbox_app: tuple[Flask, str],
    crews: list[Crew],
    handhelds: tuple[str, list[Handheld]],
    city: dict[str, Any],
) -> None:
    app, prefix = inbox_app
    api = app.test_client()
    tag, (north, south) = handhelds
    live = redis.Redis.from_url("redis://localhost:6379/0", decode_responses=True)
    pubsub = live.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{prefix}:live")

    pipe = city["pipes"][50]["id"]
    body = repair_on(pipe, title=f"Burst main {tag}", description="Water on the street")
    task = api.post("/api/v1/tasks", json=body).get_json()
    moved = api.post(
        f"/api/v1/tasks/{task['id']}/transitions",
        json={"action": "assign", "crew": crews[0].public_id, "note": "bring the pump"},
    ).get_json()
    assert moved["inbox"] == [
        {"crew_id": crews[0].public_id, "kind": "task.assigned", "delivered": True, "error": None}
    ]

    message = north.next()
    assert message["_qos"] == 1
    assert (message["kind"], message["task_id"], message["action"]) == (
        "task.assigned",
        task["id"],
        "assign",
    )
    offered = message["task"]
    assert offered["id"] == task["id"] and offered["title"] == f"Burst main {tag}"
    assert (offered["kind"], offered["priority"], offered["state"]) == ("repair", "P1", "assigned")
    assert offered["site"] == task["site"]
    assert offered["assets"] == task["assets"]
    assert offered["promised_arrival_at"] == task["promised_arrival_at"]
    assert offered["offer_expires_at"] == moved["task"]["offer_expires_at"]
    assert offered["caller"] == {"name": "Aino Virtanen", "phone": "+358 40 123 4567"}
    assert [n["note"] for n in offered["notes"]] == ["bring the pump"]
    assert message["message_id"] and datetime.fromisoformat(message["sent_at"])

    api.post(f"/api/v1/tasks/{task['id']}/transfer", json={"crew": crews[1].public_id, "note": tag})
    transferred = north.next()
    assert (transferred["kind"], transferred["to_crew"]) == ("task.transferred", crews[1].public_id)
    assert south.next()["kind"] == "task.assigned"
    api.patch(f"/api/v1/tasks/{task['id']}", json={"priority": "P2"})
    changed = south.next()
    assert changed["kind"] == "task.changed" and changed["task"]["priority"] == "P2"
    api.post(f"/api/v1/tasks/{task['id']}/cancel", json={"note": f"duplicate of another {tag}"})
    assert south.next()["kind"] == "task.cancelled"
    with pytest.raises(queue.Empty):
        north.next(timeout=0.5)  # nothing more for the crew it left

    seen = []
    deadline = time.monotonic() + 5
    while len(seen) < 5 and time.monotonic() < deadline:
        event = pubsub.get_message(timeout=0.5)
        if event is not None:
            seen.append(json.loads(event["data"]))
    extra = pubsub.get_message(timeout=0.3)
    pubsub.close()
    live.close()
    assert extra is None
    assert [(e["type"], e["task_id"], e["action"]) for e in seen] == [
        ("task", task["id"], action)
        for action in ("create", "assign", "transfer", "update", "cancel")
    ]
    assert seen[2]["previous_crew_id"] == crews[0].public_id


def test_a_broker_away_is_reported_and_the_change_stays(
    settings: Settings, connection: sa.Connection, crews: list[Crew], city: dict[str, Any]
) -> None:
    # Nothing listens on port 9 (discard) here.
    away = load_settings(
        database_url=settings.database_url,
        mqtt_url="mqtt://localhost:9",
        inbox_timeout_s=1,
        redis_prefix=f"fieldline_test_tasks_{uuid.uuid4().hex[:8]}",
    )
    api = create_app(away, bind=connection).test_client()
    task = api.post("/api/v1/tasks", json=repair_on(city["pipes"][51]["id"])).get_json()
    started = time.monotonic()
    response = api.post(
        f"/api/v1/tasks/{task['id']}/transitions",
        json={"action": "assign", "crew": crews[0].public_id},
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 200
    (delivery,) = response.get_json()["inbox"]
    assert delivery["delivered"] is False and delivery["error"]
    shown = api.get(f"/api/v1/tasks/{task['id']}").get_json()
    assert (shown["state"], shown["crew"]) == ("assigned", crews[0].public_id)


def test_an_inbox_waits_for_the_puback(crews: list[Crew]) -> None:
    tag = uuid.uuid4().hex[:10]
    device = Handheld(crews[0].public_id, tag)
    inbox = Inbox("mqtt://localhost:1883", 5, client_id=f"fieldline-inbox-test-{tag}")
    try:
        delivery = inbox.send(crews[0].public_id, {"kind": "task.changed", "tag": tag})
        assert delivery.delivered and delivery.kind == "task.changed"
        assert device.next()["tag"] == tag
    finally:
        inbox.close()
        device.close()
