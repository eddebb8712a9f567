"""Valve isolation: a main bursts, which valves do we close, and who is left without water?

The pipe graph is the network's nodes and its pipes in service (a planned or abandoned pipe
carries no water). A valve sits on a pipe at one of its ends (`node_id`, else the end nearer
the valve's point) and splits the pipe from that node: the pieces joined without crossing a
valve are the *segments*, the same partition as WNTR's valve segmentation (a valve on link L
protecting node N), which tests/gis/test_isolation_wntr.py checks pipe by pipe. The *segment
graph* joins two segments by each normally open valve between them; a normally closed valve is
a boundary already and joins nothing.

A trace from a broken pipe:
1. the isolated area starts as the pipe's segment; an open boundary valve that cannot be shut
   (inoperable, or a check valve, which has no handle) is passed and the segment beyond joins
   the area, until every open valve leading out of the area can be shut;
2. those valves are the ones to close, nearest to the break first;
3. the pipes left without supply are those of segments that had a path to a source (reservoir
   or tank) before and have none once the area is shut off.

Segments, the segment graph and each segment's hop distance to the nearest source depend on
the network only, so they are built once per network version (`ValveNetwork`, with SciPy's
csgraph) and kept in the process (`NetworkCache`); a trace then touches only the area and the
parts it cuts off.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from pyproj import Geod
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from fieldline.gis.errors import InvalidField, NotFound
from fieldline.gis.queries import geography

SOURCE_KINDS = frozenset({"reservoir", "tank"})


class ValveRole(NamedTuple):
    in_line: bool  # splits its pipe
    shuttable: bool  # a crew can close it (when operable)


# A PRV station is shut with the isolating valves of its chamber. A check valve only stops
# reverse flow and has no handle, so a trace passes it as it passes an inoperable valve (the
# direction it lets water through is not modelled: passing it is the safe side). An air
# release valve sits on top of the main and does not split it.
VALVE_ROLES = {
    "gate": ValveRole(in_line=True, shuttable=True),
    "butterfly": ValveRole(in_line=True, shuttable=True),
    "prv": ValveRole(in_line=True, shuttable=True),
    "check": ValveRole(in_line=True, shuttable=False),
    "air_release": ValveRole(in_line=False, shuttable=False),
}

_GEOD = Geod(ellps="WGS84")


# --- input rows ---------------------------------------------------------------------------


class NodeRow(NamedTuple):
    id: int
    public_id: str
    kind: str


class PipeRow(NamedTuple):
    """A pipe in service; `lon`/`lat` is a point on it (its middle) to measure valves from."""

    id: int
    public_id: str
    from_node: int | None
    to_node: int | None
    length_m: float
    lon: float
    lat: float


class ValveRow(NamedTuple):
    """`node` is the end of `pipe` the valve sits at (see `load_network` for how it is found)."""

    id: int
    public_id: str
    pipe: int | None
    node: int | None
    kind: str
    normally_open: bool
    operable: bool
    lon: float
    lat: float


# --- result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValveToClose:
    id: int
    public_id: str
    distance_m: float  # from the break
    # The segment beyond still has water: this valve holds the pressure back. When False it
    # only keeps the dry side from draining into the trench.
    far_side_supplied: bool


@dataclass(frozen=True)
class PassedValve:
    id: int
    public_id: str
    reason: str  # "inoperable" or "check valve"


@dataclass(frozen=True)
class Isolation:
    pipe: str  # the broken pipe's public id
    valves_to_close: tuple[ValveToClose, ...]  # nearest to the break first
    passed_valves: tuple[PassedValve, ...]  # open valves the trace widened through
    closed_valves: tuple[str, ...]  # normally closed valves on the area's boundary
    isolated_pipes: tuple[str, ...]  # the shut-off area
    dry_pipes: tuple[str, ...]  # supplied before, cut off from every source after
    isolated_pipe_ids: tuple[int, ...]
    dry_pipe_ids: tuple[int, ...]
    isolated_length_m: float
    dry_length_m: float
    sources_inside: tuple[str, ...]  # sources within the area: they must be shut at the outlet
    supplied_before: bool  # False: the broken pipe had no path to a source to begin with

    @property
    def total_length_m(self) -> float:
        return self.isolated_length_m + self.dry_length_m


# --- the precomputed network ----------------------------------------------------------------


def _csr_lists(keys: np.ndarray, values: np.ndarray, size: int) -> tuple[list[int], list[int]]:
    """Group `values` by `keys` in 0..size-1: (pointers, values) as Python lists, which a
    Python loop indexes several times faster than NumPy arrays."""
    order = np.argsort(keys, kind="stable")
    pointers = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=size), out=pointers[1:])
    return pointers.tolist(), values[order].tolist()


class ValveNetwork:
    """Segments and the segment graph of one network version."""

    def __init__(
        self, nodes: Sequence[NodeRow], pipes: Sequence[PipeRow], valves: Sequence[ValveRow]
    ) -> None:
        n_nodes, n_pipes = len(nodes), len(pipes)
        node_at: dict[int | None, int] = {row.id: i for i, row in enumerate(nodes)}
        self.pipe_at = {row.public_id: j for j, row in enumerate(pipes)}
        pipe_at_id = {row.id: j for j, row in enumerate(pipes)}
        self._pipes = pipes
        self._pipe_length = np.array([row.length_m for row in pipes], dtype=np.float64)
        ends = np.array(
            [[node_at.get(row.from_node, -1), node_at.get(row.to_node, -1)] for row in pipes],
            dtype=np.int64,
        ).reshape(n_pipes, 2)

        # Valves that split a pipe in service at one of its ends; the others change nothing.
        placed: list[tuple[ValveRow, int, int]] = []
        for valve in valves:
            role = VALVE_ROLES.get(valve.kind, VALVE_ROLES["gate"])
            pipe = pipe_at_id.get(valve.pipe) if valve.pipe is not None else None
            node = node_at.get(valve.node, -1) if valve.node is not None else -1
            if role.in_line and pipe is not None and node >= 0 and node in ends[pipe]:
                placed.append((valve, pipe, node))
        self._valves = [valve for valve, _, _ in placed]
        valve_pipe = np.array([pipe for _, pipe, _ in placed], dtype=np.int64)
        valve_node = np.array([node for _, _, node in placed], dtype=np.int64)

        # Vertices: nodes 0..n_nodes-1, then pipes. A pipe is joined to each end node unless
        # a valve sits there; the connected components are the segments.
        vertices = n_nodes + n_pipes
        pipe_vertex = np.repeat(np.arange(n_pipes, dtype=np.int64) + n_nodes, 2)
        end_vertex = ends.reshape(-1)
        cut = np.isin(
            (pipe_vertex - n_nodes) * (n_nodes + 1) + end_vertex,
            valve_pipe * (n_nodes + 1) + valve_node,
        )
        keep = (end_vertex >= 0) & ~cut
        joins = coo_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (pipe_vertex[keep], end_vertex[keep])),
            shape=(vertices, vertices),
        ).tocsr()
        n_segments, labels = connected_components(joins, directed=False)
        self.n_segments = int(n_segments)
        self._pipe_segment = labels[n_nodes:]
        self._pipes_of = _csr_lists(
            self._pipe_segment, np.arange(n_pipes, dtype=np.int64), self.n_segments
        )

        # Each placed valve lies between the segment of its pipe and the segment of its node.
        side_a = self._pipe_segment[valve_pipe] if placed else np.zeros(0, dtype=np.int64)
        side_b = labels[valve_node] if placed else np.zeros(0, dtype=np.int64)
        self._side_a, self._side_b = side_a.tolist(), side_b.tolist()
        normally_open = np.array([v.normally_open for v in self._valves], dtype=bool)
        self._shuttable = [
            v.operable and VALVE_ROLES.get(v.kind, VALVE_ROLES["gate"]).shuttable
            for v in self._valves
        ]
        self._valve_lon = np.array([v.lon for v in self._valves], dtype=np.float64)
        self._valve_lat = np.array([v.lat for v in self._valves], dtype=np.float64)
        between = side_a != side_b  # a valve inside one segment (a loop around it) bounds nothing
        open_valves = np.flatnonzero(normally_open & between)
        closed_valves = np.flatnonzero(~normally_open & between)
        self._open_of = _csr_lists(
            np.concatenate([side_a[open_valves], side_b[open_valves]]),
            np.concatenate([open_valves, open_valves]),
            self.n_segments,
        )
        self._closed_of = _csr_lists(
            np.concatenate([side_a[closed_valves], side_b[closed_valves]]),
            np.concatenate([closed_valves, closed_valves]),
            self.n_segments,
        )

        # Sources and each segment's hop distance to the nearest one, through open valves: a
        # root vertex joined to every source segment, one unweighted Dijkstra from it.
        source_nodes = [i for i, row in enumerate(nodes) if row.kind in SOURCE_KINDS]
        self._sources_in: dict[int, list[str]] = {}
        for i in source_nodes:
            self._sources_in.setdefault(int(labels[i]), []).append(nodes[i].public_id)
        self.has_sources = bool(source_nodes)
        root = self.n_segments
        source_segments = np.array(sorted(self._sources_in), dtype=np.int64)
        graph = coo_matrix(
            (
                np.ones(len(open_valves) + len(source_segments), dtype=np.float32),
                (
                    np.concatenate([side_a[open_valves], np.full(len(source_segments), root)]),
                    np.concatenate([side_b[open_valves], source_segments]),
                ),
            ),
            shape=(root + 1, root + 1),
        ).tocsr()
        hops = dijkstra(graph, directed=False, indices=root, unweighted=True)[:root]
        self._supplied = np.isfinite(hops).tolist()
        self._hops = hops.tolist()  # inf where no source is reached

    # -- queries ----------------------------------------------------------------------------

    def segment_pipes(self, pipe: str) -> list[str]:
        """Public ids of the pipes in the segment of `pipe` (its valve-bounded piece)."""
        return self._pipe_ids(self._segment(pipe))

    def _segment(self, pipe: str) -> int:
        try:
            return int(self._pipe_segment[self.pipe_at[pipe]])
        except KeyError:
            raise NotFound(f"no pipe in service with id {pipe!r}") from None

    def _pipe_ids(self, segment: int) -> list[str]:
        pointers, members = self._pipes_of
        return [
            self._pipes[j].public_id for j in members[pointers[segment] : pointers[segment + 1]]
        ]

    def _open(self, segment: int) -> list[int]:
        pointers, valves = self._open_of
        return valves[pointers[segment] : pointers[segment + 1]]

    def _beyond(self, valve: int, segment: int) -> int:
        a = self._side_a[valve]
        return self._side_b[valve] if a == segment else a

    def trace(self, pipe: str, at: tuple[float, float] | None = None) -> Isolation:
        """Isolate `pipe` (a public id); valves are ordered by their distance from `at`
        (lon, lat), by default the middle of the pipe."""
        start = self._segment(pipe)
        if not self.has_sources:
            raise InvalidField(
                "pipe_id",
                "the network has no source (no reservoir or tank): nothing supplies it, so "
                "there is no supply to shut off",
            )
        area, passed = self._area(start)
        to_close = sorted(
            {
                valve
                for segment in area
                for valve in self._open(segment)
                if self._shuttable[valve] and self._beyond(valve, segment) not in area
            }
        )
        supplied = self._supply_after(area, [self._beyond_area(v, area) for v in to_close])
        dry = sorted(s for s, ok in supplied.items() if not ok and self._supplied[s])
        pipe_row = self._pipes[self.pipe_at[pipe]]
        lon, lat = at if at is not None else (pipe_row.lon, pipe_row.lat)
        distances = self._distances(to_close, lon, lat)
        closing = sorted(
            (
                ValveToClose(
                    id=self._valves[v].id,
                    public_id=self._valves[v].public_id,
                    distance_m=round(float(d), 1),
                    far_side_supplied=supplied.get(self._beyond_area(v, area), False),
                )
                for v, d in zip(to_close, distances, strict=True)
            ),
            key=lambda valve: (valve.distance_m, valve.public_id),
        )
        closed_pointers, closed = self._closed_of
        boundary_closed = {
            self._valves[v].public_id
            for s in area
            for v in closed[closed_pointers[s] : closed_pointers[s + 1]]
            if self._beyond(v, s) not in area
        }
        isolated = self._members(area)
        dry_members = self._members(dry)
        return Isolation(
            pipe=pipe,
            valves_to_close=tuple(closing),
            passed_valves=tuple(
                PassedValve(
                    self._valves[v].id,
                    self._valves[v].public_id,
                    "inoperable" if not self._valves[v].operable else "check valve",
                )
                for v in sorted(passed, key=lambda v: self._valves[v].public_id)
            ),
            closed_valves=tuple(sorted(boundary_closed)),
            isolated_pipes=tuple(self._pipes[j].public_id for j in isolated),
            dry_pipes=tuple(self._pipes[j].public_id for j in dry_members),
            isolated_pipe_ids=tuple(self._pipes[j].id for j in isolated),
            dry_pipe_ids=tuple(self._pipes[j].id for j in dry_members),
            isolated_length_m=round(float(self._pipe_length[isolated].sum()), 1),
            dry_length_m=round(float(self._pipe_length[dry_members].sum()), 1),
            sources_inside=tuple(sorted(p for s in area for p in self._sources_in.get(s, ()))),
            supplied_before=any(self._supplied[s] for s in area),
        )

    def _area(self, start: int) -> tuple[set[int], set[int]]:
        """The segments shut off together: `start` and whatever lies behind open valves that
        cannot be shut; and those valves."""
        area, passed, stack = {start}, set(), [start]
        while stack:
            segment = stack.pop()
            for valve in self._open(segment):
                if self._shuttable[valve]:
                    continue
                passed.add(valve)
                beyond = self._beyond(valve, segment)
                if beyond not in area:
                    area.add(beyond)
                    stack.append(beyond)
        return area, passed

    def _beyond_area(self, valve: int, area: set[int]) -> int:
        a = self._side_a[valve]
        return self._side_b[valve] if a in area else a

    def _supply_after(self, area: set[int], starts: Iterable[int]) -> dict[int, bool]:
        """Whether each segment reached from `starts` without entering `area` still has a
        path to a source.

        Only the parts next to the area can lose supply, and a part that keeps it usually
        reaches a source within a few hops: a best-first search towards lower hop counts
        (precomputed without the area) stops at the first source, where one pass over the
        whole segment graph would cost the same for every trace. A part cut off is searched
        to its end; all of it is then without supply."""
        result: dict[int, bool] = {}
        hops, open_of, sources = self._hops, self._open_of, self._sources_in
        pointers, valves = open_of
        for start in starts:
            if start in result:
                continue
            if not self._supplied[start]:
                result[start] = False
                continue
            seen, heap, found = {start}, [(hops[start], start)], False
            while heap and not found:
                _, segment = heapq.heappop(heap)
                if segment in sources:
                    found = True
                    break
                for valve in valves[pointers[segment] : pointers[segment + 1]]:
                    beyond = self._beyond(valve, segment)
                    if beyond in area or beyond in seen:
                        continue
                    if beyond in result:  # a part classified before: it is this same part
                        found = found or result[beyond]
                        continue
                    seen.add(beyond)
                    heapq.heappush(heap, (hops[beyond], beyond))
            for segment in seen:
                result[segment] = found
        return result

    def _members(self, segments: Iterable[int]) -> np.ndarray:
        pointers, members = self._pipes_of
        found = [j for s in segments for j in members[pointers[s] : pointers[s + 1]]]
        return np.array(sorted(found, key=lambda j: self._pipes[j].public_id), dtype=np.int64)

    def _distances(self, valves: list[int], lon: float, lat: float) -> np.ndarray:
        if not valves:
            return np.zeros(0)
        index = np.array(valves, dtype=np.int64)
        _, _, metres = _GEOD.inv(
            np.full(len(valves), lon),
            np.full(len(valves), lat),
            self._valve_lon[index],
            self._valve_lat[index],
        )
        return np.asarray(metres)


# --- from PostGIS -----------------------------------------------------------------------------

_NODES = sa.text("SELECT id, public_id, kind FROM nodes")
_PIPES = sa.text(
    "SELECT id, public_id, from_node_id, to_node_id, length_m,"
    " ST_X(m) AS lon, ST_Y(m) AS lat"
    " FROM (SELECT *, ST_LineInterpolatePoint(geom, 0.5) AS m FROM pipes"
    "       WHERE status = 'in_service') AS p"
)
# The end a valve sits at: its node when that is an end of its pipe, else the nearer end.
_VALVES = sa.text(
    "SELECT v.id, v.public_id, v.pipe_id,"
    " CASE WHEN v.node_id IN (p.from_node_id, p.to_node_id) THEN v.node_id"
    "      WHEN ST_Distance(v.geom::geography, ST_StartPoint(p.geom)::geography)"
    "        <= ST_Distance(v.geom::geography, ST_EndPoint(p.geom)::geography)"
    "      THEN p.from_node_id ELSE p.to_node_id END AS node,"
    " v.kind, v.normal_position = 'open' AS normally_open, v.operable,"
    " ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat"
    " FROM valves AS v JOIN pipes AS p ON p.id = v.pipe_id WHERE p.status = 'in_service'"
)
# What changes whenever the graph may: rows added or removed (count, max id), rows changed
# (every write path sets updated_at), and several edits within one transaction, where now()
# stays the same (the audit trail's id grows with each edit).
_VERSION = sa.text(
    "SELECT * FROM"
    " (SELECT count(*), max(updated_at), max(id) FROM nodes) AS n,"
    " (SELECT count(*), max(updated_at), max(id) FROM pipes) AS p,"
    " (SELECT count(*), max(updated_at), max(id) FROM valves) AS v,"
    " (SELECT max(id) FROM (SELECT id FROM asset_edits"
    "   WHERE layer IN ('nodes', 'pipes', 'valves') ORDER BY id DESC LIMIT 1) AS e) AS e"
)


def load_network(connection: sa.Connection) -> ValveNetwork:
    nodes = [NodeRow._make(row) for row in connection.execute(_NODES)]
    pipes = [PipeRow._make(row) for row in connection.execute(_PIPES)]
    valves = [ValveRow._make(row) for row in connection.execute(_VALVES)]
    return ValveNetwork(nodes, pipes, valves)


def network_version(connection: sa.Connection) -> tuple[Any, ...]:
    return tuple(connection.execute(_VERSION).one())


class NetworkCache:
    """The `ValveNetwork` of each database, rebuilt when its version changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[tuple[Any, ...], ValveNetwork]] = {}

    def get(self, connection: sa.Connection) -> ValveNetwork:
        key = connection.engine.url.render_as_string(hide_password=True)
        version = network_version(connection)
        # One build at a time: concurrent requests after an edit wait for it, not redo it.
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                entry = (version, load_network(connection))
                self._entries[key] = entry
            return entry[1]


NETWORKS = NetworkCache()


def pipe_status(connection: sa.Connection, public_id: str) -> str:
    status = connection.execute(
        sa.text("SELECT status FROM pipes WHERE public_id = :id"), {"id": public_id}
    ).scalar_one_or_none()
    if status is None:
        raise NotFound(f"no pipe with id {public_id!r}")
    return str(status)


def nearest_pipe(
    connection: sa.Connection, lon: float, lat: float, radius_m: float
) -> tuple[str, float] | None:
    """The public id of the pipe in service nearest to a point within `radius_m`, and its
    distance in metres."""
    pipes = sa.table("pipes", sa.column("public_id"), sa.column("geom"), sa.column("status"))
    point = sa.cast(
        sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), 4326), geography(pipes.c.geom).type
    )
    distance = sa.func.ST_Distance(geography(pipes.c.geom), point)
    row = connection.execute(
        sa.select(pipes.c.public_id, distance)
        .where(
            pipes.c.status == "in_service",
            sa.func.ST_DWithin(geography(pipes.c.geom), point, radius_m),
        )
        .order_by(distance, pipes.c.public_id)
        .limit(1)
    ).first()
    return None if row is None else (str(row[0]), float(row[1]))


# What the answer shows on the map and tells customers: assets by internal id, with their
# GeoJSON geometry (7 decimals, ~1 cm). One statement per layer, written out in full.
_GEOMETRIES = {
    "pipes": sa.text("SELECT id, public_id, ST_AsGeoJSON(geom, 7) FROM pipes WHERE id = ANY(:ids)"),
    "valves": sa.text(
        "SELECT id, public_id, ST_AsGeoJSON(geom, 7) FROM valves WHERE id = ANY(:ids)"
    ),
}
_ON_PIPES = {
    "meters": sa.text(
        "SELECT m.public_id, p.public_id, ST_AsGeoJSON(m.geom, 7),"
        " m.customer_account, m.service_address"
        " FROM meters AS m JOIN pipes AS p ON p.id = m.pipe_id"
        " WHERE m.pipe_id = ANY(:ids) ORDER BY m.public_id"
    ),
    "hydrants": sa.text(
        "SELECT h.public_id, p.public_id, ST_AsGeoJSON(h.geom, 7), h.condition"
        " FROM hydrants AS h JOIN pipes AS p ON p.id = h.pipe_id"
        " WHERE h.pipe_id = ANY(:ids) ORDER BY h.public_id"
    ),
}


class Located(NamedTuple):
    public_id: str
    geometry: str  # GeoJSON text


class OnPipe(NamedTuple):
    public_id: str
    pipe: str
    geometry: str  # GeoJSON text
    attributes: tuple[Any, ...]  # meters: account, address; hydrants: condition


def geometries(connection: sa.Connection, layer: str, ids: Sequence[int]) -> dict[int, Located]:
    """`layer` is pipes or valves."""
    rows = connection.execute(_GEOMETRIES[layer], {"ids": list(ids)})
    return {int(row[0]): Located(str(row[1]), str(row[2])) for row in rows}


def on_pipes(connection: sa.Connection, layer: str, pipe_ids: Sequence[int]) -> list[OnPipe]:
    """Meters or hydrants fed from these pipes."""
    rows = connection.execute(_ON_PIPES[layer], {"ids": list(pipe_ids)})
    return [OnPipe(str(r[0]), str(r[1]), str(r[2]), tuple(r[3:])) for r in rows]
