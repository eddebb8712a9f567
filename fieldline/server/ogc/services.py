"""OGC API - Features documents and edits, free of Flask: each function takes what was asked
and returns a document (a dict, or GeoJSON text for features); views.py only translates
HTTP to calls and documents to responses.

Pages of features are keyset pages: `next` carries the last internal id seen (`cursor`), and
`prev` the first (`before`, read backwards), so no page costs an OFFSET scan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.crs import CRS84, Crs
from fieldline.gis.geojson import collection_json, dumps
from fieldline.gis.layers import COMMON_PROPERTIES, LAYERS, Layer
from fieldline.gis.queries import Bounds, layer_extents, select_documents
from fieldline.gis.services import (
    create_asset,
    delete_asset,
    read_document,
    replace_asset,
    update_asset,
)
from fieldline.server.assets.payloads import parse_feature
from fieldline.server.ogc import schemas
from fieldline.server.ogc.params import ItemsRequest

Format = Literal["json", "html"]
JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SOURCE = "ogc"  # audit history: edits made through this API

_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
_FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"  # what fieldline.gis.cql2 reads
CONFORMANCE = (
    _CORE + "core",
    _CORE + "geojson",
    _CORE + "html",
    _CORE + "oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    _FILTER + "queryables",
    _FILTER + "queryables-query-parameters",
    _FILTER + "filter",
    _FILTER + "features-filter",
    _CQL2 + "cql2-text",
    _CQL2 + "basic-cql2",
    _CQL2 + "advanced-comparison-operators",
    _CQL2 + "case-insensitive-comparison",
    _CQL2 + "basic-spatial-functions",
    _CQL2 + "spatial-functions",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
)


@dataclass(frozen=True)
class Urls:
    """Absolute links below the landing page (`root`, such as http://host/ogc)."""

    root: str

    def __call__(self, path: str = "", params: Mapping[str, str] | None = None) -> str:
        url = self.root + path
        return f"{url}?{urlencode(params)}" if params else url


def link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    found = {"href": href, "rel": rel, "type": type_}
    if title:
        found["title"] = title
    return found


def self_links(
    urls: Urls,
    path: str,
    fmt: Format,
    json_type: str = JSON,
    params: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """`self` in the format served and `alternate` in the other."""
    params = {k: v for k, v in (params or {}).items() if k != "f"}
    as_json = urls(path, params | {"f": "json"})
    as_html = urls(path, params | {"f": "html"})
    if fmt == "html":
        return [link(as_html, "self", HTML), link(as_json, "alternate", json_type, "as JSON")]
    return [link(as_json, "self", json_type), link(as_html, "alternate", HTML, "as HTML")]


def _path(*segments: str) -> str:
    return "".join("/" + quote(segment, safe="") for segment in segments)


def landing(urls: Urls, fmt: Format) -> dict[str, Any]:
    return {
        "title": "Fieldline",
        "description": "The water network of the utility and the streets its crews drive, "
        "as OGC API - Features.",
        "links": [
            *self_links(urls, "", fmt),
            link(urls("/api"), "service-desc", OPENAPI_JSON, "The API definition (OpenAPI 3.0)"),
            link(urls("/api", {"f": "html"}), "service-doc", HTML, "The API documentation"),
            link(urls("/conformance"), "conformance", JSON, "Conformance classes implemented"),
            link(urls("/collections"), "data", JSON, "The asset layers"),
        ],
    }


def conformance(urls: Urls, fmt: Format) -> dict[str, Any]:
    return {"links": self_links(urls, "/conformance", fmt), "conformsTo": list(CONFORMANCE)}


class ExtentCache:
    """Layer extents, kept `ttl_s` seconds: ST_Extent reads every geometry of every layer,
    more than the rest of a /collections request costs. Edits through this process clear
    it; edits elsewhere show within `ttl_s`."""

    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._kept: tuple[float, dict[str, Bounds | None]] | None = None

    def get(self, connection: sa.Connection) -> dict[str, Bounds | None]:
        kept, now = self._kept, self._clock()
        if kept is None or now - kept[0] > self._ttl_s:
            kept = self._kept = (now, layer_extents(connection))
        return kept[1]

    def forget(self) -> None:
        self._kept = None


def collection(
    layer: Layer, bounds: Bounds | None, crs_uris: list[str], urls: Urls, fmt: Format
) -> dict[str, Any]:
    path = _path("collections", layer.name)
    described: dict[str, Any] = {
        "id": layer.name,
        "title": layer.title,
        "itemType": "feature",
        "links": [
            *self_links(urls, path, fmt),
            link(urls(path + "/items", {"f": "json"}), "items", GEOJSON, "The features"),
            link(urls(path + "/items", {"f": "html"}), "items", HTML, "The features as HTML"),
            link(urls(path + "/queryables"), QUERYABLES_REL, SCHEMA_JSON, "Queryables"),
        ],
    }
    if bounds is not None:
        described["extent"] = {"spatial": {"bbox": [list(bounds)], "crs": CRS84.uri}}
    described["crs"] = crs_uris
    described["storageCrs"] = CRS84.uri  # stored as EPSG:4326 with longitude first
    return described


def collections(
    extents: Mapping[str, Bounds | None], crs_uris: list[str], urls: Urls, fmt: Format
) -> dict[str, Any]:
    return {
        "links": self_links(urls, "/collections", fmt),
        "collections": [
            collection(layer, extents.get(layer.name), crs_uris, urls, fmt)
            for layer in LAYERS.values()
        ],
    }


def items(
    connection: sa.Connection,
    layer: Layer,
    request: ItemsRequest,
    urls: Urls,
    args: Mapping[str, str],
    fmt: Format,
    now: datetime,
) -> str:
    """A page of features as GeoJSON text, encoded by PostgreSQL and joined here.

    One feature more than the page is read, to know whether another page follows in the
    direction read, so that no link leads to an empty page."""
    limit = request.query.limit
    statement, values = select_documents(layer, replace(request.query, limit=limit + 1))
    if request.before is not None:
        statement = statement.order_by(None).order_by(layer.table.c.id.desc())
    found = connection.execute(statement, values).all()
    more = len(found) > limit
    rows = list(reversed(found[:limit])) if request.before is not None else found[:limit]
    page_ids = [row._id for row in rows]
    members = {
        "numberReturned": len(rows),
        "timeStamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": _page_links(layer, request, page_ids, more, urls, args, fmt),
    }
    return collection_json((row._feature for row in rows), members)


def _page_links(
    layer: Layer,
    request: ItemsRequest,
    ids: list[int],
    more: bool,
    urls: Urls,
    args: Mapping[str, str],
    fmt: Format,
) -> list[dict[str, str]]:
    path = _path("collections", layer.name, "items")
    links = self_links(urls, path, fmt, GEOJSON, args)
    kept = {k: v for k, v in args.items() if k not in {"cursor", "before", "f"}} | {"f": fmt}
    media_type = HTML if fmt == "html" else GEOJSON
    # `more` is about the direction read; the other way lies the page this one was reached from.
    backwards = request.before is not None
    if ids and (backwards or more):
        links.append(link(urls(path, kept | {"cursor": str(ids[-1])}), "next", media_type))
    if ids and (more if backwards else request.query.cursor is not None):
        links.append(link(urls(path, kept | {"before": str(ids[0])}), "prev", media_type))
    return links


def item(
    session: Session,
    layer: Layer,
    feature_id: str,
    crs: Crs,
    urls: Urls,
    args: Mapping[str, str],
    fmt: Format,
) -> str:
    feature = json.loads(read_document(session, layer, feature_id, crs))
    path = _path("collections", layer.name, "items", feature_id)
    feature["links"] = [
        *self_links(urls, path, fmt, GEOJSON, args),
        link(urls(_path("collections", layer.name)), "collection", JSON, layer.title),
    ]
    return dumps(feature)


def queryables(layer: Layer, urls: Urls) -> dict[str, Any]:
    return schemas.queryables(layer, urls(_path("collections", layer.name, "queryables")))


def _editable(layer: Layer, body: Any) -> Any:
    """The body without read-only properties: clients that edit whole features (QGIS) send
    back computed values such as `length_m` too. They are the server's to set, so they are
    ignored rather than refused, as JSON Schema's `readOnly` allows."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        return body
    computed = {a.name for a in layer.attributes if a.read_only} | set(COMMON_PROPERTIES)
    properties = {k: v for k, v in body["properties"].items() if k not in computed}
    return body | {"properties": properties}


def create_feature(session: Session, layer: Layer, body: Any, crs: Crs, actor: str) -> str:
    geometry, properties = parse_feature(layer, _editable(layer, body), crs, partial=False)
    assert geometry is not None  # a whole feature always has one
    return create_asset(session, layer, geometry, properties, actor, SOURCE)


def replace_feature(
    session: Session, layer: Layer, feature_id: str, body: Any, crs: Crs, actor: str
) -> None:
    """PUT: the feature becomes the body; attributes it leaves out take their defaults or
    become null (gis.services.replace_asset)."""
    read_document(session, layer, feature_id)  # 404 before 422 for an unknown feature
    geometry, properties = parse_feature(
        layer, _editable(layer, body), crs, partial=False, feature_id=feature_id
    )
    assert geometry is not None
    replace_asset(session, layer, feature_id, geometry, properties, actor, SOURCE)


def update_feature(
    session: Session, layer: Layer, feature_id: str, body: Any, crs: Crs, actor: str
) -> None:
    """PATCH: a merge patch; only what the body names changes, `"type"` may be left out."""
    read_document(session, layer, feature_id)
    geometry, properties = parse_feature(
        layer, _editable(layer, body), crs, partial=True, require_type=False
    )
    update_asset(session, layer, feature_id, geometry, properties, actor, SOURCE)


def delete_feature(session: Session, layer: Layer, feature_id: str, actor: str) -> None:
    delete_asset(session, layer, feature_id, actor, SOURCE)
