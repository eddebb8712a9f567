"""A simulated crew's work: the jobs its handheld receives on the inbox topic, one at a time.

An offer (`task.assigned`) is accepted after a short human delay, or, for a configurable share,
left unanswered so that it times out on the server and goes to another crew. Accepted jobs
wait in a queue, most urgent first. For each job the crew gets ready, reports `en_route`,
drives (or walks) the road route to the first stop, reports `on_site` within
ARRIVAL_RADIUS_M of it, works each stop for the kind's usual time (a repair's site, each meter
of a reading round, the checkpoints of a patrol, which follows its pipes in between), reports
`completed` and takes the next job, or roams again. `task.cancelled`, `task.transferred` and
`task.withdrawn` drop the job wherever it is; `task.reopened` brings it back as a new offer.

Reaction and work times are divided by `WorkPace.speed`; travel is not, so that traces keep to
the roads and their speed limits (the gateway's filters and the proof of work read them).
"""

from __future__ import annotations

import json
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shapely import Point

from fieldline.device_gateway.simulator.motion import Mover
from fieldline.device_gateway.simulator.network import RouteGraph
from fieldline.gis.crs import Crs, from_wgs84

# Minutes of work per stop: a repair's site, a valve, an inspected asset, one meter, one
# checkpoint of a patrol.
WORK_MINUTES = {
    "repair": (30.0, 90.0),
    "inspection": (10.0, 20.0),
    "valve_operation": (10.0, 30.0),
    "meter_reading": (2.0, 5.0),
    "patrol": (1.0, 3.0),
}
ACCEPT_DELAY_S = (15.0, 90.0)  # reading the offer on the handheld and tapping "accept"
SET_OFF_DELAY_S = (30.0, 180.0)  # packing up before driving off
ARRIVAL_RADIUS_M = 20.0
PRIORITY_ORDER = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
SEEN_MESSAGES = 1000  # message ids remembered to drop QoS 1 repeats
# Waypoints along a patrolled pipe: its ends, and one every this many metres in between.
PATROL_WAYPOINT_M = 150.0


@dataclass(frozen=True)
class WorkPace:
    """How fast the crews work (`speed` divides reaction and work times) and how often they
    leave an offer unanswered."""

    speed: float = 1.0
    decline_share: float = 0.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError("speed must be positive")
        if not 0.0 <= self.decline_share <= 1.0:
            raise ValueError("decline_share must be between 0 and 1")

    def delay(self, rng: random.Random, seconds: tuple[float, float]) -> timedelta:
        return timedelta(seconds=rng.uniform(*seconds) / self.speed)

    def work_s(self, rng: random.Random, kind: str) -> float:
        low, high = WORK_MINUTES[kind]
        return rng.uniform(low, high) * 60.0 / self.speed


@dataclass(frozen=True)
class Stop:
    """A place the crew must reach, with what it passes on the way there."""

    x: float
    y: float
    node: Any  # where the crew leaves its graph for the place
    work_s: float  # 0: reach it and go on
    via: tuple[Any, ...] = ()  # nodes to pass on the way (a patrolled pipe)


@dataclass
class Job:
    task_id: str
    kind: str
    priority: str
    stops: list[Stop]
    received: int  # order of arrival, among jobs of one priority

    @property
    def rank(self) -> tuple[int, int]:
        return PRIORITY_ORDER.get(self.priority, len(PRIORITY_ORDER)), self.received


@dataclass(frozen=True)
class Report:
    """A status for the crew's handheld to send."""

    task_id: str
    status: str  # accepted | en_route | on_site | completed
    note: str | None = None


def read_message(payload: bytes) -> dict[str, Any] | None:
    """An inbox message as a JSON object with a `kind`, or None for anything else."""
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        return None
    return message


class StopPlanner:
    """Turns a task as the handheld receives it into stops on the crew's graph."""

    def __init__(self, graph: RouteGraph, pipes: RouteGraph, crs: Crs) -> None:
        self.graph = graph  # the one the crew moves on
        self.pipes = pipes  # for the lines of patrolled pipes
        self.crs = crs

    def stops(self, task: dict[str, Any], rng: random.Random, pace: WorkPace) -> list[Stop]:
        kind = task.get("kind")
        if kind not in WORK_MINUTES:
            return []
        assets = [a for a in task.get("assets") or [] if isinstance(a, dict)]
        if kind == "patrol":
            return self._patrol(assets, rng, pace)
        if kind == "meter_reading":
            places = self._places(assets, "meter")
        elif kind == "inspection":
            places = self._places(assets, "target") or self._places([task.get("site")], None)
        else:  # a repair or a valve: one place, the site (which may say where on the asset)
            places = self._places([task.get("site")], None) or self._places(assets, "target")[:1]
        return [self._stop(x, y, pace.work_s(rng, kind)) for x, y in places]

    def _patrol(
        self, assets: list[dict[str, Any]], rng: random.Random, pace: WorkPace
    ) -> list[Stop]:
        """Along the pipes in the planner's order; each checkpoint is visited when the way
        passes nearest to it. The first waypoint is a stop of its own: the patrol's start."""
        waypoints = [
            xy for asset in assets if asset.get("role") == "pipe" for xy in self._along(asset)
        ]
        checkpoints = self._places(assets, "checkpoint")
        if not waypoints:
            return [self._stop(x, y, pace.work_s(rng, "patrol")) for x, y in checkpoints]
        after: dict[int, list[tuple[float, float]]] = {}
        for x, y in checkpoints:
            nearest = min(range(len(waypoints)), key=lambda i: math.dist(waypoints[i], (x, y)))
            after.setdefault(nearest, []).append((x, y))
        stops = [self._stop(*waypoints[0], 0.0)]
        via: list[Any] = []
        for index, (x, y) in enumerate(waypoints):
            if index:
                via.append(self.graph.nearest_node(x, y))
            for cx, cy in after.get(index, []):
                stops.append(self._stop(cx, cy, pace.work_s(rng, "patrol"), tuple(via)))
                via = []
        if via:
            x, y = waypoints[-1]
            stops.append(self._stop(x, y, 0.0, tuple(via[:-1])))
        return stops

    def _along(self, asset: dict[str, Any]) -> list[tuple[float, float]]:
        line = self.pipes.pipe_lines.get(str(asset.get("id")))
        if line is None:  # a pipe this simulation does not know: its middle, as sent
            return self._places([asset], None)
        parts = max(1, math.ceil(line.length / PATROL_WAYPOINT_M))
        points = [line.interpolate(i / parts, normalized=True) for i in range(parts + 1)]
        return [(point.x, point.y) for point in points]

    def _places(self, items: list[Any], role: str | None) -> list[tuple[float, float]]:
        """Projected positions of items that carry lon/lat (of the given asset role)."""
        places = []
        for item in items:
            if not isinstance(item, dict) or (role is not None and item.get("role") != role):
                continue
            lon, lat = item.get("lon"), item.get("lat")
            if isinstance(lon, int | float) and isinstance(lat, int | float):
                point = from_wgs84(Point(lon, lat), self.crs)
                assert isinstance(point, Point)
                places.append((point.x, point.y))
        return places

    def _stop(self, x: float, y: float, work_s: float, via: tuple[Any, ...] = ()) -> Stop:
        return Stop(x, y, self.graph.nearest_node(x, y), work_s, via)


@dataclass
class _Offer:
    job: Job
    answer_at: datetime


@dataclass
class JobDesk:
    """The state machine of one crew's jobs: `receive` what the inbox brings, `update` as
    time passes and the crew moves; each returns the statuses to send."""

    mover: Mover
    planner: StopPlanner
    pace: WorkPace
    rng: random.Random
    offers: list[_Offer] = field(default_factory=list)
    queue: list[Job] = field(default_factory=list)
    current: Job | None = None
    phase: str = "idle"  # idle | preparing | travelling | working
    stop_index: int = 0
    due_at: datetime | None = None  # when preparing or working at a stop ends
    arrived: bool = False  # on_site was reported for the current job
    _received: int = 0
    _seen: deque[str] = field(default_factory=lambda: deque(maxlen=SEEN_MESSAGES))

    def receive(self, message: dict[str, Any], now: datetime) -> None:
        message_id = message.get("message_id")
        if isinstance(message_id, str):
            if message_id in self._seen:
                return  # QoS 1 delivered it twice
            self._seen.append(message_id)
        kind = message["kind"]
        task: dict[str, Any] = message.get("task") or {}
        if not isinstance(task, dict):
            return
        task_id = str(message.get("task_id") or task.get("id") or "")
        if not task_id:
            return
        if kind in ("task.assigned", "task.reopened"):
            self._offered(task_id, task, now)
        elif kind in ("task.cancelled", "task.transferred", "task.withdrawn"):
            self._drop(task_id, now)
        elif kind == "task.changed":
            for job in self._held():
                if job.task_id == task_id and task.get("priority") in PRIORITY_ORDER:
                    job.priority = task["priority"]
            self.queue.sort(key=lambda job: job.rank)

    def _held(self) -> list[Job]:
        current = [self.current] if self.current else []
        return [*current, *self.queue, *(offer.job for offer in self.offers)]

    def _offered(self, task_id: str, task: dict[str, Any], now: datetime) -> None:
        if any(job.task_id == task_id for job in self._held()):
            return
        if self.rng.random() < self.pace.decline_share:
            return  # left unanswered: the offer times out and goes to another crew
        stops = self.planner.stops(task, self.rng, self.pace)
        if not stops:
            return  # nowhere to go: the dispatcher sees the offer time out
        self._received += 1
        job = Job(task_id, str(task.get("kind")), str(task.get("priority")), stops, self._received)
        self.offers.append(_Offer(job, now + self.pace.delay(self.rng, ACCEPT_DELAY_S)))

    def _drop(self, task_id: str, now: datetime) -> None:
        self.offers = [offer for offer in self.offers if offer.job.task_id != task_id]
        self.queue = [job for job in self.queue if job.task_id != task_id]
        if self.current is not None and self.current.task_id == task_id:
            self.current = None
            self._next_job(now)

    def update(self, now: datetime) -> list[Report]:
        reports: list[Report] = []
        for offer in [offer for offer in self.offers if offer.answer_at <= now]:
            self.offers.remove(offer)
            self.queue.append(offer.job)
            reports.append(Report(offer.job.task_id, "accepted"))
        self.queue.sort(key=lambda job: job.rank)
        if self.current is None:
            self._next_job(now)
        if self.current is not None:
            reports += self._progress(self.current, now)
        return reports

    @property
    def wake_at(self) -> datetime | None:
        """When something is next due without the crew moving: an answer to an offer, the
        end of preparing or of work at a stop. Arrival is checked as the crew moves."""
        times = [offer.answer_at for offer in self.offers]
        if self.phase in ("preparing", "working") and self.due_at is not None:
            times.append(self.due_at)
        return min(times, default=None)

    def _next_job(self, now: datetime) -> None:
        if not self.queue:
            if self.phase != "idle":
                self.mover.release()
            self.phase = "idle"
            return
        self.current = self.queue.pop(0)
        self.phase, self.stop_index, self.arrived = "preparing", 0, False
        self.due_at = now + self.pace.delay(self.rng, SET_OFF_DELAY_S)

    def _progress(self, job: Job, now: datetime) -> list[Report]:
        reports = []
        if self.phase == "preparing" and self.due_at is not None and now >= self.due_at:
            reports.append(Report(job.task_id, "en_route"))
            self._travel(job.stops[0])
        stop = job.stops[self.stop_index]
        if self.phase == "travelling" and self._reached(stop):
            if not self.arrived:
                self.arrived = True
                reports.append(Report(job.task_id, "on_site"))
            self.phase = "working"
            self.due_at = now + timedelta(seconds=stop.work_s)
        if self.phase == "working" and self.due_at is not None and now >= self.due_at:
            self.stop_index += 1
            if self.stop_index < len(job.stops):
                self._travel(job.stops[self.stop_index])
            else:
                reports.append(Report(job.task_id, "completed", _summary(job)))
                self.current = None
                self._next_job(now)
        return reports

    def _travel(self, stop: Stop) -> None:
        self.phase, self.due_at = "travelling", None
        self.mover.go_to(stop.node, (stop.x, stop.y), via=stop.via)

    def _reached(self, stop: Stop) -> bool:
        pose = self.mover.pose()
        near = math.dist((pose.x, pose.y), (stop.x, stop.y)) <= ARRIVAL_RADIUS_M
        # Near counts only on the final leg: a route may pass close by earlier (a one-way
        # street around the block, a patrol coming back along its pipes).
        return self.mover.standing or (near and self.mover.on_last_leg)


def _summary(job: Job) -> str:
    worked = sum(1 for stop in job.stops if stop.work_s > 0)
    if job.kind == "meter_reading":
        return f"{worked} meter(s) read"
    if job.kind == "patrol":
        return f"patrol done, {worked} checkpoint(s) checked"
    return f"{job.kind.replace('_', ' ')} done"
