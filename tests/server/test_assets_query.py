"""Spatial and attribute queries through the REST API, checked against an independent
computation (Shapely and pyproj) on the fixture files themselves."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import shapely
from flask.testing import FlaskClient
from pyproj import Geod, Transformer
from shapely.geometry import box, shape

from tests.conftest import load_fixture

GEOD = Geod(ellps="WGS84")
TO_LOCAL = Transformer.from_crs(4326, 3067, always_xy=True)


def fetch_all(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """Follow `next` links to the end, as a client would."""
    features: list[dict[str, Any]] = []
    seen_urls = set()
    while url:
        assert url not in seen_urls, "paging must not loop"
        seen_urls.add(url)
        response = client.get(url)
        assert response.status_code == 200, response.json
        body = response.json
        assert body["numberReturned"] == len(body["features"])
        features.extend(body["features"])
        nexts = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = _path(nexts[0]) if nexts else ""
    return features


def _path(href: str) -> str:
    parts = urlsplit(href)
    return f"{parts.path}?{parts.query}"


@pytest.fixture(scope="module")
def pipes() -> list[dict[str, Any]]:
    return load_fixture("pipes")


@pytest.fixture(scope="module")
def hydrants() -> list[dict[str, Any]]:
    return load_fixture("hydrants")


def to_local(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(
        geometry, lambda xy: np.column_stack(TO_LOCAL.transform(xy[:, 0], xy[:, 1]))
    )


def centre(features: list[dict[str, Any]]) -> tuple[float, float]:
    bounds = shapely.total_bounds([shape(f["geometry"]) for f in features])
    return (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2


def test_bbox_returns_exactly_the_pipes_shapely_finds(
    client: FlaskClient, pipes: list[dict]
) -> None:
    lon, lat = centre(pipes)
    area = box(lon - 0.01, lat - 0.005, lon + 0.01, lat + 0.005)
    expected = {f["id"] for f in pipes if shape(f["geometry"]).intersects(area)}
    assert len(expected) > 20, "the box should hold a fair sample of the fixture city"
    got = fetch_all(client, f"/api/v1/assets/pipes?bbox={','.join(map(str, area.bounds))}&limit=7")
    ids = [f["id"] for f in got]
    assert len(ids) == len(set(ids)), "a feature appeared on two pages"
    assert set(ids) == expected


def test_paging_walks_a_whole_layer_once(client: FlaskClient, hydrants: list[dict]) -> None:
    got = fetch_all(client, "/api/v1/assets/hydrants?limit=500")
    assert sorted(f["id"] for f in got) == sorted(f["id"] for f in hydrants)


def test_near_matches_geodesic_distances(client: FlaskClient, hydrants: list[dict]) -> None:
    lon, lat = centre(hydrants)
    radius_m = 400.0
    distances = {}
    for feature in hydrants:
        x, y = feature["geometry"]["coordinates"]
        distances[feature["id"]] = GEOD.inv(lon, lat, x, y)[2]
    expected = {fid for fid, d in distances.items() if d <= radius_m}
    assert expected, "the fixture city should have hydrants near its centre"
    got = fetch_all(client, f"/api/v1/assets/hydrants?near={lon},{lat}&radius_m={radius_m}")
    assert {f["id"] for f in got} == expected
    for feature in got:
        assert feature["properties"]["distance_m"] == pytest.approx(
            distances[feature["id"]], abs=0.01
        )


def test_nearest_pipes_agree_with_projected_distances(
    client: FlaskClient, pipes: list[dict]
) -> None:
    lon, lat = centre(pipes)
    lon += 0.0013  # off any street corner
    point = shapely.Point(TO_LOCAL.transform(lon, lat))
    local = {f["id"]: to_local(shape(f["geometry"])).distance(point) for f in pipes}
    ranked = sorted(local, key=local.__getitem__)
    body = client.get(f"/api/v1/assets/pipes?nearest={lon},{lat}&k=5").json
    got = [f["id"] for f in body["features"]]
    assert len(got) == 5
    assert not [link for link in body["links"] if link["rel"] == "next"]
    # ETRS-TM35FIN distorts by < 0.1 % here; ties within that may swap, nothing else may.
    for rank, fid in enumerate(got):
        assert local[fid] == pytest.approx(local[ranked[rank]], rel=2e-3, abs=0.05)
        assert body["features"][rank]["properties"]["distance_m"] == pytest.approx(
            local[fid], rel=2e-3, abs=0.05
        )


def test_intersects_polygon_in_wkt_and_geojson(client: FlaskClient, pipes: list[dict]) -> None:
    lon, lat = centre(pipes)
    triangle = shapely.Polygon(
        [(lon - 0.008, lat - 0.004), (lon + 0.008, lat - 0.004), (lon, lat + 0.005)]
    )
    expected = {f["id"] for f in pipes if shape(f["geometry"]).intersects(triangle)}
    by_wkt = fetch_all(client, f"/api/v1/assets/pipes?intersects={triangle.wkt}&limit=1000")
    by_json = fetch_all(
        client, f"/api/v1/assets/pipes?intersects={shapely.to_geojson(triangle)}&limit=1000"
    )
    assert {f["id"] for f in by_wkt} == expected == {f["id"] for f in by_json}


def test_attribute_filters(client: FlaskClient, pipes: list[dict]) -> None:
    def keep(p: dict) -> bool:
        props = p["properties"]
        return (
            props["material"] == "cast_iron"
            and props["diameter_mm"] >= 150
            and props["install_year"] <= 1960
        )

    expected = {f["id"] for f in pipes if keep(f)}
    assert expected, "fixture city should have old cast iron mains"
    got = fetch_all(
        client,
        "/api/v1/assets/pipes?material=cast_iron&diameter_mm_min=150&install_year_max=1960&limit=1000",
    )
    assert {f["id"] for f in got} == expected


def test_filter_by_reference(client: FlaskClient, hydrants: list[dict]) -> None:
    pipe_id = hydrants[0]["properties"]["pipe"]
    expected = {f["id"] for f in hydrants if f["properties"]["pipe"] == pipe_id}
    got = fetch_all(client, f"/api/v1/assets/hydrants?pipe={pipe_id}")
    assert {f["id"] for f in got} == expected


def test_output_crs_round_trip_matches_pyproj(client: FlaskClient, hydrants: list[dict]) -> None:
    feature = hydrants[0]
    lon, lat = feature["geometry"]["coordinates"]
    response = client.get(f"/api/v1/assets/hydrants/{feature['id']}?crs=EPSG:3067")
    assert response.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/3067>"
    x, y = response.json["geometry"]["coordinates"]
    ex, ey = TO_LOCAL.transform(lon, lat)
    assert (x, y) == pytest.approx((ex, ey), abs=0.01)
    # And back: a bbox given in EPSG:3067 around that point finds the hydrant.
    url = (
        f"/api/v1/assets/hydrants?bbox={x - 1},{y - 1},{x + 1},{y + 1}"
        "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3067"
    )
    assert feature["id"] in {f["id"] for f in client.get(url).json["features"]}


def test_web_mercator_output(client: FlaskClient, hydrants: list[dict]) -> None:
    feature = hydrants[1]
    lon, lat = feature["geometry"]["coordinates"]
    got = client.get(f"/api/v1/assets/hydrants/{feature['id']}?crs=EPSG:3857").json
    expected = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    assert tuple(got["geometry"]["coordinates"]) == pytest.approx(expected, abs=0.01)


def test_around_lists_every_layer_nearest_first(client: FlaskClient, hydrants: list[dict]) -> None:
    lon, lat = hydrants[0]["geometry"]["coordinates"]
    body = client.get(f"/api/v1/assets/around?lon={lon}&lat={lat}&radius_m=60").json
    layers = {f["properties"]["layer"] for f in body["features"]}
    assert {"hydrants", "pipes"} <= layers
    assert "roads" not in layers
    distances = [f["properties"]["distance_m"] for f in body["features"]]
    assert distances == sorted(distances)
    assert body["features"][0]["id"] == hydrants[0]["id"]
    assert all(d <= 60 for d in distances)


def test_pipe_length_is_geodesic(client: FlaskClient, pipes: list[dict]) -> None:
    feature = pipes[3]
    expected = GEOD.geometry_length(shape(feature["geometry"]))
    got = client.get(f"/api/v1/assets/pipes/{feature['id']}").json
    assert got["properties"]["length_m"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=3,2,1,4", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=-200,0,10,10", "bbox"),
        ("near=24.9,60.1", "radius_m"),
        ("near=24.9,60.1&radius_m=-5", "radius_m"),
        ("near=24.9,60.1&radius_m=1e9", "radius_m"),
        ("nearest=24.9,60.1&k=0", "k"),
        ("nearest=24.9", "nearest"),
        ("intersects=POINT(1 2)", "intersects"),
        ("intersects=not-a-shape", "intersects"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=-1", "cursor"),
        ("crs=EPSG:999999", "crs"),
        ("crs=banana", "crs"),
        ("material=PCV", "material"),
        ("diameter_mm_min=wide", "diameter_mm_min"),
        ("colour=red", "colour"),
        ("material_min=PVC", "material_min"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_field(
    client: FlaskClient, query: str, field: str
) -> None:
    response = client.get(f"/api/v1/assets/pipes?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field
    assert response.json["detail"]


def test_unknown_layer_and_asset_are_404(client: FlaskClient) -> None:
    assert client.get("/api/v1/assets/unicorns").status_code == 404
    response = client.get("/api/v1/assets/pipes/P-999999")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_layer_catalogue(client: FlaskClient) -> None:
    layers = {layer["name"]: layer for layer in client.get("/api/v1/assets").json["layers"]}
    assert {"pipes", "valves", "hydrants", "meters", "stations", "markers", "nodes"} <= set(layers)
    material = next(a for a in layers["pipes"]["attributes"] if a["name"] == "material")
    assert "PVC" in material["enum"]
