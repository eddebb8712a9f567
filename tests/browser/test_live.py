"""The map's live layers in a real browser: a fix published over MQTT goes through a real
`fieldline gateway` process and the web server's live stream and moves the crew's marker; a
task created through the API appears with its priority; an overdue task's warning is listed
and acknowledging it takes it off the list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlalchemy.dialects.postgresql import insert

from fieldline.gis.db import make_sessionmaker
from fieldline.scheduler import JobContext
from fieldline.server.alarms.jobs import alarms_job
from fieldline.server.live.services import Live
from fieldline.server.service_levels import services as service_levels
from fieldline.server.tasks.services import create_task
from fieldline.server.telemetry.models import TelemetryReading
from fieldline.settings import Settings
from tests.browser.conftest import crew_on_shift, publish_json, running_gateway

pytestmark = pytest.mark.timeout(90)

WAIT_MS = 20_000
LOADED = (
    "() => !!window.fieldlineMap && !!window.fieldlineMap.crews && window.fieldlineMap.map.loaded()"
)
CREW = "(id) => window.fieldlineMap.crews.get(id) ?? null"
TASK = "(id) => window.fieldlineMap.tasks.get(id) ?? null"
RENDERED = """([layer, id]) => window.fieldlineMap.map.queryRenderedFeatures({layers: [layer]})
  .some((feature) => feature.properties.id === id)"""


@pytest.fixture(scope="module")
def crew_id(browser_engine: sa.Engine, network_middle: tuple[float, float]) -> str:
    """A crew with a bound handheld, its depot a little south-west of the middle."""
    lon, lat = network_middle
    return crew_on_shift(
        browser_engine,
        "Map crew",
        depot=[lon - 0.004, lat - 0.003],
        device=f"handheld-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture(scope="module")
def gateway(
    browser_settings: Settings, crew_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The gateway publishing on the web server's Redis prefix."""
    log = Path(tmp_path_factory.mktemp("gateway")) / "gateway.log"
    with running_gateway(browser_settings, "browser", log):
        yield


def publish_fix(settings: Settings, crew: str, lon: float, lat: float) -> None:
    payload = {"ts": datetime.now(UTC).isoformat(), "lat": lat, "lon": lon, "acc_m": 5}
    publish_json(settings, f"fieldline/crews/{crew}/position", payload)


def open_live_map(page: Page, server_url: str) -> None:
    page.goto(server_url + "/map")
    page.wait_for_function(LOADED, timeout=WAIT_MS)
    expect(page.locator('[data-status="live"]')).to_have_attribute("data-state", "open")


def test_a_fix_over_mqtt_moves_the_crew_marker(
    page: Page,
    server_url: str,
    browser_settings: Settings,
    gateway: None,
    crew_id: str,
    network_middle: tuple[float, float],
    console_errors: list[str],
) -> None:
    open_live_map(page, server_url)
    # Before any fix the crew stands at its depot, without a signal.
    before: dict[str, Any] = page.wait_for_function(CREW, arg=crew_id, timeout=WAIT_MS).json_value()
    assert before["status"] == "no_signal"
    lon, lat = network_middle
    assert (before["lon"], before["lat"]) != pytest.approx((lon, lat), abs=1e-6)

    publish_fix(browser_settings, crew_id, lon, lat)
    page.wait_for_function(
        f"""(id) => {{
          const crew = window.fieldlineMap.crews.get(id);
          return !!crew && Math.abs(crew.lon - {lon}) < 1e-6 && Math.abs(crew.lat - {lat}) < 1e-6;
        }}""",
        arg=crew_id,
        timeout=WAIT_MS,
    )
    # A fresh fix on shift: the server now says available, and the dot is drawn there.
    page.wait_for_function(
        "(id) => window.fieldlineMap.crews.get(id)?.status === 'available'",
        arg=crew_id,
        timeout=WAIT_MS,
    )
    moved = page.evaluate(CREW, crew_id)
    assert moved["stale"] is False
    page.evaluate(f"window.fieldlineMap.map.jumpTo({{center: [{lon}, {lat}], zoom: 15}})")
    page.wait_for_function(RENDERED, arg=["crews", crew_id], timeout=WAIT_MS)
    expect(page.locator(".fl-crew-label", has_text=crew_id)).to_be_visible()
    assert console_errors == []


def test_a_task_created_through_the_api_appears_by_priority(
    page: Page, server_url: str, network_middle: tuple[float, float]
) -> None:
    open_live_map(page, server_url)
    lon, lat = network_middle
    response = page.request.post(
        server_url + "/api/v1/tasks",
        data={
            "kind": "repair",
            "priority": "P2",
            "source": "plan",
            "title": "Leak at the map test",
            "site": {"lon": lon + 0.001, "lat": lat + 0.001},
        },
    )
    assert response.status == 201, response.text()
    task_id = response.json()["id"]
    # Only the live `task` event tells the page: no reload.
    drawn = page.wait_for_function(TASK, arg=task_id, timeout=WAIT_MS).json_value()
    assert drawn["priority"] == "P2"
    assert drawn["state"] == "created"
    assert (drawn["lon"], drawn["lat"]) == pytest.approx((lon + 0.001, lat + 0.001), abs=1e-7)
    page.wait_for_function(RENDERED, arg=["tasks", task_id], timeout=WAIT_MS)
    expect(page.get_by_label("Open tasks", exact=True)).to_be_checked()


def test_an_overdue_warning_is_listed_and_acknowledged(
    page: Page,
    server_url: str,
    browser_settings: Settings,
    browser_engine: sa.Engine,
    network_middle: tuple[float, float],
) -> None:
    open_live_map(page, server_url)
    lon, lat = network_middle
    now = datetime.now(UTC)
    # A P3 repair taken a day and a half ago and never reached: its arrival (24 h) is overdue.
    with make_sessionmaker(browser_engine)() as session:
        task = create_task(
            session,
            {
                "kind": "repair",
                "priority": "P3",
                "source": "plan",
                "site": {"lon": lon, "lat": lat + 0.002},
            },
            "map-test",
            now - timedelta(hours=36),
            browser_settings,
        )
        session.commit()
        task_id = task.public_id
        raised = service_levels.evaluate(session, now, browser_settings)
        session.commit()
        live = Live.from_url(browser_settings.redis_url, browser_settings.redis_prefix)
        try:
            service_levels.announce(session, live, None, now)
        finally:
            live.client.close()
        session.commit()
    assert any(w.level == "overdue" and w.timer == "arrival" for w in raised)

    item = page.locator(f'.fl-warning[data-task="{task_id}"][data-level="overdue"]').first
    expect(item).to_be_visible(timeout=WAIT_MS)
    expect(item).to_contain_text("Overdue: arrival")
    badge = page.locator("#warnings .fl-badge")
    assert int(badge.inner_text()) >= 1

    # The task's id flies the map there.
    item.get_by_role("button", name=f"Show task {task_id} on the map").click()
    page.wait_for_function("() => window.fieldlineMap.map.getZoom() >= 16", timeout=WAIT_MS)

    count = page.locator(f'.fl-warning[data-task="{task_id}"]').count()
    for _ in range(count):
        page.locator(f'.fl-warning[data-task="{task_id}"] .fl-ack').first.click()
    expect(page.locator(f'.fl-warning[data-task="{task_id}"]')).to_have_count(0)
    active = page.request.get(server_url + "/api/v1/warnings?active=true").json()["warnings"]
    assert task_id not in {warning["task_id"] for warning in active}


def test_an_alarm_is_listed_acknowledged_and_gone_when_it_clears(
    page: Page, server_url: str, browser_settings: Settings, browser_engine: sa.Engine
) -> None:
    """The default rule `pressure_kpa<250:high:deadband=20:delay=60s` on a pressure station:
    readings inserted as the gateway stores them, the scheduler's alarms job run."""
    open_live_map(page, server_url)
    live = Live.from_url(browser_settings.redis_url, browser_settings.redis_prefix)
    context = JobContext(browser_settings, browser_engine, live, {})
    station = "S-000004"  # a pressure station of the fixture city
    try:
        alarms_job(context)  # the default rules in the table, watching from now
        start = datetime.now(UTC) + timedelta(seconds=1)
        pressures = [231.0] * 10 + [275.0] * 3  # 90 s low, then above 250 + 20
        rows = [
            {"station_id": station, "metric": "pressure_kpa",
             "ts": start + timedelta(seconds=10 * i), "value": value}
            for i, value in enumerate(pressures[:10])
        ]  # fmt: skip
        with browser_engine.begin() as connection:
            connection.execute(insert(TelemetryReading).values(rows).on_conflict_do_nothing())
        alarms_job(replace(context, clock=lambda: start + timedelta(seconds=100)))

        item = page.locator('.fl-warning[data-level="alarm-high"]').filter(has_text=station)
        expect(item).to_be_visible(timeout=WAIT_MS)
        expect(item).to_contain_text("High alarm")
        item.get_by_role("button", name=f"Acknowledge the alarm on {station}").click()
        expect(item).to_contain_text("acknowledged by")
        expect(item.locator(".fl-ack")).to_have_count(0)
        open_alarms = page.request.get(server_url + "/api/v1/alarms?state=open").json()["alarms"]
        assert [a["state"] for a in open_alarms if a["station_id"] == station] == ["acknowledged"]

        recovery = [
            {"station_id": station, "metric": "pressure_kpa",
             "ts": start + timedelta(seconds=100 + 10 * i), "value": value}
            for i, value in enumerate(pressures[10:])
        ]  # fmt: skip
        with browser_engine.begin() as connection:
            connection.execute(insert(TelemetryReading).values(recovery).on_conflict_do_nothing())
        alarms_job(replace(context, clock=lambda: start + timedelta(seconds=140)))
        expect(item).to_have_count(0, timeout=WAIT_MS)
    finally:
        live.client.close()
