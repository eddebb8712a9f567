"""EPANET models (`.inp`) as asset features, read with WNTR.

An EPANET model describes the network for hydraulic simulation; what it says about the assets
maps onto the layers like this:

- junctions, tanks and reservoirs -> `nodes` (`kind`, `elevation_m`; a reservoir has no ground
  elevation, so its total head, the level of its water surface, stands for it);
- pipes -> `pipes`: the line runs from the start node through the link's vertices to the end node;
  `diameter_mm`. EPANET's OPEN/CLOSED/CV is an operating state, not the asset's life cycle, so
  pipes keep Fieldline's `status` (in_service when new); material and install year are not in
  EPANET and are left as they are;
- valves -> `valves`, a point in the middle of the valve link, `kind` from the EPANET type (see
  VALVE_KINDS), `normal_position` closed when the initial status is CLOSED;
- pumps -> `stations` of kind `flow`: a pump is where a utility meters and reports flow, and it
  is the closest of the station kinds; the point is in the middle of the pump link.

WNTR converts every quantity to SI units whatever the file's flow units, so lengths here are
metres. EPANET files carry no coordinate reference system: the importer asks for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from fieldline.gis.errors import InvalidField

# EPANET valve types -> Fieldline valve kinds. Pressure reducing, sustaining and breaker valves
# are all pilot-operated pressure control valves, the one kind Fieldline has for them (prv).
# Flow and throttle control valves regulate by throttling, which in the field is done with
# butterfly valves (a gate valve is not made to throttle). A general purpose valve is only a
# head-loss curve with no physical type, so it gets the layer's default kind, gate.
VALVE_KINDS = {
    "PRV": "prv",
    "PSV": "prv",
    "PBV": "prv",
    "FCV": "butterfly",
    "TCV": "butterfly",
    "GPV": "gate",
}

# The layers an EPANET model fills, in reference order, and the attributes it says something
# about; a re-import changes only these and leaves the rest (material, ...) as users set them.
ATTRIBUTES = {
    "nodes": frozenset({"kind", "elevation_m"}),
    "pipes": frozenset({"from_node", "to_node", "diameter_mm"}),
    "valves": frozenset({"kind", "diameter_mm", "normal_position"}),
    "stations": frozenset({"name", "kind"}),
}


@dataclass(frozen=True)
class Element:
    id: str  # the EPANET id, unique among the nodes or among the links of the model
    geometry: BaseGeometry  # in the file's coordinates
    properties: dict[str, Any]


class EpanetFile:
    """One `.inp` file, parsed once however many layers are read from it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def model(self) -> Any:
        import wntr  # imported here: WNTR takes a second to load and most imports do not need it

        try:
            return wntr.network.WaterNetworkModel(str(self.path))
        except Exception as exc:  # WNTR raises many types for a malformed file
            reason = str(exc).strip() or type(exc).__name__
            raise InvalidField(
                "file", f"{self.path.name} is not a readable EPANET file: {reason}"
            ) from None

    def count(self, layer: str) -> int:
        model = self.model
        return {
            "nodes": model.num_junctions + model.num_tanks + model.num_reservoirs,
            "pipes": model.num_pipes,
            "valves": model.num_valves,
            "stations": model.num_pumps,
        }[layer]

    def elements(self, layer: str) -> Iterator[Element]:
        return {
            "nodes": self._nodes,
            "pipes": self._pipes,
            "valves": self._valves,
            "stations": self._pumps,
        }[layer]()

    def _nodes(self) -> Iterator[Element]:
        model = self.model
        for _, node in model.junctions():
            yield _node(node, "junction", node.elevation)
        for _, node in model.tanks():
            yield _node(node, "tank", node.elevation)
        for _, node in model.reservoirs():
            yield _node(node, "reservoir", node.base_head)

    def _pipes(self) -> Iterator[Element]:
        for _, pipe in self.model.pipes():
            yield Element(
                pipe.name,
                _link_line(pipe),
                {
                    "from_node": pipe.start_node_name,
                    "to_node": pipe.end_node_name,
                    "diameter_mm": _mm(pipe.diameter),
                },
            )

    def _valves(self) -> Iterator[Element]:
        for _, valve in self.model.valves():
            status = str(getattr(valve.initial_status, "name", valve.initial_status)).lower()
            yield Element(
                valve.name,
                _middle(_link_line(valve)),
                {
                    # An unknown type is passed on as it is, so validation names it.
                    "kind": VALVE_KINDS.get(str(valve.valve_type).upper(), valve.valve_type),
                    "diameter_mm": _mm(valve.diameter),
                    "normal_position": "closed" if status == "closed" else "open",
                },
            )

    def _pumps(self) -> Iterator[Element]:
        for _, pump in self.model.pumps():
            yield Element(
                pump.name,
                _middle(_link_line(pump)),
                {"name": f"Pump {pump.name}", "kind": "flow"},
            )


def _node(node: Any, kind: str, elevation_m: float) -> Element:
    x, y = node.coordinates
    return Element(node.name, Point(x, y), {"kind": kind, "elevation_m": float(elevation_m)})


def _link_line(link: Any) -> LineString:
    coordinates = [link.start_node.coordinates, *link.vertices, link.end_node.coordinates]
    return LineString(coordinates)


def _middle(line: LineString) -> BaseGeometry:
    return shapely.line_interpolate_point(line, 0.5, normalized=True)


def _mm(metres: float | None) -> float | None:
    return None if metres is None else round(float(metres) * 1000, 3)
