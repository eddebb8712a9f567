"""Path parsing for `/tiles/{layer}/{z}/{x}/{y}.mvt`; a bad part is a 400 naming it."""

from __future__ import annotations

import re

from fieldline.server.errors import BadRequest
from fieldline.server.map.services import MAX_ZOOM, TILE_LAYERS, Tile

# ASCII digits only: str.isdigit() also takes other scripts' digits, which int() reads.
_WHOLE = re.compile(r"[0-9]{1,10}")


def _whole(raw: str, field: str, most: int, span: str) -> int:
    if not _WHOLE.fullmatch(raw) or int(raw) > most:
        raise BadRequest(f"must be a whole number from 0 to {most}{span}", field=field)
    return int(raw)


def parse_tile(layer: str, z: str, x: str, y: str) -> Tile:
    tile_layer = TILE_LAYERS.get(layer)
    if tile_layer is None:
        raise BadRequest(
            f"no map layer named {layer!r}; layers are: {', '.join(TILE_LAYERS)}", field="layer"
        )
    zoom = _whole(z, "z", MAX_ZOOM, "")
    last = 2**zoom - 1  # a zoom level has 2^z tiles along each axis
    at_zoom = f" at zoom {zoom}"
    return Tile(tile_layer, zoom, _whole(x, "x", last, at_zoom), _whole(y, "y", last, at_zoom))
