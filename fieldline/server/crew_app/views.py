"""`/crew/`: the crew's handheld app (`/crew` redirects there); `/crew/manifest.webmanifest`,
`/crew/sw.js` (the service worker, its scope `/crew/`) and `/crew/static/`, the bundle built
from `web/crew/` by `npm run build`."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, render_template, url_for

from fieldline.server.auth import requires
from fieldline.server.crew_app import payloads

blueprint = Blueprint(
    "crew_app",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/crew/static",
)
STATIC = Path(__file__).resolve().parent / "static"
SCOPE = "/crew/"
API_PREFIX = "/api/v1"
BUNDLE = ("crew.js", "crew.css")
ICONS = (("icon-192.png", "192x192"), ("icon-512.png", "512x512"))


@lru_cache(maxsize=8)
def _digest(stamps: tuple[tuple[str, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _mtime_ns in stamps:
        digest.update((STATIC / name).read_bytes())
    return digest.hexdigest()[:12]


def _version() -> str:
    """One digest over the bundle (worked out again when a file changes): names the shell's
    cache and versions its URLs."""
    names = (*BUNDLE, "sw.js", *(icon for icon, _ in ICONS))
    return _digest(tuple((name, (STATIC / name).stat().st_mtime_ns) for name in names))


def _static_url(filename: str, version: str) -> str:
    return url_for("crew_app.static", filename=filename, v=version)


def _tiles_url(layer: str) -> str:
    # url_for would escape the braces of the template; fill the places in afterwards.
    path = url_for("map.tile", layer=layer, z="_z_", x="_x_", y="_y_")
    return path.replace("_z_", "{z}").replace("_x_", "{x}").replace("_y_", "{y}")


def _no_cache(response: Response) -> Response:
    # The service worker decides what is kept; the HTTP cache must not serve an old shell.
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get(SCOPE)
@requires("crews:sign-in", page=True)
def page() -> Response:
    version = _version()
    config = payloads.page_config(
        api_prefix=API_PREFIX,
        tiles_url=_tiles_url,
        sw_url=url_for(".service_worker"),
        scope=SCOPE,
    )
    body = render_template(
        "crew_app/index.html",
        config=config,
        script_url=_static_url("crew.js", version),
        style_url=_static_url("crew.css", version),
        manifest_url=url_for(".manifest"),
        icon_url=_static_url("icon-192.png", version),
    )
    return _no_cache(Response(body, mimetype="text/html"))


@blueprint.get("/crew/manifest.webmanifest")
@requires("crews:sign-in")
def manifest() -> Response:
    version = _version()
    icons = [(_static_url(name, version), sizes, "image/png") for name, sizes in ICONS]
    body = payloads.manifest(scope=SCOPE, icons=icons)
    return _no_cache(Response(json.dumps(body), mimetype="application/manifest+json"))


@blueprint.get("/crew/sw.js")
@requires("crews:sign-in")
def service_worker() -> Response:
    version = _version()
    shell = [
        SCOPE,
        url_for(".manifest"),
        *(_static_url(name, version) for name in BUNDLE),
        *(_static_url(name, version) for name, _ in ICONS),
    ]
    script = (STATIC / "sw.js").read_text(encoding="utf-8")
    body = payloads.service_worker(script, version=version, shell=shell)
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = SCOPE
    return _no_cache(response)
