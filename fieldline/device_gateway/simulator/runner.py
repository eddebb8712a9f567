"""Publish a simulation to the broker at wall-clock pace (times a speed-up factor)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from fieldline.device_gateway.simulator.simulator import Simulator

TICK_S = 0.2  # wall-clock seconds between steps: fine enough for 1 s fixes at 5x speed-up


def start_time(now: datetime, speed: float, duration_s: float | None) -> datetime:
    """Where simulated time starts. Faster than real time, a run of known length starts in
    the past so that it ends at the wall-clock time it finishes: no fix is ever stamped in
    the future, which a gateway rightly rejects."""
    if speed <= 1 or duration_s is None:
        return now
    return now - timedelta(seconds=duration_s - duration_s / speed)


def connect(url: str, client_id: str) -> mqtt.Client:
    parts = urlsplit(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    if parts.scheme == "mqtts":
        client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect(
        parts.hostname or "localhost", parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    )
    client.loop_start()
    return client


def publish_realtime(
    simulator: Simulator,
    client: mqtt.Client,
    speed: float = 1.0,
    duration_s: float | None = None,
    on_publish: Callable[[str, bytes], None] | None = None,
) -> int:
    """Step the simulator as wall-clock time passes and publish at QoS 1; returns the count.
    Stops after `duration_s` simulated seconds, or never."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    sent = 0
    simulated = 0.0
    began = time.monotonic()
    pending: list[mqtt.MQTTMessageInfo] = []
    while duration_s is None or simulated < duration_s:
        time.sleep(TICK_S)
        target = (time.monotonic() - began) * speed
        if duration_s is not None:
            target = min(target, duration_s)
        for publication in simulator.step(target - simulated):
            payload = publication.payload_bytes()
            pending.append(client.publish(publication.topic, payload, qos=publication.qos))
            if on_publish:
                on_publish(publication.topic, payload)
            sent += 1
        simulated = target
        pending = [info for info in pending if not info.is_published()]
    for info in pending:
        info.wait_for_publish(timeout=10)
    return sent


def utc_now() -> datetime:
    return datetime.now(UTC)
