"""What a crew's cleaned trace (gis/trace.py) proves about assets: which parts of each pipe it
passed close enough to, and when and how long it stood at each place.

Pipes: each pipe is sampled every `step_m`; a sample is covered when the nearest segment of
the trace that counts (unbroken, not too fast) is within that segment's radius. Runs of
covered samples become covered parts of the pipe, each sample standing for the `step_m`
around it, so lengths are exact to a step at each end of a run.

Places (a repair site, a valve, a hydrant on a patrol): a device is there while a fix is
within its own radius of the place; the dwell is the time between consecutive fixes that are
both there and not split by a gap or a jump, merged over the crew's devices so that two
phones at the site count once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from fieldline.gis.trace import Trace

DEFAULT_STEP_M = 2.0
# Trace segments become points this far apart for the nearest-neighbour search.
DENSIFY_M = 2.0
# A sample looks at this many nearest trace points: radii differ from fix to fix.
NEIGHBOURS = 4


@dataclass(frozen=True)
class PipeCoverage:
    asset_id: str
    length_m: float
    covered_m: float
    covered: list[Any] = field(default_factory=list)  # WGS 84 lines
    missed: list[Any] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.covered_m / self.length_m if self.length_m > 0 else 1.0


@dataclass(frozen=True)
class Visit:
    asset_id: str
    first_at: datetime | None  # the first fix within its radius of the place
    dwell_s: float
    closest_m: float | None  # the nearest any fix came; None without fixes
    fixes: int  # fixes within their radius


def pipe_coverage(
    trace: Trace, pipes: Mapping[str, BaseGeometry], step_m: float = DEFAULT_STEP_M
) -> list[PipeCoverage]:
    """Covered length and the covered and missed parts of each pipe, in the order given."""
    if not pipes:
        return []
    ids = list(pipes)
    metric = trace.projection.geometry_to_metres(np.asarray(list(pipes.values()), dtype=object))
    parts, owner = shapely.get_parts(metric, return_index=True)
    line = _Polylines(parts)
    counts = np.maximum(np.ceil(line.lengths / step_m).astype(int) + 1, 2)
    spacing = line.lengths / (counts - 1)
    # Sample k of a part sits at k spacings along it.
    part_of = np.repeat(np.arange(len(parts)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    hit = _covered(trace, line.at(part_of, k * spacing[part_of]))

    # Runs of equal `hit` within a part; each sample stands for the spacing around it.
    first = np.ones(hit.size, dtype=bool)
    first[1:] = (hit[1:] != hit[:-1]) | (k[1:] == 0)
    run_start = np.flatnonzero(first)
    run_last = np.append(run_start[1:], hit.size) - 1
    part = part_of[run_start]
    run_hit = hit[run_start]
    lo_k, hi_k = k[run_start], k[run_last]
    a = np.where(lo_k == 0, 0.0, (lo_k - 0.5) * spacing[part])
    b = np.where(hi_k == counts[part] - 1, line.lengths[part], (hi_k + 0.5) * spacing[part])
    covered_m = np.bincount(owner[part[run_hit]], (b - a)[run_hit], minlength=len(ids))
    length_m = np.bincount(owner, line.lengths, minlength=len(ids))
    lines = trace.projection.geometry_to_lonlat(np.asarray(line.pieces(part, a, b), dtype=object))

    hits: list[list[Any]] = [[] for _ in ids]
    misses: list[list[Any]] = [[] for _ in ids]
    for piece, pipe, covered in zip(lines, owner[part].tolist(), run_hit.tolist(), strict=True):
        (hits if covered else misses)[pipe].append(piece)
    return [
        PipeCoverage(asset_id, float(length_m[i]), float(covered_m[i]), hits[i], misses[i])
        for i, asset_id in enumerate(ids)
    ]


class _Polylines:
    """Many lines as one array of vertices, for linear referencing in bulk: positions along
    all of them live on one axis, each line after the previous one and a metre apart."""

    def __init__(self, lines: Any) -> None:
        self.xy, index = shapely.get_coordinates(lines, return_index=True)
        step = np.hypot(*np.diff(self.xy, axis=0).T)
        same = index[1:] == index[:-1]
        self.along = np.concatenate(([0.0], np.cumsum(np.where(same, step, 1.0))))
        first = np.searchsorted(index, np.arange(len(lines)))
        last = np.searchsorted(index, np.arange(len(lines)), side="right") - 1
        self.start = self.along[first]
        self.lengths = self.along[last] - self.start

    def at(self, line: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """The points `distance` metres along the given lines (n x 2)."""
        where = self.start[line] + distance
        return np.column_stack(
            (
                np.interp(where, self.along, self.xy[:, 0]),
                np.interp(where, self.along, self.xy[:, 1]),
            )
        )

    def pieces(self, line: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[Any]:
        """The part of each given line from `a` to `b` metres along it, vertices kept."""
        lo, hi = self.start[line] + a, self.start[line] + b
        first = np.searchsorted(self.along, lo, side="right")
        inner = np.searchsorted(self.along, hi, side="left") - first
        sizes = inner + 2
        offset = np.cumsum(sizes) - sizes
        piece = np.repeat(np.arange(sizes.size), sizes)
        position = np.arange(sizes.sum()) - offset[piece]
        vertex = np.clip(first[piece] + position - 1, 0, len(self.xy) - 1)
        coords = self.xy[vertex]
        coords[offset] = self.at(line, a)
        coords[offset + sizes - 1] = self.at(line, b)
        return list(shapely.linestrings(coords, indices=piece))


def _covered(trace: Trace, samples: np.ndarray) -> np.ndarray:
    """Whether each sample (n x 2, metres) lies within the radius of a nearby counting
    segment. Segments are densified to points DENSIFY_M apart: a point is never nearer than
    its segment, so the test errs towards `missed`, by half a spacing at most."""
    a, b = trace.segments()
    if not len(a):
        return np.zeros(len(samples), dtype=bool)
    radii = trace.segment_radii()
    per = np.maximum(np.ceil(np.hypot(*(b - a).T) / DENSIFY_M).astype(int), 1)
    seg = np.repeat(np.arange(len(a)), per)
    fraction = (np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)) / per[seg]
    # A segment's end point is the next one's start, except where a run of segments ends.
    ends = np.ones(len(b), dtype=bool)
    ends[:-1] = np.any(b[:-1] != a[1:], axis=1)
    points = np.concatenate((a[seg] + (b - a)[seg] * fraction[:, None], b[ends]))
    point_radii = np.concatenate((radii[seg], radii[ends]))
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)  # built faster, used once
    reach = float(radii.max())
    distance, index = tree.query(samples, distance_upper_bound=reach)
    found = index < len(points)
    covered = np.zeros(len(samples), dtype=bool)
    covered[found] = distance[found] <= point_radii[index[found]]
    # Where the nearest point's radius falls short, a farther point with a larger one may
    # still reach: ask again for those few only.
    doubt = np.flatnonzero(found & ~covered)
    if doubt.size and len(points) > 1:
        distance, index = tree.query(
            samples[doubt], k=min(NEIGHBOURS, len(points)), distance_upper_bound=reach
        )
        found = index < len(points)
        within = np.zeros(distance.shape, dtype=bool)
        within[found] = distance[found] <= point_radii[index[found]]
        covered[doubt] = within.any(axis=1)
    return covered


def visits(trace: Trace, places: Mapping[str, BaseGeometry]) -> list[Visit]:
    """Arrival, dwell and closest approach at each place, in the order given."""
    if not places:
        return []
    metric = trace.projection.geometry_to_metres(np.asarray(list(places.values()), dtype=object))
    is_point = shapely.get_type_id(metric) == 0
    xy = np.zeros((len(metric), 2))
    xy[is_point] = shapely.get_coordinates(metric[is_point])
    reach = trace.rules.radius_cap_m
    first = np.full(len(metric), np.inf)
    closest = np.full(len(metric), np.inf)
    inside = np.zeros(len(metric), dtype=int)
    intervals: list[list[tuple[float, float]]] = [[] for _ in metric]
    for d in trace.devices:
        if not d.t.size:
            continue
        fixes = np.column_stack((d.x, d.y))
        tree = cKDTree(fixes)
        # Points are answered by the tree, all at once; other shapes fix by fix.
        nearest, _ = tree.query(xy[is_point])
        closest[is_point] = np.minimum(closest[is_point], nearest)
        around = np.empty(len(metric), dtype=object)
        around[is_point] = tree.query_ball_point(xy[is_point], reach)
        for p in np.flatnonzero(~is_point).tolist():
            distance = shapely.distance(metric[p], shapely.points(fixes))
            closest[p] = min(closest[p], float(distance.min()))
            around[p] = np.flatnonzero(distance <= reach)
        for p, candidates in enumerate(around):
            index = np.sort(np.asarray(candidates, dtype=int))
            if is_point[p]:
                distance = np.hypot(d.x[index] - xy[p, 0], d.y[index] - xy[p, 1])
            else:
                distance = shapely.distance(metric[p], shapely.points(fixes[index]))
            index = index[distance <= d.r[index]]
            if not index.size:
                continue
            inside[p] += index.size
            first[p] = min(first[p], float(d.t[index[0]]))
            # Consecutive fixes both at the place, not split by a gap or a jump.
            pair = (np.diff(index) == 1) & ~d.broken[index[:-1]]
            starts = index[:-1][pair]
            intervals[p].extend(zip(d.t[starts].tolist(), d.t[starts + 1].tolist(), strict=True))
    return [
        Visit(
            asset_id,
            None if np.isinf(first[p]) else datetime.fromtimestamp(first[p], UTC),
            _union_seconds(intervals[p]),
            None if np.isinf(closest[p]) else float(closest[p]),
            int(inside[p]),
        )
        for p, asset_id in enumerate(places)
    ]


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total
