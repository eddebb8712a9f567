"""Shared fixtures of the gateway and simulator tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from fieldline.device_gateway.simulator.callcentre import server_url
from tests.device_gateway.workers import Broker


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app behind a real HTTP server on a free port (the test's rolled-back connection),
    for the simulator's clients of the API."""
    http: BaseWSGIServer = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield server_url("127.0.0.1", http.server_port)
    http.shutdown()
    thread.join(5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto with persistence (workers.py), for tests that break or remove
    gateway workers."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
