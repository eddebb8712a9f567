"""The crews' handhelds on their inbox topics: one MQTT client per device, as in the field.

Each device keeps a persistent session (clean start off, with a session expiry), so the broker
holds what is sent to it while it reconnects, and subscribes to its inbox at QoS 1. paho's
network threads only queue what arrives; the simulation takes it between steps (`drain`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fieldline.device_gateway.simulator.crews import CrewSpec
from fieldline.device_gateway.simulator.runner import new_client

CLIENT_PREFIX = "fieldline-handheld-"


class CrewInboxes:
    def __init__(self, url: str, crews: Sequence[CrewSpec], session_expiry_s: int) -> None:
        self.url = url
        self.topics = {spec.crew_id: spec.inbox_topic for spec in crews}
        self.session_expiry_s = session_expiry_s
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed = {crew_id: threading.Event() for crew_id in self.topics}
        self.clients: list[mqtt.Client] = []

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect every device and wait until each is subscribed; TimeoutError if not."""
        for crew_id in self.topics:
            client, host, port = new_client(self.url, CLIENT_PREFIX + crew_id, protocol=mqtt.MQTTv5)
            client.user_data_set(crew_id)
            client.on_connect = self._on_connect
            client.on_subscribe = self._on_subscribe
            client.on_message = self._on_message
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.session_expiry_s
            client.connect(host, port, clean_start=False, properties=properties)
            client.loop_start()  # paho reconnects by itself from now on
            self.clients.append(client)
        for crew_id, done in self.subscribed.items():
            if not done.wait(timeout_s):
                raise TimeoutError(f"{crew_id} did not subscribe to its inbox in {timeout_s} s")

    def _on_connect(
        self, client: mqtt.Client, crew_id: str, _flags: Any, reason: Any, _p: Any
    ) -> None:
        # The session keeps the subscription; asking again after a reconnect costs nothing.
        if not reason.is_failure:
            client.subscribe(self.topics[crew_id], qos=1)

    def _on_subscribe(self, _c: mqtt.Client, crew_id: str, *_: Any) -> None:
        self.subscribed[crew_id].set()

    def _on_message(self, _c: mqtt.Client, crew_id: str, message: mqtt.MQTTMessage) -> None:
        self.received.put((crew_id, bytes(message.payload)))

    def drain(self) -> list[tuple[str, bytes]]:
        """What arrived since the last call, in order."""
        taken = []
        while True:
            try:
                taken.append(self.received.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            client.loop_stop()
        self.clients.clear()
