"""The machine's broker takes MQTT over WebSocket (the crew's handheld app) next to plain MQTT."""

from __future__ import annotations

import queue
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.settings import Settings


def test_a_websocket_client_publishes_to_a_plain_subscriber(settings: Settings) -> None:
    tag = uuid.uuid4().hex[:8]
    topic = f"fieldline/crews/ws-{tag}/position"
    broker = urlsplit(settings.mqtt_url)
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ws-test-sub-{tag}")
    subscriber.on_message = lambda _c, _u, message: received.put(message)
    subscriber.on_subscribe = lambda *_a: subscribed.put(True)
    subscriber.connect(broker.hostname or "localhost", broker.port or 1883)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()

    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"ws-test-pub-{tag}", transport="websockets"
    )
    publisher.ws_set_options(path="/mqtt")
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
