"""`/crew/`: the crew app's shell page, its manifest and service worker, who may open them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.server import create_app
from fieldline.settings import Settings, load_settings

CONFIG = re.compile(r'<script id="fieldline-config" type="application/json">(.*?)</script>', re.S)
PRELUDE = re.compile(r"^self\.FIELDLINE_SHELL = (\{.*?\});\n", re.S)


def shell_of(script: str) -> dict[str, Any]:
    found = PRELUDE.match(script)
    assert found is not None, script[:200]
    shell: dict[str, Any] = json.loads(found.group(1))
    return shell


def fetched(client: FlaskClient, url: str) -> tuple[int, str | None]:
    """A static file's status and type; the response is closed (it holds the file open)."""
    with client.get(url) as response:
        return response.status_code, response.mimetype


def test_crew_without_the_slash_goes_to_the_scope(client: FlaskClient) -> None:
    response = client.get("/crew")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/crew/")


def test_the_shell_page_loads_the_bundle_and_manifest(client: FlaskClient) -> None:
    response = client.get("/crew/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    html = response.get_data(as_text=True)
    found = CONFIG.search(html)
    assert found is not None
    config = json.loads(found.group(1))
    assert (config["api_prefix"], config["scope"], config["sw_url"]) == (
        "/api/v1",
        "/crew/",
        "/crew/sw.js",
    )
    assert config["tiles"]["pipes"] == "/tiles/pipes/{z}/{x}/{y}.mvt"
    for url in re.findall(r'(?:src|href)="(/crew/static/[^"]+)"', html):
        assert fetched(client, url)[0] == 200, url
    assert 'rel="manifest" href="/crew/manifest.webmanifest"' in html


def test_the_manifest_makes_it_installable(client: FlaskClient) -> None:
    response = client.get("/crew/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == (
        "/crew/",
        "/crew/",
        "standalone",
    )
    sizes = {icon["sizes"]: icon["src"] for icon in manifest["icons"]}
    assert set(sizes) == {"192x192", "512x512"}
    for src in sizes.values():
        assert fetched(client, src) == (200, "image/png")


def test_the_service_worker_keeps_the_shell_of_this_build(client: FlaskClient) -> None:
    response = client.get("/crew/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/crew/"
    assert response.headers["Cache-Control"] == "no-cache"
    shell = shell_of(response.get_data(as_text=True))
    page = client.get("/crew/").get_data(as_text=True)
    # Exactly the versioned files the page asks for, so the cached page finds them offline.
    assert shell["shell"][:2] == ["/crew/", "/crew/manifest.webmanifest"]
    for url in shell["shell"][2:]:
        assert url.endswith(f"?v={shell['version']}")
        assert fetched(client, url)[0] == 200
    for url in re.findall(r'(?:src|href)="(/crew/static/crew\.[^"]+)"', page):
        assert url in shell["shell"]


@pytest.mark.parametrize("path", ["/crew/", "/crew/manifest.webmanifest", "/crew/sw.js"])
def test_a_role_that_cannot_sign_in_a_handheld_is_refused(
    settings: Settings, connection: sa.Connection, path: str
) -> None:
    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    response = create_app(viewer, bind=connection).test_client().get(path)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
