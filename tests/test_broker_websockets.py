"""The machine's broker (after `fieldline services up`) takes MQTT over WebSocket from a
device's own login (the crew's handheld app) next to plain MQTT on its trusted loopback
listener, and refuses a WebSocket client without one."""

from __future__ import annotations

import queue
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.server.mqtt_access import acl
from fieldline.server.mqtt_access.broker import BrokerAdmin
from fieldline.settings import Settings


@pytest.fixture
def login(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """A handheld's login for a made-up crew, straight through the broker's API."""
    tag = uuid.uuid4().hex[:8]
    crew, username, password = f"ws-{tag}", f"ws-test-{tag}", uuid.uuid4().hex
    admin = BrokerAdmin.from_settings(settings)
    admin.send(acl.create_commands(username, password, acl.crew_device_grants(crew)))
    try:
        yield crew, username, password
    finally:
        admin.send(acl.delete_commands(username))


def _ws_client(client_id: str) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        transport="websockets",
        protocol=mqtt.MQTTv5,
    )
    client.ws_set_options(path="/mqtt")
    return client


def test_a_websocket_device_publishes_to_a_plain_subscriber(
    settings: Settings, login: tuple[str, str, str]
) -> None:
    crew, username, password = login
    topic = f"fieldline/crews/{crew}/position"
    broker = urlsplit(settings.mqtt_url)
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ws-test-sub-{crew}")
    subscriber.on_message = lambda _c, _u, message: received.put(message)
    subscriber.on_subscribe = lambda *_a: subscribed.put(True)
    subscriber.connect(broker.hostname or "localhost", broker.port or 1883)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()

    publisher = _ws_client(f"ws-test-pub-{crew}")
    publisher.username_pw_set(username, password)
    try:
        assert subscribed.get(timeout=5)
        publisher.connect(broker.hostname or "localhost", settings.mqtt_ws_port)
        publisher.loop_start()
        payload = b'{"ts": 1700000000, "lat": 60.17, "lon": 24.94}'
        publisher.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
        message = received.get(timeout=5)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        subscriber.loop_stop()
        subscriber.disconnect()
    assert message.topic == topic
    assert message.payload == payload


def test_a_websocket_client_without_a_login_is_refused(settings: Settings) -> None:
    answers: queue.Queue[object] = queue.Queue()
    client = _ws_client(f"ws-test-anon-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.put(reason)
    client.connect(urlsplit(settings.mqtt_url).hostname or "localhost", settings.mqtt_ws_port)
    client.loop_start()
    try:
        reason = answers.get(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert getattr(reason, "is_failure", False)


def test_over_tls_a_device_publishes_only_its_own_crews_topics(
    settings: Settings, login: tuple[str, str, str]
) -> None:
    crew, username, password = login

    def publish(topic: str) -> str:
        result = subprocess.run(
            ["mosquitto_pub", "-h", urlsplit(settings.mqtt_url).hostname or "localhost",
             "-p", str(settings.mqtt_tls_port), "--cafile", settings.mqtt_ca_file,
             "-u", username, "-P", password, "-t", topic, "-m", "{}", "-V", "5", "-q", "1", "-d"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        return result.stdout + result.stderr

    assert "RC:135" in publish(f"fieldline/crews/{crew}-other/position")  # not authorized
    own = publish(f"fieldline/crews/{crew}/position")
    assert "received PUBACK" in own and "RC:135" not in own
