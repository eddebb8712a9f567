"""Vector tiles of the asset layers for the dispatcher's map, and the extent it opens on.

A tile is one `ST_AsMVT` query over one layer: the rows whose geometry meets the tile (plus a
margin), each clipped and snapped to the tile's grid by `ST_AsMVTGeom`. The browser draws a
city-sized network from the few tiles in view, never the whole table. Only the attributes the
map styles and its popups need travel in a tile; the rest of an asset is one
`GET /api/v1/assets/{layer}/{id}` away.

A thinned tile (a whole city at a glance) is generalised: its features are snapped to a coarser
grid of about two units a screen pixel, and those that share every styled attribute travel as
one multi-line without an id. Tens of thousands of one-pixel mains are a picture at that
scale, not things to click, and the browser draws a few dozen features far faster than
tens of thousands; zoomed in to `below_zoom`, every main is its own feature again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.layers import LAYERS, Layer
from fieldline.gis.models import SRID
from fieldline.gis.queries import Bounds

TILE_EXTENT = 4096  # grid units across a tile (the MVT default)
# Grid units drawn beyond each edge, so that lines and circles continue across tile seams.
TILE_BUFFER = 64
# The grid of a generalised tile: the browser draws a tile 512 pixels across.
GENERALISED_EXTENT = 1024
MAX_ZOOM = 22
# Tiles are made up to this zoom; the browser scales them beyond (a z16 grid unit is 10 cm).
SOURCE_MAX_ZOOM = 16
WEB_MERCATOR = 3857
_WEB_MERCATOR_WIDTH_M = 2 * 20037508.342789244
# Tiles change when assets are edited: a dispatcher sees an edit within a minute without
# reloading, and panning back and forth costs no request.
MAX_AGE_S = 60
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# The fastest: a few ms a tile; level 6 takes up to ten times that for a tenth less.
GZIP_LEVEL = 1


@dataclass(frozen=True)
class Thinning:
    """Below `below_zoom` a tile keeps only the features whose `attribute` is at least
    `minimum`: the trunk mains of a whole city at a glance, every pipe once zoomed in. Such
    tiles are generalised (see above)."""

    below_zoom: int
    attribute: str
    minimum: float


@dataclass(frozen=True)
class TileLayer:
    name: str  # the layer in gis/layers.py, and the layer's name inside its tiles
    attributes: tuple[str, ...]  # besides `id`, the public id
    min_zoom: int  # below it the layer's tiles are empty
    thinning: Thinning | None = None

    @property
    def layer(self) -> Layer:
        return LAYERS[self.name]


# In drawing order, bottom first: the roads are context under the network.
TILE_LAYERS: dict[str, TileLayer] = {
    tile_layer.name: tile_layer
    for tile_layer in (
        TileLayer("roads", ("highway", "name"), min_zoom=12),
        TileLayer(
            "pipes",
            ("material", "diameter_mm", "status"),
            min_zoom=8,
            thinning=Thinning(below_zoom=12, attribute="diameter_mm", minimum=300),
        ),
        TileLayer("meters", (), min_zoom=16),
        TileLayer("valves", ("kind", "normal_position", "operable"), min_zoom=13),
        TileLayer("hydrants", ("condition",), min_zoom=13),
        TileLayer("stations", ("name", "kind", "metrics"), min_zoom=8),
    )
}


def _check_tile_layers() -> None:
    """Every attribute named above is a plain attribute of its layer (references are stored
    as internal keys, which never leave the server)."""
    for tile_layer in TILE_LAYERS.values():
        names = [*tile_layer.attributes]
        if tile_layer.thinning is not None:
            names.append(tile_layer.thinning.attribute)
        for name in names:
            attribute = tile_layer.layer.attribute(name)
            if attribute is None or attribute.kind == "ref":
                raise ValueError(f"{tile_layer.name}.{name} is no plain attribute of the layer")


_check_tile_layers()


@dataclass(frozen=True)
class Tile:
    layer: TileLayer
    z: int
    x: int
    y: int

    @property
    def thinned(self) -> bool:
        thinning = self.layer.thinning
        return thinning is not None and self.z < thinning.below_zoom

    @property
    def margin_m(self) -> float:
        """The buffer around the tile in Web Mercator metres (the same on either grid)."""
        return _WEB_MERCATOR_WIDTH_M / 2**self.z * TILE_BUFFER / TILE_EXTENT


def _grid(generalised: bool) -> tuple[int, int]:
    """The extent and buffer of a tile's grid, in its units."""
    extent = GENERALISED_EXTENT if generalised else TILE_EXTENT
    return extent, TILE_BUFFER * extent // TILE_EXTENT


def _attribute_column(layer: Layer, name: str) -> Any:
    column = layer.table.c[name]
    if layer.attribute_index[name].kind == "text_list":
        # MVT values are scalars: a list travels as comma-separated text.
        return sa.func.array_to_string(column, ",").label(name)
    return column


@cache
def _statement(name: str, thinned: bool) -> sa.Select[Any]:
    """The tile query of a layer; z, x, y and the margin are bound at each request."""
    tile_layer = TILE_LAYERS[name]
    table = tile_layer.layer.table
    extent_units, buffer_units = _grid(thinned)
    extent: sa.ColumnClause[Any] = sa.literal_column(str(extent_units))
    buffer: sa.ColumnClause[Any] = sa.literal_column(str(buffer_units))
    envelope = sa.func.ST_TileEnvelope(
        sa.bindparam("z", type_=sa.Integer),
        sa.bindparam("x", type_=sa.Integer),
        sa.bindparam("y", type_=sa.Integer),
    )
    # Web Mercator rectangles are longitude/latitude rectangles too: the transformed box is
    # exact, and the layer's index on its WGS 84 geometry finds the rows.
    search = sa.func.ST_Transform(
        sa.func.ST_Expand(envelope, sa.bindparam("margin_m", type_=sa.Float)), SRID
    )

    def snapped(geometry: Any) -> Any:
        return sa.func.ST_AsMVTGeom(
            sa.func.ST_Transform(geometry, WEB_MERCATOR),
            envelope,
            extent,
            buffer,
            sa.true(),
        )

    attributes = [
        _attribute_column(tile_layer.layer, attribute) for attribute in tile_layer.attributes
    ]
    rows = sa.select().where(table.c.geom.op("&&")(search))
    if not thinned or tile_layer.thinning is None:
        rows = rows.add_columns(
            snapped(table.c.geom).label("geom"), table.c.public_id.label("id"), *attributes
        )
    else:
        thinning = tile_layer.thinning
        # Collected first, then transformed and snapped: a few dozen calls, not thousands.
        rows = (
            rows.add_columns(snapped(sa.func.ST_Collect(table.c.geom)).label("geom"), *attributes)
            .where(table.c[thinning.attribute] >= thinning.minimum)
            .group_by(*attributes)
        )
    tile_rows = rows.subquery("tile_rows")
    return (
        sa.select(
            sa.func.ST_AsMVT(
                sa.literal_column("tile_rows"), sa.literal(name), extent, sa.literal("geom")
            )
        )
        .select_from(tile_rows)
        # ST_AsMVTGeom gives NULL for what the clip leaves nothing of (a line grazing the margin).
        .where(tile_rows.c.geom.is_not(None))
    )


def tile(session: Session, address: Tile) -> bytes:
    """The tile as MVT bytes; empty when nothing of the layer is in it (or it is below the
    layer's least zoom)."""
    if address.z < address.layer.min_zoom:
        return b""
    statement = _statement(address.layer.name, address.thinned)
    params = {"z": address.z, "x": address.x, "y": address.y, "margin_m": address.margin_m}
    body = session.execute(statement, params).scalar()
    return bytes(body) if body else b""


def network_extent(extents: Mapping[str, Bounds | None]) -> Bounds | None:
    """The box around the water network's layers (longitude first); the roads' box when no
    network is loaded; None when nothing is."""
    boxes = [box for name, box in extents.items() if box is not None and LAYERS[name].network]
    if not boxes:
        return extents.get("roads")
    return (
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )
