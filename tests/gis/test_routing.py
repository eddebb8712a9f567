"""Road routing against an independent shortest-path computation: networkx on a graph built
here from the rows of the `roads` table, with the costs the settings define."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pytest
import sqlalchemy as sa
from pyproj import Geod, Transformer
from shapely import LineString, Point
from shapely.strtree import STRtree

from fieldline.gis import routing
from fieldline.gis.errors import InvalidField
from fieldline.settings import Settings

GEOD = Geod(ellps="WGS84")
TO_METRES = Transformer.from_crs(4326, 3067, always_xy=True)  # the fixture city is in Finland
SECONDS_TOLERANCE = dict(rel=2e-3, abs=0.05)


@dataclass(frozen=True)
class Road:
    id: int
    source: int
    target: int
    oneway: bool
    maxspeed_kph: float
    coordinates: list[tuple[float, float]]

    @property
    def metres(self) -> float:
        lons, lats = zip(*self.coordinates, strict=True)
        return float(GEOD.line_length(lons, lats))


class City:
    """The roads as read from the table, and their graphs per mode."""

    def __init__(self, roads: list[Road], settings: Settings) -> None:
        self.roads = {road.id: road for road in roads}
        self.settings = settings
        self.graphs = {mode: self._graph(mode) for mode in routing.MODES}
        self.vertices = {}
        for road in roads:
            self.vertices[road.source] = road.coordinates[0]
            self.vertices[road.target] = road.coordinates[-1]

    def speed_mps(self, road: Road, mode: str) -> float:
        if mode == "foot":
            return self.settings.routing_walk_speed_mps
        return road.maxspeed_kph / 3.6 * self.settings.routing_vehicle_speed_factor

    def seconds(self, road: Road, mode: str) -> float:
        return road.metres / self.speed_mps(road, mode)

    def _graph(self, mode: str) -> nx.DiGraph:
        graph = nx.DiGraph()
        for road in self.roads.values():
            arcs = [(road.source, road.target)]
            if mode == "foot" or not road.oneway:
                arcs.append((road.target, road.source))
            for a, b in arcs:
                seconds = self.seconds(road, mode)
                if not graph.has_edge(a, b) or graph.edges[a, b]["seconds"] > seconds:
                    graph.add_edge(a, b, seconds=seconds, metres=road.metres)
        return graph

    def shortest(self, mode: str, a: int, b: int) -> tuple[float, float] | None:
        """Seconds and metres of the quickest way between two vertices."""
        graph = self.graphs[mode]
        try:
            path = nx.shortest_path(graph, a, b, weight="seconds")
        except nx.NetworkXNoPath:
            return None
        steps = [graph.edges[u, v] for u, v in itertools.pairwise(path)]
        return sum(s["seconds"] for s in steps), sum(s["metres"] for s in steps)

    def largest_part(self, mode: str) -> set[int]:
        return set(max(nx.strongly_connected_components(self.graphs[mode]), key=len))


@pytest.fixture
def city(connection: sa.Connection, settings: Settings) -> City:
    rows = connection.execute(
        sa.text(
            "SELECT id, source, target, oneway, maxspeed_kph, ST_AsText(geom) AS wkt"
            " FROM roads ORDER BY id"
        )
    ).all()
    assert len(rows) > 500, "the fixture city's roads are imported by the conftest"
    roads = [Road(r.id, r.source, r.target, r.oneway, r.maxspeed_kph, _coords(r.wkt)) for r in rows]
    return City(roads, settings)


def _coords(wkt: str) -> list[tuple[float, float]]:
    inside = wkt.removeprefix("LINESTRING(").removesuffix(")")
    return [(float(x), float(y)) for x, y in (pair.split() for pair in inside.split(","))]


def point_along(road: Road, fraction: float) -> tuple[float, float]:
    """The point at `fraction` of the road's geodesic length."""
    wanted = road.metres * fraction
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(road.coordinates):
        azimuth, _, step = GEOD.inv(lon1, lat1, lon2, lat2)
        if wanted <= step:
            lon, lat, _ = GEOD.fwd(lon1, lat1, azimuth, wanted)
            return float(lon), float(lat)
        wanted -= step
    return road.coordinates[-1]


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def path_metres(coordinates: list[tuple[float, float]]) -> float:
    lons, lats = zip(*coordinates, strict=True)
    return float(GEOD.line_length(lons, lats))


def alone_on_its_road(city: City, road: Road, point: tuple[float, float]) -> bool:
    """No other road within 1 m of a point on `road`: the point can only snap to it."""
    lines = [LineString(TO_METRES.itransform(r.coordinates)) for r in city.roads.values()]
    ids = list(city.roads)
    here = Point(TO_METRES.transform(*point))
    near = STRtree(lines).query(here, predicate="dwithin", distance=1.0)
    return [ids[i] for i in near] == [road.id]


# --- vertex to vertex ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", routing.MODES)
def test_junction_to_junction_matches_networkx(
    connection: sa.Connection, city: City, settings: Settings, mode: str
) -> None:
    rng = random.Random(7)
    destination = rng.choice(sorted(city.largest_part(mode)))
    origins = rng.sample(sorted(city.vertices), 60)
    legs = routing.travel_to(
        connection,
        [city.vertices[v] for v in origins],
        city.vertices[destination],
        mode,
        settings=settings,
    )
    unreachable = 0
    for vertex, leg in zip(origins, legs, strict=True):
        expected = city.shortest(mode, vertex, destination)
        if expected is None:
            unreachable += 1
            assert leg is None, f"{vertex} cannot reach {destination} by road"
            continue
        assert leg is not None and leg.by_road
        assert leg.seconds == pytest.approx(expected[0], **SECONDS_TOLERANCE)
        assert leg.metres == pytest.approx(expected[1], rel=2e-3, abs=0.05)
    if mode == "foot":
        assert unreachable == 0  # the roads are one connected part on foot


@pytest.mark.parametrize("mode", routing.MODES)
def test_matrix_matches_travel_to_and_seconds_alone(
    connection: sa.Connection, city: City, settings: Settings, mode: str
) -> None:
    rng = random.Random(11)
    roads = rng.sample(sorted(city.roads), 12)
    points = [point_along(city.roads[r], rng.uniform(0.1, 0.9)) for r in roads]
    origins, destinations = points[:8], points[8:]
    matrix = routing.travel_matrix(connection, origins, destinations, mode, settings=settings)
    seconds = routing.travel_seconds(connection, origins, destinations, mode, settings=settings)
    for j, destination in enumerate(destinations):
        column = routing.travel_to(connection, origins, destination, mode, settings=settings)
        for i in range(len(origins)):
            assert matrix[i][j] == column[i]
            leg = matrix[i][j]
            assert (seconds[i][j] is None) == (leg is None)
            if leg is not None:
                assert seconds[i][j] == pytest.approx(leg.seconds, rel=1e-9)


# --- points along roads --------------------------------------------------------------------


def expected_between_points(
    city: City, mode: str, start: tuple[Road, float], end: tuple[Road, float]
) -> float | None:
    """Seconds from a point at a fraction along one road to a point on another: along its
    road to either end it may drive to, the quickest way between ends, along the last road."""
    (a, fa), (b, fb) = start, end
    leave = [(a.target, (1 - fa) * city.seconds(a, mode))]
    if mode == "foot" or not a.oneway:
        leave.append((a.source, fa * city.seconds(a, mode)))
    arrive = [(b.source, fb * city.seconds(b, mode))]
    if mode == "foot" or not b.oneway:
        arrive.append((b.target, (1 - fb) * city.seconds(b, mode)))
    best = None
    for u, out in leave:
        for v, into in arrive:
            between = (0.0, 0.0) if u == v else city.shortest(mode, u, v)
            if between is not None:
                total = out + between[0] + into
                best = total if best is None else min(best, total)
    return best


@pytest.mark.parametrize("mode", routing.MODES)
def test_mid_road_points_match_networkx(
    connection: sa.Connection, city: City, settings: Settings, mode: str
) -> None:
    rng = random.Random(3)
    part = city.largest_part(mode)
    candidates = [
        r for r in city.roads.values() if r.source in part and r.target in part and r.metres > 20
    ]
    starts: list[tuple[Road, float]] = []
    while len(starts) < 25:
        road, fraction = rng.choice(candidates), rng.uniform(0.2, 0.8)
        if alone_on_its_road(city, road, point_along(road, fraction)):
            starts.append((road, fraction))
    end = starts.pop()
    legs = routing.travel_to(
        connection,
        [point_along(*start) for start in starts],
        point_along(*end),
        mode,
        settings=settings,
    )
    for start, leg in zip(starts, legs, strict=True):
        expected = expected_between_points(city, mode, start, end)
        assert expected is not None
        assert leg is not None and leg.by_road
        assert leg.seconds == pytest.approx(expected, **SECONDS_TOLERANCE)


def test_access_walk_is_added_at_walking_speed(
    connection: sa.Connection, city: City, settings: Settings
) -> None:
    rng = random.Random(5)
    lines = {r.id: LineString(TO_METRES.itransform(r.coordinates)) for r in city.roads.values()}
    to_wgs84 = Transformer.from_crs(3067, 4326, always_xy=True)
    checked = 0
    for road in rng.sample(sorted(city.roads.values(), key=lambda r: r.id), 200):
        line = lines[road.id]
        if line.length < 60:
            continue
        # 25 m square off the middle of a straight stretch: its nearest road is this one.
        a, b = (
            line.interpolate(0.5, normalized=True),
            line.interpolate(0.5 + 1 / line.length, normalized=True),
        )
        dx, dy = b.x - a.x, b.y - a.y
        norm = math.hypot(dx, dy)
        off = Point(a.x - 25 * dy / norm, a.y + 25 * dx / norm)
        nearest = min(lines, key=lambda i: lines[i].distance(off))
        if nearest != road.id or abs(line.distance(off) - 25) > 0.5:
            continue
        on_road = to_wgs84.transform(a.x, a.y)
        off_road = to_wgs84.transform(off.x, off.y)
        destination = city.vertices[road.target]
        for mode in routing.MODES:
            direct, walked = routing.travel_to(
                connection, [on_road, off_road], destination, mode, settings=settings
            )
            if direct is None:
                assert walked is None
                continue
            assert walked is not None
            walk_m = metres_between(on_road, off_road)
            assert walked.metres - direct.metres == pytest.approx(walk_m, abs=0.5)
            assert walked.seconds - direct.seconds == pytest.approx(
                walk_m / settings.routing_walk_speed_mps, abs=0.5
            )
        checked += 1
        if checked == 5:
            break
    assert checked == 5


# --- one-way roads -------------------------------------------------------------------------


def test_vehicles_keep_to_one_way_roads_and_walkers_do_not(
    connection: sa.Connection, city: City, settings: Settings
) -> None:
    part = city.largest_part("vehicle")
    one_way = [
        r
        for r in city.roads.values()
        if r.oneway
        and r.source in part
        and r.target in part
        and r.metres > 40
        and r.source != r.target
    ]
    road = next(
        r
        for r in sorted(one_way, key=lambda r: -r.metres)
        if alone_on_its_road(city, r, point_along(r, 0.25))
        and alone_on_its_road(city, r, point_along(r, 0.75))
    )
    early, late = point_along(road, 0.25), point_along(road, 0.75)

    def leg(mode: str, a: tuple[float, float], b: tuple[float, float]) -> routing.Leg:
        found = routing.travel_to(connection, [a], b, mode, settings=settings)[0]
        assert found is not None and found.by_road
        return found

    with_traffic = leg("vehicle", early, late)
    assert with_traffic.seconds == pytest.approx(
        0.5 * city.seconds(road, "vehicle"), **SECONDS_TOLERANCE
    )
    # Against the one-way road a vehicle goes on to its end and round the block.
    around = city.shortest("vehicle", road.target, road.source)
    assert around is not None
    against = leg("vehicle", late, early)
    assert against.seconds == pytest.approx(
        0.5 * city.seconds(road, "vehicle") + around[0], **SECONDS_TOLERANCE
    )
    assert against.seconds > with_traffic.seconds
    # On foot both ways are the same walk.
    walk = 0.5 * road.metres / settings.routing_walk_speed_mps
    assert leg("foot", early, late).seconds == pytest.approx(walk, **SECONDS_TOLERANCE)
    assert leg("foot", late, early).seconds == pytest.approx(walk, **SECONDS_TOLERANCE)


# --- straight-line fallback ----------------------------------------------------------------


def straight_line_seconds(a: Any, b: Any, mode: str, settings: Settings) -> tuple[float, float]:
    metres = metres_between(a, b) * settings.routing_detour_factor
    mps = (
        settings.routing_fallback_vehicle_kph / 3.6
        if mode == "vehicle"
        else settings.routing_walk_speed_mps
    )
    return metres / mps, metres


@pytest.mark.parametrize("mode", routing.MODES)
def test_without_roads_every_leg_is_a_straight_line_estimate(
    connection: sa.Connection, city: City, settings: Settings, mode: str
) -> None:
    connection.execute(sa.text("DELETE FROM roads"))
    origins = [city.vertices[v] for v in sorted(city.vertices)[:5]]
    destination = city.vertices[max(city.vertices)]
    legs = routing.travel_to(connection, origins, destination, mode, settings=settings)
    for origin, leg in zip(origins, legs, strict=True):
        assert leg is not None and not leg.by_road
        seconds, metres = straight_line_seconds(origin, destination, mode, settings)
        assert leg.seconds == pytest.approx(seconds, rel=1e-9)
        assert leg.metres == pytest.approx(metres, rel=1e-9)
    path = routing.route(connection, origins[0], destination, mode, settings=settings)
    assert path is not None and not path.by_road
    assert path.coordinates == [origins[0], destination]


def test_a_point_far_from_every_road_gets_a_straight_line(
    connection: sa.Connection, city: City, settings: Settings
) -> None:
    destination = city.vertices[min(city.largest_part("vehicle"))]
    near = city.vertices[max(city.largest_part("vehicle"))]
    north = max(lat for _, lat in city.vertices.values())
    far = (destination[0], north + (settings.routing_max_snap_m + 500) / 111_000)
    near_leg, far_leg = routing.travel_to(
        connection, [near, far], destination, "vehicle", settings=settings
    )
    assert near_leg is not None and near_leg.by_road
    assert far_leg is not None and not far_leg.by_road
    assert far_leg.seconds == pytest.approx(
        straight_line_seconds(far, destination, "vehicle", settings)[0], rel=1e-9
    )


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", routing.MODES)
def test_route_follows_the_roads_from_point_to_point(
    connection: sa.Connection, city: City, settings: Settings, mode: str
) -> None:
    rng = random.Random(13)
    part = city.largest_part(mode)
    roads = [r for r in city.roads.values() if r.source in part and r.target in part]
    lines = STRtree([LineString(TO_METRES.itransform(r.coordinates)) for r in roads])
    for _ in range(5):
        a, b = rng.sample(roads, 2)
        # A few metres off the road, as a GPS fix or a task's address would be.
        origin = point_along(a, rng.uniform(0, 1))
        origin = (origin[0] + 0.00005, origin[1] + 0.00003)
        destination = point_along(b, rng.uniform(0, 1))
        path = routing.route(connection, origin, destination, mode, settings=settings)
        leg = routing.travel_to(connection, [origin], destination, mode, settings=settings)[0]
        assert path is not None and leg is not None and path.by_road
        assert path.seconds == pytest.approx(leg.seconds, rel=1e-9)
        assert path.metres == pytest.approx(leg.metres, rel=1e-9)
        assert path.coordinates[0] == origin and path.coordinates[-1] == destination
        assert path_metres(path.coordinates) == pytest.approx(path.metres, rel=2e-3, abs=0.1)
        # Every point but the two ends lies on a road.
        for lon, lat in path.coordinates[1:-1]:
            here = Point(TO_METRES.transform(lon, lat))
            assert len(lines.query(here, predicate="dwithin", distance=0.05)) > 0


def test_route_between_one_way_dead_ends_is_none(
    connection: sa.Connection, city: City, settings: Settings
) -> None:
    graph = city.graphs["vehicle"]
    part = city.largest_part("vehicle")
    # A junction that can be reached but has no way back into the rest of the city.
    trap = next(v for v in sorted(graph) if v not in part and not nx.has_path(graph, v, min(part)))
    assert (
        routing.route(
            connection, city.vertices[trap], city.vertices[min(part)], "vehicle", settings=settings
        )
        is None
    )
    assert (
        routing.route(
            connection, city.vertices[trap], city.vertices[min(part)], "foot", settings=settings
        )
        is not None
    )


# --- the contract --------------------------------------------------------------------------


def test_many_origins_to_one_destination_take_two_statements(
    connection: sa.Connection, city: City, settings: Settings
) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    origins = [city.vertices[v] for v in sorted(city.vertices)[:200]]
    sa.event.listen(connection, "before_cursor_execute", count)
    try:
        legs = routing.travel_to(connection, origins, origins[0], "vehicle", settings=settings)
    finally:
        sa.event.remove(connection, "before_cursor_execute", count)
    assert len(legs) == 200
    assert len(statements) == 2  # snap them all, route them all


def test_unknown_mode_and_bad_coordinates_name_the_field(
    connection: sa.Connection, settings: Settings
) -> None:
    with pytest.raises(InvalidField) as error:
        routing.travel_to(connection, [(24.94, 60.17)], (24.95, 60.17), "bicycle")
    assert error.value.field == "mode"
    with pytest.raises(InvalidField) as error:
        routing.travel_to(connection, [(24.94, 95.0)], (24.95, 60.17), "foot", settings=settings)
    assert error.value.field == "origins"
    with pytest.raises(InvalidField) as error:
        routing.route(connection, (24.94, 60.17), (math.nan, 60.17), "foot", settings=settings)
    assert error.value.field == "destination"


def test_no_origins_no_legs(connection: sa.Connection, settings: Settings) -> None:
    assert routing.travel_to(connection, [], (24.95, 60.17), "vehicle", settings=settings) == []
