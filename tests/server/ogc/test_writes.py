"""Part 4, create, replace, update and delete: the same validation and audit history as the
REST API, with edits recorded as made through the OGC API."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.server import create_app
from fieldline.settings import Settings, load_settings
from tests.conftest import load_fixture

PIPES = "/ogc/collections/pipes/items"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def pipe(**properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[24.9401, 60.1701], [24.9412, 60.1705]]},
        "properties": {"material": "PE", "diameter_mm": 160, "pressure_zone": "PZ-9"} | properties,
    }


def history(client: FlaskClient, fid: str) -> list[dict[str, Any]]:
    edits: list[dict[str, Any]] = client.get(f"/api/v1/assets/pipes/{fid}/history").json["edits"]
    return edits


def create(client: FlaskClient, **properties: Any) -> tuple[str, str]:
    response = client.post(PIPES, json=pipe(**properties))
    assert response.status_code == 201, response.json
    return response.json["id"], response.headers["Location"]


def test_create_answers_201_with_location(client: FlaskClient) -> None:
    response = client.post(PIPES, json=pipe(), headers={"Content-Type": "application/geo+json"})
    assert response.status_code == 201, response.json
    fid = response.json["id"]
    assert response.headers["Location"].endswith(f"{PIPES}/{fid}")
    stored = client.get(response.headers["Location"]).json
    assert stored["properties"]["material"] == "PE"
    assert stored["properties"]["status"] == "in_service"  # the default
    assert [(e["action"], e["source"]) for e in history(client, fid)] == [("create", "ogc")]


def test_replace_sets_every_attribute(client: FlaskClient) -> None:
    node = load_fixture("nodes")[0]["id"]
    fid, location = create(client, from_node=node, status="planned", depth_m=1.5)
    body = {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "LineString", "coordinates": [[24.9402, 60.1702], [24.9413, 60.1706]]},
        "properties": {"material": "PVC", "diameter_mm": 110, "length_m": 1, "created_at": "x"},
    }
    response = client.put(location, json=body)
    assert response.status_code == 204, response.json
    properties = client.get(location).json["properties"]
    assert properties["material"] == "PVC"
    assert properties["diameter_mm"] == 110
    assert properties["status"] == "in_service"  # left out: back to the default
    assert properties["from_node"] is None  # left out: null
    assert properties["depth_m"] is None
    assert properties["pressure_zone"] is None
    assert properties["length_m"] > 60  # read-only values sent back are ignored
    changed = {e["field"] for e in history(client, fid) if e["action"] == "update"}
    expected = {"material", "diameter_mm", "status", "from_node", "depth_m", "pressure_zone"}
    assert changed == expected | {"geometry"}
    assert {e["source"] for e in history(client, fid)} == {"ogc"}


def test_patch_changes_only_what_it_names(client: FlaskClient) -> None:
    fid, location = create(client, install_year=1999)
    # As QGIS sends it: a merge patch without "type", with computed values it read earlier.
    patch = {"properties": {"diameter_mm": 200, "length_m": 5, "updated_at": "2020-01-01"}}
    response = client.patch(location, json=patch, headers=MERGE_PATCH)
    assert response.status_code == 204, response.json
    properties = client.get(location).json["properties"]
    assert properties["diameter_mm"] == 200
    assert properties["install_year"] == 1999
    assert properties["material"] == "PE"
    edits = [e for e in history(client, fid) if e["action"] == "update"]
    assert [(e["field"], e["old"], e["new"], e["source"]) for e in edits] == [
        ("diameter_mm", 160, 200, "ogc")
    ]
    nulled = client.patch(
        location, json={"properties": {"install_year": None}}, headers=MERGE_PATCH
    )
    assert nulled.status_code == 204
    assert client.get(location).json["properties"]["install_year"] is None


def test_delete_then_gone(client: FlaskClient, connection: sa.Connection) -> None:
    fid, location = create(client)
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.delete(location).status_code == 404
    action, source = connection.execute(
        sa.text("SELECT action, source FROM asset_edits WHERE asset_id = :id ORDER BY id DESC"),
        {"id": fid},
    ).first()  # type: ignore[misc]
    assert (action, source) == ("delete", "ogc")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pipe(material="granite"), "properties.material"),
        (pipe(colour="red"), "properties.colour"),
        (pipe() | {"geometry": {"type": "Point", "coordinates": [24.9, 60.1]}}, "geometry.type"),
        (pipe() | {"id": "P-1"}, "id"),
        ({"properties": {}}, "type"),
    ],
)
def test_bad_bodies_are_422s_and_store_nothing(
    client: FlaskClient, connection: sa.Connection, body: dict[str, Any], field: str
) -> None:
    before = connection.execute(sa.text("SELECT count(*) FROM pipes")).scalar_one()
    response = client.post(PIPES, json=body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field
    assert connection.execute(sa.text("SELECT count(*) FROM pipes")).scalar_one() == before


def test_replace_checks_the_id_and_the_feature(client: FlaskClient) -> None:
    _, location = create(client)
    wrong = client.put(location, json=pipe() | {"id": "P-000001"})
    assert wrong.status_code == 422
    assert wrong.json["field"] == "id"
    missing = client.put(f"{PIPES}/P-999999", json=pipe())
    assert missing.status_code == 404
    assert client.patch(f"{PIPES}/P-999999", json={}, headers=MERGE_PATCH).status_code == 404


def test_wrong_media_type_and_unknown_collection(client: FlaskClient) -> None:
    response = client.post(PIPES, data="material=PE", content_type="text/plain")
    assert response.status_code == 415
    assert client.post("/ogc/collections/sewers/items", json=pipe()).status_code == 404
    _, location = create(client)
    merge_put = client.put(location, json=pipe(), headers=MERGE_PATCH)
    assert merge_put.status_code == 415  # a replacement is a whole feature, not a patch


def test_writes_need_the_write_permission(settings: Settings, connection: sa.Connection) -> None:
    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    client = create_app(viewer, bind=connection).test_client()
    fid = load_fixture("pipes")[0]["id"]
    assert client.post(PIPES, json=pipe()).status_code == 403
    assert client.put(f"{PIPES}/{fid}", json=pipe()).status_code == 403
    assert client.patch(f"{PIPES}/{fid}", json={}, headers=MERGE_PATCH).status_code == 403
    assert client.delete(f"{PIPES}/{fid}").status_code == 403
    assert client.get(f"{PIPES}/{fid}").status_code == 200
