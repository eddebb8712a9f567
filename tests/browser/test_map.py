"""The dispatcher's map in a real browser: it opens on the whole fixture network, draws every
main from the vector tiles, its legend hides and shows layers by mouse and keyboard, and the
layout holds at tablet width."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.timeout(90)

DRAWN = """(layer) => {
  const handle = window.fieldlineMap;
  return !!handle && handle.map.loaded() && handle.map.isSourceLoaded(layer)
    && handle.map.queryRenderedFeatures({layers: [layer]}).length > 0;
}"""
HIDDEN = """(layer) => {
  const map = window.fieldlineMap.map;
  return map.getLayoutProperty(layer, 'visibility') === 'none'
    && map.queryRenderedFeatures({layers: [layer]}).length === 0;
}"""
RENDERED_IDS = """(layer) => [...new Set(window.fieldlineMap.map
  .queryRenderedFeatures({layers: [layer]}).map((feature) => feature.properties.id))]"""
WAIT_MS = 30_000


def open_map(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(DRAWN, arg="pipes", timeout=WAIT_MS)


def rendered_ids(page: Page, layer: str) -> set[str]:
    return set(page.evaluate(RENDERED_IDS, layer))


def test_the_map_opens_on_the_whole_network(
    page: Page, server_url: str, fixture_features: Any, console_errors: list[str]
) -> None:
    # A browser asks for HTML at `/` and gets the map, not the JSON links of programs.
    response = page.goto(server_url + "/")
    assert response is not None and response.headers["content-type"].startswith("text/html")
    page.wait_for_function(DRAWN, arg="pipes", timeout=WAIT_MS)
    page.wait_for_function(DRAWN, arg="hydrants", timeout=WAIT_MS)

    # The map fits the network's extent: every main of the fixture is drawn from the tiles.
    assert rendered_ids(page, "pipes") == {feature["id"] for feature in fixture_features("pipes")}
    hydrants = {feature["id"] for feature in fixture_features("hydrants")}
    assert rendered_ids(page, "hydrants") == hydrants
    assert rendered_ids(page, "roads")
    # Meters start at zoom 16; the legend says so while the map is further out.
    assert page.evaluate("window.fieldlineMap.map.getZoom()") < 16
    assert rendered_ids(page, "meters") == set()
    expect(page.locator('.fl-layer[data-layer="meters"] .fl-hint')).to_be_visible()

    expect(page.locator('[data-status="server"]')).to_have_attribute("data-state", "ok")
    expect(page.locator('[data-status="live"]')).to_have_attribute("data-state", "open")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = page.screenshot(path=str(ARTIFACTS / "map-opening.png"))
    assert shot.startswith(b"\x89PNG")
    assert console_errors == []


def test_meters_appear_from_zoom_16(page: Page, server_url: str, fixture_features: Any) -> None:
    open_map(page, server_url + "/map")
    meter = fixture_features("meters")[0]
    lon, lat = meter["geometry"]["coordinates"]
    page.evaluate(f"window.fieldlineMap.map.jumpTo({{center: [{lon}, {lat}], zoom: 17}})")
    page.wait_for_function(DRAWN, arg="meters", timeout=WAIT_MS)
    assert meter["id"] in rendered_ids(page, "meters")
    expect(page.locator('.fl-layer[data-layer="meters"] .fl-hint')).to_be_hidden()


def test_legend_checkboxes_hide_and_show_layers(page: Page, server_url: str) -> None:
    open_map(page, server_url + "/map")
    pipes = page.get_by_label("Pipes", exact=True)
    expect(pipes).to_be_checked()
    pipes.uncheck()
    page.wait_for_function(HIDDEN, arg="pipes", timeout=WAIT_MS)
    # The other layers stay.
    assert rendered_ids(page, "hydrants")
    pipes.check()
    page.wait_for_function(DRAWN, arg="pipes", timeout=WAIT_MS)


def test_legend_is_reachable_and_works_from_the_keyboard(page: Page, server_url: str) -> None:
    open_map(page, server_url + "/map")
    page.wait_for_function(DRAWN, arg="hydrants", timeout=WAIT_MS)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "fl-toggle-hydrants":
            break
    else:
        pytest.fail("Tab never reached the hydrants' checkbox")
    page.keyboard.press("Space")
    expect(page.get_by_label("Hydrants", exact=True)).not_to_be_checked()
    page.wait_for_function(HIDDEN, arg="hydrants", timeout=WAIT_MS)


@pytest.mark.parametrize("viewport", [{"width": 768, "height": 1024}], ids=["tablet"])
def test_tablet_width_keeps_map_legend_and_status_in_view(
    page: Page, server_url: str, viewport: dict[str, int]
) -> None:
    open_map(page, server_url + "/map")
    canvas = page.locator(".maplibregl-canvas").bounding_box()
    legend = page.locator("#legend").bounding_box()
    status = page.locator("#status").bounding_box()
    assert canvas is not None and legend is not None and status is not None
    assert canvas["width"] == viewport["width"]
    # The legend lies over the map, wholly on screen, and leaves most of the map free.
    assert legend["x"] >= 0 and legend["x"] + legend["width"] <= viewport["width"]
    assert legend["width"] < viewport["width"] / 2
    assert status["y"] + status["height"] <= viewport["height"]
    expect(page.get_by_label("Pipes", exact=True)).to_be_visible()
