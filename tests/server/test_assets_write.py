"""Creating, changing and deleting assets: validation, nothing half-written, audit history."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from tests.conftest import load_fixture


def count(connection: sa.Connection, table: str) -> int:
    return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608


def pipe_body(**properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[24.9401, 60.1701], [24.9412, 60.1705]]},
        "properties": {"material": "PE", "diameter_mm": 160, "install_year": 2024} | properties,
    }


def test_create_pipe_then_read_it(client: FlaskClient, connection: sa.Connection) -> None:
    node = load_fixture("nodes")[0]["id"]
    response = client.post("/api/v1/assets/pipes", json=pipe_body(from_node=node))
    assert response.status_code == 201, response.json
    created = response.json
    assert created["id"].startswith("P-")
    assert response.headers["Location"].endswith(f"/api/v1/assets/pipes/{created['id']}")
    assert created["properties"]["from_node"] == node
    assert created["properties"]["status"] == "in_service"
    assert created["properties"]["length_m"] > 60
    assert client.get(f"/api/v1/assets/pipes/{created['id']}").json == created
    history = client.get(f"/api/v1/assets/pipes/{created['id']}/history").json["edits"]
    assert [e["action"] for e in history] == ["create"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.9, 60.1]}},
            "geometry.type",
        ),
        (
            pipe_body() | {"geometry": {"type": "LineString", "coordinates": [[24.9, 60.1]]}},
            "geometry.coordinates",
        ),
        (
            pipe_body()
            | {"geometry": {"type": "LineString", "coordinates": [[24.9, 60.1], [24.9, 60.1]]}},
            "geometry.coordinates",
        ),
        (
            pipe_body()
            | {"geometry": {"type": "LineString", "coordinates": [[24.9, 95.0], [24.9, 60.1]]}},
            "geometry.coordinates",
        ),
        (
            pipe_body()
            | {"geometry": {"type": "LineString", "coordinates": [[200, 60], [24.9, 60.1]]}},
            "geometry.coordinates",
        ),
        (
            pipe_body() | {"geometry": {"type": "LineString", "coordinates": "nope"}},
            "geometry.coordinates",
        ),
        (pipe_body() | {"geometry": None}, "geometry"),
        (pipe_body(material="PCV"), "properties.material"),
        (pipe_body(diameter_mm=-100), "properties.diameter_mm"),
        (pipe_body(diameter_mm=0), "properties.diameter_mm"),
        (pipe_body(diameter_mm="150"), "properties.diameter_mm"),
        (pipe_body(install_year=1492), "properties.install_year"),
        (pipe_body(install_year=1999.5), "properties.install_year"),
        (pipe_body(colour="blue"), "properties.colour"),
        (pipe_body(length_m=5), "properties.length_m"),
        (pipe_body(status=None), "properties.status"),
        (pipe_body(from_node="N-999999"), "properties.from_node"),
        (pipe_body() | {"id": "P-1"}, "id"),
        (pipe_body() | {"type": "FeatureCollection"}, "type"),
        (pipe_body() | {"properties": [1, 2]}, "properties"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: FlaskClient, connection: sa.Connection, body: dict[str, Any], field: str
) -> None:
    before = count(connection, "pipes"), count(connection, "asset_edits")
    response = client.post("/api/v1/assets/pipes", json=body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field
    assert (count(connection, "pipes"), count(connection, "asset_edits")) == before


def test_body_must_be_json(client: FlaskClient) -> None:
    response = client.post("/api/v1/assets/pipes", data="x", content_type="text/plain")
    assert response.status_code == 415
    response = client.post(
        "/api/v1/assets/pipes", data="{not json", content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json["field"] == "body"


def test_geometry_in_another_crs(client: FlaskClient) -> None:
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [385700.0, 6672126.0]},
        "properties": {"condition": "fair"},
    }
    response = client.post(
        "/api/v1/assets/hydrants",
        json=body,
        headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/3067>"},
    )
    assert response.status_code == 201, response.json
    lon, lat = response.json["geometry"]["coordinates"]
    assert lon == pytest.approx(24.94, abs=0.01) and lat == pytest.approx(60.17, abs=0.01)


def test_duplicate_meter_serial_is_a_conflict(
    client: FlaskClient, connection: sa.Connection
) -> None:
    meter = load_fixture("meters")[0]
    before = count(connection, "meters")
    body = {
        "type": "Feature",
        "geometry": meter["geometry"],
        "properties": {"serial": meter["properties"]["serial"]},
    }
    response = client.post("/api/v1/assets/meters", json=body)
    assert response.status_code == 409
    assert count(connection, "meters") == before


def test_patch_records_who_changed_what(client: FlaskClient) -> None:
    pipe = load_fixture("pipes")[0]
    url = f"/api/v1/assets/pipes/{pipe['id']}"
    new_diameter = pipe["properties"]["diameter_mm"] + 50
    response = client.patch(
        url,
        json={
            "type": "Feature",
            "properties": {"diameter_mm": new_diameter, "material": pipe["properties"]["material"]},
        },
    )
    assert response.status_code == 200, response.json
    assert response.json["properties"]["diameter_mm"] == new_diameter
    assert response.json["properties"]["updated_at"] >= response.json["properties"]["created_at"]
    edits = client.get(url + "/history").json["edits"]
    # The unchanged material is not an edit.
    assert [(e["field"], e["old"], e["new"]) for e in edits] == [
        ("diameter_mm", pipe["properties"]["diameter_mm"], new_diameter)
    ]
    assert edits[0]["actor"] and edits[0]["at"]


def test_patch_geometry_is_audited(client: FlaskClient) -> None:
    hydrant = load_fixture("hydrants")[0]
    lon, lat = hydrant["geometry"]["coordinates"]
    url = f"/api/v1/assets/hydrants/{hydrant['id']}"
    moved = {"type": "Point", "coordinates": [lon + 0.0001, lat]}
    assert client.patch(url, json={"type": "Feature", "geometry": moved}).status_code == 200
    edits = client.get(url + "/history").json["edits"]
    assert edits[-1]["field"] == "geometry"
    assert edits[-1]["old"]["coordinates"] == pytest.approx([lon, lat])


def test_bad_patch_changes_nothing(client: FlaskClient) -> None:
    pipe = load_fixture("pipes")[1]
    url = f"/api/v1/assets/pipes/{pipe['id']}"
    before = client.get(url).json
    response = client.patch(
        url, json={"type": "Feature", "properties": {"depth_m": 1.5, "material": "gold"}}
    )
    assert response.status_code == 422
    assert response.json["field"] == "properties.material"
    assert client.get(url).json == before
    assert client.get(url + "/history").json["edits"] == []


def test_delete(client: FlaskClient, connection: sa.Connection) -> None:
    marker = load_fixture("markers")[0]["id"]
    assert client.delete(f"/api/v1/assets/markers/{marker}").status_code == 204
    assert client.get(f"/api/v1/assets/markers/{marker}").status_code == 404
    edits = client.get(f"/api/v1/assets/markers/{marker}/history").json["edits"]
    assert edits[-1]["action"] == "delete" and edits[-1]["old"]["geometry"]["type"] == "Point"


def test_delete_of_a_referenced_asset_is_a_conflict(
    client: FlaskClient, connection: sa.Connection
) -> None:
    hydrant = load_fixture("hydrants")[0]
    pipe = hydrant["properties"]["pipe"]
    before = count(connection, "pipes")
    response = client.delete(f"/api/v1/assets/pipes/{pipe}")
    assert response.status_code == 409
    assert count(connection, "pipes") == before


def test_oversized_body_is_refused(client: FlaskClient, settings: Any) -> None:
    body = "x" * (settings.max_request_bytes + 1)
    response = client.post("/api/v1/assets/pipes", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
