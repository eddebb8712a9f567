"""Known traces for the verification tests: a walker that lays seeded, noisy fixes along
paths in metres, written straight into `positions`, and tasks taken to completion through the
task services."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry import LineString, Point, shape
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.gis.trace import LocalProjection
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import create_crew
from fieldline.server.tasks.models import Task
from fieldline.server.tasks.services import create_task, transition
from fieldline.server.telemetry.models import Position, QuarantinedFix
from tests.conftest import CITY

# The morning the tests' work is done (the clock of the crews' reports).
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ACC_M = 5.0  # reported accuracy: each fix is good to the 15 m floor


@dataclass
class Walker:
    """Fixes every `every_s` seconds with Gaussian noise of `noise_m`, laid leg after leg;
    the clock runs on from one leg to the next."""

    projection: LocalProjection
    start: datetime
    seed: int = 1
    every_s: float = 3.0
    noise_m: float = 3.0
    # Where (0, 0) of the walker's coordinates lies in the projection's metres: a site, so
    # that legs are laid out around it.
    origin: tuple[float, float] = (0.0, 0.0)
    fixes: list[tuple[datetime, float, float]] = field(default_factory=list)
    clock_s: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.clock_s)

    def _lay(self, times: Sequence[float], xs: Sequence[float], ys: Sequence[float]) -> None:
        for t, x, y in zip(times, xs, ys, strict=True):
            nx = self.origin[0] + x + self.rng.gauss(0, self.noise_m)
            ny = self.origin[1] + y + self.rng.gauss(0, self.noise_m)
            lon, lat = self.projection.to_lonlat(np.array([nx]), np.array([ny]))
            self.fixes.append((self.start + timedelta(seconds=t), float(lon[0]), float(lat[0])))

    def walk(
        self, path: LineString, speed_mps: float, pauses: Iterable[tuple[float, float]] = ()
    ) -> Walker:
        """Along `path` (metres) at `speed_mps`, standing still `seconds` at each (metres
        along, seconds) of `pauses`."""
        times, along = [0.0], [0.0]
        for at_m, seconds in sorted(pauses):
            times.append(times[-1] + (at_m - along[-1]) / speed_mps)
            along.append(at_m)
            times.append(times[-1] + seconds)
            along.append(at_m)
        times.append(times[-1] + (path.length - along[-1]) / speed_mps)
        along.append(path.length)
        ticks = np.arange(0.0, times[-1], self.every_s)
        points = shapely.line_interpolate_point(path, np.interp(ticks, times, along))
        xy = shapely.get_coordinates(points)
        self._lay(list(self.clock_s + ticks), list(xy[:, 0]), list(xy[:, 1]))
        self.clock_s += times[-1]
        return self

    def stay(self, point: Point, seconds: float) -> Walker:
        ticks = np.arange(0.0, seconds, self.every_s)
        self._lay(list(self.clock_s + ticks), [point.x] * ticks.size, [point.y] * ticks.size)
        self.clock_s += seconds
        return self

    def silent(self, seconds: float) -> Walker:
        self.clock_s += seconds
        return self


def insert_fixes(
    session: Session,
    crew: Crew,
    fixes: Iterable[tuple[datetime, float, float]],
    device: str = "phone-1",
    acc_m: float | None = ACC_M,
    quarantined: str | None = None,
) -> None:
    """Fixes as the gateway stores them: in `positions`, or quarantined with a reason."""
    rows = [
        {"crew_id": crew.public_id, "device": device, "fix_time": t, "lon": lon, "lat": lat}
        | {"acc_m": acc_m}
        | ({"reason": quarantined} if quarantined else {})
        for t, lon, lat in fixes
    ]
    table = QuarantinedFix if quarantined else Position
    session.execute(insert(table).on_conflict_do_nothing(), rows)


@pytest.fixture
def crew(session: Session) -> Crew:
    return create_crew(session, "Crew verified", skills=["pipe_repair"])


def complete(
    session: Session,
    crew: Crew,
    body: dict[str, Any],
    accepted_at: datetime,
    completed_at: datetime,
    arrived_at: datetime | None = None,
) -> Task:
    """A task created and assigned just before `accepted_at`, accepted, reported on site and
    completed by `crew`."""
    task = create_task(session, body, "dispatcher", accepted_at - timedelta(minutes=5))
    transition(
        session,
        task,
        "assign",
        actor="dispatcher",
        actor_kind="dispatcher",
        at=accepted_at - timedelta(minutes=4),
        crew=crew,
    )
    steps = (
        ("accept", accepted_at),
        ("arrive", arrived_at or accepted_at + timedelta(minutes=1)),
        ("complete", completed_at),
    )
    for action, at in steps:
        transition(session, task, action, actor=crew.public_id, actor_kind="crew", at=at)
    return task


def repair(pipe_id: str) -> dict[str, Any]:
    return {
        "kind": "repair",
        "priority": "P2",
        "source": "plan",
        "assets": [{"layer": "pipes", "id": pipe_id}],
    }


def at_site(task: Task, start: datetime, **options: Any) -> Walker:
    """A walker whose (0, 0) is the task's site."""
    site = to_shape(task.site)
    projection = LocalProjection(site.x, site.y)
    origin = projection.geometry_to_metres(site)
    return Walker(projection, start, origin=(origin.x, origin.y), **options)


def fixture_geometries(layer: str) -> dict[str, Any]:
    """The fixture city's features as written in its file (WGS 84 shapes by public id)."""
    features = json.loads((CITY / f"{layer}.geojson").read_text())["features"]
    return {feature["id"]: shape(feature["geometry"]) for feature in features}


# Three streets of the fixture city that meet at one junction, each listed from the junction
# outwards, and a hydrant on the first street and on the side street (checkpoints).
JUNCTION = "N-000506"
STREET_A = ["P-000549", "P-000539", "P-000490", "P-000474", "P-000456", "P-000454", "P-000414"]
STREET_B = [
    "P-000578", "P-000595", "P-000613", "P-000631", "P-000668", "P-000693", "P-000695", "P-000824",
]  # fmt: skip
SIDE_STREET = [
    "P-000550", "P-000553", "P-000556", "P-000558", "P-000560", "P-000562", "P-000563",
    "P-000564", "P-000565", "P-000566", "P-000569", "P-000570", "P-000571",
]  # fmt: skip
HYDRANT_A, HYDRANT_SIDE = "H-000063", "H-000189"
# Pipes of the side street farther than this from streets A and B are listed on the patrol:
# beyond any fix's reach from them, so that whether each is covered is plain.
CLEAR_M = 45.0


@dataclass
class Patrol:
    task: Task
    side_pipes: list[str]  # the side street's pipes on the patrol
    walker: Walker


def _route(projection: LocalProjection, pipes: Sequence[Any], start: Point) -> list[Any]:
    """The pipes walked one after the other from `start`, each from its nearer end."""
    coords = [(start.x, start.y)]
    for pipe in pipes:
        line = list(projection.geometry_to_metres(pipe).coords)
        here = Point(coords[-1])
        if Point(line[-1]).distance(here) < Point(line[0]).distance(here):
            line.reverse()
        coords += line
    return coords


def patrol(session: Session, crew: Crew, *, skip_side: bool, speed_mps: float = 1.3) -> Patrol:
    """A foot patrol of streets A and B, the side street's clear pipes and both hydrants,
    walked by `crew`: along A to the junction, out and back along the side street (unless
    skipped), then along B, standing a minute at each hydrant on the way."""
    pipes = fixture_geometries("pipes")
    hydrants = fixture_geometries("hydrants")
    junction = fixture_geometries("nodes")[JUNCTION]
    projection = LocalProjection(junction.x, junction.y)
    metres = projection.geometry_to_metres
    walked = shapely.union_all([metres(pipes[p]) for p in STREET_A + STREET_B])
    side = [p for p in SIDE_STREET if metres(pipes[p]).distance(walked) > CLEAR_M]
    assert len(side) >= 5 and metres(hydrants[HYDRANT_SIDE]).distance(walked) > CLEAR_M

    start = metres(junction)
    along_a = _route(projection, [pipes[p] for p in STREET_A], start)[::-1]
    rest = STREET_B if skip_side else SIDE_STREET + SIDE_STREET[::-1] + STREET_B
    path = LineString(along_a + _route(projection, [pipes[p] for p in rest], start)[1:])
    pauses = [(path.project(metres(hydrants[HYDRANT_A])), 60.0)]
    if not skip_side:
        pauses.append((path.project(metres(hydrants[HYDRANT_SIDE])), 60.0))
    walker = Walker(projection, T0 + timedelta(minutes=2), seed=3)
    walker.walk(path, speed_mps, pauses)
    insert_fixes(session, crew, walker.fixes)

    assets = [{"layer": "pipes", "id": p} for p in STREET_A + STREET_B + side]
    assets += [{"layer": "hydrants", "id": h} for h in (HYDRANT_A, HYDRANT_SIDE)]
    body = {"kind": "patrol", "priority": "P3", "source": "plan", "mode": "foot"}
    task = complete(session, crew, body | {"assets": assets}, T0, walker.now + timedelta(minutes=1))
    return Patrol(task, side, walker)
