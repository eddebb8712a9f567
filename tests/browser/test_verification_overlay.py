"""The verification overlay and the crew panel in a real browser: a foot patrol walked past a
side street and checked by the verification services (committed to the browser's database),
shown from the "Checks" panel with its covered and missed pipe parts drawn over the network
and its summary; the crew's trace replayed along a slider."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from fieldline.gis.db import make_engine, make_sessionmaker
from fieldline.server.crews.services import create_crew
from fieldline.server.verification import services
from fieldline.settings import Settings
from tests.browser.conftest import ARTIFACTS
from tests.server.verification.conftest import HYDRANT_SIDE, T0, Patrol, patrol

pytestmark = pytest.mark.timeout(90)

WAIT_MS = 20_000
LOADED = (
    "() => !!window.fieldlineMap && !!window.fieldlineMap.verification"
    " && window.fieldlineMap.map.loaded()"
)
RENDERED = """(layer) => window.fieldlineMap.map.queryRenderedFeatures({layers: [layer]})
  .map((feature) => feature.properties.asset_id ?? null)"""
LOCAL_INPUT = """(iso) => {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${day}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}"""


@pytest.fixture(scope="module")
def walked(browser_settings: Settings) -> Iterator[tuple[Patrol, str]]:
    """A patrol that skipped the side street, checked (and so failed) and committed, with its
    crew's id."""
    engine = make_engine(browser_settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            crew = create_crew(
                session, f"Patrol crew {uuid.uuid4().hex[:6]}", mode="foot", phone="+358401234567"
            )
            done = patrol(session, crew, skip_side=True)
            run = services.verify(session, done.task, browser_settings, T0 + timedelta(hours=3))
            assert run.result == "fail"  # the side street's pipes were never walked
            session.commit()
            yield done, crew.public_id
    finally:
        engine.dispose()


def open_map(page: Page, server_url: str) -> None:
    page.goto(server_url + "/map")
    page.wait_for_function(LOADED, timeout=WAIT_MS)


def test_the_verification_overlay_draws(
    page: Page, server_url: str, walked: tuple[Patrol, str], console_errors: list[str]
) -> None:
    done, _ = walked
    task_id = done.task.public_id
    open_map(page, server_url)
    page.get_by_role("button", name="Checks").click()
    row = page.locator(f'.fl-check[data-task="{task_id}"]')
    expect(row).to_have_attribute("data-result", "fail")
    expect(row).to_contain_text("Failed")
    page.get_by_role("button", name=f"Show the check of {task_id} on the map").click()

    summary = page.locator("#verification-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("data-task", task_id)
    expect(summary.locator(".fl-verification-result")).to_have_text("Failed")
    expect(summary).to_contain_text("Coverage")
    expect(summary.locator(".fl-verification-reasons")).to_contain_text(
        f"checkpoint {HYDRANT_SIDE} not visited"
    )
    report = summary.get_by_role("link", name="Printable report")
    assert report.get_attribute("href") == f"/api/v1/tasks/{task_id}/verification/report?run=1"

    # The map fits the overlay; the skipped pipes are drawn as missed, the walked as covered.
    page.keyboard.press("Escape")  # the panel steps aside, the map stays as it is
    page.wait_for_function(
        "() => !window.fieldlineMap.map.isMoving()"
        " && window.fieldlineMap.map.isSourceLoaded('verification-missed')"
        " && window.fieldlineMap.map.queryRenderedFeatures("
        "{layers: ['verification-missed']}).length > 0",
        timeout=WAIT_MS,
    )
    covered = set(page.evaluate(RENDERED, "verification-covered"))
    missed = set(page.evaluate(RENDERED, "verification-missed"))
    assert covered and missed
    assert set(done.side_pipes) <= missed
    assert len(page.evaluate(RENDERED, "verification-checkpoints")) == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "verification-overlay.png"))

    summary.get_by_role("button", name=f"Clear the check of {task_id} from the map").click()
    expect(summary).to_be_hidden()
    page.wait_for_function(
        "() => window.fieldlineMap.map.queryRenderedFeatures("
        "{layers: ['verification-covered', 'verification-missed']}).length === 0",
        timeout=WAIT_MS,
    )

    # The task panel of work the check sent back draws the same check.
    page.evaluate("(id) => window.fieldlineMap.actions.openTask(id)", task_id)
    page.get_by_role("button", name="Show check on the map").click()
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("data-task", task_id)
    page.wait_for_function(
        "() => window.fieldlineMap.map.queryRenderedFeatures("
        "{layers: ['verification-missed']}).length > 0",
        timeout=WAIT_MS,
    )
    assert console_errors == []


def test_the_crew_panel_replays_the_trace(
    page: Page, server_url: str, walked: tuple[Patrol, str], console_errors: list[str]
) -> None:
    done, crew_id = walked
    open_map(page, server_url)
    # Reached from the keyboard too: the top bar's Crews panel lists every crew.
    page.get_by_role("button", name="Crews").click()
    page.get_by_role("button", name=f"Open crew {crew_id}", exact=False).click()
    panel = page.locator("#crew-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("+358401234567")
    # The failed patrol went back to the crew: it is among its open tasks.
    expect(panel.locator(f'.fl-crew-task[data-task="{done.task.public_id}"]')).to_be_visible()

    fixes = done.walker.fixes
    start = fixes[0][0] - timedelta(minutes=1)
    end = fixes[-1][0] + timedelta(minutes=2)
    panel.get_by_label("From").fill(page.evaluate(LOCAL_INPUT, start.isoformat()))
    panel.get_by_label("To").fill(page.evaluate(LOCAL_INPUT, end.isoformat()))
    panel.get_by_role("button", name="Load trace").click()
    expect(panel.locator(".fl-replay-note")).to_contain_text(f"{len(fixes)} fixes")
    replay = page.evaluate("window.fieldlineMap.crewPanel.replay")
    assert replay["fixes"] == len(fixes)
    first = replay["at"]

    slider = panel.get_by_label("Replay time")
    slider.fill("500")
    halfway = page.evaluate("window.fieldlineMap.crewPanel.replay")["at"]
    total_ms = (fixes[-1][0] - fixes[0][0]).total_seconds() * 1000
    assert halfway - first == pytest.approx(total_ms / 2, abs=total_ms / 500)
    page.wait_for_function(
        "() => window.fieldlineMap.map.queryRenderedFeatures("
        "{layers: ['crew-replay-marker']}).length === 1"
        " && window.fieldlineMap.map.queryRenderedFeatures("
        "{layers: ['crew-replay-track']}).length > 0",
        timeout=WAIT_MS,
    )
    # Playing moves the marker on in time; pausing stops it.
    panel.get_by_role("button", name="Play").click()
    page.wait_for_function(
        f"() => window.fieldlineMap.crewPanel.replay.at > {halfway}", timeout=WAIT_MS
    )
    panel.get_by_role("button", name="Pause").click()
    assert page.evaluate("window.fieldlineMap.crewPanel.replay.playing") is False

    page.screenshot(path=str(ARTIFACTS / "crew-replay.png"))
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert console_errors == []
