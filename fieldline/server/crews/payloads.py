"""What a crew's handheld is told when it signs in: who it reports for, where the broker's
WebSocket listener is, its login, client id and topics, how often to send a fix, and where its
tasks are listed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fieldline.server.crews.models import Crew, Device
from fieldline.server.mqtt_access.services import Login
from fieldline.server.tasks.inbox import inbox_topic
from fieldline.server.tasks.states import ACTIVE_STATES
from fieldline.server.tasks.status_events import status_topic
from fieldline.settings import Settings


def _host_name(host: str) -> str:
    """The name in a Host header, without its port (`[::1]:8080` -> `[::1]`)."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def ws_url(settings: Settings, request_host: str) -> str:
    """FIELDLINE_MQTT_WS_URL, else the broker's WebSocket port on the host the app used."""
    if settings.mqtt_ws_url:
        return settings.mqtt_ws_url
    return f"ws://{_host_name(request_host)}:{settings.mqtt_ws_port}"


def _seconds(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def sign_in_json(
    crew: Crew, device: Device, settings: Settings, request_host: str, login: Login
) -> dict[str, Any]:
    crew_id = crew.public_id
    # The crew's tasks the handheld works on: offered to it until done.
    tasks_query = urlencode({"crew": crew_id, "state": ",".join(ACTIVE_STATES)}, safe=",")
    return {
        "crew_id": crew_id,
        "crew_name": crew.name,
        "device_id": device.identifier,
        "mqtt": {
            "ws_url": ws_url(settings, request_host),
            "client_id": f"fieldline-crew-{crew_id}-{device.identifier}",
            # A fresh password at each sign-in: the page keeps it only for this session.
            "username": login.username,
            "password": login.password,
            "topics": {
                "position": f"fieldline/crews/{crew_id}/position",
                "reports": f"fieldline/crews/{crew_id}/reports",
                "inbox": inbox_topic(crew_id),
                "status": status_topic(crew_id, "{task_id}"),
            },
        },
        "gps_interval_s": {
            name: _seconds(seconds) for name, seconds in settings.gps_interval_s.items()
        },
        "tasks_url": f"/api/v1/tasks?{tasks_query}",
    }
