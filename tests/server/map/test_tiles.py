"""`/tiles/{layer}/{z}/{x}/{y}.mvt` read back by GDAL's MVT driver (through pyogrio) and
compared with the fixture files, the independent side."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient
from pyogrio import raw
from pyproj import Transformer
from shapely.geometry import box, shape

from fieldline.server.map.services import TILE_BUFFER, TILE_EXTENT

CENTRE = (24.944, 60.172)  # in the middle of the fixture city
TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
MERCATOR_HALF_M = 20037508.342789244


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_box(z: int, x: int, y: int, grow: float = 0.0) -> shapely.Polygon:
    """The tile's box in longitude and latitude, grown by `grow` of its width each side."""

    def lon(tx: float) -> float:
        return tx / 2**z * 360 - 180

    def lat(ty: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / 2**z))))

    return box(lon(x - grow), lat(y + 1 + grow), lon(x + 1 + grow), lat(y - grow))


def read_tile(tmp_path: Path, body: bytes, layer: str, z: int, x: int, y: int) -> dict[str, Any]:
    """The tile's features as GDAL reads them; the z/x/y path places them in EPSG:3857."""
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    meta, _, geometries, columns = raw.read(path, layer=layer)
    fields = list(meta["fields"])
    rows = [dict(zip(fields, values, strict=True)) for values in zip(*columns, strict=True)]
    return {
        "fields": set(fields) - {"mvt_id"},  # GDAL's own column for the MVT feature id
        "crs": meta["crs"],
        "rows": rows,
        "geometries": [shapely.from_wkb(g) for g in geometries],
    }


def get_tile(client: FlaskClient, layer: str, z: int, x: int, y: int) -> Any:
    return client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")


def test_a_tile_holds_the_pipes_in_it_with_the_attributes_the_map_needs(
    client: FlaskClient, fixture_features: Any, tmp_path: Path
) -> None:
    z = 15
    x, y = tile_at(*CENTRE, z)
    response = get_tile(client, "pipes", z, x, y)
    assert response.status_code == 200
    assert response.content_type == "application/vnd.mapbox-vector-tile"
    tile = read_tile(tmp_path, response.data, "pipes", z, x, y)
    assert tile["crs"] == "EPSG:3857"
    assert tile["fields"] == {"id", "material", "diameter_mm", "status"}

    pipes = {f["id"]: f for f in fixture_features("pipes")}
    found = {row["id"]: row for row in tile["rows"]}
    inside = {i for i, f in pipes.items() if shape(f["geometry"]).intersects(tile_box(z, x, y))}
    margin = TILE_BUFFER / TILE_EXTENT
    near = {
        i for i, f in pipes.items() if shape(f["geometry"]).intersects(tile_box(z, x, y, margin))
    }
    assert inside and inside <= set(found) <= near
    for public_id, row in found.items():
        properties = pipes[public_id]["properties"]
        assert row["material"] == properties["material"]
        assert row["diameter_mm"] == properties["diameter_mm"]
        assert row["status"] == properties["status"]


def test_points_sit_where_the_fixture_puts_them(
    client: FlaskClient, fixture_features: Any, tmp_path: Path
) -> None:
    z = 16
    x, y = tile_at(*CENTRE, z)
    response = get_tile(client, "hydrants", z, x, y)
    tile = read_tile(tmp_path, response.data, "hydrants", z, x, y)
    hydrants = {f["id"]: f for f in fixture_features("hydrants")}
    assert tile["rows"]
    grid_m = 2 * MERCATOR_HALF_M / 2**z / TILE_EXTENT  # one unit of the tile's grid
    for row, point in zip(tile["rows"], tile["geometries"], strict=True):
        feature = hydrants[row["id"]]
        assert row["condition"] == feature["properties"]["condition"]
        expected = TO_MERCATOR.transform(*feature["geometry"]["coordinates"])
        assert math.dist((point.x, point.y), expected) <= grid_m


def test_meters_come_from_zoom_16(client: FlaskClient, tmp_path: Path) -> None:
    for z, status in ((15, 204), (16, 200)):
        x, y = tile_at(*CENTRE, z)
        response = get_tile(client, "meters", z, x, y)
        assert response.status_code == status, z
    tile = read_tile(tmp_path, response.data, "meters", 16, x, y)
    assert tile["rows"] and all(row["id"].startswith("M-") for row in tile["rows"])


def test_below_zoom_12_only_trunk_mains_are_drawn(
    client: FlaskClient, fixture_features: Any, tmp_path: Path
) -> None:
    z = 11
    x, y = tile_at(*CENTRE, z)
    pipes = fixture_features("pipes")
    assert all(shape(f["geometry"]).within(tile_box(z, x, y)) for f in pipes)
    tile = read_tile(tmp_path, get_tile(client, "pipes", z, x, y).data, "pipes", z, x, y)
    trunk = {f["id"] for f in pipes if f["properties"]["diameter_mm"] >= 300}
    assert trunk and {row["id"] for row in tile["rows"]} == trunk
    # From zoom 12 every main is there again.
    x, y = tile_at(*CENTRE, 12)
    tile = read_tile(tmp_path, get_tile(client, "pipes", 12, x, y).data, "pipes", 12, x, y)
    assert {row["id"] for row in tile["rows"]} > trunk


def test_stations_list_their_metrics(
    client: FlaskClient, fixture_features: Any, tmp_path: Path
) -> None:
    z = 12
    x, y = tile_at(*CENTRE, z)
    tile = read_tile(tmp_path, get_tile(client, "stations", z, x, y).data, "stations", z, x, y)
    stations = {f["id"]: f["properties"] for f in fixture_features("stations")}
    assert {row["id"] for row in tile["rows"]} == set(stations)
    for row in tile["rows"]:
        expected = stations[row["id"]]
        assert (row["name"], row["kind"]) == (expected["name"], expected["kind"])
        assert row["metrics"].split(",") == expected["metrics"]


def test_a_tile_outside_the_network_is_empty(client: FlaskClient) -> None:
    for layer in ("pipes", "roads", "hydrants"):
        response = get_tile(client, layer, 15, 0, 0)
        assert response.status_code == 204
        assert response.data == b""
        assert "max-age" in response.headers["Cache-Control"]


def test_tiles_are_cached_for_a_while_and_revalidated(client: FlaskClient) -> None:
    x, y = tile_at(*CENTRE, 15)
    first = get_tile(client, "pipes", 15, x, y)
    assert first.headers["Cache-Control"] == "private, max-age=60"
    etag = first.headers["ETag"]
    again = client.get(f"/tiles/pipes/15/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/tiles/sewers/15/1/1.mvt", "layer"),
        ("/tiles/pipes/23/1/1.mvt", "z"),
        ("/tiles/pipes/fifteen/1/1.mvt", "z"),
        ("/tiles/pipes/2/4/1.mvt", "x"),
        ("/tiles/pipes/2/1/-1.mvt", "y"),
        ("/tiles/pipes/15/1/%D9%A1.mvt", "y"),  # an Arabic-Indic one: a digit, not ASCII
    ],
)
def test_bad_tile_addresses_name_the_part_at_fault(
    client: FlaskClient, path: str, field: str
) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert (response.json or {})["field"] == field


def test_tiles_and_the_page_need_assets_read(app: Flask) -> None:
    for endpoint in ("map.tile", "map.page"):
        view = app.view_functions[endpoint]
        assert getattr(view, "required_permission", None) == "assets:read"
