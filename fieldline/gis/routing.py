"""Travel times and paths over the `roads` table with pgRouting, for vehicles and walkers.

How a point is routed: it is snapped to the nearest road (geodesic distance, found through
the geometry index) and becomes a temporary vertex at its fraction along that road;
pgRouting's withPoints functions run Dijkstra on the road graph with those vertices added. A
crew in the middle of a long street therefore starts there, in either direction the street
allows, rather than at whichever end is nearer: snapping to the nearer end instead would send
a crew past its destination on a one-way street, or count the same stretch twice. A point
that snaps to the end of a road (a junction, a dead end) starts from that road vertex itself,
so every road leaving the junction is open to it. The straight walk between a point and its
road (the car park, the yard) is added at walking speed for every mode.

Costs are seconds: a road's length over its speed (the limit times the vehicle speed factor,
or the walking speed). Vehicles respect `oneway` (no reverse edge); walkers go both ways.
Metres are those of the quickest path, summed from its edges (each edge's seconds times its
speed), so one query gives both.

Without roads (nothing imported) or for a point farther than the snap limit from every road,
a leg is a straight-line estimate, marked `by_road=False`: geodesic distance times the detour
factor, at walking speed or the fallback vehicle speed.

pgRouting runs one Dijkstra per start vertex, so a matrix is searched from its smaller side:
many origins to one destination is one search backwards from the destination (each road's two
directions swapping costs), not one per origin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
import sqlalchemy as sa
from pyproj import Geod
from shapely import LineString, affinity
from shapely.ops import substring

from fieldline.gis.errors import InvalidField
from fieldline.settings import Settings, get_settings

MODES = ("vehicle", "foot")
_GEOD = Geod(ellps="WGS84")
# Metres per degree can only be larger than this on the ellipsoid (meridian arc at the
# equator), times the cosine of the latitude for longitude.
_MIN_METRES_PER_DEGREE = 110_000.0
# A point this close to the end of its road is at the junction: it routes from the vertex.
_AT_VERTEX_M = 0.5

Point = tuple[float, float]  # lon, lat


@dataclass(frozen=True)
class Leg:
    seconds: float  # travel time
    metres: float  # travel distance
    # False: a straight-line estimate (no road network loaded, or a point too far from any road)
    by_road: bool


@dataclass(frozen=True)
class RoutePath:
    seconds: float
    metres: float
    by_road: bool
    # The way travelled, lon/lat: the point, along the roads, the destination. A straight
    # line between the two when `by_road` is False (then `metres` is the estimate, longer).
    coordinates: list[Point]


@dataclass(frozen=True)
class _Snap:
    """A point placed on its nearest road."""

    edge_id: int
    fraction: float  # along the road from `source` to `target`, by length
    access_m: float  # straight walk between the point and the road
    vertex: int | None  # the road's end vertex when the point is at it
    at: Point  # the place on the road


@dataclass(frozen=True)
class _Profile:
    # Metres per second on a road: its limit (km/h) / 3.6 times `speed_scale` when
    # `by_limit`, else `speed_scale` itself.
    by_limit: bool
    speed_scale: float
    oneway: bool  # one-way roads have no reverse edge
    access_mps: float
    fallback_mps: float
    detour_factor: float
    max_snap_m: float


def _profile(mode: str, settings: Settings) -> _Profile:
    if mode not in MODES:
        raise InvalidField("mode", f"unknown mode {mode!r}; known: " + ", ".join(MODES))
    vehicle = mode == "vehicle"
    return _Profile(
        by_limit=vehicle,
        speed_scale=(
            settings.routing_vehicle_speed_factor if vehicle else settings.routing_walk_speed_mps
        ),
        oneway=vehicle,
        access_mps=settings.routing_walk_speed_mps,
        fallback_mps=(
            settings.routing_fallback_vehicle_kph / 3.6
            if vehicle
            else settings.routing_walk_speed_mps
        ),
        detour_factor=settings.routing_detour_factor,
        max_snap_m=settings.routing_max_snap_m,
    )


# Metres per second on the road row `r`, for queries that take bind parameters.
_SPEED = "(CASE WHEN :by_limit THEN r.maxspeed_kph / 3.6 ELSE 1.0 END * :speed_scale)"


def _speed_params(profile: _Profile) -> dict[str, object]:
    return {"by_limit": profile.by_limit, "speed_scale": profile.speed_scale}


# --- public functions ---------------------------------------------------------------------


def travel_to(
    connection: sa.Connection,
    origins: Sequence[Point],
    destination: Point,
    mode: str,
    *,
    settings: Settings | None = None,
) -> list[Leg | None]:
    """Travel from each origin (lon, lat) to one destination; None where unreachable."""
    matrix = travel_matrix(connection, origins, [destination], mode, settings=settings)
    return [row[0] for row in matrix]


def travel_matrix(
    connection: sa.Connection,
    origins: Sequence[Point],
    destinations: Sequence[Point],
    mode: str,
    *,
    settings: Settings | None = None,
) -> list[list[Leg | None]]:
    """Travel from every origin to every destination, `[origin][destination]`, None where
    unreachable: one query snaps the points, one routes them all.

    The metres come from each quickest path, which pgRouting writes out edge by edge: that
    dominates on large matrices (360 x 360 points on the fixture city, 2-core machine
    otherwise idle: 12 s, against 0.9 s for `travel_seconds`)."""
    profile = _profile(mode, settings or get_settings())
    return _matrix(connection, origins, destinations, profile, with_metres=True)


def travel_seconds(
    connection: sa.Connection,
    origins: Sequence[Point],
    destinations: Sequence[Point],
    mode: str,
    *,
    settings: Settings | None = None,
) -> list[list[float | None]]:
    """The seconds of `travel_matrix` alone, from pgRouting's cost function (no paths): what
    a dispatch solver needs, an order of magnitude quicker on large matrices."""
    profile = _profile(mode, settings or get_settings())
    matrix = _matrix(connection, origins, destinations, profile, with_metres=False)
    return [[None if leg is None else leg.seconds for leg in row] for row in matrix]


def _matrix(
    connection: sa.Connection,
    origins: Sequence[Point],
    destinations: Sequence[Point],
    profile: _Profile,
    with_metres: bool,
) -> list[list[Leg | None]]:
    """`travel_matrix`; without metres, the road legs' metres are NaN."""
    points = _checked(origins, "origins") + _checked(destinations, "destinations")
    if not origins or not destinations:
        return [[] for _ in origins]
    snaps = _snap(connection, points, profile.max_snap_m)
    ids = [_graph_id(i, snap) for i, snap in enumerate(snaps)]
    first_end = len(origins)
    starts = {ids[i] for i in range(first_end) if snaps[i]}
    ends = {ids[i] for i in range(first_end, len(points)) if snaps[i]}
    road = _road_costs(connection, snaps, sorted(starts), sorted(ends), profile, with_metres)
    matrix: list[list[Leg | None]] = []
    for i, origin in enumerate(origins):
        row: list[Leg | None] = []
        for j, destination in enumerate(destinations):
            start, end = snaps[i], snaps[first_end + j]
            if start is None or end is None:
                row.append(_straight_line(origin, destination, profile))
                continue
            found = road.get((ids[i], ids[first_end + j]))
            row.append(None if found is None else _with_access(found, start, end, profile))
        matrix.append(row)
    return matrix


def route(
    connection: sa.Connection,
    origin: Point,
    destination: Point,
    mode: str,
    *,
    settings: Settings | None = None,
) -> RoutePath | None:
    """The quickest way from origin to destination along the roads; None if there is none."""
    profile = _profile(mode, settings or get_settings())
    points = _checked([origin], "origin") + _checked([destination], "destination")
    start, end = _snap(connection, points, profile.max_snap_m)
    if start is None or end is None:
        leg = _straight_line(origin, destination, profile)
        return RoutePath(leg.seconds, leg.metres, False, [origin, destination])
    start_id, end_id = _graph_id(0, start), _graph_id(1, end)
    coordinates: list[Point] = [origin]
    if start_id == end_id:  # the same junction: no road between them
        _extend(coordinates, [start.at, destination])
        leg = _with_access(Leg(0.0, 0.0, True), start, end, profile)
        return RoutePath(leg.seconds, leg.metres, True, coordinates)
    rows = connection.execute(
        sa.text(
            f"SELECT w.node, w.edge, w.cost, w.cost * {_SPEED} AS metres,"  # noqa: S608 - constant
            " r.source, r.target, ST_AsBinary(r.geom) AS wkb"
            " FROM pgr_withPoints(:edges, :points, CAST(:start AS bigint), CAST(:end AS bigint),"
            "   directed => true, driving_side => 'b', details => false) AS w"
            " LEFT JOIN roads AS r ON r.id = w.edge"
            " ORDER BY w.seq"
        ),
        {
            "edges": _edges_sql(profile, reverse=False),
            "points": _points_sql({start_id: start, end_id: end}),
            "start": start_id,
            "end": end_id,
            **_speed_params(profile),
        },
    ).all()
    if not rows:
        return None
    fractions = {start_id: start.fraction, end_id: end.fraction}
    for step, following in itertools.pairwise(rows):
        line = LineString(shapely.from_wkb(step.wkb).coords)
        begin = fractions[step.node] if step.node < 0 else _end_fraction(step, step.node)
        stop = (
            fractions[following.node] if following.node < 0 else _end_fraction(step, following.node)
        )
        _extend(coordinates, _along(line, begin, stop))
    _extend(coordinates, [destination])
    road = Leg(sum(step.cost for step in rows), sum(step.metres or 0.0 for step in rows), True)
    leg = _with_access(road, start, end, profile)
    return RoutePath(leg.seconds, leg.metres, True, coordinates)


# --- snapping -----------------------------------------------------------------------------

# The nearest road by geodesic distance. The geometry index orders by distance in degrees,
# which at high latitudes favours roads north or south of a point over nearer ones east or
# west; so the nearest in degrees only bounds the search: every road within that many metres
# (or the snap limit, if less; plus a metre, as the two measures of a point on a road differ
# by millimetres) is then ranked in metres, on the sphere (quicker than the spheroid, and the
# same order but for near-ties). The fraction along the road is found with longitudes scaled
# by the cosine of the road's latitude, a local metric in which it matches the fraction of
# the geodesic length to well under a percent. The walk to the road is measured on the
# spheroid.
_SNAP = sa.text(
    """
SELECT p.i - 1 AS i, best.id AS edge_id, best.source, best.target, best.length_m, l.fraction,
       ST_X(s.snapped) AS lon, ST_Y(s.snapped) AS lat,
       ST_Distance(q.pt::geography, s.snapped::geography) AS access_m
FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS p(lon, lat, i)
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS pt) AS q
CROSS JOIN LATERAL (
    SELECT least(ST_Distance(r.geom::geography, q.pt::geography, false), :max_snap_m) AS bound_m
    FROM roads AS r ORDER BY r.geom <-> q.pt LIMIT 1
) AS first
CROSS JOIN LATERAL (
    SELECT r.id, r.source, r.target, r.length_m, r.geom
    FROM roads AS r
    WHERE ST_DWithin(
        r.geom, q.pt,
        (1.1 * first.bound_m + 1.0) / (:metres_per_degree * greatest(cos(radians(p.lat)), 0.01)))
    ORDER BY ST_Distance(r.geom::geography, q.pt::geography, false), r.id
    LIMIT 1
) AS best
CROSS JOIN LATERAL (SELECT cos(radians(ST_Y(ST_StartPoint(best.geom)))) AS c) AS k
CROSS JOIN LATERAL (
    SELECT ST_LineLocatePoint(ST_Scale(best.geom, k.c, 1), ST_Scale(q.pt, k.c, 1)) AS fraction
) AS l
CROSS JOIN LATERAL (
    SELECT ST_Scale(ST_LineInterpolatePoint(ST_Scale(best.geom, k.c, 1), l.fraction), 1 / k.c, 1)
           AS snapped
) AS s
"""
)


def _snap(
    connection: sa.Connection, points: Sequence[Point], max_snap_m: float
) -> list[_Snap | None]:
    """Each point on its nearest road, or None: no roads, or none within `max_snap_m`."""
    snaps: list[_Snap | None] = [None] * len(points)
    rows = connection.execute(
        _SNAP,
        {
            "lons": [p[0] for p in points],
            "lats": [p[1] for p in points],
            "max_snap_m": max_snap_m,
            "metres_per_degree": _MIN_METRES_PER_DEGREE,
        },
    )
    for row in rows:
        if row.access_m > max_snap_m:
            continue
        vertex = None
        if row.fraction * row.length_m <= _AT_VERTEX_M:
            vertex = row.source
        elif (1.0 - row.fraction) * row.length_m <= _AT_VERTEX_M:
            vertex = row.target
        snaps[row.i] = _Snap(row.edge_id, row.fraction, row.access_m, vertex, (row.lon, row.lat))
    return snaps


def _graph_id(index: int, snap: _Snap | None) -> int:
    """A point's vertex in pgRouting's terms: the road vertex it is at, or a temporary one
    (negative, numbered by its place in the list of points)."""
    if snap is not None and snap.vertex is not None:
        return snap.vertex
    return -(index + 1)


def _checked(points: Sequence[Point], field: str) -> list[Point]:
    checked = []
    for lon, lat in points:
        if not (
            math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
        ):
            raise InvalidField(field, f"({lon}, {lat}) is not a longitude, latitude pair")
        checked.append((float(lon), float(lat)))
    return checked


# --- the road graph -----------------------------------------------------------------------


def _edges_sql(profile: _Profile, reverse: bool) -> str:
    """pgRouting's edges: seconds along each road, -1 (no edge) against a one-way road.

    Reversed, each road's two directions swap costs (the geometry and so the fractions along
    it stay as they are), so that a search from the destination finds the quickest ways *to*
    it."""
    # Numbers formatted here, nothing from a user: pgRouting takes the edges as query text.
    limit = "r.maxspeed_kph / 3.6 * " if profile.by_limit else ""
    forward = f"r.length_m / ({limit}{float(profile.speed_scale)!r})"
    backward = f"CASE WHEN r.oneway THEN -1 ELSE {forward} END" if profile.oneway else forward
    cost, reverse_cost = (backward, forward) if reverse else (forward, backward)
    return (
        f"SELECT r.id, r.source, r.target, {cost} AS cost,"  # noqa: S608 - numbers only
        f" {reverse_cost} AS reverse_cost FROM roads AS r"
    )


def _points_sql(snaps: dict[int, _Snap]) -> str:
    """The temporary vertices (negative ids) as a query over a VALUES list: pgRouting takes
    them as query text; every value is a number formatted here, never user text."""
    rows = [
        f"({-graph_id}, {int(snap.edge_id)}, {_inside(snap.fraction)!r})"
        for graph_id, snap in snaps.items()
        if graph_id < 0
    ]
    if not rows:
        return "SELECT 1::bigint AS pid, 1::bigint AS edge_id, 0.5::float8 AS fraction WHERE false"
    return (
        "SELECT pid::bigint, edge_id::bigint, fraction::float8"  # noqa: S608 - numbers only
        f" FROM (VALUES {', '.join(rows)}) AS p(pid, edge_id, fraction)"
    )


def _inside(fraction: float) -> float:
    """The fraction kept inside the road: pgRouting 3.4 leaves a point at fraction 0 or 1 out
    of its results (it becomes the road's end vertex), which would read as unreachable."""
    return min(max(fraction, 1e-9), 1.0 - 1e-9)


# Seconds and metres of each quickest path, summed from its edges in the database.
_PATH_COSTS = sa.text(
    "SELECT w.start_pid, w.end_pid, sum(w.cost) AS seconds,"  # noqa: S608 - constant
    f" coalesce(sum(w.cost * {_SPEED}), 0) AS metres"
    " FROM pgr_withPoints(:edges, :points, CAST(:sources AS bigint[]),"
    "   CAST(:targets AS bigint[]), directed => true, driving_side => 'b',"
    "   details => false) AS w"
    " LEFT JOIN roads AS r ON r.id = w.edge"
    " GROUP BY w.start_pid, w.end_pid"
)
# Seconds alone.
_COSTS = sa.text(
    "SELECT start_pid, end_pid, agg_cost AS seconds, NULL AS metres"
    " FROM pgr_withPointsCost(:edges, :points, CAST(:sources AS bigint[]),"
    "   CAST(:targets AS bigint[]), directed => true, driving_side => 'b')"
)


def _road_costs(
    connection: sa.Connection,
    snaps: Sequence[_Snap | None],
    starts: Sequence[int],
    ends: Sequence[int],
    profile: _Profile,
    with_metres: bool = True,
) -> dict[tuple[int, int], Leg]:
    """Seconds and metres (NaN without `with_metres`) along the roads between graph
    vertices `(start, end)` (see `_graph_id`); pairs without a path are missing."""
    if not starts or not ends:
        return {}
    # One Dijkstra per source: search from the smaller side.
    reverse = len(ends) < len(starts)
    sources, targets = (ends, starts) if reverse else (starts, ends)
    used = {_graph_id(i, snap): snap for i, snap in enumerate(snaps) if snap is not None}
    rows = connection.execute(
        _PATH_COSTS if with_metres else _COSTS,
        {
            "edges": _edges_sql(profile, reverse),
            "points": _points_sql(used),
            "sources": list(sources),
            "targets": list(targets),
            **(_speed_params(profile) if with_metres else {}),
        },
    )
    costs = {}
    for row in rows:
        key = (row.end_pid, row.start_pid) if reverse else (row.start_pid, row.end_pid)
        metres = math.nan if row.metres is None else float(row.metres)
        costs[key] = Leg(float(row.seconds), metres, True)
    # Two points at the same junction: pgRouting gives no row for a vertex to itself.
    for vertex in set(starts) & set(ends):
        costs[(vertex, vertex)] = Leg(0.0, 0.0, True)
    return costs


def _with_access(road: Leg, start: _Snap, end: _Snap, profile: _Profile) -> Leg:
    access_m = start.access_m + end.access_m
    return Leg(road.seconds + access_m / profile.access_mps, road.metres + access_m, True)


def _straight_line(origin: Point, destination: Point, profile: _Profile) -> Leg:
    _, _, metres = _GEOD.inv(origin[0], origin[1], destination[0], destination[1])
    metres *= profile.detour_factor
    return Leg(metres / profile.fallback_mps, metres, False)


# --- path geometry ------------------------------------------------------------------------


def _end_fraction(step: sa.Row[Any], node: int) -> float:
    return 0.0 if node == step.source else 1.0


def _along(line: LineString, begin: float, end: float) -> list[Point]:
    """The part of `line` between two fractions (as measured when snapping), in travel order."""
    scale = math.cos(math.radians(line.coords[0][1]))
    scaled = affinity.scale(line, xfact=scale, yfact=1.0, origin=(0.0, 0.0))
    part = substring(scaled, begin, end, normalized=True)
    return [(x / scale, y) for x, y in part.coords]


def _extend(coordinates: list[Point], more: Sequence[Point]) -> None:
    for point in more:
        if point != coordinates[-1]:
            coordinates.append(point)
