"""A real `fieldline serve`: clients that send their request headers a line at a time and
never finish do not keep other requests from being answered."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fieldline.settings import Settings
from tests.processes import free_port

SLOW_CLIENTS = 12


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "FIELDLINE_DATABASE_URL": settings.database_url,
        "FIELDLINE_WEB_WORKERS": "1",
        "FIELDLINE_WEB_THREADS": "2",
        "FIELDLINE_ANONYMOUS_ROLE": "viewer",
    }
    fieldline = Path(sys.executable).with_name("fieldline")
    process = subprocess.Popen(
        [str(fieldline), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_slow_clients_do_not_stall_others(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    slow = []
    for _ in range(SLOW_CLIENTS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow.append(sock)
    try:
        started = time.monotonic()
        for _ in range(5):
            for sock in slow:
                # One header more, never the blank line; a server that gave up on it is fine.
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")
            response = requests.get(f"{server}/api/v1/openapi.json", timeout=5)
            assert response.status_code == 200
            time.sleep(0.5)
        assert time.monotonic() - started < 15
    finally:
        for sock in slow:
            sock.close()
