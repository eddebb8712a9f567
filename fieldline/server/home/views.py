"""`/`: where a person or a program starts, with links to everything served."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, url_for

from fieldline import __version__
from fieldline.gis.layers import LAYERS

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index() -> Any:
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
            {"rel": "health", "href": url_for("health.healthz", _external=True)},
            {"rel": "ready", "href": url_for("health.readyz", _external=True)},
        ],
    }
