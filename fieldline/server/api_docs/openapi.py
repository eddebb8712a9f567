"""The OpenAPI 3.0 document of /api/v1, built from Flask's url_map so that it cannot drift from
the routes: every /api/v1 rule with its methods and path parameters, and from parameters.py
what each endpoint reads from the query string and the body."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter, BaseConverter, IntegerConverter

from fieldline import __version__
from fieldline.server.api_docs.parameters import BODIES, QUERY

PREFIX = "/api/v1"
PROBLEM_JSON = "application/problem+json"
# `<int:id>`, `<path:identifier>`, `<any(gpkg, geojson):fmt>` -> `{id}`
_VARIABLE = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")
_STATUSES = {"GET": "200", "POST": "200", "PUT": "200", "PATCH": "200", "DELETE": "204"}


def _path_schema(converter: BaseConverter) -> dict[str, Any]:
    if isinstance(converter, IntegerConverter):
        schema: dict[str, Any] = {"type": "integer", "minimum": 0}
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, AnyConverter):
        return {"type": "string", "enum": sorted(converter.items)}
    return {"type": "string", "minLength": 1}


def _operation(rule: Rule, method: str) -> dict[str, Any]:
    endpoint = rule.endpoint
    view_tag = endpoint.split(".", 1)[0]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(converter)}
        for name, converter in rule._converters.items()
    ]
    parameters += [
        {
            "name": query.name,
            "in": "query",
            "required": False,
            "description": query.description,
            "schema": query.schema,
        }
        for query in QUERY.get(endpoint, ())
    ]
    operation: dict[str, Any] = {
        "operationId": f"{endpoint}.{method.lower()}",
        "tags": [view_tag],
        "parameters": parameters,
        "responses": {
            _STATUSES[method]: {"description": "done"},
            "default": {
                "description": "a problem: 4xx for bad input, naming the field at fault",
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        },
    }
    body = BODIES.get(endpoint)
    if body is not None and method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {
            "required": body.media_type != "application/json",
            "content": {body.media_type: {"schema": body.schema}},
        }
    return operation


def document(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint == "api_docs.openapi":
            continue
        path = _VARIABLE.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, method)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Fieldline API",
            "version": __version__,
            "description": "The field-service API: assets, crews, tasks, dispatch, alarms, "
            "incidents. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                    },
                }
            },
        },
        # A token is optional where FIELDLINE_ANONYMOUS_ROLE grants the operation.
        "security": [{"bearer": []}, {}],
    }
