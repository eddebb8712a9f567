"""Browser tests: the real server on a free port, over a database of its own holding the
fixture city (committed, since the server reads through its own connections), and Debian's
Chromium driven headless by Playwright. Every test leaves a screenshot under
`test-artifacts/browser/`, passed or failed."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import redis
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from werkzeug.serving import make_server

from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
from fieldline.gis.importer import find_sources, import_path
from fieldline.local_services import database_name
from fieldline.server import create_app
from fieldline.server.crews.services import add_shift, bind_device, create_crew
from fieldline.settings import Settings, load_settings
from tests.conftest import CITY, ROOT, forget_database_logins, recreate_database

ARTIFACTS = ROOT / "test-artifacts" / "browser"
# Debian's package; `fieldline services up` installs it. Playwright never downloads a browser.
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}


def sibling_database(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{database_name(url)}{suffix}").geturl()


@pytest.fixture(scope="session")
def browser_settings(settings: Settings) -> Settings:
    url = sibling_database(settings.database_url, "_browser")
    recreate_database(url)
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            import_path(session, find_sources(CITY))
    finally:
        engine.dispose()
    # Live events of other runs on the same Redis stay out of this server's stream.
    found = load_settings(
        database_url=url,
        redis_url=settings.redis_url,
        mqtt_url=settings.mqtt_url,
        redis_prefix=f"fieldline-{database_name(url)}",
        log_level="WARNING",
        anonymous_role="admin",  # the local operator; tests of signing in set none
    )
    # The database is new: so are its crews' latest fixes (crew ids start again from 1).
    client = redis.Redis.from_url(found.redis_url)
    try:
        keys = list(client.scan_iter(f"{found.redis_prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
    return found


@contextmanager
def serving(settings: Settings, name: str) -> Iterator[str]:
    """The app behind werkzeug's threaded server in this process, on a free port."""
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        forget_database_logins(app.extensions["fieldline"].bind)
        app.extensions["fieldline"].bind.dispose()


@contextmanager
def running_gateway(settings: Settings, name: str, log: Path) -> Iterator[None]:
    """`fieldline gateway` against `settings`' database and Redis prefix, with a share group
    and client id of its own (other gateways may run on the same broker); its log printed
    afterwards (shown when a test fails)."""
    tag = uuid.uuid4().hex[:10]
    env = {
        **os.environ,
        "FIELDLINE_DATABASE_URL": settings.database_url,
        "FIELDLINE_REDIS_URL": settings.redis_url,
        "FIELDLINE_MQTT_URL": settings.mqtt_url,
        "FIELDLINE_REDIS_PREFIX": settings.redis_prefix,
        "FIELDLINE_GATEWAY_SHARE_GROUP": f"{name}_{tag}",
        "FIELDLINE_GATEWAY_CLIENT_ID": f"fieldline-{name}-{tag}",
        "FIELDLINE_GATEWAY_METRICS_PORT": "0",
        "FIELDLINE_GATEWAY_SPARKPLUG": "false",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fieldline.cli", "gateway"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "connected (session present" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the gateway did not connect:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        time.sleep(0.3)  # the subscription is made on connecting: let its SUBACK come back
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        print(log.read_text(errors="replace"))


@pytest.fixture(scope="module")
def network_middle(browser_engine: sa.Engine) -> tuple[float, float]:
    with browser_engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c FROM pipes) e"
            )
        ).one()
    return float(row[0]), float(row[1])


def crew_on_shift(
    engine: sa.Engine,
    name: str,
    *,
    depot: list[float] | None = None,
    device: str | None = None,
) -> str:
    """A crew on shift from an hour ago for eight hours, with `device` bound as its `own`
    handheld; its id is not one of the low ones a simulator on the same broker may be
    publishing for."""
    now = datetime.now(UTC)
    with make_sessionmaker(engine)() as session:
        crew = create_crew(session, f"{name} {uuid.uuid4().hex[:6]}", depot=depot)
        crew.public_id = f"C-{random.randrange(900_000, 1_000_000)}"
        session.flush()
        if device is not None:
            bind_device(session, crew.public_id, "own", device)
        add_shift(
            session,
            crew.public_id,
            (now - timedelta(hours=1)).isoformat(),
            (now + timedelta(hours=8)).isoformat(),
        )
        session.commit()
        return str(crew.public_id)


def publish_json(settings: Settings, topic: str, payload: Any) -> None:
    """One QoS 1 message to the broker, as a handheld would send it; returns once acknowledged."""
    host, _, port = settings.mqtt_url.split("://", 1)[1].rstrip("/").partition(":")
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"browser-test-{uuid.uuid4().hex[:8]}"
    )
    client.connect(host, int(port or 1883))
    client.loop_start()
    try:
        info = client.publish(topic, json.dumps(payload), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture(scope="session")
def server_url(browser_settings: Settings) -> Iterator[str]:
    with serving(browser_settings, "map-server") as url:
        yield url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium") or CHROMIUM
    if not Path(executable).exists():
        pytest.fail("Debian's chromium is not installed: run `fieldline services up` as root")
    browser = playwright.chromium.launch(executable_path=executable, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def viewport() -> dict[str, int]:
    return VIEWPORT


@pytest.fixture
def page(
    browser: Browser,
    request: pytest.FixtureRequest,
    console_errors: list[str],
    viewport: dict[str, int],
) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", keep)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    context.close()


@pytest.fixture(scope="module")
def browser_engine(browser_settings: Settings) -> Iterator[sa.Engine]:
    """An engine on the browser's database, for tests that set up committed data."""
    engine = make_engine(browser_settings.database_url)
    yield engine
    engine.dispose()
