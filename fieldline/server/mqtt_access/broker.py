"""Fieldline's side of the broker's dynamic security API (Mosquitto's
`$CONTROL/dynamic-security/v1`): logins and their rights change on the running broker, local
or remote, without a restart.

Each call connects over TLS as the admin login, sends its commands in one message, and waits
for the broker's answer; credentials change rarely (a device added, a sign-in), so a
connection per call keeps no state between them.
"""

from __future__ import annotations

import json
import queue
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from fieldline.server.errors import AppError
from fieldline.settings import Settings

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
TIMEOUT_S = 10.0
# Removing what is not there is not a failure: revoking twice, or replacing a new login.
ABSENT = ("not found",)


class BrokerAccessError(AppError):
    """The broker could not be reached or refused a command; the message says which. Nothing
    is stored then: the caller's transaction is not committed."""

    status, title = 503, "Service Unavailable"


@dataclass(frozen=True)
class BrokerAdmin:
    host: str
    port: int
    ca_file: str
    username: str
    password: str

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerAdmin:
        path = Path(settings.mqtt_admin_password_file)
        try:
            password = path.read_text().strip()
        except OSError as exc:
            raise BrokerAccessError(
                f"no broker admin password ({path}: {exc.strerror}); run `fieldline services up`"
            ) from None
        return cls(
            host=urlsplit(settings.mqtt_url).hostname or "localhost",
            port=settings.mqtt_tls_port,
            ca_file=settings.mqtt_ca_file,
            username=settings.mqtt_admin_user,
            password=password,
        )

    def send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the commands in order; BrokerAccessError names the first one refused."""
        answers: queue.Queue[Any] = queue.Queue()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fieldline-admin-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(self.username, self.password)
        try:
            client.tls_set(ca_certs=self.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerAccessError(f"broker CA {self.ca_file}: {exc}") from None

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
            if reason.is_failure:
                answers.put(BrokerAccessError(f"broker refused the admin login: {reason}"))
            else:
                c.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(c: mqtt.Client, *_args: Any) -> None:
            c.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = lambda _c, _u, message: answers.put(message.payload)
        try:
            client.connect(self.host, self.port)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerAccessError(
                f"broker {self.host}:{self.port} (TLS) did not answer: {exc}"
            ) from None
        client.loop_start()
        try:
            answer = answers.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise BrokerAccessError(
                f"no answer from the broker's dynamic security plugin at {self.host}:{self.port}"
            ) from None
        finally:
            client.disconnect()
            client.loop_stop()
        if isinstance(answer, Exception):
            raise answer
        responses: list[dict[str, Any]] = json.loads(answer).get("responses", [])
        for response in responses:
            error = response.get("error")
            if error and not (
                response.get("command", "").startswith("delete")
                and any(word in error.lower() for word in ABSENT)
            ):
                raise BrokerAccessError(f"broker refused {response.get('command')}: {error}")
        return responses
