"""The OpenAPI 3.0 definition of /ogc, built from layers.py so it cannot drift from the layers.

Each collection has its own paths, listing its attributes as query parameters: that is where
GDAL looks to learn which attribute filters it may send to the server.
"""

from __future__ import annotations

from typing import Any

from fieldline import __version__
from fieldline.gis.layers import LAYERS, Layer
from fieldline.server.ogc import schemas
from fieldline.server.ogc.params import DEFAULT_LIMIT, FILTER_LANG, ITEMS_PARAMS
from fieldline.server.ogc.services import GEOJSON, HTML, JSON, OPENAPI_JSON, SCHEMA_JSON
from fieldline.settings import Settings

PROBLEM_JSON = "application/problem+json"
MERGE_PATCH = "application/merge-patch+json"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **more,
    }


def _parameters(settings: Settings, crs_uris: list[str]) -> dict[str, Any]:
    crs_schema = {"type": "string", "format": "uri", "enum": crs_uris, "default": crs_uris[0]}
    return {
        "f": _query(
            "f", "The format of the response.", {"type": "string", "enum": ["json", "html"]}
        ),
        "bbox": _query(
            "bbox",
            "Only features that intersect the box minx,miny,maxx,maxy (in `bbox-crs`, "
            "CRS84 by default).",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            style="form",
            explode=False,
        ),
        "bbox-crs": _query("bbox-crs", "The CRS of `bbox`.", crs_schema),
        "crs": _query("crs", "The CRS of the geometries in the response.", crs_schema),
        "limit": _query(
            "limit",
            "Features per page; a larger value is lowered to the maximum.",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_page_size,
                "default": min(DEFAULT_LIMIT, settings.max_page_size),
            },
        ),
        "datetime": _query(
            "datetime",
            "Only features last changed (`updated_at`) at this instant, on this date, or in "
            "this interval (`start/end`, `..` for an open end).",
            {"type": "string"},
        ),
        "cursor": _query(
            "cursor", "The page after this one; taken from `next` links.", {"type": "integer"}
        ),
        "before": _query(
            "before", "The page before this one; taken from `prev` links.", {"type": "integer"}
        ),
        "filter": _query("filter", "A CQL2 text expression.", {"type": "string"}),
        "filter-lang": _query(
            "filter-lang",
            "The language of `filter`.",
            {"type": "string", "enum": [FILTER_LANG], "default": FILTER_LANG},
        ),
        "filter-crs": _query(
            "filter-crs",
            "The CRS of geometries in `filter`.",
            {"type": "string", "format": "uri", "enum": [crs_uris[0]], "default": crs_uris[0]},
        ),
        "featureId": {
            "name": "featureId",
            "in": "path",
            "required": True,
            "description": "The id of a feature.",
            "schema": {"type": "string"},
        },
        "Content-Crs": {
            "name": "Content-Crs",
            "in": "header",
            "required": False,
            "description": "The CRS of the geometry in the body, as <URI>; CRS84 by default.",
            "schema": {"type": "string", "enum": [f"<{uri}>" for uri in crs_uris]},
        },
    }


def _content(*media_types: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {media_type: {"schema": schema or {"type": "object"}} for media_type in media_types}


def _ok(description: str, *media_types: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": _content(*media_types)}}


def _problems(*statuses: str) -> dict[str, Any]:
    return {status: _ref("responses", "Problem") for status in statuses}


def _get(summary: str, responses: dict[str, Any], *parameters: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [_ref("parameters", name) for name in parameters],
            "responses": responses | _problems("400"),
        }
    }


def _collection_paths(layer: Layer) -> dict[str, Any]:
    base = f"/collections/{layer.name}"
    attribute_parameters = [
        _query(
            a.name,
            f"Only features whose {a.name} equals this value.",
            schemas.property_schema(layer, a, openapi30=True),
        )
        for a in layer.attributes
        if schemas.queryable(a)
    ]
    items = _get(
        f"{layer.title}: features",
        _ok("A page of features", GEOJSON, HTML),
        *ITEMS_PARAMS,
    )
    items["get"]["parameters"] += attribute_parameters
    items["get"]["responses"] |= _problems("404")
    items["post"] = {
        "summary": f"{layer.title}: add a feature",
        "parameters": [_ref("parameters", "Content-Crs"), _ref("parameters", "crs")],
        "requestBody": {
            "required": True,
            "content": _content(GEOJSON, JSON, schema=schemas.feature_schema(layer, partial=False)),
        },
        "responses": {
            "201": {
                "description": "Created; `Location` names the new feature",
                "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                "content": _content(GEOJSON),
            }
        }
        | _problems("400", "403", "404", "409", "415", "422"),
    }
    one = _get(f"{layer.title}: one feature", _ok("A feature", GEOJSON, HTML), "crs", "f")
    one["get"]["responses"] |= _problems("404")
    changed = {"204": {"description": "Done"}} | _problems("400", "403", "404", "409", "415", "422")
    whole = schemas.feature_schema(layer, partial=False)
    patch = schemas.feature_schema(layer, partial=True)
    one["put"] = {
        "summary": f"{layer.title}: replace a feature; attributes left out take their "
        "defaults or become null",
        "parameters": [_ref("parameters", "Content-Crs")],
        "requestBody": {"required": True, "content": _content(GEOJSON, JSON, schema=whole)},
        "responses": changed,
    }
    one["patch"] = {
        "summary": f"{layer.title}: change what the body names (JSON merge patch)",
        "parameters": [_ref("parameters", "Content-Crs")],
        "requestBody": {
            "required": True,
            "content": _content(MERGE_PATCH, GEOJSON, JSON, schema=patch),
        },
        "responses": changed,
    }
    one["delete"] = {
        "summary": f"{layer.title}: delete a feature",
        "responses": {"204": {"description": "Deleted"}} | _problems("403", "404", "409"),
    }
    one["parameters"] = [_ref("parameters", "featureId")]
    queryables = _get(
        f"{layer.title}: what features can be selected by",
        _ok("A JSON Schema", SCHEMA_JSON, HTML),
        "f",
    )
    return {
        base: _get(layer.title, _ok("The collection", JSON, HTML), "f"),
        base + "/items": items,
        base + "/items/{featureId}": one,
        base + "/queryables": queryables,
    }


def document(root: str, settings: Settings, crs_uris: list[str]) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/": _get("Landing page", _ok("Links to everything served", JSON, HTML), "f"),
        "/conformance": _get(
            "Conformance classes implemented", _ok("The classes", JSON, HTML), "f"
        ),
        "/api": _get("This definition", _ok("OpenAPI 3.0", OPENAPI_JSON, HTML), "f"),
        "/collections": _get("The asset layers", _ok("The collections", JSON, HTML), "f"),
    }
    for layer in LAYERS.values():
        paths |= _collection_paths(layer)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Fieldline OGC API - Features",
            "version": __version__,
            "description": "The utility's water network and streets. Coordinates are CRS84 "
            "(longitude, latitude) unless `crs` names another system; EPSG:4326 is latitude "
            "first, as the EPSG defines it.",
        },
        "servers": [{"url": root}],
        "paths": paths,
        "components": {
            "parameters": _parameters(settings, crs_uris),
            "responses": {
                "Problem": {
                    "description": "An error, as RFC 9457 problem details",
                    "content": _content(
                        PROBLEM_JSON,
                        schema={
                            "type": "object",
                            "properties": {
                                "title": {"type": "string"},
                                "status": {"type": "integer"},
                                "detail": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        },
                    ),
                }
            },
        },
    }
