"""The crews' inbox: JSON messages to `fieldline/crews/{crew_id}/inbox` at QoS 1.

One connected MQTT client per process (`process_inbox`), made on first use. A send waits for
the broker's PUBACK up to FIELDLINE_INBOX_TIMEOUT_S; once the broker holds the message it
delivers it to the handheld's persistent session, even if the handheld is offline now. A send
that fails is logged and reported to the caller; the task's change is committed already and
stays, and an offer that never reached the crew times out and is offered again.

The messages (the README describes them for handheld writers):
- `task.assigned`: the task is offered to this crew (also after a transfer to it);
- `task.changed`: a task of this crew was edited (title, description, priority, caller);
- `task.reopened`: the crew's completed work was rejected; `reasons` says why;
- `task.transferred`: the task was taken from this crew and given to `to_crew`;
- `task.withdrawn`: the offer was taken back (it timed out, or the dispatcher declined it);
- `task.cancelled`: the task is cancelled.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.states import ACTIVE_STATES

log = logging.getLogger(__name__)


def inbox_topic(crew_id: str) -> str:
    return f"fieldline/crews/{crew_id}/inbox"


@dataclass(frozen=True)
class Delivery:
    crew_id: str
    kind: str
    delivered: bool  # the broker acknowledged it (PUBACK)
    error: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "crew_id": self.crew_id,
            "kind": self.kind,
            "delivered": self.delivered,
            "error": self.error,
        }


def messages_for(
    event: TaskEvent, task: Callable[[], Mapping[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """The (crew public id, message) pairs an event sends; `task()` gives the handheld's view
    of the task now (`payloads.handheld_json`). A crew is not told what it did itself."""
    if event.actor_kind == "crew":
        return []
    base: dict[str, Any] = {
        "task_id": event.task_id,
        "action": event.action,
        "at": event.at.isoformat(),
    }
    crew = event.crew_id
    sent: list[tuple[str, dict[str, Any]]] = []
    if event.action in ("assign", "transfer") and crew:
        sent.append((crew, {"kind": "task.assigned", **base, "task": task()}))
    if event.action == "transfer" and event.previous_crew_id:
        message = {"kind": "task.transferred", **base, "to_crew": crew, "note": event.note}
        sent.append((event.previous_crew_id, message))
    elif event.action == "reject" and crew:
        message = {"kind": "task.reopened", **base, "reasons": event.note, "task": task()}
        sent.append((crew, message))
    elif event.action == "decline" and crew:
        sent.append((crew, {"kind": "task.withdrawn", **base, "note": event.note}))
    elif event.action == "cancel" and crew:
        sent.append((crew, {"kind": "task.cancelled", **base, "note": event.note}))
    elif event.action == "update" and crew and event.to_state in ACTIVE_STATES:
        sent.append((crew, {"kind": "task.changed", **base, "task": task()}))
    return sent


class Inbox:
    """Publishes to crews' inbox topics; safe to use from several threads."""

    def __init__(self, mqtt_url: str, timeout_s: float, client_id: str | None = None) -> None:
        self.url = urlsplit(mqtt_url)
        self.timeout_s = timeout_s
        self.client_id = client_id or f"fieldline-inbox-{socket.gethostname()}-{os.getpid()}"
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._sequence = count(1)

    def _connect(self) -> mqtt.Client:
        with self._lock:
            if self._client is not None:
                return self._client
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
            )
            client.reconnect_delay_set(min_delay=1, max_delay=30)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            if self.url.scheme == "mqtts":
                client.tls_set()
            if self.url.username:
                client.username_pw_set(self.url.username, self.url.password)
            client.connect_timeout = self.timeout_s
            port = self.url.port or (8883 if self.url.scheme == "mqtts" else 1883)
            client.connect(self.url.hostname or "localhost", port, keepalive=30)
            client.loop_start()  # from now on paho reconnects by itself
            self._client = client
            return client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the inbox client: %s", reason)
        else:
            self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.warning("inbox client disconnected (%s)", reason)

    def send(self, crew_id: str, message: Mapping[str, Any]) -> Delivery:
        """Publish one message and wait for its PUBACK; never raises."""
        kind = str(message.get("kind"))
        body = {
            # Unique per message: QoS 1 may deliver twice, the handheld drops the repeat.
            "message_id": f"{self.client_id}-{next(self._sequence)}",
            "sent_at": datetime.now(UTC).isoformat(),
            **message,
        }
        try:
            client = self._connect()
            if not self._connected.wait(self.timeout_s):
                raise TimeoutError("not connected to the broker")
            info = client.publish(inbox_topic(crew_id), json.dumps(body), qos=1)
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise TimeoutError(f"no PUBACK within {self.timeout_s:g} s")
        except (OSError, RuntimeError, ValueError) as exc:  # TimeoutError is an OSError
            log.warning("inbox message %s to %s not delivered: %s", kind, crew_id, exc)
            return Delivery(crew_id, kind, False, str(exc) or type(exc).__name__)
        return Delivery(crew_id, kind, True)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
                self._connected.clear()


_process_inboxes: dict[tuple[int, str, float], Inbox] = {}
_process_lock = threading.Lock()


def process_inbox(mqtt_url: str, timeout_s: float) -> Inbox:
    """The process's inbox client for this broker (a forked worker makes its own)."""
    key = (os.getpid(), mqtt_url, timeout_s)
    with _process_lock:
        found = _process_inboxes.get(key)
        if found is None:
            found = _process_inboxes[key] = Inbox(mqtt_url, timeout_s)
        return found
