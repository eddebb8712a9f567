"""`/map` (and `/` for browsers): the dispatcher's map page; `/tiles/{layer}/{z}/{x}/{y}.mvt`:
vector tiles of the layers; `/map/static/`: the bundled script and styles built from `web/`
by `make web`."""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask.blueprints import BlueprintSetupState

from fieldline.gis.queries import Bounds
from fieldline.server.auth import requires
from fieldline.server.map import payloads, services
from fieldline.server.map.params import parse_tile
from fieldline.server.ogc.services import ExtentCache
from fieldline.server.resources import db, replica, resources

blueprint = Blueprint(
    "map",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/map/static",
)
EXTENTS = "map_extents"
STATIC = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api/v1"


@blueprint.record_once
def _keep_extents(state: BlueprintSetupState) -> None:
    # ST_Extent reads every geometry: the box is worked out once a minute at most.
    state.app.extensions[EXTENTS] = ExtentCache()


@lru_cache(maxsize=8)
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _static_url(filename: str) -> str:
    """The file's URL with a digest of its content, so a rebuilt bundle is never served
    stale from a browser's cache."""
    path = STATIC / filename
    version = _digest(path, path.stat().st_mtime_ns)
    return url_for("map.static", filename=filename, v=version)


def _tiles_url(layer: str) -> str:
    # url_for would escape the braces of the template; fill the places in afterwards.
    path = url_for("map.tile", layer=layer, z="_z_", x="_x_", y="_y_")
    return path.replace("_z_", "{z}").replace("_x_", "{x}").replace("_y_", "{y}")


def _extent() -> Bounds | None:
    cache: ExtentCache = current_app.extensions[EXTENTS]
    return services.network_extent(cache.get(db().connection()))


@blueprint.get("/map")
@requires("assets:read", page=True)
def page() -> Response:
    config = payloads.page_config(
        resources().settings,
        _extent(),
        tiles_url=_tiles_url,
        api_prefix=API_PREFIX,
        live_url=url_for("live.stream"),
        ready_url=url_for("health.readyz"),
    )
    body = render_template(
        "map/index.html",
        config=config,
        script_url=_static_url("map.js"),
        style_url=_static_url("map.css"),
    )
    response = Response(body, mimetype="text/html")
    # The page carries the network's current extent: always ask again.
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/tiles/<layer>/<z>/<x>/<y>.mvt")
@requires("assets:read")
def tile(layer: str, z: str, x: str, y: str) -> Response:
    body = services.tile(replica(), parse_tile(layer, z, x, y))
    # An empty tile is "no content": the map draws nothing there and asks no further.
    if not body:
        response = Response(status=204)
        del response.headers["Content-Type"]
    else:
        response = Response(body, mimetype=services.MEDIA_TYPE)
        if request.accept_encodings["gzip"]:
            # A tile's coordinates and ids halve in gzip, for a few ms of the server's time.
            response.set_data(gzip.compress(body, compresslevel=services.GZIP_LEVEL))
            response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        response.add_etag()
    response.headers["Cache-Control"] = f"private, max-age={services.MAX_AGE_S}"
    response.make_conditional(request)  # 304 when the browser holds this tile already
    return response
