"""GET /api/v1/openapi.json: public, since it describes the routes and holds no data."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, json

from fieldline.server.api_docs.openapi import document

OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
blueprint = Blueprint("api_docs", __name__)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return Response(json.dumps(document(current_app)), mimetype=OPENAPI_JSON)
