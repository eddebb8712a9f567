"""The receiving process's bookkeeping (receiver.py), without a broker: what it hands over, in
which order, what a `done` acknowledges, and the bound on messages in flight. The MQTT client is
paho's own, never connected; only its `ack` is replaced to record what would be sent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import paho.mqtt.client as mqtt
import pytest

from fieldline.device_gateway.receiver import DRAINED, MESSAGES, Link, Receiver


@pytest.fixture
def receiver(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Receiver, Connection, list[tuple[int, int]]]]:
    here, there = Pipe()
    link = Link(
        client_id="fieldline-test-receiver",
        host="127.0.0.1",
        port=1,
        tls=False,
        username=None,
        password=None,
        keepalive_s=30,
        session_expiry_s=60,
        receive_maximum=20,
        topics=("fieldline/crews/+/position",),
        inflight_max=3,
        log_level=logging.WARNING,
    )
    acked: list[tuple[int, int]] = []
    receiving = Receiver(link, there)

    def ack(mid: int, qos: int) -> mqtt.MQTTErrorCode:
        acked.append((mid, qos))
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    monkeypatch.setattr(receiving.client, "ack", ack)
    receiving.session = 1
    yield receiving, here, acked
    here.close()
    there.close()


def message(mid: int, qos: int = 1) -> mqtt.MQTTMessage:
    delivered = mqtt.MQTTMessage(mid, f"fieldline/crews/c{mid}/position".encode())
    delivered.payload = f"payload {mid}".encode()
    delivered.qos = qos
    return delivered


def test_done_acknowledges_the_oldest_in_order_but_not_those_of_a_replaced_connection(
    receiver: tuple[Receiver, Connection, list[tuple[int, int]]],
) -> None:
    receiving, _, acked = receiver
    receiving.held.extend([(7, 1, 1), (8, 0, 1), (3, 1, 2), (4, 1, 2), (5, 1, 2)])
    receiving.session = 2  # reconnected: the broker delivers 7 again under a new id
    receiving._acknowledge(4)
    assert acked == [(3, 1), (4, 1)]
    assert list(receiving.held) == [(5, 1, 2)]


def test_messages_are_handed_over_in_arrival_order_and_drained_before_stopping(
    receiver: tuple[Receiver, Connection, list[tuple[int, int]]],
) -> None:
    receiving, here, _ = receiver
    receiving.forwarder.start()
    for mid in (1, 2, 3):
        receiving._on_message(receiving.client, None, message(mid))
    handed: list[tuple[str, bytes, float]] = []
    while len(handed) < 3:
        assert here.poll(5), "nothing handed over"
        kind, chunk = here.recv()
        assert kind == MESSAGES
        handed += chunk
    assert [(topic, payload) for topic, payload, _ in handed] == [
        (f"fieldline/crews/c{mid}/position", f"payload {mid}".encode()) for mid in (1, 2, 3)
    ]
    receiving.draining = True
    receiving.arrived.set()
    assert here.poll(5)
    assert here.recv() == (DRAINED,)
    # Draining, a message is neither handed over nor held: never acknowledged, it comes again.
    receiving._on_message(receiving.client, None, message(4))
    assert [mid for mid, _, _ in receiving.held] == [1, 2, 3]


def test_a_full_window_holds_the_network_loop_until_messages_are_done(
    receiver: tuple[Receiver, Connection, list[tuple[int, int]]],
) -> None:
    receiving, _, acked = receiver
    for mid in (1, 2, 3):
        receiving._on_message(receiving.client, None, message(mid))
    fourth = threading.Thread(target=receiving._on_message, args=(None, None, message(4)))
    fourth.start()
    fourth.join(0.3)
    assert fourth.is_alive(), "a fourth message was taken with three in flight"
    receiving._acknowledge(1)
    fourth.join(5)
    assert not fourth.is_alive()
    assert acked == [(1, 1)]
    assert [mid for mid, _, _ in receiving.held] == [2, 3, 4]
