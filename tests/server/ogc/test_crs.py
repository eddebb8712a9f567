"""Part 2, coordinate reference systems by reference: output, bbox and body CRS, with the axis
order each CRS defines (EPSG:4326 latitude first, CRS84 longitude first), checked with pyproj."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from pyproj import Transformer
from shapely.geometry import Point, box

from tests.conftest import load_fixture

ITEMS = "/ogc/collections/hydrants/items"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def by_id(features: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {f["id"]: f["geometry"]["coordinates"] for f in features}


@pytest.fixture(scope="module")
def hydrants() -> dict[str, list[float]]:
    return by_id(load_fixture("hydrants"))


def test_default_is_crs84_longitude_first(client: FlaskClient, hydrants: dict) -> None:
    response = client.get(ITEMS + "?limit=50")
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    for fid, (lon, lat) in by_id(response.json["features"]).items():
        assert (lon, lat) == pytest.approx(hydrants[fid], abs=1e-7)


def test_epsg_4326_is_latitude_first(client: FlaskClient, hydrants: dict) -> None:
    response = client.get(ITEMS + f"?limit=50&crs={EPSG}4326")
    assert response.headers["Content-Crs"] == f"<{EPSG}4326>"
    # pyproj without always_xy keeps the authority's order: latitude, longitude.
    to_4326 = Transformer.from_crs("OGC:CRS84", "EPSG:4326")
    for fid, got in by_id(response.json["features"]).items():
        assert got == pytest.approx(list(to_4326.transform(*hydrants[fid])), abs=1e-7)
        assert got[0] > 59 and got[1] < 26  # Helsinki: latitude ~60.2 first


def test_local_crs_easting_first(client: FlaskClient, hydrants: dict) -> None:
    response = client.get(ITEMS + f"?limit=50&crs={EPSG}3067")
    assert response.headers["Content-Crs"] == f"<{EPSG}3067>"
    to_local = Transformer.from_crs("OGC:CRS84", "EPSG:3067")
    for fid, got in by_id(response.json["features"]).items():
        assert got == pytest.approx(list(to_local.transform(*hydrants[fid])), abs=0.01)
    one = next(iter(by_id(response.json["features"])))
    single = client.get(f"{ITEMS}/{one}?crs={EPSG}3067")
    assert single.headers["Content-Crs"] == f"<{EPSG}3067>"
    assert single.json["geometry"]["coordinates"] == by_id(response.json["features"])[one]


@pytest.mark.parametrize(
    ("bbox_crs", "project"),
    [
        (CRS84, lambda lon, lat: (lon, lat)),
        (f"{EPSG}4326", lambda lon, lat: (lat, lon)),
        (f"{EPSG}3067", Transformer.from_crs("OGC:CRS84", "EPSG:3067").transform),
        (f"{EPSG}3857", Transformer.from_crs("OGC:CRS84", "EPSG:3857").transform),
    ],
)
def test_bbox_in_each_offered_crs(
    client: FlaskClient, hydrants: dict, bbox_crs: str, project: Any
) -> None:
    # The corners in the CRS's own axis order; each hydrant is projected the same way (pyproj)
    # and checked against that box.
    (x0, y0), (x1, y1) = project(24.938, 60.166), project(24.947, 60.172)
    area = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    expected = {fid for fid, point in hydrants.items() if area.intersects(Point(project(*point)))}
    bbox = ",".join(map(str, area.bounds))
    response = client.get(ITEMS, query_string={"bbox": bbox, "bbox-crs": bbox_crs, "limit": 500})
    assert response.status_code == 200, response.json
    assert {f["id"] for f in response.json["features"]} == expected
    assert len(expected) > 10


def test_body_in_latitude_first_crs(client: FlaskClient) -> None:
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [60.17, 24.95]},
        "properties": {},
    }
    created = client.post(ITEMS, json=body, headers={"Content-Crs": f"<{EPSG}4326>"})
    assert created.status_code == 201, created.json
    assert created.json["geometry"]["coordinates"] == [24.95, 60.17]
    local = Transformer.from_crs("OGC:CRS84", "EPSG:3067").transform(24.951, 60.171)
    moved = client.patch(
        created.headers["Location"],
        json={"geometry": {"type": "Point", "coordinates": list(local)}},
        headers={"Content-Type": "application/merge-patch+json", "Content-Crs": f"<{EPSG}3067>"},
    )
    assert moved.status_code == 204, moved.json
    coordinates = client.get(created.headers["Location"]).json["geometry"]["coordinates"]
    assert coordinates == pytest.approx([24.951, 60.171], abs=1e-7)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("crs=EPSG:4326", "crs"),
        (f"crs={EPSG}2393", "crs"),
        (f"bbox=1,2,3,4&bbox-crs={EPSG}2393", "bbox-crs"),
        # latitude 95 only if the first axis is read as latitude
        (f"bbox=60.1,24.9,95,25&bbox-crs={EPSG}4326", "bbox"),
    ],
)
def test_unoffered_crs_or_bad_box_is_a_400(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"{ITEMS}?{query}")
    assert response.status_code == 400
    assert response.json["field"] == field


def test_unoffered_content_crs_is_a_400(client: FlaskClient) -> None:
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
        "properties": {},
    }
    response = client.post(ITEMS, json=body, headers={"Content-Crs": "<EPSG:2393>"})
    assert response.status_code == 400
    assert response.json["field"] == "Content-Crs"


def test_rest_api_keeps_longitude_first_for_4326(client: FlaskClient, hydrants: dict) -> None:
    response = client.get("/api/v1/assets/hydrants?limit=5&crs=EPSG:4326")
    for fid, got in by_id(response.json["features"]).items():
        assert got == pytest.approx(hydrants[fid], abs=1e-7)
