"""Dispatch answers as JSON: the way to a task as a GeoJSON Feature."""

from __future__ import annotations

from typing import Any

from fieldline.server.dispatch.services import TaskRoute


def route_feature(route: TaskRoute) -> dict[str, Any]:
    """A LineString from the start to the site (a point repeated when they coincide: a
    LineString needs two positions), with the travel time, distance and ETA."""
    path = route.path
    coordinates = [[lon, lat] for lon, lat in path.coordinates]
    if len(coordinates) == 1:
        coordinates.append(coordinates[0])
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {
            "task_id": route.task.public_id,
            "mode": route.mode,
            "seconds": round(path.seconds, 1),
            "metres": round(path.metres, 1),
            # False: no road near the start or the site, a straight-line estimate instead.
            "on_roads": path.by_road,
            "eta": route.eta.isoformat(),
            "origin": route.origin,
            "fix_time": None if route.fix_time is None else route.fix_time.isoformat(),
        },
    }
