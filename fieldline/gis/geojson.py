"""GeoJSON text from query rows.

PostGIS already encodes each geometry; the features are assembled as text around it rather
than parsed and encoded again, which keeps serving a page close to the cost of the SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from fieldline.gis.layers import Layer
from fieldline.gis.queries import feature_properties, json_default

_encode = json.JSONEncoder(ensure_ascii=False, default=json_default, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    return _encode(value)


def feature_json(
    layer: Layer, row: Mapping[Any, Any], extra: Mapping[str, Any] | None = None
) -> str:
    properties = feature_properties(layer, row)
    if extra:
        properties.update(extra)
    return (
        '{"type":"Feature","id":'
        + _encode(row["_public_id"])
        + ',"geometry":'
        + row["_geometry"]
        + ',"properties":'
        + _encode(properties)
        + "}"
    )


def collection_json(features: Iterable[str], members: Mapping[str, Any]) -> str:
    tail = "".join("," + _encode(key) + ":" + _encode(value) for key, value in members.items())
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]" + tail + "}"
