"""The live stream as a real `fieldline serve` serves it: events relayed in order (with the
event loop's fan-out and with gunicorn's threads alike), callers checked by the one policy,
many streams open at once without starving the API, and a client that stops reading ended
rather than buffered without bound."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.auth import services
from fieldline.settings import Settings
from tests.processes import free_port

Serve = Callable[..., "Server"]
# Events of 4 kB that overflow what the kernel's socket buffers hold for a client not reading.
EVENTS_PAST_THE_BUFFERS = 2000


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, prefix: str) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.channel = f"{prefix}:live"
        self.connections: list[http.client.HTTPConnection] = []

    def open_stream(
        self, query: str = "heartbeat=1", headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.connections.append(connection)
        connection.request("GET", f"/api/v1/live?{query}", headers=headers or {})
        return connection.getresponse()


@pytest.fixture
def serve(settings: Settings, engine: sa.Engine) -> Iterator[Serve]:
    started: list[tuple[subprocess.Popen[bytes], Server]] = []

    def start(**env: str) -> Server:
        port, prefix = free_port(), f"fieldline-live-{uuid.uuid4().hex[:8]}"
        environ = os.environ | {
            "FIELDLINE_DATABASE_URL": settings.database_url,
            "FIELDLINE_REDIS_PREFIX": prefix,
            "FIELDLINE_WEB_WORKERS": "1",
            "FIELDLINE_WEB_THREADS": "4",
            "FIELDLINE_ANONYMOUS_ROLE": "viewer",
            **env,
        }
        fieldline = Path(sys.executable).with_name("fieldline")
        process = subprocess.Popen(
            [str(fieldline), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = Server(process, port, prefix)
        started.append((process, server))
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{server.url}/healthz", timeout=2).ok:
                    return server
            except requests.RequestException:
                pass
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    yield start
    for process, server in started:
        for connection in server.connections:
            connection.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def live_redis(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


def publish_when_subscribed(
    client: redis.Redis, channel: str, events: list[dict[str, Any]]
) -> None:
    deadline = time.monotonic() + 10
    while client.pubsub_numsub(channel)[0][1] == 0:
        assert time.monotonic() < deadline, "nobody subscribed to the live channel"
        time.sleep(0.05)
    for event in events:
        client.publish(channel, json.dumps(event, separators=(",", ":")))


def frames(response: http.client.HTTPResponse, count: int) -> list[str]:
    """The next `count` frames (comments and events) of a stream."""
    found: list[str] = []
    lines: list[str] = []
    while len(found) < count:
        line = response.readline().decode()
        assert line, f"the stream ended after {found}"
        if line == "\n":
            found.append("".join(lines))
            lines = []
        else:
            lines.append(line)
    return found


def events_of(response: http.client.HTTPResponse, count: int) -> list[dict[str, Any]]:
    """The next `count` events of a stream, past its comments (heartbeats)."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        (frame,) = frames(response, 1)
        if frame.startswith("data: "):
            found.append(json.loads(frame.removeprefix("data: ")))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("web_server", ["asgi", "gthread"])
def test_events_arrive_in_order_then_the_limit_ends_the_stream(
    serve: Serve, live_redis: redis.Redis, web_server: str
) -> None:
    server = serve(FIELDLINE_WEB_SERVER=web_server)
    response = server.open_stream("heartbeat=1&limit=3")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("X-Accel-Buffering") == "no"
    assert frames(response, 1) == [": connected\n"]
    events = [{"type": "position", "crew_id": f"C{i}", "n": i} for i in range(5)]
    publish_when_subscribed(live_redis, server.channel, events)
    assert events_of(response, 3) == events[:3]
    assert response.read() == b""  # the third event was the last


@pytest.mark.slow
def test_heartbeats_keep_a_quiet_stream_open(serve: Serve) -> None:
    server = serve()
    response = server.open_stream("heartbeat=1")
    started = time.monotonic()
    assert frames(response, 3) == [": connected\n", ": heartbeat\n", ": heartbeat\n"]
    assert 1.5 <= time.monotonic() - started < 5


@contextmanager
def committed_users(engine: sa.Engine, settings: Settings) -> Iterator[dict[str, str]]:
    """API tokens of a dispatcher and of a crew member, committed for the server to see."""
    suffix = uuid.uuid4().hex[:8]
    names = {"dispatcher": f"live-dispatcher-{suffix}", "viewer": f"live-viewer-{suffix}"}
    tokens: dict[str, str] = {}
    with Session(engine) as session:
        for role, name in names.items():
            user, _ = services.create_user(session, name, role, password="correct horse battery")
            _, tokens[role] = services.create_token(
                session, user, "live", datetime.now(UTC), settings, actor="test"
            )
        session.commit()
    try:
        yield tokens
    finally:
        with engine.begin() as connection:
            listed = list(names.values())
            connection.execute(
                sa.text("DELETE FROM security_events WHERE subject = ANY(:n) OR actor = ANY(:n)"),
                {"n": listed},
            )
            connection.execute(sa.text("DELETE FROM users WHERE username = ANY(:n)"), {"n": listed})


@pytest.mark.slow
def test_callers_are_checked_by_the_policy(
    serve: Serve, engine: sa.Engine, settings: Settings
) -> None:
    # Nobody without credentials has a role here; a crew member may not read the stream.
    server = serve(FIELDLINE_ANONYMOUS_ROLE="")
    anonymous = server.open_stream()
    assert anonymous.status == 401
    assert anonymous.getheader("Content-Type") == "application/problem+json"
    assert "sign in" in json.loads(anonymous.read())["detail"]

    unknown = server.open_stream(headers={"Authorization": "Bearer fl_nope_nope"})
    assert unknown.status == 401
    bad_parameter = server.open_stream("heartbeat=0")
    assert bad_parameter.status == 401  # who asks is checked before what is asked

    crew_side = serve(FIELDLINE_ANONYMOUS_ROLE="crew_member")
    refused = crew_side.open_stream()
    assert refused.status == 403
    assert json.loads(refused.read())["detail"] == "role 'crew_member' may not live:read"

    with committed_users(engine, settings) as tokens:
        allowed = server.open_stream(headers={"Authorization": f"Bearer {tokens['dispatcher']}"})
        assert allowed.status == 200
        assert frames(allowed, 1) == [": connected\n"]
        wrong = server.open_stream(
            "heartbeat=0", headers={"Authorization": f"Bearer {tokens['viewer']}"}
        )
        assert wrong.status == 400
        assert json.loads(wrong.read())["field"] == "heartbeat"


@pytest.mark.slow
def test_many_streams_at_once_leave_the_api_answering(
    serve: Serve, live_redis: redis.Redis
) -> None:
    # One worker of four threads: under gunicorn's threads four streams would take them all.
    server = serve(FIELDLINE_WEB_THREADS="4")
    streams = [server.open_stream("heartbeat=30") for _ in range(200)]
    for response in streams:
        assert response.status == 200
        assert frames(response, 1) == [": connected\n"]

    started = time.monotonic()
    answer = requests.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert time.monotonic() - started < 2.0

    event = {"type": "telemetry", "station_id": "S1", "value": 1.5}
    publish_when_subscribed(live_redis, server.channel, [event])
    for response in streams:
        assert frames(response, 1) == [f"data: {json.dumps(event, separators=(',', ':'))}\n"]
    # One subscription to Redis serves them all.
    assert live_redis.pubsub_numsub(server.channel)[0][1] == 1


@pytest.mark.slow
def test_a_client_that_stops_reading_is_ended_with_the_reason(
    serve: Serve, live_redis: redis.Redis
) -> None:
    server = serve(FIELDLINE_LIVE_CLIENT_QUEUE="20")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(b"GET /api/v1/live?heartbeat=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reader = server.open_stream("heartbeat=60")
    assert frames(reader, 1) == [": connected\n"]

    padding = "x" * 4000
    deadline = time.monotonic() + 10
    while live_redis.pubsub_numsub(server.channel)[0][1] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for n in range(EVENTS_PAST_THE_BUFFERS):
        live_redis.publish(server.channel, json.dumps({"n": n, "padding": padding}))
        event = json.loads(frames(reader, 1)[0].removeprefix("data: "))
        assert event["n"] == n  # a client that keeps up gets every event, in order

    ended = b": ended: the client read too slowly and fell 20 events behind: reconnect"
    stalled.settimeout(10)
    received = b""
    while ended not in received and (chunk := stalled.recv(65536)):
        received += chunk
    stalled.close()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert ended in received
    assert received.count(b"data: ") < EVENTS_PAST_THE_BUFFERS


@pytest.mark.slow
def test_stopping_the_server_ends_open_streams_at_once(serve: Serve) -> None:
    server = serve()
    response = server.open_stream("heartbeat=60")
    assert frames(response, 1) == [": connected\n"]
    process = server.process
    started = time.monotonic()
    process.terminate()
    assert frames(response, 1) == [": ended: the server is shutting down: reconnect\n"]
    process.wait(timeout=30)
    assert time.monotonic() - started < 5
