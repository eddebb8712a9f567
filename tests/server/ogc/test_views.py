"""OGC API - Features Part 1 (core, GeoJSON, HTML) and Part 3 filters, checked against the
fixture files with Shapely rather than against the server's own SQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import shapely
import sqlalchemy as sa
from flask.testing import FlaskClient
from shapely.geometry import box, shape

from fieldline.gis.layers import LAYERS
from fieldline.server import create_app
from fieldline.settings import Settings, load_settings
from tests.conftest import load_fixture

ROOT = "/ogc"


def path(href: str) -> str:
    parts = urlsplit(href)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def links(document: dict[str, Any], rel: str) -> list[dict[str, str]]:
    return [link for link in document["links"] if link["rel"] == rel]


def walk(client: FlaskClient, url: str, rel: str = "next") -> list[tuple[str, list[str]]]:
    """Each page's URL and ids, following `rel` links to the end."""
    pages: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    while url:
        assert url not in seen, "paging must not loop"
        seen.add(url)
        response = client.get(url)
        assert response.status_code == 200, response.json
        assert response.mimetype == "application/geo+json"
        body = response.json
        assert body["numberReturned"] == len(body["features"]) > 0, "a link to an empty page"
        pages.append((url, [f["id"] for f in body["features"]]))
        found = links(body, rel)
        url = path(found[0]["href"]) if found else ""
    return pages


def ids(pages: list[tuple[str, list[str]]]) -> list[str]:
    return [i for _, page in pages for i in page]


def test_landing_page_links_what_clients_need(client: FlaskClient) -> None:
    response = client.get(ROOT)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    landing = response.json
    (desc,) = links(landing, "service-desc")
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert path(desc["href"]) == "/ogc/api"
    assert links(landing, "service-doc")[0]["type"] == "text/html"
    assert path(links(landing, "conformance")[0]["href"]) == "/ogc/conformance"
    assert path(links(landing, "data")[0]["href"]) == "/ogc/collections"
    assert client.get(ROOT + "/").json == landing  # clients that add a slash (owslib)
    api = client.get(path(desc["href"]))
    assert api.mimetype == "application/vnd.oai.openapi+json"
    assert api.json["openapi"] == "3.0.3"


def test_conformance_declares_the_parts_served(client: FlaskClient) -> None:
    classes = client.get(ROOT + "/conformance").json["conformsTo"]
    for name in ("core", "geojson", "html", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{name}" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete" in (
        classes
    )


def test_collections_are_the_layers_with_their_extent(client: FlaskClient) -> None:
    described = client.get(ROOT + "/collections").json["collections"]
    assert [(c["id"], c["title"]) for c in described] == [
        (name, layer.title) for name, layer in LAYERS.items()
    ]
    for collection in described:
        bounds = shapely.total_bounds(
            [shape(f["geometry"]) for f in load_fixture(collection["id"])]
        )
        (extent,) = collection["extent"]["spatial"]["bbox"]
        assert extent == pytest.approx(list(bounds), abs=1e-7)
        assert collection["crs"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
        assert collection["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
        (items,) = [link for link in links(collection, "items") if "geo+json" in link["type"]]
        assert path(items["href"]).startswith(f"/ogc/collections/{collection['id']}/items")
    assert client.get(ROOT + "/collections/pipes").json == described[1]


def test_paging_forward_and_back_covers_a_layer_once(client: FlaskClient) -> None:
    forward = walk(client, ROOT + "/collections/hydrants/items?limit=37")
    seen = ids(forward)
    assert sorted(seen) == sorted(f["id"] for f in load_fixture("hydrants"))
    assert len(seen) == len(set(seen))
    assert len(forward) > 3
    assert all(len(page) == 37 for _, page in forward[:-1])
    last = client.get(forward[-1][0]).json
    backward = walk(client, path(links(last, "prev")[0]["href"]), rel="prev")
    assert [page for _, page in backward[::-1]] == [page for _, page in forward[:-1]]
    assert links(client.get(forward[0][0]).json, "prev") == []


def test_default_limit_and_the_maximum(settings: Settings, connection: sa.Connection) -> None:
    small = load_settings(database_url=settings.database_url, max_page_size=25)
    client = create_app(small, bind=connection).test_client()
    assert client.get(ROOT + "/collections/pipes/items").json["numberReturned"] == 10
    # The standard: a limit over the maximum is lowered, not refused.
    assert client.get(ROOT + "/collections/pipes/items?limit=1000").json["numberReturned"] == 25
    response = client.get(ROOT + "/collections/pipes/items?limit=0")
    assert response.status_code == 400
    assert response.json["field"] == "limit"


def test_bbox_and_attribute_filters_match_shapely(client: FlaskClient) -> None:
    area = box(24.940, 60.166, 24.948, 60.172)
    expected = {
        f["id"]
        for f in load_fixture("pipes")
        if shape(f["geometry"]).intersects(area) and f["properties"]["material"] == "PVC"
    }
    assert len(expected) > 5
    bbox = ",".join(map(str, area.bounds))
    pages = walk(client, ROOT + f"/collections/pipes/items?bbox={bbox}&material=PVC&limit=4")
    assert set(ids(pages)) == expected


@pytest.mark.parametrize(
    ("cql", "keep"),
    [
        ("material = 'PVC' AND diameter_mm >= 150", lambda p: p["material"] == "PVC"
         and p["diameter_mm"] >= 150),
        ("install_year BETWEEN 1950 AND 1960 OR material IN ('PE', 'steel')",
         lambda p: 1950 <= p["install_year"] <= 1960 or p["material"] in {"PE", "steel"}),
        ("CASEI(district) LIKE 'kamp%'", lambda p: p["district"].lower().startswith("kamp")),
        ("NOT (status = 'in_service')", lambda p: p["status"] != "in_service"),
    ],
)  # fmt: skip
def test_cql2_filters_match_the_fixture(client: FlaskClient, cql: str, keep: Any) -> None:
    expected = {f["id"] for f in load_fixture("pipes") if keep(f["properties"])}
    response = client.get(
        ROOT + "/collections/pipes/items", query_string={"filter": cql, "limit": 2000}
    )
    assert response.status_code == 200, response.json
    assert {f["id"] for f in response.json["features"]} == expected


def test_cql2_spatial_filter_matches_shapely(client: FlaskClient) -> None:
    area = box(24.940, 60.166, 24.948, 60.172)
    expected = {f["id"] for f in load_fixture("hydrants") if shape(f["geometry"]).within(area)}
    cql = f"S_WITHIN(geometry, {area.wkt})"
    response = client.get(
        ROOT + "/collections/hydrants/items", query_string={"filter": cql, "limit": 500}
    )
    assert response.status_code == 200, response.json
    assert {f["id"] for f in response.json["features"]} == expected


def test_datetime_selects_by_last_change(client: FlaskClient) -> None:
    url = ROOT + "/collections/markers/items"
    marker = load_fixture("markers")[0]["id"]
    everything = client.get(url, query_string={"limit": 100}).json["numberReturned"]
    assert client.get(url, query_string={"datetime": "2000-01-01T00:00:00Z/.."}).json[
        "numberReturned"
    ] == min(everything, 10)
    assert client.get(url, query_string={"datetime": "../1999-12-31"}).json["numberReturned"] == 0
    changed = client.patch(
        f"{url}/{marker}", json={"properties": {"label": "moved"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    assert changed.status_code == 204
    updated_at = client.get(f"{url}/{marker}").json["properties"]["updated_at"]
    only = client.get(url, query_string={"datetime": updated_at, "limit": 100}).json
    assert [f["id"] for f in only["features"]] == [marker]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=ten", "limit"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=24.9,60.1,24.8,60.2", "bbox"),
        ("colour=red", "colour"),
        ("material=granite", "material"),
        ("metrics=pressure", "metrics"),
        ("crs=EPSG:3067", "crs"),
        ("bbox-crs=http://www.opengis.net/def/crs/EPSG/0/2393&bbox=1,2,3,4", "bbox-crs"),
        ("datetime=yesterday", "datetime"),
        ("datetime=2024-01-01T00:00:00", "datetime"),
        ("datetime=2024-02-01/2024-01-01", "datetime"),
        ("filter=material%20%3D", "filter"),
        ("filter=colour%20%3D%20'red'", "filter"),
        ("filter-lang=cql2-json&filter=x", "filter-lang"),
        ("filter-crs=http://www.opengis.net/def/crs/EPSG/0/3067&filter=x", "filter-crs"),
        ("cursor=-1", "cursor"),
        ("cursor=1&before=5", "before"),
        ("f=xml", "f"),
    ],
)
def test_bad_parameters_are_400s_naming_them(client: FlaskClient, query: str, field: str) -> None:
    layer = "stations" if field == "metrics" else "pipes"
    response = client.get(ROOT + f"/collections/{layer}/items?{query}")
    assert response.status_code == 400, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field


def test_unknown_things_are_404s(client: FlaskClient) -> None:
    for url in ("/collections/sewers", "/collections/sewers/items", "/collections/pipes/items/P-9"):
        response = client.get(ROOT + url)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
    assert client.get(ROOT + "/collections?colour=red").json["field"] == "colour"


@pytest.mark.parametrize(
    ("accept", "mimetype"),
    [
        ("application/geo+json", "application/geo+json"),
        ("application/json", "application/geo+json"),
        ("*/*", "application/geo+json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
    ],
)
def test_accept_header_chooses_the_format(client: FlaskClient, accept: str, mimetype: str) -> None:
    response = client.get(ROOT + "/collections/valves/items?limit=2", headers={"Accept": accept})
    assert response.mimetype == mimetype
    assert client.get(
        ROOT + "/collections/valves/items?f=json", headers={"Accept": accept}
    ).mimetype == ("application/geo+json")


def test_html_views_show_every_resource(client: FlaskClient) -> None:
    pipe = load_fixture("pipes")[0]
    first_page = [f["id"] for f in client.get(ROOT + "/collections/pipes/items").json["features"]]
    pages = {
        "": ["Collections"],
        "/conformance": ["ogcapi-features-1/1.0/conf/core"],
        "/api": ["/collections/pipes/items/{featureId}"],
        "/collections": list(LAYERS),
        "/collections/pipes": ["Water mains", "EPSG/0/3067"],
        "/collections/pipes/items": first_page,
        f"/collections/pipes/items/{pipe['id']}": [pipe["id"], pipe["properties"]["material"]],
        "/collections/pipes/queryables": ["material", "cast_iron"],
    }
    for url, expected in pages.items():
        response = client.get(ROOT + url + "?f=html")
        assert response.status_code == 200, url
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert all(text in page for text in expected), url


def test_html_escapes_what_users_wrote(client: FlaskClient) -> None:
    label = '<script>alert("x")</script>'
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
        "properties": {"label": label},
    }
    created = client.post(ROOT + "/collections/markers/items", json=body)
    assert created.status_code == 201, created.json
    for url in (path(created.headers["Location"]), ROOT + "/collections/markers/items?limit=100"):
        page = client.get(url + ("&" if "?" in url else "?") + "f=html").get_data(as_text=True)
        assert "&lt;script&gt;" in page
        assert "<script>" not in page
