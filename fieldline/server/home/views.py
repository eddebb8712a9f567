"""`/`: where a person or a program starts. Browsers (which ask for HTML first) get the
dispatcher's map; programs get a JSON document with links to everything served."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from fieldline import __version__
from fieldline.gis.layers import LAYERS
from fieldline.server.map.views import page as map_page

blueprint = Blueprint("home", __name__)
HTML = "text/html"
JSON = "application/json"


def links() -> dict[str, Any]:
    return {
        "name": "Fieldline",
        "version": __version__,
        "links": [
            {"rel": "assets", "href": url_for("assets.list_layers", _external=True)},
            *[
                {
                    "rel": "items",
                    "title": layer.title,
                    "href": url_for("assets.list_features", layer_name=name, _external=True),
                }
                for name, layer in LAYERS.items()
            ],
            {
                "rel": "map",
                "type": HTML,
                "title": "The dispatcher's map",
                "href": url_for("map.page", _external=True),
            },
            {"rel": "health", "href": url_for("health.healthz", _external=True)},
            {"rel": "ready", "href": url_for("health.readyz", _external=True)},
        ],
    }


@blueprint.get("/")
def index() -> Any:
    # `*/*` (curl, requests) and no Accept at all choose JSON, the first offered; a browser's
    # `text/html,...,*/*;q=0.8` chooses HTML. The map page checks its own permission.
    wants_html = request.accept_mimetypes.best_match([JSON, HTML]) == HTML
    response: Response = map_page() if wants_html else jsonify(links())
    response.vary.add("Accept")
    return response
