"""The evidence of a verification run as GeoJSON layers (WGS 84) for the map and the report.

Layers: `covered` and `missed` parts of the patrolled pipes, `checkpoints` (checkpoints and
meters, each visited or not, with the dwell), `gaps` (a line between the ends of each
silence), `jumps` (a line over each leap), `dwell` (where the crew stopped, and the time at the
site), `trace` (the parts that count) and `too_fast` (passed above the mode's speed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry import LineString, Point, mapping
from shapely.geometry.base import BaseGeometry

from fieldline.gis.coverage import PipeCoverage, Visit
from fieldline.gis.trace import Trace
from fieldline.server.fields import iso

if TYPE_CHECKING:
    from fieldline.server.verification.checks import Work

# Lines drawn on the map are thinned to about a metre: a day's trace at 1 Hz would otherwise
# weigh megabytes of JSON for no visible difference.
DRAW_TOLERANCE_DEG = 1e-5
LAYER_NAMES = ("covered", "missed", "checkpoints", "gaps", "jumps", "dwell", "trace", "too_fast")


def visit_row(visit: Visit, need_s: float) -> dict[str, Any]:
    return {
        "asset_id": visit.asset_id,
        "visited": visit.first_at is not None,
        "first_at": iso(visit.first_at),
        "dwell_s": round(visit.dwell_s, 1),
        "closest_m": None if visit.closest_m is None else round(visit.closest_m, 1),
        "fixes": visit.fixes,
        "passed": visit.first_at is not None and visit.dwell_s >= need_s,
    }


def _rounded(coordinates: Any) -> Any:
    if isinstance(coordinates, float | int):
        return round(float(coordinates), 7)
    return [_rounded(c) for c in coordinates]


def _feature(geometry: BaseGeometry, **properties: Any) -> dict[str, Any]:
    shape = dict(mapping(geometry))
    return {
        "type": "Feature",
        "geometry": {"type": shape["type"], "coordinates": _rounded(shape["coordinates"])},
        "properties": properties,
    }


def _collection(features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _place_features(
    places: Mapping[str, BaseGeometry], found: Sequence[Visit], role: str, need_s: float
) -> list[dict[str, Any]]:
    return [
        _feature(places[v.asset_id], role=role, **visit_row(v, need_s))
        for v in found
        if v.asset_id in places
    ]


def layers(
    trace: Trace,
    work: Work,
    coverage: Sequence[PipeCoverage],
    checkpoint_visits: Sequence[Visit],
    meter_visits: Sequence[Visit],
    site_visit: Visit | None,
    dwell: Mapping[str, int],
) -> dict[str, Any]:
    """The GeoJSON layers (WGS 84) of the map and the report."""
    covered = [
        _feature(line, asset_id=p.asset_id, ratio=round(p.ratio, 4))
        for p in coverage
        for line in p.covered
    ]
    missed = [
        _feature(line, asset_id=p.asset_id, ratio=round(p.ratio, 4))
        for p in coverage
        for line in p.missed
    ]
    places = [
        *_place_features(work.checkpoints, checkpoint_visits, "checkpoint", dwell["checkpoint"]),
        *_place_features(work.meters, meter_visits, "meter", dwell["meter_reading"]),
    ]
    gaps = [
        _feature(
            LineString([g.start_lonlat, g.end_lonlat]),
            device=g.device,
            start=g.start.isoformat(),
            end=g.end.isoformat(),
            seconds=round(g.seconds, 1),
        )
        for g in trace.gaps
    ]
    jumps = [
        _feature(
            LineString([j.from_lonlat, j.to_lonlat]),
            device=j.device,
            at=j.at.isoformat(),
            distance_m=round(j.distance_m, 1),
            speed_mps=round(j.speed_mps, 1),
        )
        for j in trace.jumps
    ]
    spots = [
        _feature(
            Point(s.lonlat),
            kind="stop",
            device=s.device,
            start=s.start.isoformat(),
            end=s.end.isoformat(),
            seconds=round(s.seconds, 1),
        )
        for s in trace.stops
    ]
    if work.site is not None and site_visit is not None:
        spots.append(
            _feature(
                work.site,
                kind="site",
                asset_id=work.site_asset,
                arrived_at=iso(site_visit.first_at),
                seconds=round(site_visit.dwell_s, 1),
            )
        )
    return {
        "covered": _collection(covered),
        "missed": _collection(missed),
        "checkpoints": _collection(places),
        "gaps": _collection(gaps),
        "jumps": _collection(jumps),
        "dwell": _collection(spots),
        "trace": _collection(_drawn(trace.lines(counting=True))),
        "too_fast": _collection(_drawn(trace.lines(counting=False))),
    }


def _drawn(lines: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        _feature(shapely.simplify(line, DRAW_TOLERANCE_DEG, preserve_topology=False))
        for line in lines
    ]
