"""The Reports panel in a real browser: field reports published over MQTT go through a real
`fieldline gateway` and the live stream into the panel (highlighted, counted on the top bar
button) and onto the map; a correction with an uploaded photo is accepted from the page and
changes the asset (its history shows the edit); a correction the asset registry refuses shows
the API's error naming the attribute, and is then rejected with a reason; the panel works at
phone width."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import Page, expect

from fieldline.settings import Settings
from tests.browser.conftest import ARTIFACTS, crew_on_shift, publish_json, running_gateway

pytestmark = pytest.mark.timeout(120)

WAIT_MS = 20_000
LOADED = (
    "() => !!window.fieldlineMap && !!window.fieldlineMap.reports"
    " && window.fieldlineMap.map.loaded()"
)
PENDING = "(id) => window.fieldlineMap.reports.pending.includes(id)"
RENDERED = """(id) => window.fieldlineMap.map.queryRenderedFeatures({layers: ['reports']})
  .some((feature) => feature.properties.id === id)"""


@pytest.fixture(scope="module")
def hydrant(fixture_features: Any) -> dict[str, Any]:
    # Not the first: the actions test makes tasks at that one.
    found: dict[str, Any] = fixture_features("hydrants")[-1]
    return found


@pytest.fixture(scope="module")
def crew_id(browser_engine: sa.Engine) -> str:
    return crew_on_shift(browser_engine, "Report crew", device=f"handheld-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def gateway(
    browser_settings: Settings, crew_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log = Path(tmp_path_factory.mktemp("gateway")) / "gateway.log"
    with running_gateway(browser_settings, "reports", log):
        yield


def jpeg() -> bytes:
    """A small real JPEG (a two-colour picture), as a handheld's camera would send."""
    image = Image.new("RGB", (64, 48), (40, 110, 170))
    for x in range(32, 64):
        for y in range(48):
            image.putpixel((x, y), (220, 120, 30))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def publish_report(settings: Settings, crew: str, report: dict[str, Any]) -> None:
    publish_json(settings, f"fieldline/crews/{crew}/reports", report)


def report_of(page: Page, server_url: str, crew: str, note: str) -> dict[str, Any]:
    """The report the gateway stored for `note` (the API is asked until it is there)."""
    found: dict[str, Any] = {}

    def stored() -> bool:
        answer = page.request.get(f"{server_url}/api/v1/reports?crew_id={crew}&limit=50")
        assert answer.ok
        for feature in answer.json()["features"]:
            if feature["properties"]["note"] == note:
                found.update(feature)
        return bool(found)

    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while not stored():
        assert datetime.now(UTC) < deadline, f"no report {note!r} stored"
        page.wait_for_timeout(200)
    return found


def open_reports(page: Page, server_url: str) -> None:
    page.goto(server_url + "/map")
    page.wait_for_function(LOADED, timeout=WAIT_MS)
    expect(page.locator('[data-status="live"]')).to_have_attribute("data-state", "open")
    # Keyboard: the top bar button opens the panel, focus moves to its heading.
    button = page.locator(".fl-topbar-button", has_text="Reports")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#reports")).to_be_visible()
    expect(page.locator("#reports-title")).to_be_focused()


def test_reports_are_listed_drawn_accepted_and_rejected(
    page: Page,
    server_url: str,
    browser_settings: Settings,
    gateway: None,
    crew_id: str,
    hydrant: dict[str, Any],
    console_errors: list[str],
) -> None:
    hydrant_id = hydrant["id"]
    lon, lat = hydrant["geometry"]["coordinates"]
    asset_url = f"{server_url}/api/v1/assets/hydrants/{hydrant_id}"
    before = page.request.get(asset_url).json()["properties"]["condition"]
    wanted = "poor" if before != "poor" else "fair"

    photo_id = str(uuid.uuid4())
    photo = jpeg()
    uploaded = page.request.put(
        f"{server_url}/api/v1/uploads/{photo_id}",
        data=photo,
        headers={"Content-Type": "image/jpeg"},
    )
    assert uploaded.ok, uploaded.text()

    open_reports(page, server_url)
    panel = page.locator("#reports")
    button = page.locator(".fl-topbar-button", has_text="Reports")
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    good_note = f"Hydrant paint flaking {tag}"
    publish_report(
        browser_settings,
        crew_id,
        {
            "kind": "attribute_correction",
            "ts": now.isoformat(),
            "lat": lat + 0.0002,
            "lon": lon + 0.0002,
            "asset_id": hydrant_id,
            "note": good_note,
            "changes": {"condition": wanted},
            "photos": [photo_id],
        },
    )
    good = report_of(page, server_url, crew_id, good_note)

    # It arrives live: listed with a brief highlight, counted on the top bar button.
    item = panel.locator(f'[data-report="{good["id"]}"]')
    expect(item).to_be_visible(timeout=WAIT_MS)
    expect(item).to_have_class(re.compile(r"\bfl-new\b"))
    page.wait_for_function(PENDING, arg=good["id"], timeout=WAIT_MS)
    pending = page.evaluate("window.fieldlineMap.reports.pending.length")
    expect(button.locator(".fl-report-count")).to_have_text(str(pending))
    expect(button).to_have_attribute("aria-label", f"Reports, {pending} pending")
    expect(item).to_contain_text("Attribute correction")
    expect(item).to_contain_text(crew_id)
    expect(item).to_contain_text(good_note)
    expect(item).to_contain_text(hydrant_id)
    expect(item.locator(".fl-report-changes dt")).to_have_text(["condition"])
    expect(item.locator(".fl-report-changes dd")).to_have_text([wanted])
    # The photo: a thumbnail of the upload, a link that opens it in a new tab.
    link = item.locator(".fl-report-photos a")
    expect(link).to_have_attribute("href", f"/api/v1/uploads/{photo_id}")
    expect(link).to_have_attribute("target", "_blank")
    thumbnail = link.locator("img")
    expect(thumbnail).to_have_attribute("alt", f"Photo 1 of {good['id']}")
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 64 && img.naturalHeight === 48",
        arg=thumbnail.element_handle(),
        timeout=WAIT_MS,
    )
    with page.context.expect_page() as opened:
        link.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url == f"{server_url}/api/v1/uploads/{photo_id}"
    full.close()

    # A correction the asset registry refuses: the error names the attribute.
    bad_note = f"Colour looks odd {tag}"
    publish_report(
        browser_settings,
        crew_id,
        {
            "kind": "attribute_correction",
            "ts": (now + timedelta(seconds=1)).isoformat(),
            "lat": lat - 0.0003,
            "lon": lon - 0.0003,
            "asset_id": hydrant_id,
            "note": bad_note,
            "changes": {"condition": "sparkling"},
        },
    )
    bad = report_of(page, server_url, crew_id, bad_note)
    bad_item = panel.locator(f'[data-report="{bad["id"]}"]')
    expect(bad_item).to_be_visible(timeout=WAIT_MS)
    # Newest first among the pending ones.
    ids = panel.locator(".fl-report").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.report)"
    )
    assert ids.index(bad["id"]) < ids.index(good["id"])
    bad_item.get_by_role("button", name=f"Accept attribute correction report {bad['id']}").click()
    expect(bad_item.locator(".fl-field-error").first).to_contain_text("changes.condition")
    assert (
        page.request.get(f"{server_url}/api/v1/reports/{bad['id']}").json()["properties"]["status"]
        == "pending"
    )

    # The report is on the map: picking it flies there, and its symbol is drawn.
    item.get_by_role("button", name=re.compile(f"Show .* report {good['id']} on the map")).click()
    page.wait_for_function(
        f"""() => {{
          const c = window.fieldlineMap.map.getCenter();
          return !window.fieldlineMap.map.isMoving() && Math.abs(c.lng - {lon + 0.0002}) < 1e-4
            && Math.abs(c.lat - {lat + 0.0002}) < 1e-4;
        }}""",
        timeout=WAIT_MS,
    )
    page.wait_for_function(RENDERED, arg=good["id"], timeout=WAIT_MS)
    expect(page.locator('.fl-layer[data-layer="reports"] label')).to_have_text("Field reports")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports_panel_pending.png"))

    # Accepted from the page: the hydrant's condition changes, as an audited edit.
    item.get_by_role("button", name=f"Accept attribute correction report {good['id']}").click()
    expect(item).to_have_count(0, timeout=WAIT_MS)  # the list shows pending ones
    accepted = page.request.get(f"{server_url}/api/v1/reports/{good['id']}").json()
    assert accepted["properties"]["status"] == "accepted"
    assert accepted["properties"]["applied_fields"] == ["condition"]
    assert page.request.get(asset_url).json()["properties"]["condition"] == wanted
    edits = page.request.get(f"{asset_url}/history").json()["edits"]
    assert any(
        e["field"] == "condition"
        and e["old"] == before
        and e["new"] == wanted
        and e["source"] == "field_report"
        for e in edits
    ), edits

    # The refused one is rejected with a reason, from the keyboard; none given is refused.
    bad_item = panel.locator(f'[data-report="{bad["id"]}"]')
    bad_item.get_by_role("button", name=f"Reject attribute correction report {bad['id']}").focus()
    page.keyboard.press("Enter")
    reason = bad_item.get_by_label("Reason")
    expect(reason).to_be_focused()
    page.keyboard.press("Enter")  # nothing typed
    expect(bad_item.locator(".fl-report-reject .fl-field-error")).to_contain_text("reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    reason.fill("No such condition; photo shows it is fine")
    page.keyboard.press("Enter")
    expect(bad_item).to_have_count(0, timeout=WAIT_MS)
    rejected = page.request.get(f"{server_url}/api/v1/reports/{bad['id']}").json()["properties"]
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "No such condition; photo shows it is fine"
    assert page.request.get(asset_url).json()["properties"]["condition"] == wanted

    # "All" lists the reviewed ones too, after the pending, with their outcome.
    panel.locator("#reports-filter").select_option("all")
    reviewed = panel.locator(f'[data-report="{good["id"]}"]')
    expect(reviewed).to_have_attribute("data-status", "accepted", timeout=WAIT_MS)
    expect(panel.locator(f'[data-report="{bad["id"]}"]')).to_contain_text(
        "Reason: No such condition"
    )
    statuses = panel.locator(".fl-report").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.status)"
    )
    assert statuses == sorted(statuses, key=lambda status: status != "pending")
    # The browser logs the two refusals (the bad value, the missing reason): nothing else.
    assert [error for error in console_errors if "422" not in error] == []
    assert len(console_errors) == 2


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}])
def test_the_reports_panel_at_phone_width(
    page: Page,
    server_url: str,
    browser_settings: Settings,
    gateway: None,
    crew_id: str,
    hydrant: dict[str, Any],
    console_errors: list[str],
    viewport: dict[str, int],
) -> None:
    lon, lat = hydrant["geometry"]["coordinates"]
    note = f"Water on the road {uuid.uuid4().hex[:6]}"
    publish_report(
        browser_settings,
        crew_id,
        {"kind": "leak", "ts": datetime.now(UTC).isoformat(), "lat": lat, "lon": lon, "note": note},
    )
    leak = report_of(page, server_url, crew_id, note)
    open_reports(page, server_url)
    item = page.locator(f'#reports [data-report="{leak["id"]}"]')
    expect(item).to_be_visible(timeout=WAIT_MS)
    # A bottom sheet across the screen; the top bar's buttons all fit.
    box = page.locator("#reports").bounding_box()
    assert box is not None and box["width"] == pytest.approx(viewport["width"], abs=2)
    for button in page.locator(".fl-topbar-button").all():
        edge = button.bounding_box()
        assert edge is not None and edge["x"] + edge["width"] <= viewport["width"]
    item.get_by_role("button", name=f"Show leak report {leak['id']} on the map").click()
    page.wait_for_function(RENDERED, arg=leak["id"], timeout=WAIT_MS)
    # Rejected, so that other runs on the same database start with nothing of this one pending.
    item.get_by_role("button", name=f"Reject leak report {leak['id']}").click()
    item.get_by_label("Reason").fill("Already repaired")
    item.get_by_role("button", name="Reject report").click()
    expect(item).to_have_count(0, timeout=WAIT_MS)
    assert console_errors == []
