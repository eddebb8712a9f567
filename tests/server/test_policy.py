from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from fieldline.server import create_app
from fieldline.server.auth.policy import ROLE_PERMISSIONS
from fieldline.settings import Settings, load_settings


def client_as(role: str, settings: Settings, connection: object) -> FlaskClient:
    as_role = load_settings(database_url=settings.database_url, anonymous_role=role)
    return create_app(as_role, bind=connection).test_client()  # type: ignore[arg-type]


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_writes_follow_the_role_table(role: str, settings: Settings, connection: object) -> None:
    client = client_as(role, settings, connection)
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
        "properties": {"label": "test"},
    }
    response = client.post("/api/v1/assets/markers", json=body)
    may_write = "assets:write" in ROLE_PERMISSIONS[role]
    assert response.status_code == (201 if may_write else 403)
    if not may_write:
        assert response.mimetype == "application/problem+json"
        assert role in response.json["detail"]
    assert client.get("/api/v1/assets/markers?limit=1").status_code == 200
