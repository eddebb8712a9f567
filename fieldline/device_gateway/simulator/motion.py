"""How a simulated crew moves: trips along routes, then a stop on site, then the next trip.

A vehicle keeps below the speed limit (each driver at their own share of it), accelerates and
brakes at bounded rates, and slows for turns so that it reaches a junction no faster than the
turn allows. A walker keeps a steady pace. The state is advanced in steps of at most a second.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely import LineString

from fieldline.device_gateway.simulator.network import Leg, RouteGraph

MAX_STEP_S = 1.0
ACCELERATION_MPS2 = 1.5
BRAKING_MPS2 = 2.0  # planned: comfortable
HARD_BRAKING_MPS2 = 4.0  # what a driver does when the plan ran late
TURN_SPEED_MPS = 4.5  # about 16 km/h through a right-angle turn
STRAIGHT_DEG = 25.0  # a smaller change of direction is not a turn
WALK_TO_SITE_MPS = 1.4  # from where the road is nearest to a site off it, on foot


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    speed_mps: float
    heading_deg: float | None  # None when standing still: a device has no course then


@dataclass(frozen=True)
class Gait:
    """How one crew moves."""

    mode: str  # "drive" | "walk"
    cruise_share: float  # of the speed limit when driving; of 1.5 m/s when walking
    dwell_s: tuple[float, float]  # time on site between trips

    @classmethod
    def for_mode(cls, mode: str, rng: random.Random) -> Gait:
        if mode == "drive":
            return cls(mode, rng.uniform(0.7, 0.95), (60.0, 360.0))
        if mode == "walk":
            return cls(mode, rng.uniform(0.8, 1.0), (20.0, 90.0))
        raise ValueError(f"unknown mode {mode!r}: drive or walk")


class Mover:
    """Follows routes on a graph from one random node to the next, stopping in between."""

    def __init__(self, graph: RouteGraph, gait: Gait, rng: random.Random) -> None:
        self.graph = graph
        self.gait = gait
        self.rng = rng
        self.node = graph.random_node(rng)
        self.legs: list[Leg] = []
        self.leg_index = 0
        self.along_m = 0.0
        self.speed_mps = 0.0
        self.dwell_left_s = rng.uniform(0.0, 30.0)  # crews do not all set off at once
        self.odometer_m = 0.0
        self._x, self._y = graph.node_xy(self.node)
        self._heading: float | None = None
        # Sent somewhere (a job): stand on arrival until released, rather than roam on.
        self.hold = False
        # Standing at a site off the graph: the walk back to `node`, taken first on leaving.
        self.way_back: Leg | None = None

    def pose(self) -> Pose:
        return Pose(self._x, self._y, self.speed_mps, self._heading)

    def advance(self, dt: float) -> None:
        while dt > 1e-9:
            step = min(dt, MAX_STEP_S)
            self._step(step)
            dt -= step

    def _step(self, dt: float) -> None:
        if self.dwell_left_s > 0:
            self.speed_mps = 0.0
            self._heading = None
            self.dwell_left_s -= dt
            if self.dwell_left_s <= 0:
                self.start_trip()
            return
        leg = self.legs[self.leg_index]
        self.speed_mps = self._next_speed(dt)
        self.along_m += self.speed_mps * dt
        self.odometer_m += self.speed_mps * dt
        while self.along_m >= leg.line.length:
            self.along_m -= leg.line.length
            self.leg_index += 1
            if self.leg_index == len(self.legs):
                self._arrive(leg)
                return
            leg = self.legs[self.leg_index]
        self._place(leg)

    def start_trip(self, target: Any = None) -> None:
        """Set off now to `target`, by default a random node."""
        while target is None or target == self.node:
            target = self.graph.random_node(self.rng)
        self.dwell_left_s = 0.0
        self.legs = [*self._leave_site(), *self.graph.route(self.node, target)]
        self.node = target
        self.leg_index = 0
        self.along_m = 0.0

    def go_to(
        self, target: Any, site: tuple[float, float] | None = None, via: Sequence[Any] = ()
    ) -> None:
        """Head for node `target` through the nodes `via` (and from there on foot straight to
        `site`), and stand there until `release()`. On the way somewhere else, the crew turns
        at the next junction."""
        self.hold = True
        self.dwell_left_s = 0.0
        if self.legs:
            kept = self.legs[: self.leg_index + 1]
            if kept[-1].end is None:  # walking to a site: on to it, and back to the vehicle
                kept.append(_walk_back(kept[-1], self.node))
            start = kept[-1].end
        else:
            kept, start = self._leave_site(), self.node
            self.leg_index, self.along_m = 0, 0.0
        legs = list(kept)
        for here, there in itertools.pairwise([start, *via, target]):
            if here != there:
                legs += self.graph.route(here, there)
        if site is not None:
            walk = LineString([self.graph.node_xy(target), site])
            if walk.length > 0.5:
                legs.append(Leg(walk, WALK_TO_SITE_MPS, None))
        self.node = target
        self.legs = legs
        if self.leg_index >= len(legs):  # there already
            self.legs = []
            self.dwell_left_s = math.inf

    def release(self) -> None:
        """Done here (or called off): roam again, after the usual stop on arrival."""
        self.hold = False
        if not self.legs:
            self.dwell_left_s = self.rng.uniform(*self.gait.dwell_s)

    @property
    def standing(self) -> bool:
        """Arrived where `go_to` sent it (and not yet released)."""
        return self.hold and not self.legs

    @property
    def on_last_leg(self) -> bool:
        return bool(self.legs) and self.leg_index == len(self.legs) - 1

    def _leave_site(self) -> list[Leg]:
        back, self.way_back = self.way_back, None
        return [back] if back is not None else []

    def _arrive(self, leg: Leg) -> None:
        end = leg.line.coords[-1]
        self._x, self._y = end[0], end[1]
        self.speed_mps = 0.0
        self._heading = None
        self.legs = []
        if leg.end is None:
            self.way_back = _walk_back(leg, self.node)
        self.dwell_left_s = math.inf if self.hold else self.rng.uniform(*self.gait.dwell_s)

    def _place(self, leg: Leg) -> None:
        point = leg.line.interpolate(self.along_m)
        ahead = leg.line.interpolate(min(self.along_m + 1.0, leg.line.length))
        behind = leg.line.interpolate(max(self.along_m - 1.0, 0.0))
        self._x, self._y = point.x, point.y
        if self.speed_mps > 0:
            self._heading = _bearing(behind.x, behind.y, ahead.x, ahead.y)

    def _next_speed(self, dt: float) -> float:
        if self.gait.mode == "walk":
            pace = 1.2 + 0.3 * self.gait.cruise_share
            return pace * self.rng.uniform(0.95, 1.05)
        leg = self.legs[self.leg_index]
        wanted = leg.limit_mps * self.gait.cruise_share
        # The fastest speed from which the car can still brake to what the coming junctions
        # allow; looking two legs ahead covers short edges between close intersections.
        # Plan from where this step will end, so that a step of a second cannot overshoot.
        distance = max(0.0, leg.line.length - self.along_m - self.speed_mps * dt)
        for index in range(self.leg_index, min(self.leg_index + 3, len(self.legs))):
            allowed_at_end = self._junction_speed(index)
            wanted = min(wanted, math.sqrt(allowed_at_end**2 + 2 * BRAKING_MPS2 * distance))
            if index + 1 < len(self.legs):
                distance += self.legs[index + 1].line.length
        if wanted > self.speed_mps:
            return min(wanted, self.speed_mps + ACCELERATION_MPS2 * dt)
        return max(wanted, self.speed_mps - HARD_BRAKING_MPS2 * dt, 0.5)

    def _junction_speed(self, index: int) -> float:
        """How fast the car may pass the end of leg `index`: stop at the destination, slow
        for a turn, otherwise the lower of the two limits."""
        if index + 1 >= len(self.legs):
            return 0.0
        here, after = self.legs[index], self.legs[index + 1]
        limit = min(here.limit_mps, after.limit_mps) * self.gait.cruise_share
        turn = _turn_deg(here.line, after.line)
        if turn < STRAIGHT_DEG:
            return limit
        return min(limit, TURN_SPEED_MPS * (1.5 if turn < 60 else 1.0))


def _walk_back(walk: Leg, node: Any) -> Leg:
    return Leg(walk.line.reverse(), walk.limit_mps, node)


def _bearing(x0: float, y0: float, x1: float, y1: float) -> float:
    """Degrees clockwise from grid north (close to true north in a local UTM-like CRS)."""
    return math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0


def _turn_deg(first: LineString, second: LineString) -> float:
    a, b = first.coords, second.coords
    into = _bearing(a[-2][0], a[-2][1], a[-1][0], a[-1][1])
    out = _bearing(b[0][0], b[0][1], b[1][0], b[1][1])
    change = abs(into - out) % 360.0
    return min(change, 360.0 - change)
