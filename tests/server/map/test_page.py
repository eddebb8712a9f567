"""`/` and `/map`: the map page for browsers with its configuration, the JSON links for
programs, and the bundled files the page loads."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.gis.layers import LAYERS
from fieldline.server import create_app
from fieldline.settings import Settings, load_settings

# What Chromium and Firefox send when they open a page.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CONFIG = re.compile(r'<script id="fieldline-config" type="application/json">(.*?)</script>', re.S)


def page_config(html: str) -> dict[str, Any]:
    found = CONFIG.search(html)
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def coordinates(geometry: dict[str, Any]) -> list[list[float]]:
    points = geometry["coordinates"]
    return [points] if geometry["type"] == "Point" else points


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_programs_still_get_the_links_at_the_root(client: FlaskClient, accept: str | None) -> None:
    response = client.get("/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert "Accept" in response.headers["Vary"]
    rels = [link["rel"] for link in (response.json or {})["links"]]
    assert {"assets", "items", "health", "ready", "map"} <= set(rels)
    assert rels.count("items") == len(LAYERS)


@pytest.mark.parametrize("path", ["/", "/map"])
def test_browsers_get_the_map_page(client: FlaskClient, fixture_features: Any, path: str) -> None:
    response = client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    html = response.get_data(as_text=True)
    config = page_config(html)

    # The extent is the water network's (not the roads'), worked out from the fixture files.
    points = [
        point
        for name, layer in LAYERS.items()
        if layer.network
        for feature in fixture_features(name)
        for point in coordinates(feature["geometry"])
    ]
    expected = [
        min(p[0] for p in points),
        min(p[1] for p in points),
        max(p[0] for p in points),
        max(p[1] for p in points),
    ]
    assert config["extent"] == pytest.approx(expected, abs=1e-9)
    assert config["base_tiles"] is None
    assert config["live_url"] == "/api/v1/live"
    assert config["crew_stale_after_s"] == load_settings().crew_stale_after_s
    names = [layer["name"] for layer in config["layers"]]
    assert names == ["roads", "pipes", "meters", "valves", "hydrants", "stations"]
    for layer in config["layers"]:
        assert layer["tiles"] == f"/tiles/{layer['name']}/{{z}}/{{x}}/{{y}}.mvt"
    assert {layer["name"]: layer["min_zoom"] for layer in config["layers"]}["meters"] == 16
    # "Create task here" offers the kinds the tasks API takes at one asset of the layer.
    kinds = {name: [k["kind"] for k in found] for name, found in config["task_kinds"].items()}
    assert kinds["valves"] == ["repair", "inspection", "valve_operation"]
    assert kinds["hydrants"] == ["repair", "inspection"]
    assert "patrol" in kinds["pipes"] and "meter_reading" in kinds["meters"]
    assert "roads" not in kinds

    # The bundled script and styles the page names are served (with a version to bust caches).
    for url in re.findall(r'(?:src|href)="(/map/static/[^"]+)"', html):
        assert re.search(r"\?v=[0-9a-f]{12}$", url)
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.data) > 1000
        asset.close()


def test_the_base_map_setting_reaches_the_page(
    settings: Settings, connection: sa.Connection
) -> None:
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    configured = load_settings(
        database_url=settings.database_url,
        map_base_tiles_url=url,
        map_base_tiles_attribution="© Example",
    )
    client = create_app(configured, bind=connection).test_client()
    config = page_config(client.get("/map").get_data(as_text=True))
    assert config["base_tiles"] == {"url": url, "attribution": "© Example"}
