"""JSON Schema of the layers' features, read from layers.py: the queryables of each
collection and the bodies in the OpenAPI document.

Two dialects are written: JSON Schema 2020-12 for queryables, and the OpenAPI 3.0 subset,
which has `nullable` instead of a null type and a boolean `exclusiveMinimum`.
"""

from __future__ import annotations

from typing import Any

from fieldline.gis.layers import Attribute, Layer
from fieldline.gis.validation import MAX_TEXT_LENGTH

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_TYPES = {
    "text": "string",
    "ref": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "datetime": "string",
    "text_list": "array",
}


def property_schema(layer: Layer, attribute: Attribute, *, openapi30: bool = False) -> dict:
    schema: dict[str, Any] = {"title": attribute.name, "type": _TYPES[attribute.kind]}
    if attribute.kind == "text":
        schema["maxLength"] = MAX_TEXT_LENGTH
    if attribute.kind == "ref":
        schema["description"] = f"id of a feature of {attribute.ref_layer}"
    if attribute.kind == "datetime":
        schema["format"] = "date-time"
    if attribute.kind == "text_list":
        schema["items"] = {"type": "string", "maxLength": MAX_TEXT_LENGTH}
    if attribute.choices:
        schema["enum"] = list(attribute.choices)
    if attribute.positive:
        schema.update(
            {"minimum": 0, "exclusiveMinimum": True} if openapi30 else {"exclusiveMinimum": 0}
        )
    if attribute.minimum is not None:
        schema["minimum"] = attribute.minimum
    if attribute.maximum is not None:
        schema["maximum"] = attribute.maximum
    if attribute.read_only:
        schema["readOnly"] = True
    if openapi30 and layer.nullable(attribute):
        schema["nullable"] = True
    return schema


def geometry_schema(layer: Layer) -> dict:
    """A GeoJSON geometry of the layer's type, with the `format` OGC API - Features Part 5
    gives geometries, so clients know it without fetching geojson.org."""
    coordinates: dict[str, Any] = {"type": "array", "minItems": 2, "items": {"type": "number"}}
    if layer.geometry_type == "LineString":
        coordinates = {"type": "array", "minItems": 2, "items": coordinates}
    return {
        "title": "geometry",
        "format": f"geometry-{layer.geometry_type.lower()}",
        "x-ogc-role": "primary-geometry",
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": [layer.geometry_type]},
            "coordinates": coordinates,
        },
    }


def queryable(attribute: Attribute) -> bool:
    """Attributes a query parameter can select by; a list holds no one value to compare."""
    return attribute.kind != "text_list"


def queryables(layer: Layer, schema_id: str) -> dict:
    """What the layer's items can be selected by: the geometry (`bbox`) and the attributes
    (a query parameter each)."""
    properties = {"geometry": geometry_schema(layer)}
    properties.update((a.name, property_schema(layer, a)) for a in layer.attributes if queryable(a))
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id,
        "type": "object",
        "title": layer.title,
        "properties": properties,
        "additionalProperties": False,
    }


def feature_schema(layer: Layer, *, partial: bool) -> dict:
    """A request body in OpenAPI 3.0: a whole Feature (POST, PUT) or a merge patch (PATCH).
    Read-only properties may be sent back; they are ignored."""
    properties = {a.name: property_schema(layer, a, openapi30=True) for a in layer.attributes}
    required = [a.name for a in layer.attributes if a.required]
    body: dict[str, Any] = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {k: v for k, v in geometry_schema(layer).items() if k != "x-ogc-role"},
            "properties": {"type": "object", "properties": properties},
        },
    }
    if not partial:
        body["required"] = ["type", "geometry", "properties"]
        if required:
            body["properties"]["properties"]["required"] = required
    return body
