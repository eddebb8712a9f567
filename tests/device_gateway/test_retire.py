"""Retiring a gateway worker for good (SIGUSR1, or `fieldline gateway --retire` for a stopped
one): it leaves the share group, stores what its session still holds, and ends the session, so
that the broker stops queueing a share for it (docs/scaling.md, "Gateway workers").

Against a private Mosquitto 2.0 with persistence and two workers of one share group
(workers.py); the fixes of one crew, published at QoS 1 as in test_faults.py.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fieldline.settings import Settings
from tests.device_gateway.test_faults import FIXES, Publisher, new_crew, remove_crew, settle
from tests.device_gateway.workers import Broker, GatewayProcess, wait_for_stall, worker_group
from tests.processes import wait_until

pytestmark = pytest.mark.slow

BEFORE = 12_000  # fixes published before the retirement; the rest of FIXES after it
SETTLE_S = 30.0


@pytest.fixture
def workers(settings: Settings, broker: Broker, tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    with worker_group(settings, broker, tmp_path) as group:
        for worker in group:
            # One crew stands for a whole fleet: above any device's rate.
            worker.env["FIELDLINE_RATE_LIMIT_DEVICE"] = "1000000"
        yield group


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    client = Publisher(broker)
    try:
        yield client
    finally:
        client.close()


def session_kept(broker: Broker, client_id: str) -> bool:
    """Whether the broker holds a session for the client id: the CONNACK's session present
    of a connection that asks to resume one (clean start off). The probe's own session expires
    when it disconnects (no Session Expiry Interval)."""
    connected = threading.Event()
    present: list[bool] = []

    def on_connect(_c: mqtt.Client, _u: object, flags: object, reason: object, _p: object) -> None:
        present.append(bool(getattr(flags, "session_present", False)))
        connected.set()

    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    probe.on_connect = on_connect
    probe.connect("127.0.0.1", broker.port, clean_start=False)
    probe.loop_start()
    try:
        assert connected.wait(10), "the broker did not answer"
    finally:
        probe.disconnect()
        probe.loop_stop()
    return present[0]


@pytest.mark.timeout(90)
def test_a_worker_retired_mid_stream_stores_its_share_once_and_leaves_the_rest_to_the_others(
    workers: list[GatewayProcess], broker: Broker, publisher: Publisher, engine: sa.Engine
) -> None:
    retiring, staying = workers
    crew = new_crew(engine)
    try:
        for worker in workers:
            worker.start()
        publisher.publish(crew.crew_id, BEFORE)
        wait_until(lambda: crew.stored() >= BEFORE // 4, 30, "a quarter of the fixes")
        assert retiring.process is not None
        os.kill(retiring.process.pid, signal.SIGUSR1)
        retired_at = crew.stored()
        assert retired_at < BEFORE, "the stream ended before the retirement"
        assert retiring.process.wait(timeout=30) == 0
        assert "ending it" in retiring.log_text()
        wait_until(lambda: publisher.acknowledged() == BEFORE, 30, "the broker's PUBACKs")
        assert settle(crew, BEFORE, SETTLE_S) == (BEFORE, BEFORE, 0, 0)

        # Published once it is gone: all of it reaches the worker left, none waits for the
        # retired one (a killed worker's session would keep half, test_horizontal.py).
        publisher.publish(crew.crew_id, FIXES - BEFORE, first=BEFORE)
        assert settle(crew, FIXES, SETTLE_S) == (FIXES, FIXES, 0, 0)
        assert staying.alive()
        assert not session_kept(broker, retiring.env["FIELDLINE_GATEWAY_CLIENT_ID"])
        print(f"retired at {retired_at} of {BEFORE} rows")
    finally:
        remove_crew(crew)


@pytest.mark.timeout(90)
def test_retire_drains_a_stopped_workers_session_and_ends_it(
    workers: list[GatewayProcess], broker: Broker, publisher: Publisher, engine: sa.Engine
) -> None:
    stopped, staying = workers
    crew = new_crew(engine)
    try:
        for worker in workers:
            worker.start()
        stopped.stop()  # SIGTERM: the broker keeps its session, and queues its share there
        assert stopped.process is not None and stopped.process.returncode == 0
        publisher.publish(crew.crew_id, BEFORE)
        wait_until(lambda: publisher.acknowledged() == BEFORE, 30, "the broker's PUBACKs")
        stalled_at = wait_for_stall(crew.stored)
        assert 0 < stalled_at < BEFORE, "the stopped worker's session kept no share"

        stopped.start("--retire")
        assert stopped.process is not None
        assert stopped.process.wait(timeout=30) == 0
        log = stopped.log_text().split(f"--- gateway-{stopped.runs}.log")[1]
        assert "connected (session present: True)" in log
        assert "ending it" in log
        assert settle(crew, BEFORE, SETTLE_S) == (BEFORE, BEFORE, 0, 0)
        assert not session_kept(broker, stopped.env["FIELDLINE_GATEWAY_CLIENT_ID"])

        # Nothing is queued for it any more: what follows all reaches the worker left.
        publisher.publish(crew.crew_id, FIXES - BEFORE, first=BEFORE)
        assert settle(crew, FIXES, SETTLE_S) == (FIXES, FIXES, 0, 0)
        assert staying.alive()
        print(f"the stopped worker's session held {BEFORE - stalled_at} of {BEFORE} fixes")
    finally:
        remove_crew(crew)


def test_the_probe_sees_a_kept_session(broker: Broker) -> None:
    """session_kept can say yes: a session with an expiry outlives its connection."""
    client_id = f"retire-probe-{uuid.uuid4().hex[:8]}"
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 60
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
    client.loop_start()
    wait_until(client.is_connected, 10, "the connection")
    client.disconnect()
    client.loop_stop()
    assert session_kept(broker, client_id)
    assert not session_kept(broker, client_id)  # the probe's own session ended with it
