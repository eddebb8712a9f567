"""The Incidents panel in a real browser: a call-centre report near a fixture pipe opens an
incident that arrives over the live stream (highlighted, counted on the top bar button, drawn
on the incidents layer); its suggested pipe's isolation is drawn with a numbered marker per
valve to close (as many as the isolation API names) and a summary; "Isolate this pipe", once
confirmed, creates the tasks the API then lists; the estimated restoration is saved; the panel
works at phone width."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import APIRequestContext, Page, Playwright, expect

from tests.browser.conftest import ARTIFACTS
from tests.conftest import load_fixture

pytestmark = pytest.mark.timeout(120)

WAIT_MS = 20_000
LOADED = (
    "() => !!window.fieldlineMap && !!window.fieldlineMap.incidents"
    " && window.fieldlineMap.map.loaded()"
)
RENDERED = """(id) => window.fieldlineMap.map.queryRenderedFeatures({layers: ['incidents']})
  .some((feature) => feature.properties.id === id)"""
LOCAL_INPUT = """(iso) => {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${day}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}"""
CALLER = {"name": "Aino Virtanen", "phone": "+358 40 123 4567"}


def near_a_pipe() -> dict[str, float]:
    """A few metres off the middle of the first in-service pipe's first segment."""
    pipe = next(f for f in load_fixture("pipes") if f["properties"]["status"] == "in_service")
    coordinates = pipe["geometry"]["coordinates"]
    (x0, y0), (x1, y1) = (
        coordinates[0][:2] if pipe["geometry"]["type"] == "MultiLineString" else coordinates[:2]
    )
    return {"lon": (x0 + x1) / 2 + 0.00002, "lat": (y0 + y1) / 2}


@pytest.fixture
def api(playwright: Playwright, server_url: str) -> Iterator[APIRequestContext]:
    context = playwright.request.new_context(base_url=server_url)
    yield context
    context.dispose()


def open_incident(api: APIRequestContext) -> dict[str, Any]:
    response = api.post(
        "/api/v1/incidents",
        data={**near_a_pipe(), "description": "Water in the street", "caller": CALLER},
    )
    assert response.status in (200, 201), response.text()
    body: dict[str, Any] = response.json()
    assert body["suggested_pipes"], body
    return body


@pytest.fixture
def cancelled_after(api: APIRequestContext) -> Iterator[list[str]]:
    """Incidents to cancel afterwards, with their open tasks: later tests see no P1 work."""
    ids: list[str] = []
    yield ids
    for incident in ids:
        api.post(f"/api/v1/incidents/{incident}/cancel", data={"reason": "test over"})


def open_map(page: Page, server_url: str) -> None:
    page.goto(server_url + "/map")
    page.wait_for_function(LOADED, timeout=WAIT_MS)
    expect(page.locator('[data-status="live"]')).to_have_attribute(
        "data-state", "open", timeout=WAIT_MS
    )


def test_an_incident_is_listed_shown_and_isolated(
    page: Page,
    server_url: str,
    api: APIRequestContext,
    cancelled_after: list[str],
    console_errors: list[str],
) -> None:
    open_map(page, server_url)
    button = page.locator(".fl-topbar-button", has_text="Incidents")
    button.click()
    expect(page.locator("#incidents")).to_be_visible()
    expect(page.locator("#incidents-title")).to_be_focused()

    incident = open_incident(api)
    incident_id = incident["id"]
    cancelled_after.append(incident_id)

    # Over the live stream: listed, highlighted, counted, drawn.
    row = page.locator(f'.fl-incident[data-incident="{incident_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    assert incident["opened"], incident  # a new incident, not one joined
    expect(row).to_have_class(re.compile(r"\bfl-new\b"))
    expect(row).to_contain_text("Open: pipe not confirmed")
    expect(row.locator(".fl-incident-facts")).to_contain_text("Reports")
    active = api.get("/api/v1/incidents?state=active").json()["incidents"]
    expect(button).to_have_attribute("aria-label", f"Incidents, {len(active)} active")
    page.wait_for_function(RENDERED, arg=incident_id, timeout=WAIT_MS)
    expect(page.locator('.fl-layer[data-layer="incidents"] label')).to_have_text("Incidents")

    # The detail, reached from the keyboard.
    row.get_by_role("button", name=f"Incident {incident_id}: show its detail").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#incidents-title")).to_have_text(f"Incident {incident_id}")
    pipe_id = incident["suggested_pipes"][0]["pipe_id"]
    pipe = page.locator(f'.fl-incident-pipe[data-pipe="{pipe_id}"]')
    expect(pipe).to_be_visible()

    # The isolation drawn: one numbered marker per valve the API says to close.
    trace = api.get(f"/api/v1/network/isolation?pipe_id={pipe_id}").json()
    valves = [valve["id"] for valve in trace["valves_to_close"]]
    assert valves, trace
    pipe.get_by_role("button", name=f"Show isolation of {pipe_id} on the map").click()
    summary = page.locator("#isolation-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("data-pipe", pipe_id)
    markers = page.locator(".fl-valve-marker")
    expect(markers).to_have_count(len(valves))
    expect(markers.first).to_have_text("1")
    assert sorted(markers.evaluate_all("(all) => all.map((m) => m.dataset.valve)")) == sorted(
        valves
    )
    customers, hydrants = trace["customers"], len(trace["hydrants"])
    totals = summary.locator(".fl-isolation-totals")
    expect(totals).to_contain_text(f"{len(valves)} valve")
    expect(totals).to_contain_text(f"{customers} customer")
    expect(totals).to_contain_text(f"{hydrants} hydrant")
    drawn = page.evaluate(
        """() => window.fieldlineMap.map.querySourceFeatures('incident-isolation')
          .filter((f) => f.properties.role === 'valve_to_close').length"""
    )
    assert drawn >= len(valves)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "incidents-isolation.png"))

    # Isolate, after the confirm step: the tasks the API lists are shown.
    pipe.get_by_role("button", name=f"Isolate {pipe_id}").click()
    confirm = pipe.get_by_role("button", name="Confirm: isolate")
    expect(confirm).to_be_focused()
    confirm.click()
    expect(page.locator(".fl-incident-tasks li").first).to_be_visible(timeout=WAIT_MS)
    detail = api.get(f"/api/v1/incidents/{incident_id}").json()
    assert detail["state"] == "isolating"
    assert detail["pipe_id"] == pipe_id
    tasks = [task["id"] for task in detail["tasks"]]
    roles = [task["role"] for task in detail["tasks"]]
    assert roles.count("close_valve") == len(valves) and "repair" in roles, detail["tasks"]
    expect(page.locator(".fl-incident-tasks li")).to_have_count(len(tasks))
    for task_id in tasks:
        expect(page.get_by_role("button", name=f"Open task {task_id}")).to_be_visible()
    expect(page.locator(".fl-incident-isolated")).to_contain_text(f"{len(valves)} valve")

    # A new estimate is saved.
    later = datetime.now(UTC) + timedelta(hours=5)
    local = page.evaluate(LOCAL_INPUT, later.isoformat())
    page.get_by_label("Water back by").fill(local)
    page.get_by_role("button", name="Save").click()

    def saved() -> bool:
        eta = api.get(f"/api/v1/incidents/{incident_id}").json()["estimated_restoration"]
        return eta is not None and abs(datetime.fromisoformat(eta) - later) < timedelta(minutes=1)

    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not saved():
        assert datetime.now(UTC) < deadline, "the estimate was not saved"
        page.wait_for_timeout(200)

    # A task's button opens the task panel.
    page.get_by_role("button", name=f"Open task {tasks[0]}").click()
    expect(page.get_by_role("heading", name=re.compile(tasks[0]))).to_be_visible()
    assert console_errors == []


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 800}])
def test_the_incidents_panel_at_phone_width(
    page: Page, server_url: str, api: APIRequestContext, cancelled_after: list[str]
) -> None:
    incident = open_incident(api)
    cancelled_after.append(incident["id"])
    open_map(page, server_url)
    page.locator(".fl-topbar-button", has_text="Incidents").click()
    panel = page.locator("#incidents")
    expect(panel).to_be_visible()
    row = page.locator(f'.fl-incident[data-incident="{incident["id"]}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "incidents-phone.png"))
