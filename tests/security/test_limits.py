"""Bodies over their limits answer 413, requests over the rate 429 with Retry-After, and the
gateway sends a device's messages over its rate to the dead letter."""

from __future__ import annotations

import uuid

import pytest
import redis
import sqlalchemy as sa

from fieldline.device_gateway.rate_limit import DeviceRateLimit, device_of
from fieldline.settings import Settings
from tests.security.admin import admin_app

PROBLEM = "application/problem+json"


def test_a_body_over_the_request_limit_is_413(
    settings: Settings, connection: sa.Connection
) -> None:
    client = admin_app(settings, connection, max_request_bytes=2048).test_client()
    response = client.post("/api/v1/tasks", json={"title": "x" * 4096})
    assert response.status_code == 413
    assert response.mimetype == PROBLEM


def test_a_photo_over_its_limit_is_413(settings: Settings, connection: sa.Connection) -> None:
    client = admin_app(settings, connection, photo_max_bytes=2048).test_client()
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 4096
    response = client.put(
        f"/api/v1/uploads/{uuid.uuid4()}", data=jpeg, headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 413
    assert response.mimetype == PROBLEM


def test_an_import_over_the_upload_limit_is_413(
    settings: Settings, connection: sa.Connection
) -> None:
    client = admin_app(
        settings, connection, max_request_bytes=2048, max_upload_bytes=4096
    ).test_client()
    body = {"file": (__import__("io").BytesIO(b"{" + b" " * 8192 + b"}"), "big.geojson")}
    response = client.post("/api/v1/imports", data=body, content_type="multipart/form-data")
    assert response.status_code == 413
    assert response.mimetype == PROBLEM


def test_requests_over_the_rate_are_429_per_client(
    settings: Settings, connection: sa.Connection
) -> None:
    prefix = f"fieldline-test-{uuid.uuid4().hex}"
    app = admin_app(settings, connection, rate_limit_api=3, redis_prefix=prefix)
    client = app.test_client()
    first = {"REMOTE_ADDR": "192.0.2.1"}
    try:
        for _ in range(3):
            assert client.get("/api/v1/assets", environ_base=first).status_code == 200
        # Health checks are never counted.
        assert client.get("/healthz", environ_base=first).status_code == 200
        refused = client.get("/api/v1/assets", environ_base=first)
        assert refused.status_code == 429
        assert refused.mimetype == PROBLEM
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json["retry_after"] == int(refused.headers["Retry-After"])
        # Another client has its own count.
        other = client.get("/api/v1/assets", environ_base={"REMOTE_ADDR": "192.0.2.2"})
        assert other.status_code == 200
    finally:
        keys = redis.Redis.from_url(settings.redis_url).keys(f"{prefix}:*")
        if keys:
            redis.Redis.from_url(settings.redis_url).delete(*keys)


@pytest.mark.parametrize(
    ("topic", "device"),
    [
        ("fieldline/crews/C-000001/position", "fieldline/crews/C-000001"),
        ("fieldline/crews/C-000001/tasks/T-000002/status", "fieldline/crews/C-000001"),
        ("owntracks/anna/phone/event", "owntracks/anna/phone"),
        ("fieldline/scada/PS-7", "fieldline/scada/PS-7"),
        ("spBv1.0/plant/DDATA/edge-1/pump-2", "spBv1.0/plant/edge-1/pump-2"),
        ("spBv1.0/plant/NBIRTH/edge-1", "spBv1.0/plant/edge-1"),
    ],
)
def test_a_device_is_its_topic_without_the_message_part(topic: str, device: str) -> None:
    assert device_of(topic) == device


def test_messages_over_a_devices_rate_are_marked_in_one_round_trip(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"fieldline-test-{uuid.uuid4().hex}"
    limit = DeviceRateLimit(client, prefix, per_minute=3)
    a, b = "fieldline/crews/C-1/position", "fieldline/scada/PS-1"
    calls = []
    execute = client.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return execute(*args, **kwargs)

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    try:
        assert limit.over([a, a, b, a, a, b], now=120.0) == [
            False,
            False,
            False,
            False,
            True,
            False,
        ]
        assert limit.over([b, a], now=130.0) == [False, True]
        # The next minute starts afresh.
        assert limit.over([a], now=180.0) == [False]
        assert len(calls) == 3
    finally:
        keys = client.keys(f"{prefix}:*")
        if keys:
            client.delete(*keys)
