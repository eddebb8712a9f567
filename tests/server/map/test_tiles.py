"""`/tiles/{layer}/{z}/{x}/{y}.mvt` read back by GDAL's MVT driver (through pyogrio) and
compared with the fixture files, the independent side."""

from __future__ import annotations

import gzip
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

from fieldline.server.map.services import GENERALISED_EXTENT, TILE_BUFFER, TILE_EXTENT

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


def mercator(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(
        geometry, lambda xy: list(zip(*TO_MERCATOR.transform(*xy.T), strict=True))
    )


def farthest(vertices_of: shapely.Geometry, geometry: shapely.Geometry) -> float:
    """How far the farthest vertex of the first geometry lies from the second."""
    return float(
        shapely.distance(shapely.points(shapely.get_coordinates(vertices_of)), geometry).max()
    )


def test_below_zoom_12_only_trunk_mains_are_drawn_one_feature_per_style(
    client: FlaskClient, fixture_features: Any, tmp_path: Path
) -> None:
    z = 11
    x, y = tile_at(*CENTRE, z)
    pipes = fixture_features("pipes")
    assert all(shape(f["geometry"]).within(tile_box(z, x, y)) for f in pipes)
    tile = read_tile(tmp_path, get_tile(client, "pipes", z, x, y).data, "pipes", z, x, y)
    styles = ("material", "diameter_mm", "status")
    # The trunk mains of one look (material, diameter, status) travel as one feature, no id.
    assert tile["fields"] == set(styles)
    trunk: dict[tuple[Any, ...], list[shapely.Geometry]] = {}
    for feature in pipes:
        if feature["properties"]["diameter_mm"] >= 300:
            key = tuple(feature["properties"][name] for name in styles)
            trunk.setdefault(key, []).append(mercator(shape(feature["geometry"])))
    found = {
        tuple(row[name] for name in styles): geometry
        for row, geometry in zip(tile["rows"], tile["geometries"], strict=True)
    }
    assert trunk and len(found) == len(tile["rows"]) and set(found) <= set(trunk)
    # Each feature draws its mains snapped to the generalised tile's grid; a main shorter than
    # a unit of that grid (half a screen pixel) may collapse and be left out.
    grid_m = 2 * MERCATOR_HALF_M / 2**z / GENERALISED_EXTENT
    drawn = 0
    for key, mains in trunk.items():
        long = [main for main in mains if main.length > 2 * grid_m]
        if not long:
            continue
        drawn += len(long)
        assert key in found
        assert farthest(found[key], shapely.union_all(mains)) <= grid_m, key
        assert all(farthest(main, found[key]) <= grid_m for main in long), key
    assert drawn > len(found)
    # From zoom 12 every main is there again, each its own feature.
    x, y = tile_at(*CENTRE, 12)
    tile = read_tile(tmp_path, get_tile(client, "pipes", 12, x, y).data, "pipes", 12, x, y)
    assert {row["id"] for row in tile["rows"]} == {f["id"] for f in pipes}


def test_a_changed_pipe_shows_on_the_next_tile_load(
    client: FlaskClient, fixture_features: Any, tmp_path: Path
) -> None:
    trunk = [f for f in fixture_features("pipes") if f["properties"]["diameter_mm"] >= 300]
    pipe = max(trunk, key=lambda f: mercator(shape(f["geometry"])).length)
    lon, lat = shape(pipe["geometry"]).centroid.coords[0]
    was = pipe["properties"]["material"]
    now = next(m for m in ("steel", "PE") if m != was)
    # Both tiles are read once before the change, as a map would have them.
    tiles = {z: tile_at(lon, lat, z) for z in (11, 15)}
    for z, (x, y) in tiles.items():
        assert get_tile(client, "pipes", z, x, y).status_code == 200
    response = client.patch(
        f"/api/v1/assets/pipes/{pipe['id']}",
        json={"type": "Feature", "properties": {"material": now}},
    )
    assert response.status_code == 200, response.json

    x, y = tiles[15]
    tile = read_tile(tmp_path, get_tile(client, "pipes", 15, x, y).data, "pipes", 15, x, y)
    assert {row["id"]: row["material"] for row in tile["rows"]}[pipe["id"]] == now
    # Generalised: the pipe is drawn with the mains of its new look.
    x, y = tiles[11]
    tile = read_tile(tmp_path, get_tile(client, "pipes", 11, x, y).data, "pipes", 11, x, y)
    look = (now, pipe["properties"]["diameter_mm"], pipe["properties"]["status"])
    found = {
        (row["material"], row["diameter_mm"], row["status"]): geometry
        for row, geometry in zip(tile["rows"], tile["geometries"], strict=True)
    }
    grid_m = 2 * MERCATOR_HALF_M / 2**11 / GENERALISED_EXTENT
    assert farthest(mercator(shape(pipe["geometry"])), found[look]) <= grid_m


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


def test_tiles_travel_gzipped_to_those_that_take_it(client: FlaskClient) -> None:
    x, y = tile_at(*CENTRE, 15)
    plain = get_tile(client, "pipes", 15, x, y)
    assert "Content-Encoding" not in plain.headers
    path = f"/tiles/pipes/15/{x}/{y}.mvt"
    packed = client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data)
    # Each form has its own ETag, and either is revalidated.
    assert packed.headers["ETag"] != plain.headers["ETag"]
    headers = {"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
    assert client.get(path, headers=headers).status_code == 304


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
