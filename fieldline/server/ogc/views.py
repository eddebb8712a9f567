"""`/ogc`: OGC API - Features over the asset layers, for GDAL, QGIS and people with a browser.

Views only translate: they read the request, call services.py, and send its document as
JSON or as HTML (`f=json|html`, else the Accept header).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask.blueprints import BlueprintSetupState

from fieldline.gis.crs import Crs
from fieldline.gis.geojson import dumps
from fieldline.gis.layers import get_layer
from fieldline.server.assets.payloads import JSON_TYPES, content_crs, request_json
from fieldline.server.auth import current_principal, requires
from fieldline.server.errors import BadRequest
from fieldline.server.ogc import openapi, services
from fieldline.server.ogc.params import (
    check_params,
    crs_named,
    offered_crs,
    output_crs,
    parse_items,
)
from fieldline.server.ogc.services import GEOJSON, HTML, JSON, OPENAPI_JSON, SCHEMA_JSON
from fieldline.server.resources import db, replica, resources

blueprint = Blueprint("ogc", __name__, template_folder="templates")
EXTENTS = "ogc_extents"
PATCH_TYPES = (*JSON_TYPES, openapi.MERGE_PATCH)
ONLY_F = ("f",)


@blueprint.record_once
def _keep_extents(state: BlueprintSetupState) -> None:
    state.app.extensions[EXTENTS] = services.ExtentCache()


def _urls() -> services.Urls:
    return services.Urls(url_for("ogc.landing", _external=True).rstrip("/"))


def _format(allowed: tuple[str, ...] | None = ONLY_F) -> services.Format:
    """The format asked for, after refusing parameters outside `allowed` (None: checked
    elsewhere)."""
    if allowed is not None:
        check_params(request.args, allowed)
    if "f" in request.args:
        fmt = request.args["f"]
        if fmt not in ("json", "html"):
            raise BadRequest(f"{fmt!r} is not a format here; use json or html", field="f")
        return "html" if fmt == "html" else "json"
    best = request.accept_mimetypes.best_match([GEOJSON, JSON, HTML], default=JSON)
    return "html" if best == HTML else "json"


def _reply(
    document: Any, template: str, fmt: services.Format, media_type: str = JSON, **extra: Any
) -> Response:
    """The document as JSON, or rendered by a template (which escapes everything)."""
    if fmt == "html":
        parsed = json.loads(document) if isinstance(document, str) else document
        page = render_template(template, doc=parsed, root=_urls().root, **extra)
        return Response(page, mimetype=HTML)
    body = document if isinstance(document, str) else dumps(document)
    return Response(body, mimetype=media_type)


def _extents() -> services.ExtentCache:
    cache: services.ExtentCache = current_app.extensions[EXTENTS]
    return cache


def _crs_list() -> list[str]:
    return list(offered_crs(resources().settings.local_crs))


@blueprint.get("")
@blueprint.get("/")
@requires("assets:read")
def landing() -> Response:
    fmt = _format()
    return _reply(services.landing(_urls(), fmt), "ogc/landing.html", fmt)


@blueprint.get("/conformance")
@requires("assets:read")
def conformance() -> Response:
    fmt = _format()
    return _reply(services.conformance(_urls(), fmt), "ogc/conformance.html", fmt)


@blueprint.get("/api")
@requires("assets:read")
def api() -> Response:
    fmt = _format()
    document = openapi.document(_urls().root, resources().settings, _crs_list())
    return _reply(document, "ogc/api.html", fmt, OPENAPI_JSON)


@blueprint.get("/collections")
@requires("assets:read")
def collections() -> Response:
    fmt = _format()
    extents = _extents().get(db().connection())
    document = services.collections(extents, _crs_list(), _urls(), fmt)
    return _reply(document, "ogc/collections.html", fmt)


@blueprint.get("/collections/<collection_id>")
@requires("assets:read")
def collection(collection_id: str) -> Response:
    layer = get_layer(collection_id)
    fmt = _format()
    bounds = _extents().get(db().connection()).get(layer.name)
    document = services.collection(layer, bounds, _crs_list(), _urls(), fmt)
    return _reply(document, "ogc/collection.html", fmt)


@blueprint.get("/collections/<collection_id>/queryables")
@requires("assets:read")
def queryables(collection_id: str) -> Response:
    layer = get_layer(collection_id)
    fmt = _format()
    return _reply(services.queryables(layer, _urls()), "ogc/queryables.html", fmt, SCHEMA_JSON)


def _features(body: str, fmt: services.Format, template: str, crs: Crs, **extra: Any) -> Response:
    response = _reply(body, template, fmt, GEOJSON, **extra)
    response.headers["Content-Crs"] = f"<{crs.uri}>"
    return response


@blueprint.get("/collections/<collection_id>/items")
@requires("assets:read")
def items(collection_id: str) -> Response:
    layer = get_layer(collection_id)
    parsed = parse_items(layer, request.args, resources().settings)
    fmt = _format(allowed=None)
    now = datetime.now(UTC)
    body = services.items(replica().connection(), layer, parsed, _urls(), request.args, fmt, now)
    return _features(body, fmt, "ogc/items.html", parsed.query.out_crs, layer=layer)


@blueprint.get("/collections/<collection_id>/items/<feature_id>")
@requires("assets:read")
def item(collection_id: str, feature_id: str) -> Response:
    layer = get_layer(collection_id)
    fmt = _format(("crs", "f"))
    crs = output_crs(request.args, resources().settings)
    body = services.item(db(), layer, feature_id, crs, _urls(), request.args, fmt)
    return _features(body, fmt, "ogc/item.html", crs, layer=layer)


def _body_crs() -> Crs:
    offered = offered_crs(resources().settings.local_crs)
    return content_crs(lambda value, field: crs_named(value, field, offered))


def _committed() -> None:
    db().commit()
    _extents().forget()


@blueprint.post("/collections/<collection_id>/items")
@requires("assets:write")
def create_item(collection_id: str) -> Response:
    layer = get_layer(collection_id)
    check_params(request.args, ("crs",))
    body, crs = request_json(), _body_crs()
    out_crs = output_crs(request.args, resources().settings)
    actor = current_principal().name
    feature_id = services.create_feature(db(), layer, body, crs, actor)
    _committed()
    document = services.item(db(), layer, feature_id, out_crs, _urls(), {}, "json")
    response = _features(document, "json", "ogc/item.html", out_crs)
    response.status_code = 201
    response.headers["Location"] = url_for(
        ".item", collection_id=layer.name, feature_id=feature_id, _external=True
    )
    return response


@blueprint.put("/collections/<collection_id>/items/<feature_id>")
@requires("assets:write")
def replace_item(collection_id: str, feature_id: str) -> Response:
    layer = get_layer(collection_id)
    check_params(request.args, ())
    body, crs = request_json(), _body_crs()
    services.replace_feature(db(), layer, feature_id, body, crs, current_principal().name)
    _committed()
    return Response(status=204)


@blueprint.patch("/collections/<collection_id>/items/<feature_id>")
@requires("assets:write")
def update_item(collection_id: str, feature_id: str) -> Response:
    layer = get_layer(collection_id)
    check_params(request.args, ())
    body, crs = request_json(PATCH_TYPES), _body_crs()
    services.update_feature(db(), layer, feature_id, body, crs, current_principal().name)
    _committed()
    return Response(status=204)


@blueprint.delete("/collections/<collection_id>/items/<feature_id>")
@requires("assets:write")
def delete_item(collection_id: str, feature_id: str) -> Response:
    layer = get_layer(collection_id)
    check_params(request.args, ())
    services.delete_feature(db(), layer, feature_id, current_principal().name)
    _committed()
    return Response(status=204)
