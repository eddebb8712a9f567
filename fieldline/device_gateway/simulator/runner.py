"""Publish a simulation to the broker at wall-clock pace (times a speed-up factor), handing
the crews what arrives on their inbox topics."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from fieldline.device_gateway.simulator.simulator import Simulator

if TYPE_CHECKING:
    from fieldline.device_gateway.simulator.inbox import CrewInboxes

TICK_S = 0.2  # wall-clock seconds between steps: fine enough for 1 s fixes at 5x speed-up


def start_time(now: datetime, speed: float, duration_s: float | None) -> datetime:
    """Where simulated time starts. Faster than real time, a run of known length starts in
    the past so that it ends at the wall-clock time it finishes: no fix is ever stamped in
    the future, which a gateway rightly rejects."""
    if speed <= 1 or duration_s is None:
        return now
    return now - timedelta(seconds=duration_s - duration_s / speed)


def new_client(
    url: str, client_id: str, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311
) -> tuple[mqtt.Client, str, int]:
    """A client with the URL's credentials and TLS, not yet connected; and where to connect."""
    parts = urlsplit(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    if parts.scheme == "mqtts":
        client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    return client, parts.hostname or "localhost", port


def connect(url: str, client_id: str) -> mqtt.Client:
    client, host, port = new_client(url, client_id)
    client.connect(host, port)
    client.loop_start()
    return client


def publish_realtime(
    simulator: Simulator,
    client: mqtt.Client,
    speed: float = 1.0,
    duration_s: float | None = None,
    on_publish: Callable[[str, bytes], None] | None = None,
    inboxes: CrewInboxes | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Step the simulator as wall-clock time passes and publish at QoS 1; returns the count.
    Stops after `duration_s` simulated seconds, when `stop()` says so, or never."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    sent = 0
    simulated = 0.0
    began = time.monotonic()
    pending: list[mqtt.MQTTMessageInfo] = []
    while (duration_s is None or simulated < duration_s) and not (stop and stop()):
        time.sleep(TICK_S)
        for crew_id, payload in inboxes.drain() if inboxes else ():
            simulator.deliver(crew_id, payload)
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
