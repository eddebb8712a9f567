from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.server import create_app
from fieldline.settings import Settings, load_settings


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_checks_database_redis_and_broker(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


def test_readyz_names_what_is_down(settings: Settings, connection: sa.Connection) -> None:
    # Nothing listens on port 1 of the loopback: the broker and Redis are "down".
    broken = load_settings(
        database_url=settings.database_url,
        redis_url="redis://127.0.0.1:1/0",
        mqtt_url="mqtt://127.0.0.1:1",
    )
    response = create_app(broken, bind=connection).test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("unavailable") and checks["broker"].startswith("unavailable")
