"""Classic SQL injection payloads in every filter the API reads: refused (400) or matched as
the literal text they are (a bound parameter, nothing found), and the database unchanged."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.settings import Settings
from tests.security.admin import admin_app

PAYLOADS = [
    "' OR 1=1 --",
    "'; DROP TABLE pipes; --",
    "; DROP TABLE pipes",
    "1; DELETE FROM valves",
    '" OR ""="',
    "PVC' UNION SELECT password FROM users --",
    "\u2019 OR 1=1 --",  # a typographic quote
    "\u02bc OR 1=1 --",  # modifier letter apostrophe
    "/**/OR/**/1=1",
    "PVC'/*",
    "admin'--",
    "' OR 'a'='a",
    "$$; DROP TABLE pipes; $$",
    "\\'; DROP TABLE pipes; --",
]
# CQL2 text that tries to leave its expression or name a column that is SQL.
CQL2_PAYLOADS = [
    "material = 'PVC' OR 1=1 --",
    "material = 'PVC'; DROP TABLE pipes",
    '"material; DROP TABLE pipes" = 1',
    '"material" = \'x\' OR "1"="1"',
    "pg_sleep(5) = 1",
    "material = 'PVC' UNION SELECT 1",
    "(SELECT 1) = 1",
    "material IN ('PVC') OR TRUE --",
    "id = 1 /* comment */ OR 1=1",
    "diameter_mm > 0); DROP TABLE pipes; --",
]
TABLES = ("pipes", "valves", "hydrants", "meters", "nodes", "tasks", "crews")


def snapshot(connection: sa.Connection) -> tuple[list[str], dict[str, int]]:
    tables = connection.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    ).scalars()
    counts = {
        name: connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()  # noqa: S608
        for name in TABLES
    }
    return list(tables), counts


@pytest.fixture
def client(settings: Settings, connection: sa.Connection) -> FlaskClient:
    return admin_app(settings, connection).test_client()


def literal_or_refused(response: object, count_key: str) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status in (200, 400), response.get_data(as_text=True)  # type: ignore[attr-defined]
    if status == 200:
        assert response.json[count_key] == 0  # type: ignore[attr-defined]
    else:
        assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]


def test_payloads_in_filters_change_nothing(client: FlaskClient, connection: sa.Connection) -> None:
    before = snapshot(connection)
    for payload in PAYLOADS:
        value = quote(payload, safe="")
        # As an attribute's value: a bound parameter, matching no feature.
        for url in (
            f"/ogc/collections/pipes/items?material={value}",
            f"/ogc/collections/markers/items?label={value}",
            f"/ogc/collections/pipes/items?filter={quote(f'material = {payload!r}')}",
        ):
            literal_or_refused(client.get(url), "numberReturned")
        response = client.get(f"/api/v1/assets/markers?label={value}")
        assert response.status_code == 200 and response.json["features"] == []
        assert client.get(f"/api/v1/assets/pipes?material={value}").status_code == 400
        # As a parameter's name, a sort key, a property list, a CRS, a time: refused.
        for url in (
            f"/api/v1/assets/pipes?{value}=1",
            f"/ogc/collections/pipes/items?{value}=1",
            f"/ogc/collections/pipes/items?sortby={value}",
            f"/ogc/collections/pipes/items?properties={value}",
            f"/ogc/collections/pipes/items?crs={value}",
            f"/ogc/collections/pipes/items?datetime={value}",
            f"/api/v1/tasks?state={value}",
            f"/api/v1/tasks?since={value}",
            f"/api/v1/alarms?severity={value}",
        ):
            response = client.get(url)
            assert response.status_code == 400, (url, response.get_data(as_text=True))
        # Free text filters are bound values: nothing matches.
        for url in (f"/api/v1/tasks?crew={value}", f"/api/v1/reports?crew_id={value}"):
            response = client.get(url)
            assert response.status_code == 200, (url, response.get_data(as_text=True))
    for expression in CQL2_PAYLOADS:
        response = client.get(f"/ogc/collections/pipes/items?filter={quote(expression)}")
        assert response.status_code == 400, (expression, response.get_data(as_text=True))
        assert response.json["field"] == "filter"
    assert snapshot(connection) == before
