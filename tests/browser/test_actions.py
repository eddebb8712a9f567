"""Acting from the map in a real browser: a click on a hydrant opens its attributes from the
API and a form that creates a task there; the task panel lists the crews that could go, with
their ETAs, and assigns the first from the page; a task is cancelled with a reason, confirmed
first; the API's errors show beside the field they name; Escape closes the panel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from fieldline.server.live.services import Live
from fieldline.settings import Settings
from tests.browser.conftest import ARTIFACTS, crew_on_shift

pytestmark = pytest.mark.timeout(90)

WAIT_MS = 20_000
LOADED = "() => !!window.fieldlineMap && !!window.fieldlineMap.tasks"
HYDRANT_DRAWN = """(id) => window.fieldlineMap.map.loaded() && window.fieldlineMap.map
  .queryRenderedFeatures({layers: ['hydrants']}).some((feature) => feature.properties.id === id)"""
SCREEN_POINT = """([lon, lat]) => {
  const map = window.fieldlineMap.map;
  const at = map.project([lon, lat]);
  const box = map.getCanvas().getBoundingClientRect();
  return [box.left + at.x, box.top + at.y];
}"""


@pytest.fixture(scope="module")
def hydrant(fixture_features: Any) -> dict[str, Any]:
    found: dict[str, Any] = fixture_features("hydrants")[0]
    return found


@pytest.fixture(scope="module")
def nearby_crew(
    browser_settings: Settings, browser_engine: sa.Engine, hydrant: dict[str, Any]
) -> Iterator[str]:
    """A crew on shift whose latest fix (in the server's Redis) is a street away from the
    hydrant: it is available and a candidate for work there."""
    lon, lat = hydrant["geometry"]["coordinates"]
    now = datetime.now(UTC)
    crew_id = crew_on_shift(browser_engine, "Actions crew")
    live = Live.from_url(browser_settings.redis_url, browser_settings.redis_prefix)
    try:
        point = (lon + 0.002, lat + 0.001)
        fix = {"device": "handheld", "fix_time": now.isoformat(), "lon": point[0], "lat": point[1]}
        live.update_latest(crew_id, int(now.timestamp() * 1000), point[0], point[1], fix)
        yield crew_id
    finally:
        live.client.hdel(live.keys.latest, crew_id)
        live.client.zrem(live.keys.geo, crew_id)
        live.client.hdel(live.keys.fix_ms, crew_id)
        live.client.close()


def open_on(page: Page, server_url: str, lon: float, lat: float) -> None:
    page.goto(server_url + "/map")
    page.wait_for_function(LOADED, timeout=WAIT_MS)
    page.evaluate(f"window.fieldlineMap.map.jumpTo({{center: [{lon}, {lat}], zoom: 17}})")


def click_hydrant(page: Page, hydrant: dict[str, Any]) -> None:
    page.wait_for_function(HYDRANT_DRAWN, arg=hydrant["id"], timeout=WAIT_MS)
    # A little off the centre: the click's slack still finds it.
    x, y = page.evaluate(SCREEN_POINT, hydrant["geometry"]["coordinates"])
    page.mouse.click(x + 2, y - 2)


def test_a_task_is_created_on_an_asset_and_assigned_from_the_page(
    page: Page,
    server_url: str,
    hydrant: dict[str, Any],
    nearby_crew: str,
    browser_engine: sa.Engine,
    console_errors: list[str],
) -> None:
    lon, lat = hydrant["geometry"]["coordinates"]
    open_on(page, server_url, lon, lat)
    click_hydrant(page, hydrant)

    panel = page.get_by_role("region", name=f"Hydrant {hydrant['id']}")
    expect(panel).to_be_visible(timeout=WAIT_MS)
    # Attributes from the API: the condition the tile carries, and what only the API has.
    condition = hydrant["properties"]["condition"]
    expect(panel.locator(".fl-facts")).to_contain_text("Condition")
    expect(panel.locator(".fl-facts")).to_contain_text(condition)
    expect(panel.locator(".fl-facts")).to_contain_text("Created at")
    expect(panel.get_by_role("heading", name="Recent history")).to_be_visible()
    # Focus moved into the panel.
    assert page.evaluate("document.activeElement.closest('.fl-side') !== null")

    # The API's error shows beside the field it names: a customer call needs the caller.
    form = panel.get_by_role("form", name="Create task here")
    expect(form.get_by_label("Kind")).to_have_value("repair")
    form.get_by_label("Kind").select_option("inspection")
    expect(form.get_by_label("Title")).to_have_value(f"Inspection at {hydrant['id']}")
    form.get_by_label("Source").select_option("call_centre")
    form.get_by_role("button", name="Create task").click()
    expect(page.locator("#fl-task-caller-error")).to_contain_text("caller")
    expect(form.get_by_label("Name")).to_be_focused()
    form.get_by_label("Name").fill("Ana Example")
    form.get_by_label("Phone").fill("+358 40 1234567")
    form.get_by_label("Description").fill("Hydrant leaking at the base")
    form.get_by_label("Priority").select_option("P3")
    page.screenshot(path=str(ARTIFACTS / "actions-asset-panel.png"))
    form.get_by_role("button", name="Create task").click()

    # The task panel opens on the new task with the crew among the candidates.
    task_panel = page.get_by_role("region", name="Task T-")
    expect(task_panel).to_be_visible(timeout=WAIT_MS)
    task_id = task_panel.get_by_role("heading").first.inner_text().removeprefix("Task ")
    expect(task_panel.locator(".fl-facts")).to_contain_text("Waiting for a crew")
    expect(task_panel.locator(".fl-facts")).to_contain_text("Promised arrival")
    first = task_panel.locator(".fl-candidate").first
    expect(first).to_be_visible(timeout=WAIT_MS)
    expect(task_panel.locator(f'.fl-candidate[data-crew="{nearby_crew}"]')).to_contain_text("ETA")
    created = page.request.get(f"{server_url}/api/v1/tasks/{task_id}").json()
    assert created["kind"] == "inspection"
    assert created["caller"]["name"] == "Ana Example"
    assert created["assets"][0]["id"] == hydrant["id"]
    # The page lists the crews in the API's order: the first is the quickest.
    ranked = page.request.get(f"{server_url}/api/v1/tasks/{task_id}/candidates").json()
    chosen = first.get_attribute("data-crew")
    assert chosen == ranked["candidates"][0]["crew_id"]
    page.screenshot(path=str(ARTIFACTS / "actions-task-candidates.png"))

    first.get_by_role("button", name="Assign").click()
    expect(task_panel.locator(".fl-facts")).to_contain_text("Offered to the crew", timeout=WAIT_MS)
    task = page.request.get(f"{server_url}/api/v1/tasks/{task_id}").json()
    assert task["state"] == "assigned"
    assert task["crew"] == chosen
    # The tasks layer shows it assigned, without waiting for a reload.
    page.wait_for_function(
        "(id) => window.fieldlineMap.tasks.get(id)?.state === 'assigned'",
        arg=task_id,
        timeout=WAIT_MS,
    )
    with browser_engine.connect() as connection:
        actor: str = connection.execute(
            sa.text(
                "SELECT actor_kind FROM task_transitions tt JOIN tasks t ON t.id = tt.task_id"
                " WHERE t.public_id = :id AND tt.action = 'assign'"
            ),
            {"id": task_id},
        ).scalar_one()
    assert actor == "dispatcher"

    # Escape closes the panel and gives the focus back.
    page.keyboard.press("Escape")
    expect(task_panel).to_be_hidden()
    # One panel at a time: the task's panel takes the place of the KPIs, never covers them.
    page.get_by_role("button", name="KPIs").click()
    kpis = page.get_by_role("region", name="KPIs")
    expect(kpis).to_be_visible()
    page.evaluate("(id) => window.fieldlineMap.actions.openTask(id)", task_id)
    expect(task_panel).to_be_visible()
    expect(kpis).to_be_hidden()
    expect(page.get_by_role("button", name="KPIs")).to_have_attribute("aria-expanded", "false")
    # The browser logs the refused request (422) it was shown beside the field; nothing else.
    assert [error for error in console_errors if "422" not in error] == []


def test_a_task_is_cancelled_with_a_reason(
    page: Page, server_url: str, hydrant: dict[str, Any], console_errors: list[str]
) -> None:
    lon, lat = hydrant["geometry"]["coordinates"]
    response = page.request.post(
        server_url + "/api/v1/tasks",
        data={
            "kind": "repair",
            "priority": "P4",
            "source": "plan",
            "title": "Repaint the hydrant",
            "assets": [{"layer": "hydrants", "id": hydrant["id"]}],
        },
    )
    assert response.status == 201, response.text()
    task_id = response.json()["id"]
    open_on(page, server_url, lon, lat)
    page.evaluate("(id) => window.fieldlineMap.actions.openTask(id)", task_id)

    panel = page.get_by_role("region", name=f"Task {task_id}")
    expect(panel).to_be_visible(timeout=WAIT_MS)
    panel.get_by_role("button", name="Cancel task…").click()
    reason = panel.get_by_label("Reason for cancelling (required)")
    expect(reason).to_be_focused()
    # No reason, no cancel.
    panel.get_by_role("button", name="Confirm cancel").click()
    expect(panel.locator("#fl-cancel-error")).to_be_visible()
    assert page.request.get(f"{server_url}/api/v1/tasks/{task_id}").json()["state"] == "created"

    reason.fill("Duplicate of a task already open")
    panel.get_by_role("button", name="Confirm cancel").click()
    expect(panel.locator(".fl-facts")).to_contain_text("Cancelled", timeout=WAIT_MS)
    task = page.request.get(f"{server_url}/api/v1/tasks/{task_id}").json()
    assert task["state"] == "cancelled"
    assert task["history"][-1]["note"] == "Duplicate of a task already open"
    # A cancelled task leaves the open tasks layer.
    page.wait_for_function(
        "(id) => window.fieldlineMap.tasks.get(id) === undefined", arg=task_id, timeout=WAIT_MS
    )
    page.screenshot(path=str(ARTIFACTS / "actions-cancelled.png"))
    assert console_errors == []


def test_an_asset_is_found_by_its_id_from_the_keyboard(
    page: Page, server_url: str, fixture_features: Any
) -> None:
    page.goto(server_url + "/map")
    page.wait_for_function(LOADED, timeout=WAIT_MS)
    pipe = fixture_features("pipes")[3]
    find = page.get_by_role("searchbox", name="Asset or task id")
    find.focus()
    page.keyboard.type(pipe["id"].lower())  # as typed in a hurry
    page.keyboard.press("Enter")
    panel = page.get_by_role("region", name=f"Pipe {pipe['id']}")
    expect(panel).to_be_visible(timeout=WAIT_MS)
    expect(panel.locator(".fl-facts")).to_contain_text("Material")
    page.wait_for_function("() => window.fieldlineMap.map.getZoom() >= 17", timeout=WAIT_MS)
    # The map went to the pipe: its middle vertex is on screen.
    lon, lat = pipe["geometry"]["coordinates"][len(pipe["geometry"]["coordinates"]) // 2]
    assert page.evaluate(
        "([lon, lat]) => window.fieldlineMap.map.getBounds().contains([lon, lat])", [lon, lat]
    )

    # An id of no layer, and an unknown one, are said so beside the box; the panel stays.
    find.fill("X-1")
    find.press("Enter")
    expect(page.locator("#fl-find-problem")).to_contain_text("no asset or task id")
    expect(find).to_have_attribute("aria-invalid", "true")
    find.fill("H-999999")
    find.press("Enter")
    expect(page.locator("#fl-find-problem")).to_contain_text("No H-999999")
