"""`/api/v1/exports`: one layer as a GeoPackage or GeoJSON file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, Response, send_file

from fieldline.gis.exporter import FORMATS, MEDIA_TYPES, write_layer
from fieldline.gis.layers import get_layer
from fieldline.server.auth import requires
from fieldline.server.resources import replica

blueprint = Blueprint("exports", __name__)


@blueprint.get(f"/<layer_name>.<any({', '.join(FORMATS)}):fmt>")
@requires("assets:read")
def export_layer(layer_name: str, fmt: str) -> Response:
    layer = get_layer(layer_name)
    with tempfile.TemporaryDirectory(prefix="fieldline-export-") as folder:
        path = Path(folder) / f"{layer.name}{FORMATS[fmt][1]}"
        write_layer(replica().connection(), layer, path, fmt)
        # The open file outlives its folder: its data stays readable until the response is sent.
        stream = path.open("rb")
    return send_file(stream, mimetype=MEDIA_TYPES[fmt], as_attachment=True, download_name=path.name)
