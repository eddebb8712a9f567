"""The asset layers as users see them: public attribute names, types and rules.

This table is the one place that says what each layer holds. Validation, the REST API, import
and export all read it, so adding an attribute is one row here plus a migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from fieldline.gis import models as m


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: str  # text | number | integer | boolean | datetime | text_list | ref
    choices: tuple[str, ...] = ()
    positive: bool = False
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    read_only: bool = False
    ref_layer: str | None = None  # for kind == "ref": the layer whose public id is stored
    default: object = None  # what an import stores where a file leaves the value empty

    @property
    def column(self) -> str:
        return f"{self.name}_id" if self.kind == "ref" else self.name

    @property
    def filter_range(self) -> bool:
        """Numbers and times can be filtered with `<name>_min` and `<name>_max`."""
        return self.kind in {"number", "integer", "datetime"}


@dataclass(frozen=True)
class Layer:
    name: str
    model: type[m.Asset]
    attributes: tuple[Attribute, ...]
    title: str
    network: bool = True  # part of the water network (the roads are context for routing)
    attribute_index: dict[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attribute_index", {a.name: a for a in self.attributes})

    @property
    def geometry_type(self) -> str:
        return "LineString" if self.model.geometry_type == "LINESTRING" else "Point"

    @property
    def table(self) -> sa.Table:
        table: sa.Table = self.model.__table__  # type: ignore[assignment]
        return table

    def attribute(self, name: str) -> Attribute | None:
        return self.attribute_index.get(name)

    def nullable(self, attribute: Attribute) -> bool:
        return bool(self.table.c[attribute.column].nullable)


def _zone_district() -> tuple[Attribute, ...]:
    return (Attribute("pressure_zone", "text"), Attribute("district", "text"))


YEAR_MAX = 2100
DIAMETER_MAX_MM = 5000

# Each layer comes after the layers it refers to (the importer loads them in this order).
LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "nodes",
            m.Node,
            (
                Attribute("kind", "text", choices=m.NODE_KINDS, default="junction"),
                Attribute("elevation_m", "number", minimum=-500, maximum=9000),
                *_zone_district(),
            ),
            "Network nodes (junctions, tanks, reservoirs)",
        ),
        Layer(
            "pipes",
            m.Pipe,
            (
                Attribute("from_node", "ref", ref_layer="nodes"),
                Attribute("to_node", "ref", ref_layer="nodes"),
                Attribute("diameter_mm", "number", positive=True, maximum=DIAMETER_MAX_MM),
                Attribute("material", "text", choices=m.PIPE_MATERIALS),
                Attribute("install_year", "integer", minimum=1800, maximum=YEAR_MAX),
                Attribute("depth_m", "number", positive=True, maximum=100),
                Attribute("length_m", "number", read_only=True),
                Attribute("status", "text", choices=m.PIPE_STATUSES, default="in_service"),
                *_zone_district(),
            ),
            "Water mains",
        ),
        Layer(
            "valves",
            m.Valve,
            (
                Attribute("kind", "text", choices=m.VALVE_KINDS, default="gate"),
                Attribute("diameter_mm", "number", positive=True, maximum=DIAMETER_MAX_MM),
                Attribute("normal_position", "text", choices=m.VALVE_POSITIONS, default="open"),
                Attribute("operable", "boolean", default=True),
                Attribute("pipe", "ref", ref_layer="pipes"),
                Attribute("node", "ref", ref_layer="nodes"),
            ),
            "Valves",
        ),
        Layer(
            "hydrants",
            m.Hydrant,
            (
                Attribute("condition", "text", choices=m.HYDRANT_CONDITIONS, default="good"),
                Attribute("last_inspected_at", "datetime"),
                Attribute("pipe", "ref", ref_layer="pipes"),
            ),
            "Fire hydrants",
        ),
        Layer(
            "meters",
            m.Meter,
            (
                Attribute("serial", "text", required=True),
                Attribute("customer_account", "text"),
                Attribute("service_address", "text"),
                Attribute("size_mm", "number", positive=True, maximum=1000),
                Attribute("pipe", "ref", ref_layer="pipes"),
            ),
            "Customer meters",
        ),
        Layer(
            "service_connections",
            m.ServiceConnection,
            (
                Attribute("meter", "ref", ref_layer="meters"),
                Attribute("pipe", "ref", ref_layer="pipes"),
            ),
            "Service connections from mains to meters",
        ),
        Layer(
            "stations",
            m.Station,
            (
                Attribute("name", "text", required=True),
                Attribute("kind", "text", choices=m.STATION_KINDS, required=True),
                Attribute("metrics", "text_list", default=()),
                Attribute("pipe", "ref", ref_layer="pipes"),
                Attribute("node", "ref", ref_layer="nodes"),
            ),
            "Monitoring stations (pressure, flow, water quality)",
        ),
        Layer(
            "markers",
            m.Marker,
            (Attribute("label", "text"), Attribute("pipe", "ref", ref_layer="pipes")),
            "Pipe markers",
        ),
        Layer(
            "roads",
            m.Road,
            (
                Attribute("osm_id", "integer"),
                Attribute("name", "text"),
                Attribute("highway", "text", required=True),
                Attribute("oneway", "boolean", default=False),
                Attribute("maxspeed_kph", "number", positive=True, maximum=200, required=True),
                Attribute("source", "integer", required=True, minimum=0),
                Attribute("target", "integer", required=True, minimum=0),
                Attribute("length_m", "number", read_only=True),
            ),
            "Drivable roads for crew routing",
            network=False,
        ),
    )
}

# Read-only columns every feature carries besides its own attributes. `source_id` is the id the
# asset has in the file it was imported from (see importer.py), shown so users can trace it back.
COMMON_PROPERTIES = ("source_id", "created_at", "updated_at")


def get_layer(name: str) -> Layer:
    from fieldline.gis.errors import NotFound

    try:
        return LAYERS[name]
    except KeyError:
        raise NotFound(f"no layer named {name!r}; layers are: {', '.join(LAYERS)}") from None
