"""A private Mosquitto configured by Fieldline's own generator (the loopback listener, the TLS
and WebSocket device listeners, dynamic security), on free ports, with its own CA and state."""

from __future__ import annotations

import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fieldline import broker_security, local_services
from fieldline.broker_security import DeviceListeners
from fieldline.settings import Settings, load_settings
from tests.processes import accepts, free_port, wait_until

ADMIN = "fieldline-admin"


@dataclass
class SecuredBroker:
    folder: Path
    mqtt_port: int
    listeners: DeviceListeners
    settings: Settings
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> str:
        return str(self.listeners.ca_file)

    def start(self) -> None:
        with (self.folder / "mosquitto.out").open("ab") as out:
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.folder / "mosquitto.conf")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for port in (self.mqtt_port, self.listeners.tls_port, self.listeners.ws_port):
            wait_until(lambda port=port: accepts(port), 10, f"Mosquitto on {port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture
def secured_broker(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecuredBroker]:
    folder = tmp_path / "broker"
    folder.mkdir()
    mqtt_port = free_port()
    listeners = DeviceListeners(
        tls_port=free_port(),
        ws_port=free_port(),
        folder=folder / "security",
        state_file=folder / "dynsec.json",
    )
    password_file = folder / "admin.password"
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"pid_file {folder / 'mosquitto.pid'}\n"
        # Running as root, Mosquitto would switch to its own user, who cannot read here.
        "user root\n"
        "persistence false\n"
        f"log_dest file {folder / 'mosquitto.log'}\n"
        f"listener {mqtt_port} 127.0.0.1\n"
        "allow_anonymous true\n"
    )
    broker_security.ensure_certificates(listeners, lambda line: None)
    broker_security.ensure_state(listeners, ADMIN, password_file, lambda line: None)
    with monkeypatch.context() as patch:
        # configure_broker asks running brokers to reload; this one is not running yet.
        patch.setattr(local_services.subprocess, "run", lambda *a, **k: None)
        assert local_services.configure_broker(
            conf,
            lambda line: None,
            ws_port=listeners.ws_port,
            mqtt_port=mqtt_port,
            listeners=listeners,
        )
    broker = SecuredBroker(
        folder,
        mqtt_port,
        listeners,
        load_settings(
            database_url=settings.database_url,
            mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}",
            mqtt_tls_port=listeners.tls_port,
            mqtt_ws_port=listeners.ws_port,
            mqtt_ca_file=str(listeners.ca_file),
            mqtt_admin_password_file=str(password_file),
        ),
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Device:
    """A paho MQTT v5 client that records what the broker answered."""

    port: int
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    websockets: bool = False
    connect_reason: Any = None
    suback: list[Any] = field(default_factory=list)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    disconnected: bool = False

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-device-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv5,
            transport="websockets" if self.websockets else "tcp",
        )
        if self.websockets:
            self.client.ws_set_options(path="/mqtt")
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        if self.ca_file is not None:
            self.client.tls_set(ca_certs=self.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.suback.extend(codes)
        self.client.on_message = lambda _c, _u, message: self.messages.append(message)
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connect_reason = reason

    def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected = True

    def connect(self, timeout: float = 5.0) -> bool:
        """True once the broker accepted the login; False if it refused or never answered."""
        try:
            self.client.connect("127.0.0.1", self.port)
        except (OSError, ssl.SSLError):
            return False
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while self.connect_reason is None and not self.disconnected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return self.connect_reason is not None and not self.connect_reason.is_failure

    def subscribe(self, topic: str) -> Any:
        self.client.subscribe(topic, qos=1)
        wait_until(lambda: bool(self.suback), 5, "the SUBACK")
        return self.suback.pop()

    def publish(self, topic: str, payload: str) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
