"""The crew's handheld app in a real browser (Chromium, geolocation emulated), against the real
server, Mosquitto's WebSocket listener and a real `fieldline gateway` process: the shell opens
with no network once loaded; a task the dispatcher assigns appears and is taken to completed
with taps; the selected task shows the way there and its ETA, asked again only once the crew
has moved; a report with a photo arrives with its upload; fixes taken while offline arrive
once, in order, after reconnecting."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, expect

from fieldline.settings import Settings
from tests.browser.conftest import ARTIFACTS, crew_on_shift, running_gateway, serving

pytestmark = pytest.mark.timeout(150)

WAIT_MS = 45_000  # a loaded machine: the inbox, the outbox and the map each take their time
PHONE = {"width": 412, "height": 860}
# Short intervals so that a test sees several fixes; the server tells the app at sign-in.
GPS_INTERVALS = "default=2,idle=2"
OUTBOX_ITEMS = "async () => await window.fieldlineCrew.outbox.items()"


def _mqtt_host_port(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.mqtt_url.split("://", 1)[1].rstrip("/").partition(":")
    return host, int(port or 1883)


@pytest.fixture(scope="module")
def crew_settings(browser_settings: Settings) -> Settings:
    return browser_settings.model_copy(update={"gps_intervals_s": GPS_INTERVALS})


@pytest.fixture(scope="module")
def websocket_listener(crew_settings: Settings) -> None:
    """Mosquitto's WebSocket listener, which `fieldline services up` opens."""
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", crew_settings.mqtt_ws_port), timeout=2).close()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no MQTT WebSocket listener on port {crew_settings.mqtt_ws_port} ({exc}): "
                    "run `fieldline services up`"
                )
            time.sleep(0.5)


@pytest.fixture(scope="module")
def crew_server(crew_settings: Settings, websocket_listener: None) -> Iterator[str]:
    """The app with the test's GPS intervals."""
    with serving(crew_settings, "crew-server") as url:
        yield url


@pytest.fixture(scope="module")
def gateway(crew_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    log = Path(tmp_path_factory.mktemp("gateway")) / "gateway.log"
    with running_gateway(crew_settings, "crewapp", log):
        yield


@pytest.fixture
def crew(browser_engine: sa.Engine, network_middle: tuple[float, float]) -> tuple[str, str]:
    """A crew on shift with its handheld bound: (crew id, device id)."""
    device = f"phone-{uuid.uuid4().hex[:8]}"
    return crew_on_shift(
        browser_engine, "App crew", depot=list(network_middle), device=device
    ), device


@pytest.fixture
def phone(
    browser: Browser,
    request: pytest.FixtureRequest,
    network_middle: tuple[float, float],
) -> Iterator[tuple[BrowserContext, Page, list[str]]]:
    """A phone-sized context with its position emulated and allowed; the page's errors."""
    lon, lat = network_middle
    context = browser.new_context(
        viewport=PHONE,  # type: ignore[arg-type]
        geolocation={"latitude": lat, "longitude": lon, "accuracy": 8},
        permissions=["geolocation"],
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield context, page, errors
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"crew-{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page: Page, server: str, crew_id: str, device_id: str) -> None:
    page.goto(server + "/crew")
    form = page.locator("#sign-in")
    expect(form).to_be_visible(timeout=WAIT_MS)
    form.get_by_label("Crew id").fill(crew_id)
    form.get_by_label("Device id").fill(device_id)
    form.get_by_role("button", name="Sign in").click()
    expect(page.locator("#work")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#link")).to_have_attribute("data-state", "online", timeout=WAIT_MS)


def create_and_assign(page: Page, server: str, crew_id: str, site: tuple[float, float]) -> str:
    created = page.request.post(
        server + "/api/v1/tasks",
        data={
            "kind": "repair",
            "priority": "P2",
            "source": "plan",
            "title": f"Leak on the main {uuid.uuid4().hex[:4]}",
            "description": "Water on the road",
            "site": {"lon": site[0], "lat": site[1]},
        },
    )
    assert created.status == 201, created.text()
    task_id: str = created.json()["id"]
    assigned = page.request.post(
        server + f"/api/v1/tasks/{task_id}/transitions",
        data={"action": "assign", "crew": crew_id},
    )
    assert assigned.status == 200, assigned.text()
    assert [d["delivered"] for d in assigned.json()["inbox"]] == [True]
    return task_id


def wait_for(check: Any, timeout_s: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_the_app_installs_and_opens_with_no_network(
    phone: tuple[BrowserContext, Page, list[str]], crew_server: str, crew: tuple[str, str]
) -> None:
    context, page, errors = phone
    crew_id, device_id = crew
    sign_in(page, crew_server, crew_id, device_id)
    manifest_url = page.get_attribute('link[rel="manifest"]', "href")
    assert manifest_url is not None
    manifest = page.request.get(crew_server + manifest_url)
    assert manifest.ok
    body = manifest.json()
    assert (body["scope"], body["start_url"], body["display"]) == ("/crew/", "/crew/", "standalone")
    assert {icon["sizes"] for icon in body["icons"]} >= {"192x192", "512x512"}
    # The worker took over this page and kept the shell.
    scope = page.evaluate(
        """async () => {
          const registration = await navigator.serviceWorker.ready;
          for (let i = 0; i < 100 && !navigator.serviceWorker.controller; i++) {
            await new Promise((done) => setTimeout(done, 100));
          }
          return [registration.scope, !!navigator.serviceWorker.controller];
        }"""
    )
    assert scope == [crew_server + "/crew/", True]
    expect(page.locator("#crew-name")).not_to_be_empty()
    name = page.locator("#crew-name").inner_text()

    context.set_offline(True)
    page.reload()
    # Opened from the worker's cache and the saved sign-in, the bundle running.
    expect(page.locator("#work")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#crew-name")).to_have_text(name)
    expect(page.locator("#link")).not_to_have_attribute("data-state", "online")
    assert page.evaluate("() => !!window.fieldlineCrew && !navigator.onLine")
    context.set_offline(False)
    expect(page.locator("#link")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    assert errors == []


def test_a_dispatched_task_is_taken_to_completed_with_taps(
    phone: tuple[BrowserContext, Page, list[str]],
    crew_server: str,
    crew: tuple[str, str],
    gateway: None,
    network_middle: tuple[float, float],
) -> None:
    _context, page, errors = phone
    crew_id, device_id = crew
    sign_in(page, crew_server, crew_id, device_id)
    lon, lat = network_middle
    # The site is where the handheld stands: its fixes show the site reached.
    task_id = create_and_assign(page, crew_server, crew_id, (lon, lat))

    # Only the inbox message over MQTT tells the app: no reload.
    card = page.locator(f'.cr-task[data-task="{task_id}"]')
    expect(card).to_be_visible(timeout=WAIT_MS)
    expect(card).to_have_attribute("data-state", "assigned")
    expect(card).to_contain_text("Water on the road")

    for status in ("accepted", "en_route", "on_site"):
        card.locator(f'button[data-status="{status}"]').click()
        expect(card).to_have_attribute("data-state", status)
    # The site on the small map, and what /progress makes of the fixes sent so far.
    page.wait_for_function(
        "() => window.fieldlineCrew.map.map.queryRenderedFeatures({layers: ['sites']}).length > 0",
        timeout=WAIT_MS,
    )
    expect(card.locator(".cr-progress")).to_have_text("Site reached", timeout=WAIT_MS)
    card.get_by_label(f"Note for {task_id}").fill("Replaced a clamp")
    card.locator('button[data-status="completed"]').click()
    expect(card.locator('button[data-status="completed"]')).to_be_disabled()

    def completed() -> dict[str, Any] | None:
        task = page.request.get(crew_server + f"/api/v1/tasks/{task_id}").json()
        return task if task["state"] == "completed" else None

    task = wait_for(completed, what="the task to be completed")
    steps = [(s["action"], s["actor_kind"]) for s in task["history"]]
    assert steps[-4:] == [
        ("accept", "crew"),
        ("start", "crew"),
        ("arrive", "crew"),
        ("complete", "crew"),
    ]
    assert task["history"][-1]["note"] == "Replaced a clamp"
    # The statuses carried the handheld's position.
    assert task["history"][-1]["position"] == pytest.approx({"lon": lon, "lat": lat}, abs=1e-6)
    expect(page.locator("#outbox")).to_have_attribute("data-count", "0", timeout=WAIT_MS)
    assert errors == []


ROUTE_DATA = """async () => {
  const data = await window.fieldlineCrew.map.map.getSource('route').getData();
  return data.features.length ? data.features[0] : null;
}"""


def test_the_selected_task_shows_the_way_there_and_its_eta(
    phone: tuple[BrowserContext, Page, list[str]],
    crew_server: str,
    crew: tuple[str, str],
    network_middle: tuple[float, float],
) -> None:
    context, page, errors = phone
    crew_id, device_id = crew
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/route?" in r.url else None)
    sign_in(page, crew_server, crew_id, device_id)
    lon, lat = network_middle
    site = (lon + 0.006, lat + 0.002)
    task_id = create_and_assign(page, crew_server, crew_id, site)
    card = page.locator(f'.cr-task[data-task="{task_id}"]')
    expect(card).to_have_attribute("data-selected", "true", timeout=WAIT_MS)

    # The line under the site, and the card's words, both from the server's answer.
    shown = card.locator(".cr-route")
    expect(shown).to_have_text(
        re.compile(r"^\d+ min, [\d.]+ k?m by road · ETA \d\d?:\d\d"), timeout=WAIT_MS
    )
    feature = page.wait_for_function(ROUTE_DATA, timeout=WAIT_MS).json_value()
    answer = page.request.get(crew_server + f"/api/v1/tasks/{task_id}/route?from={lon},{lat}")
    assert answer.ok, answer.text()
    expected = answer.json()
    props = expected["properties"]
    assert props["on_roads"] is True
    minutes = max(1, round(props["seconds"] / 60))
    metres = props["metres"]
    distance = f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"
    assert shown.inner_text().startswith(f"{minutes} min, {distance} by road · ETA ")
    drawn = feature["geometry"]["coordinates"]
    assert drawn[0] == pytest.approx([lon, lat], abs=1e-6)
    assert drawn[-1] == pytest.approx(list(site), abs=1e-9)
    assert len(drawn) == len(expected["geometry"]["coordinates"])
    page.wait_for_function(
        "() => window.fieldlineCrew.map.map.queryRenderedFeatures({layers: ['route']}).length > 0",
        timeout=WAIT_MS,
    )
    # A few metres on: no new ask. A couple of hundred: the way from there.
    count = len(asked)
    context.set_geolocation({"latitude": lat, "longitude": lon + 0.0001, "accuracy": 8})
    page.wait_for_timeout(2500)
    assert len(asked) == count
    moved = (lon + 0.003, lat)
    context.set_geolocation({"latitude": moved[1], "longitude": moved[0], "accuracy": 8})
    page.wait_for_function(
        f"async () => ((await ({ROUTE_DATA})())?.geometry.coordinates[0][0] ?? 0) > {lon + 0.002}",
        timeout=WAIT_MS,
    )
    assert len(asked) == count + 1
    # Offline nothing is asked and the last way stays drawn.
    context.set_offline(True)
    expect(page.locator("#link")).to_have_attribute("data-state", "offline", timeout=5000)
    count = len(asked)
    context.set_geolocation({"latitude": lat + 0.003, "longitude": lon, "accuracy": 8})
    page.wait_for_timeout(2500)
    assert len(asked) == count
    kept = page.evaluate(ROUTE_DATA)
    assert kept["geometry"]["coordinates"][0] == pytest.approx(list(moved), abs=1e-6)
    expect(shown).to_be_visible()
    context.set_offline(False)
    assert errors == []


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def test_a_report_with_a_photo_arrives_with_its_upload(
    phone: tuple[BrowserContext, Page, list[str]],
    crew_server: str,
    crew: tuple[str, str],
    gateway: None,
    browser_engine: sa.Engine,
    network_middle: tuple[float, float],
) -> None:
    _context, page, errors = phone
    crew_id, device_id = crew
    sign_in(page, crew_server, crew_id, device_id)
    with browser_engine.connect() as connection:
        pipe_id = connection.scalar(sa.text("SELECT public_id FROM pipes ORDER BY id LIMIT 1"))
    photo = _jpeg()

    report = page.locator("#report")
    report.locator("summary").click()
    form = page.locator("#report-form")
    form.get_by_label("Kind").select_option("leak")
    form.get_by_label("Note").fill("Water coming up between the slabs")
    form.get_by_label("Asset id").fill(pipe_id)
    form.get_by_label("Photo").set_input_files(
        files=FilePayload(name="leak.jpg", mimeType="image/jpeg", buffer=photo)
    )
    form.get_by_role("button", name="Send report").click()
    expect(report).not_to_have_attribute("open", "", timeout=WAIT_MS)

    # A correction, no photo: the attributes as typed, numbers as numbers.
    report.locator("summary").click()
    form.get_by_label("Kind").select_option("attribute_correction")
    form.get_by_label("Asset id").fill(pipe_id)
    form.get_by_label("Attribute", exact=True).first.fill("diameter_mm")
    form.get_by_label("Value", exact=True).first.fill("150")
    form.get_by_role("button", name="Send report").click()
    expect(page.locator("#outbox")).to_have_attribute("data-count", "0", timeout=WAIT_MS)

    query = sa.text(
        "SELECT kind, lat, lon, asset_id, note, changes, photos FROM field_reports "
        "WHERE crew_id = :crew ORDER BY ts"
    )

    def rows() -> list[Any]:
        with browser_engine.connect() as connection:
            found = list(connection.execute(query, {"crew": crew_id}))
        return found if len(found) == 2 else []

    leak, correction = wait_for(rows, what="both reports")
    lon, lat = network_middle
    assert (leak.kind, leak.asset_id, leak.note) == (
        "leak",
        pipe_id,
        "Water coming up between the slabs",
    )
    assert (leak.lon, leak.lat) == pytest.approx((lon, lat), abs=1e-6)
    assert len(leak.photos) == 1
    upload = page.request.get(crew_server + f"/api/v1/uploads/{leak.photos[0]}")
    assert upload.ok
    assert upload.headers["content-type"] == "image/jpeg"
    assert upload.body() == photo
    assert (correction.kind, correction.asset_id, correction.photos) == (
        "attribute_correction",
        pipe_id,
        [],
    )
    assert correction.changes == {"diameter_mm": 150}
    assert errors == []


class PositionTap:
    """Every message on the crew's position topic, as the broker delivers it."""

    def __init__(self, settings: Settings, crew_id: str) -> None:
        self.messages: list[Any] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"crewapp-tap-{uuid.uuid4().hex[:8]}"
        )
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, message: self.messages.append(
            json.loads(message.payload)
        )
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.on_connect = lambda client, *_args: client.subscribe(
            f"fieldline/crews/{crew_id}/position", qos=1
        )
        self.client.connect(*_mqtt_host_port(settings))
        self.client.loop_start()
        assert subscribed.wait(10)

    def fixes(self) -> list[dict[str, Any]]:
        found = []
        for message in list(self.messages):
            found.extend(message if isinstance(message, list) else [message])
        return found

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_fixes_taken_offline_arrive_once_in_order_after_reconnecting(
    phone: tuple[BrowserContext, Page, list[str]],
    crew_server: str,
    crew_settings: Settings,
    crew: tuple[str, str],
    gateway: None,
    browser_engine: sa.Engine,
    network_middle: tuple[float, float],
) -> None:
    context, page, errors = phone
    crew_id, device_id = crew
    lon, lat = network_middle
    tap = PositionTap(crew_settings, crew_id)
    try:
        sign_in(page, crew_server, crew_id, device_id)
        task_id = create_and_assign(page, crew_server, crew_id, (lon + 0.002, lat))
        expect(page.locator(f'.cr-task[data-task="{task_id}"]')).to_be_visible(timeout=WAIT_MS)
        # Online, fixes go out as they are taken.
        wait_for(lambda: tap.fixes(), what="a first fix over MQTT")

        context.set_offline(True)
        # The browser's offline event closes the socket: nothing can leave from here on.
        expect(page.locator("#link")).to_have_attribute("data-state", "offline", timeout=5000)
        walk = [(lon + 0.0001 * i, lat + 0.00005 * i) for i in range(1, 5)]
        for step_lon, step_lat in walk:
            context.set_geolocation({"latitude": step_lat, "longitude": step_lon, "accuracy": 6})
            page.wait_for_timeout(2300)
        queued = [item["fix"] for item in page.evaluate(OUTBOX_ITEMS) if item["type"] == "fix"]
        assert int(page.locator("#outbox").get_attribute("data-count") or 0) >= len(queued)
        # Each step of the walk was taken, in order, while the link was down.
        taken = [(f["lon"], f["lat"]) for f in queued]
        seen = [p for i, p in enumerate(taken) if i == 0 or taken[i - 1] != p]
        assert seen[-len(walk) :] == [pytest.approx(p, abs=1e-9) for p in walk]
        assert all(f["acc_m"] in (6, 8) for f in queued)
        queued_ts = [f["ts"] for f in queued]
        page.wait_for_timeout(1000)
        assert not set(queued_ts) & {f["ts"] for f in tap.fixes()}, "a fix left while offline"

        # A reload with no network: the page comes from the service worker, the outbox from
        # IndexedDB, each fix with the time it was taken.
        page.reload()
        page.wait_for_function("() => !!window.fieldlineCrew", timeout=WAIT_MS)
        kept = [item["fix"] for item in page.evaluate(OUTBOX_ITEMS) if item["type"] == "fix"]
        assert kept[: len(queued)] == queued
        expect(page.locator("#outbox")).not_to_have_attribute("data-count", "0")

        context.set_offline(False)
        expect(page.locator("#link")).to_have_attribute("data-state", "online", timeout=WAIT_MS)

        def arrived() -> bool:
            return set(queued_ts) <= {f["ts"] for f in tap.fixes()}

        wait_for(arrived, what="the offline fixes over MQTT")
        page.wait_for_timeout(1500)  # a repeat, if any, would come now
        sent = [f["ts"] for f in tap.fixes() if f["ts"] in set(queued_ts)]
        assert sent == queued_ts, "the offline fixes were not sent once each, in order"
        # The backlog went as one array message, not one message a fix.
        assert any(
            isinstance(m, list) and len({f["ts"] for f in m} & set(queued_ts)) == len(queued_ts)
            for m in tap.messages
        )

        def stored() -> list[Any]:
            with browser_engine.connect() as connection:
                found = list(
                    connection.execute(
                        sa.text(
                            "SELECT fix_time, lon, lat, acc_m FROM positions "
                            "WHERE crew_id = :crew AND fix_time = ANY(CAST(:ts AS timestamptz[])) "
                            "ORDER BY fix_time"
                        ),
                        {"crew": crew_id, "ts": queued_ts},
                    )
                )
            return found if len(found) == len(queued_ts) else []

        rows = wait_for(stored, what="the offline fixes in the database")
        assert [(r.lon, r.lat) for r in rows] == [pytest.approx(p, abs=1e-9) for p in taken]
    finally:
        tap.close()
    assert errors == []
