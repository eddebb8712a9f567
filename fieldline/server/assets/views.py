"""`/api/v1/assets`: the asset layers as GeoJSON, with spatial and attribute filters."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request, url_for

from fieldline.gis.crs import CRS84, Crs
from fieldline.gis.geojson import collection_json, dumps
from fieldline.gis.layers import LAYERS, get_layer
from fieldline.gis.queries import around, select_documents
from fieldline.gis.services import (
    asset_history,
    create_asset,
    delete_asset,
    read_document,
    update_asset,
)
from fieldline.server.assets.params import (
    parse_around,
    parse_feature_query,
    parse_output_crs,
    query_errors,
)
from fieldline.server.assets.payloads import feature_body
from fieldline.server.auth import current_principal, requires
from fieldline.server.resources import db, replica, resources

blueprint = Blueprint("assets", __name__)
GEOJSON = "application/geo+json"


def geojson_response(body: str, crs: Crs = CRS84, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype=GEOJSON)
    response.headers["Content-Crs"] = f"<{crs.uri}>"
    return response


@blueprint.get("")
@requires("assets:read")
def list_layers() -> Any:
    return {
        "layers": [
            {
                "name": layer.name,
                "title": layer.title,
                "geometry_type": layer.geometry_type,
                "attributes": [
                    {
                        "name": a.name,
                        "type": a.kind,
                        **({"enum": list(a.choices)} if a.choices else {}),
                        **({"read_only": True} if a.read_only else {}),
                    }
                    for a in layer.attributes
                ],
                "links": [
                    {"rel": "items", "href": url_for(".list_features", layer_name=layer.name)}
                ],
            }
            for layer in LAYERS.values()
        ]
    }


@blueprint.get("/around")
@requires("assets:read")
def assets_around() -> Response:
    lon, lat, radius_m, limit = parse_around(request.args, resources().settings)
    features = around(replica().connection(), lon, lat, radius_m, limit)
    return geojson_response(collection_json(features, {"numberReturned": len(features)}))


@blueprint.get("/<layer_name>")
@requires("assets:read")
def list_features(layer_name: str) -> Response:
    layer = get_layer(layer_name)
    query = parse_feature_query(layer, request.args, resources().settings)
    rows = replica().connection().execute(*select_documents(layer, query)).all()
    links = [{"rel": "self", "type": GEOJSON, "href": request.url}]
    if query.nearest is None and len(rows) == query.limit:
        args = request.args.to_dict() | {"cursor": str(rows[-1]._id)}
        links.append(
            {
                "rel": "next",
                "type": GEOJSON,
                "href": url_for(".list_features", layer_name=layer.name, _external=True, **args),
            }
        )
    body = collection_json(
        (row._feature for row in rows), {"numberReturned": len(rows), "links": links}
    )
    return geojson_response(body, query.out_crs)


def _one(layer_name: str, public_id: str, crs: Crs, status: int = 200) -> Response:
    layer = get_layer(layer_name)
    response = geojson_response(read_document(db(), layer, public_id, crs), crs, status)
    if status == 201:
        response.headers["Location"] = url_for(
            ".get_feature", layer_name=layer.name, public_id=public_id, _external=True
        )
    return response


@blueprint.post("/<layer_name>")
@requires("assets:write")
def post_feature(layer_name: str) -> Response:
    layer = get_layer(layer_name)
    crs = parse_output_crs(request.args)
    geometry, properties = feature_body(layer, partial=False)
    session = db()
    public_id = create_asset(session, layer, geometry, properties, current_principal().name)
    session.commit()
    return _one(layer.name, public_id, crs, status=201)


@blueprint.get("/<layer_name>/<public_id>")
@requires("assets:read")
def get_feature(layer_name: str, public_id: str) -> Response:
    return _one(layer_name, public_id, parse_output_crs(request.args))


@blueprint.patch("/<layer_name>/<public_id>")
@requires("assets:write")
def patch_feature(layer_name: str, public_id: str) -> Response:
    layer = get_layer(layer_name)
    crs = parse_output_crs(request.args)
    geometry, properties = feature_body(layer, partial=True)
    session = db()
    update_asset(session, layer, public_id, geometry, properties, current_principal().name)
    session.commit()
    return _one(layer.name, public_id, crs)


@blueprint.delete("/<layer_name>/<public_id>")
@requires("assets:write")
def remove_feature(layer_name: str, public_id: str) -> Response:
    layer = get_layer(layer_name)
    session = db()
    delete_asset(session, layer, public_id, current_principal().name)
    session.commit()
    return Response(status=204)


@blueprint.get("/<layer_name>/<public_id>/history")
@requires("assets:history")
def feature_history(layer_name: str, public_id: str) -> Response:
    layer = get_layer(layer_name)
    with query_errors():
        edits = asset_history(db(), layer, public_id)
    body = {
        "asset": public_id,
        "layer": layer.name,
        "edits": [
            {
                "at": e.at,
                "action": e.action,
                "field": e.field,
                "old": e.old_value,
                "new": e.new_value,
                "actor": e.actor,
                "source": e.source,
            }
            for e in edits
        ],
    }
    return Response(dumps(body), mimetype="application/json")
