"""Devices reach the broker only with their own login, and only their own crew's topics.

Each test runs a private Mosquitto configured by `fieldline services up`'s own generator
(conftest.py); logins are made by the same services the CLI and the API call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.db import make_sessionmaker
from fieldline.gis.errors import Conflict
from fieldline.gis.models import Station
from fieldline.server.auth.models import SecurityEvent
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import create_crew
from fieldline.server.mqtt_access.broker import BrokerAdmin
from fieldline.server.mqtt_access.models import DeviceCredential
from fieldline.server.mqtt_access.services import (
    Login,
    add_device,
    add_station_login,
    new_identifier,
    revoke_device,
    revoke_station_login,
)
from fieldline.server.telemetry.models import Position, StationBinding
from fieldline.server.telemetry.services import bind_station
from tests.security.conftest import Device, SecuredBroker, wait_until

pytestmark = pytest.mark.slow
ACTOR = "test"
# The tests' crews are committed (the gateway runs as a process), and removed afterwards.
CREW_NAME = "Security crew "


@pytest.fixture
def db(engine: sa.Engine) -> Iterator[Session]:
    """Committed writes: the broker's logins and the gateway process must see them."""
    with make_sessionmaker(engine)() as session:
        yield session
        session.rollback()
        crews = sa.select(Crew.public_id).where(Crew.name.startswith(CREW_NAME))
        names = sa.select(DeviceCredential.username).where(
            sa.func.split_part(DeviceCredential.subject, " ", 1).in_(crews)
        )
        session.execute(sa.delete(SecurityEvent).where(SecurityEvent.subject.in_(names)))
        session.execute(
            sa.delete(DeviceCredential).where(
                sa.func.split_part(DeviceCredential.subject, " ", 1).in_(crews)
            )
        )
        session.execute(sa.delete(Position).where(Position.crew_id.in_(crews)))
        session.execute(sa.delete(Crew).where(Crew.name.startswith(CREW_NAME)))
        session.commit()


def _crew(db: Session) -> str:
    crew = create_crew(db, f"{CREW_NAME}{uuid.uuid4().hex[:6]}")
    db.commit()
    return crew.public_id


def _device(db: Session, broker: SecuredBroker, crew_id: str) -> Login:
    admin = BrokerAdmin.from_settings(broker.settings)
    _device_row, login = add_device(db, admin, crew_id, "own", new_identifier(), actor=ACTOR)
    db.commit()
    return login


def _tls(broker: SecuredBroker, login: Login | None, password: str | None = None) -> Device:
    return Device(
        broker.listeners.tls_port,
        login.username if login else None,
        password or (login.password if login else None),
        ca_file=broker.ca_file,
    )


def _mosquitto_pub(broker: SecuredBroker, login: Login, topic: str, payload: str) -> str:
    result = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.listeners.tls_port),
         "--cafile", broker.ca_file, "-u", login.username, "-P", login.password,
         "-t", topic, "-m", payload, "-V", "5", "-q", "1", "-d"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


@pytest.fixture
def gateway(broker_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fieldline.cli", "gateway"],
            env=broker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "connected (session present" in log.read_text(), 30, "the gateway")
        time.sleep(0.3)  # its subscription's SUBACK
        yield log
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def broker_env(secured_broker: SecuredBroker) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    settings = secured_broker.settings
    env = {
        **os.environ,
        "FIELDLINE_DATABASE_URL": settings.database_url,
        "FIELDLINE_MQTT_URL": settings.mqtt_url,
        "FIELDLINE_REDIS_PREFIX": f"fieldline_test_{tag}",
        "FIELDLINE_GATEWAY_SHARE_GROUP": f"test_{tag}",
        "FIELDLINE_GATEWAY_CLIENT_ID": f"fieldline-security-{tag}",
        "FIELDLINE_GATEWAY_METRICS_PORT": "0",
        "FIELDLINE_GATEWAY_SPARKPLUG": "false",
    }
    yield env
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(f"{env['FIELDLINE_REDIS_PREFIX']}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _fixes(db: Session, crew_id: str) -> int:
    db.rollback()  # a fresh snapshot
    return int(
        db.scalar(sa.text("SELECT count(*) FROM positions WHERE crew_id = :c"), {"c": crew_id})
    )


def test_a_device_publishes_only_its_own_crews_position(
    db: Session, secured_broker: SecuredBroker, gateway: Path
) -> None:
    crew_a, crew_b = _crew(db), _crew(db)
    login = _device(db, secured_broker, crew_a)
    fix = json.dumps({"ts": time.time() - 5, "lat": 60.17, "lon": 24.94})
    refused = _mosquitto_pub(secured_broker, login, f"fieldline/crews/{crew_b}/position", fix)
    assert "RC:135" in refused  # PUBACK: not authorized
    accepted = _mosquitto_pub(secured_broker, login, f"fieldline/crews/{crew_a}/position", fix)
    assert "RC:135" not in accepted and "received PUBACK" in accepted
    wait_until(lambda: _fixes(db, crew_a) == 1, 30, "crew A's fix to be stored")
    assert _fixes(db, crew_b) == 0
    events = db.scalars(
        sa.select(SecurityEvent.kind).where(SecurityEvent.subject == login.username)
    ).all()
    assert events == ["device_credentials_created"]


def test_a_device_reads_only_its_own_crews_inbox(
    db: Session, secured_broker: SecuredBroker
) -> None:
    crew_a, crew_b = _crew(db), _crew(db)
    device = _tls(secured_broker, _device(db, secured_broker, crew_a))
    assert device.connect()
    try:
        assert device.subscribe(f"fieldline/crews/{crew_b}/inbox").is_failure
        assert device.subscribe("fieldline/crews/+/inbox").is_failure
        assert not device.subscribe(f"fieldline/crews/{crew_a}/inbox").is_failure
    finally:
        device.close()


def test_a_wrong_password_or_no_login_cannot_connect(
    db: Session, secured_broker: SecuredBroker
) -> None:
    login = _device(db, secured_broker, _crew(db))
    assert not _tls(secured_broker, login, password="not-" + login.password).connect()
    assert not _tls(secured_broker, None).connect()
    ws = secured_broker.listeners.ws_port
    assert not Device(ws, websockets=True).connect()
    assert not Device(ws, login.username, "wrong", websockets=True).connect()
    right = Device(ws, login.username, login.password, websockets=True)
    assert right.connect()
    right.close()


def test_tls_needs_the_ca_and_the_tls_port_refuses_plain_mqtt(
    db: Session, secured_broker: SecuredBroker
) -> None:
    login = _device(db, secured_broker, _crew(db))
    with_ca = _tls(secured_broker, login)
    assert with_ca.connect()
    with_ca.close()
    plain = Device(secured_broker.listeners.tls_port, login.username, login.password)
    assert not plain.connect(timeout=3)
    plain.close()
    # Fieldline's own processes keep the anonymous loopback listener.
    own = Device(secured_broker.mqtt_port)
    assert own.connect()
    own.close()


def test_a_revoked_device_is_refused_and_disconnected_without_a_restart(
    db: Session, secured_broker: SecuredBroker
) -> None:
    crew = _crew(db)
    login = _device(db, secured_broker, crew)
    connected = _tls(secured_broker, login)
    assert connected.connect()
    admin = BrokerAdmin.from_settings(secured_broker.settings)
    revoke_device(db, admin, crew, "own", login.username, actor=ACTOR)
    db.commit()
    wait_until(lambda: connected.disconnected, 5, "the revoked device to be disconnected")
    connected.close()
    assert not _tls(secured_broker, login).connect()
    kinds = db.scalars(
        sa.select(SecurityEvent.kind)
        .where(SecurityEvent.subject == login.username)
        .order_by(SecurityEvent.id)
    ).all()
    assert kinds == ["device_credentials_created", "device_revoked"]


def test_logins_survive_a_broker_restart_and_revocation_still_holds(
    db: Session, secured_broker: SecuredBroker
) -> None:
    # The plugin's state is loaded by one listener only: were it loaded twice, a deleted
    # login would live on in the second copy after a restart.
    crew = _crew(db)
    kept, revoked = _device(db, secured_broker, crew), _device(db, secured_broker, crew)
    secured_broker.stop()
    secured_broker.start()
    admin = BrokerAdmin.from_settings(secured_broker.settings)
    revoke_device(db, admin, crew, "own", revoked.username, actor=ACTOR)
    db.commit()
    for port, websockets in (
        (secured_broker.listeners.tls_port, False),
        (secured_broker.listeners.ws_port, True),
    ):
        ca = None if websockets else secured_broker.ca_file
        good = Device(port, kept.username, kept.password, ca_file=ca, websockets=websockets)
        assert good.connect()
        good.close()
        gone = Device(port, revoked.username, revoked.password, ca_file=ca, websockets=websockets)
        assert not gone.connect()


def test_a_station_and_an_edge_node_publish_only_under_their_own_names(
    db: Session, secured_broker: SecuredBroker
) -> None:
    station = db.scalar(sa.select(Station.public_id).order_by(Station.public_id).limit(1))
    assert station is not None
    edge = f"spb:plant-{uuid.uuid4().hex[:6]}/edge-1"
    bind_station(db, station, edge)
    db.commit()
    admin = BrokerAdmin.from_settings(secured_broker.settings)
    try:
        scada = add_station_login(db, admin, station, actor=ACTOR)
        node = add_station_login(db, admin, edge, actor=ACTOR)
        db.commit()
        assert scada.username == f"scada:{station}"
        # A handheld named like the station's login does not take its place.
        crew = _crew(db)
        with pytest.raises(Conflict, match="belongs to"):
            add_device(db, admin, crew, "own", scada.username, actor=ACTOR)
        db.rollback()
        group = edge.removeprefix("spb:").split("/")[0]
        for login, allowed, refused in (
            (scada, f"fieldline/scada/{station}", "fieldline/scada/S-999999"),
            (node, f"spBv1.0/{group}/NDATA/edge-1", f"spBv1.0/{group}/NDATA/edge-2"),
            (node, f"spBv1.0/{group}/DDATA/edge-1/pump", "fieldline/scada/S-999999"),
        ):
            assert "RC:135" not in _mosquitto_pub(secured_broker, login, allowed, "{}")
            assert "RC:135" in _mosquitto_pub(secured_broker, login, refused, "{}")
        assert revoke_station_login(db, admin, edge, actor=ACTOR)
        db.commit()
        assert not _tls(secured_broker, node).connect()
    finally:
        db.rollback()
        db.execute(sa.delete(StationBinding).where(StationBinding.source == edge))
        usernames = (f"scada:{station}", edge)
        db.execute(sa.delete(SecurityEvent).where(SecurityEvent.subject.in_(usernames)))
        db.execute(sa.delete(DeviceCredential).where(DeviceCredential.username.in_(usernames)))
        db.commit()
