"""A simulated crew takes a job from its inbox topic through the real Mosquitto: the offer is
sent as the server sends it while the handheld is away (its persistent session keeps it), and
the crew's statuses and fixes come back over the broker in order, converging on the site."""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from pyproj import Transformer

from fieldline.device_gateway.simulator import (
    CrewInboxes,
    CrewSpec,
    Simulator,
    WorkPace,
    connect,
    publish_realtime,
    start_time,
    utc_now,
)
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.inbox import Inbox, messages_for
from fieldline.settings import load_settings
from tests.conftest import load_fixture

pytestmark = pytest.mark.slow
SPEED = 60.0  # an hour a minute: driving, reacting and working alike
TO_METRES = Transformer.from_crs(4326, 3067, always_xy=True)


def metres(lon: float, lat: float) -> tuple[float, float]:
    x, y = TO_METRES.transform(lon, lat)
    return float(x), float(y)


class Listener:
    """Everything the crew publishes on its own topics, in the order it arrives."""

    def __init__(self, url_host: str, url_port: int, crew_id: str) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.completed = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{crew_id}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(url_host, url_port)
        self.client.loop_start()
        self.client.subscribe(
            [
                (f"fieldline/crews/{crew_id}/position", 1),
                (f"fieldline/crews/{crew_id}/tasks/+/status", 1),
            ]
        )
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        self.messages.put((message.topic, body))
        if message.topic.endswith("/status") and body["status"] == "completed":
            self.completed.set()

    def taken(self) -> list[tuple[str, dict[str, Any]]]:
        return [self.messages.get_nowait() for _ in range(self.messages.qsize())]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_crew_takes_an_offer_sent_while_it_was_away_and_drives_to_the_site() -> None:
    settings = load_settings()
    crew_id = f"SIM{uuid.uuid4().hex[:8].upper()}"
    spec = CrewSpec(crew_id, gap_every_s=1e9)
    duration_s = 1800.0
    simulation = Simulator(
        start_time(utc_now(), SPEED, duration_s), [spec], seed=12, pace=WorkPace(SPEED)
    )
    pose = simulation.crews[0].mover.pose()
    valve = next(
        f
        for f in load_fixture("valves")
        if 600 < math.dist(metres(*f["geometry"]["coordinates"]), (pose.x, pose.y)) < 1000
    )
    lon, lat = valve["geometry"]["coordinates"]
    site = metres(lon, lat)

    # The handheld has been online once (its session exists) and is away now.
    away = CrewInboxes(settings.mqtt_url, [spec], session_expiry_s=120)
    away.start()
    away.close()
    task = {
        "id": f"T-{crew_id}",
        "kind": "valve_operation",
        "priority": "P2",
        "state": "assigned",
        "title": f"Close {valve['id']}",
        "site": {"lon": lon, "lat": lat},
        "assets": [
            {"layer": "valves", "id": valve["id"], "role": "target", "lon": lon, "lat": lat}
        ],
    }
    event = TaskEvent(task["id"], crew_id, "assign", "created", "assigned", datetime.now(UTC))
    [(to, offer)] = messages_for(event, lambda: task)
    inbox = Inbox(settings.mqtt_url, 5.0)
    try:
        assert inbox.send(to, offer).delivered
    finally:
        inbox.close()

    listener = Listener("localhost", 1883, crew_id)
    back = CrewInboxes(settings.mqtt_url, [spec], session_expiry_s=120)
    publisher = connect(settings.mqtt_url, f"pub-{crew_id}")
    began = time.monotonic()
    try:
        back.start()
        publish_realtime(
            simulation,
            publisher,
            SPEED,
            duration_s,
            inboxes=back,
            stop=lambda: listener.completed.is_set(),
        )
        time.sleep(0.5)  # the last messages on their way back from the broker
        received = listener.taken()
    finally:
        back.close()
        listener.close()
        publisher.loop_stop()
        publisher.disconnect()
    assert time.monotonic() - began < 40

    statuses = [(topic, body) for topic, body in received if topic.endswith("/status")]
    assert [body["status"] for _, body in statuses] == [
        "accepted",
        "en_route",
        "on_site",
        "completed",
    ]
    assert {topic for topic, _ in statuses} == {
        f"fieldline/crews/{crew_id}/tasks/{task['id']}/status"
    }
    times = [datetime.fromisoformat(body["ts"]) for _, body in statuses]
    assert times == sorted(times)
    en_route, on_site = times[1], times[2]
    fixes = [
        (datetime.fromisoformat(body["ts"]), metres(body["lon"], body["lat"]))
        for topic, body in received
        if topic.endswith("/position")
    ]
    driving = [math.dist(xy, site) for ts, xy in fixes if en_route <= ts <= on_site]
    assert len(driving) > 10
    assert driving[0] > 400 and driving[-1] < 80  # GPS noise on the last metres
    halves = len(driving) // 2
    assert sum(driving[halves:]) / (len(driving) - halves) < sum(driving[:halves]) / halves
    at_work = [math.dist(xy, site) for ts, xy in fixes if on_site < ts <= times[3]]
    assert at_work and sorted(at_work)[len(at_work) // 2] < 40
