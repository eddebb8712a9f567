"""Sign-in of the crew's handheld: the bound device gets its broker, topics and intervals."""

from __future__ import annotations

import queue
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session

from fieldline.server import create_app
from fieldline.server.auth.policy import ROLE_PERMISSIONS
from fieldline.server.crews.services import bind_device, create_crew
from fieldline.settings import Settings


def test_a_bound_handheld_signs_in(session: Session, client: FlaskClient) -> None:
    crew = create_crew(session, "Night patrol", "foot")
    device = f"tablet-{uuid.uuid4().hex[:6]}"
    bind_device(session, crew.public_id, "own", device)
    session.flush()
    response = client.post(
        f"/api/v1/crews/{crew.public_id}/sign-in",
        json={"device_id": device},
        base_url="http://field.example.test:8080",
    )
    assert response.status_code == 200, response.get_json()
    c = crew.public_id
    body = response.get_json()
    # The device's MQTT login for this session (a fresh password each sign-in).
    assert body["mqtt"].pop("username") == device
    assert len(body["mqtt"].pop("password")) >= 32
    assert body == {
        "crew_id": c,
        "crew_name": "Night patrol",
        "device_id": device,
        "mqtt": {
            "ws_url": "ws://field.example.test:9001",
            "client_id": f"fieldline-crew-{c}-{device}",
            "topics": {
                "position": f"fieldline/crews/{c}/position",
                "reports": f"fieldline/crews/{c}/reports",
                "inbox": f"fieldline/crews/{c}/inbox",
                "status": f"fieldline/crews/{c}/tasks/{{task_id}}/status",
            },
        },
        "gps_interval_s": {
            "repair": 15,
            "patrol": 5,
            "inspection": 15,
            "meter_reading": 15,
            "valve_operation": 15,
            "idle": 60,
            "default": 15,
        },
        "tasks_url": f"/api/v1/tasks?crew={c}&state=assigned,accepted,en_route,on_site",
    }


def test_the_tasks_url_lists_the_crews_open_tasks(session: Session, client: FlaskClient) -> None:
    crew = create_crew(session, "Listed crew")
    bind_device(session, crew.public_id, "own", "listed-1")
    session.flush()
    signed = client.post(f"/api/v1/crews/{crew.public_id}/sign-in", json={"device_id": "listed-1"})
    listed = client.get(signed.get_json()["tasks_url"])
    assert listed.status_code == 200
    assert listed.get_json()["tasks"] == []


def test_settings_choose_the_broker_url_and_intervals(
    settings: Settings, session: Session, connection: sa.Connection
) -> None:
    crew = create_crew(session, "Configured crew")
    bind_device(session, crew.public_id, "own", "handheld-9")
    session.flush()
    configured = settings.model_copy(
        update={
            "mqtt_ws_url": "wss://broker.example.test/mqtt",
            "gps_intervals_s": "repair=10,default=20,idle=120",
        }
    )
    client = create_app(configured, bind=connection).test_client()
    body = client.post(
        f"/api/v1/crews/{crew.public_id}/sign-in", json={"device_id": "handheld-9"}
    ).get_json()
    assert body["mqtt"]["ws_url"] == "wss://broker.example.test/mqtt"
    assert body["gps_interval_s"]["repair"] == 10
    assert body["gps_interval_s"]["patrol"] == 20
    assert body["gps_interval_s"]["idle"] == 120


def test_an_unknown_crew_or_a_device_of_another_crew_is_refused(
    session: Session, client: FlaskClient
) -> None:
    crew = create_crew(session, "Owner crew")
    other = create_crew(session, "Other crew")
    bind_device(session, other.public_id, "own", "others-tablet")
    bind_device(session, crew.public_id, "owntracks", "anna/phone")
    session.flush()
    missing = client.post("/api/v1/crews/C-999999/sign-in", json={"device_id": "x"})
    assert missing.status_code == 404
    assert "C-999999" in missing.get_json()["detail"]
    for device in ("others-tablet", "never-bound", "anna/phone"):
        refused = client.post(f"/api/v1/crews/{crew.public_id}/sign-in", json={"device_id": device})
        assert refused.status_code == 422, device
        assert refused.get_json()["field"] == "device_id"
    empty = client.post(f"/api/v1/crews/{crew.public_id}/sign-in", json={})
    assert empty.status_code == 422 and empty.get_json()["field"] == "device_id"


def test_crew_members_may_sign_in_and_viewers_may_not() -> None:
    assert "crews:sign-in" in ROLE_PERMISSIONS["crew_member"]
    assert "crews:sign-in" not in ROLE_PERMISSIONS["viewer"]


def test_each_sign_in_gives_a_fresh_password_that_reads_only_the_crews_inbox(
    session: Session, client: FlaskClient, settings: Settings
) -> None:
    crew = create_crew(session, "Signed crew")
    device = f"tablet-{uuid.uuid4().hex[:6]}"
    bind_device(session, crew.public_id, "own", device)
    session.flush()
    url = f"/api/v1/crews/{crew.public_id}/sign-in"
    first = client.post(url, json={"device_id": device}).get_json()["mqtt"]
    second = client.post(url, json={"device_id": device}).get_json()["mqtt"]
    assert first["password"] != second["password"]
    assert _ws_connects(settings, second, second["topics"]["inbox"]) is True
    assert _ws_connects(settings, second, "fieldline/crews/C-999999/inbox") is False
    assert _ws_connects(settings, first, second["topics"]["inbox"]) is None


def _ws_connects(settings: Settings, login: dict[str, Any], inbox: str) -> bool | None:
    """None: the login is refused; else whether subscribing to `inbox` is granted."""
    answers: queue.Queue[Any] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, transport="websockets", protocol=mqtt.MQTTv5)
    client.ws_set_options(path="/mqtt")
    client.username_pw_set(login["username"], login["password"])
    client.on_connect = lambda c, _u, _f, reason, _p: (
        answers.put(None) if reason.is_failure else c.subscribe(inbox, qos=1)
    )
    client.on_subscribe = lambda _c, _u, _m, codes, _p: answers.put(not codes[0].is_failure)
    client.connect("127.0.0.1", settings.mqtt_ws_port)
    client.loop_start()
    try:
        granted: bool | None = answers.get(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()
    return granted
