"""The printable report of a verification run: an inline SVG map of its evidence layers.

The map needs no tiles nor scripts, so the page prints and archives as it is: each layer is
drawn in a local equirectangular view of its own extent (longitudes shrunk by the cosine of the
latitude), which over a few kilometres is true to shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

WIDTH = 760
MAX_HEIGHT = 560
MARGIN = 16
# Drawn bottom to top: the trace under the pipes, the places on top.
LINE_LAYERS = ("trace", "too_fast", "covered", "missed", "gaps", "jumps")
POINT_LAYERS = ("dwell", "checkpoints")


@dataclass
class Shape:
    layer: str
    css: str  # the class the template styles
    points: str = ""  # polyline "x,y x,y"
    x: float = 0.0
    y: float = 0.0
    title: str = ""


@dataclass
class SvgMap:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)


def _lines(geometry: Mapping[str, Any]) -> Iterator[list[list[float]]]:
    kind, coordinates = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "LineString":
        yield coordinates
    elif kind == "MultiLineString":
        yield from coordinates
    elif kind == "Point":
        yield [coordinates]


def _features(layers: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = (layers.get(name) or {}).get("features", [])
    return features


def _css(name: str, properties: Mapping[str, Any]) -> str:
    if name == "checkpoints":
        return "hit" if properties.get("passed") else "unmet"
    if name == "dwell":
        return "site" if properties.get("kind") == "site" else "stop"
    return name.replace("_", "-")


def _title(name: str, properties: Mapping[str, Any]) -> str:
    asset = properties.get("asset_id")
    if name in ("covered", "missed") and asset:
        return f"{asset}: {properties.get('ratio', 0) * 100:.0f} % covered"
    if name == "checkpoints":
        seen = "visited" if properties.get("visited") else "not visited"
        return f"{asset}: {seen}, {properties.get('dwell_s', 0):.0f} s"
    if name == "dwell":
        return f"{asset or 'stop'}: {properties.get('seconds', 0):.0f} s"
    if name == "gaps":
        return f"gap of {properties.get('seconds', 0):.0f} s"
    if name == "jumps":
        return f"jump of {properties.get('distance_m', 0):.0f} m"
    return name.replace("_", " ")


def svg_map(layers: Mapping[str, Any]) -> SvgMap | None:
    """The layers scaled into WIDTH (and at most MAX_HEIGHT); None when there is nothing to
    draw."""
    every = [
        point
        for name in (*LINE_LAYERS, *POINT_LAYERS)
        for feature in _features(layers, name)
        for line in _lines(feature.get("geometry") or {})
        for point in line
    ]
    if not every:
        return None
    lons, lats = [p[0] for p in every], [p[1] for p in every]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    shrink = math.cos(math.radians((south + north) / 2))
    span_x = max((east - west) * shrink, 1e-6)
    span_y = max(north - south, 1e-6)
    scale = min((WIDTH - 2 * MARGIN) / span_x, (MAX_HEIGHT - 2 * MARGIN) / span_y)
    height = round(span_y * scale + 2 * MARGIN)

    def xy(point: list[float]) -> tuple[float, float]:
        x = MARGIN + (point[0] - west) * shrink * scale
        y = MARGIN + (north - point[1]) * scale
        return round(x, 1), round(y, 1)

    drawn = SvgMap(WIDTH, height)
    for name in LINE_LAYERS:
        for feature in _features(layers, name):
            properties = feature.get("properties") or {}
            for line in _lines(feature.get("geometry") or {}):
                points = " ".join(f"{x},{y}" for x, y in map(xy, line))
                drawn.shapes.append(
                    Shape(name, _css(name, properties), points, title=_title(name, properties))
                )
    for name in POINT_LAYERS:
        for feature in _features(layers, name):
            properties = feature.get("properties") or {}
            for line in _lines(feature.get("geometry") or {}):
                x, y = xy(line[len(line) // 2])  # a place drawn as a line: at its middle
                drawn.shapes.append(
                    Shape(name, _css(name, properties), x=x, y=y, title=_title(name, properties))
                )
    return drawn
