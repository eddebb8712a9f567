"""Batch dispatch: which crew does which open task, and in what order. Pure: crews, tasks and
a travel-time matrix in, routes out; no database, no clock.

The objective, in order:

1. Priority first. Tasks are planned one priority class at a time (1 most urgent), each crew
   going on from where its previous class left it, so every crew serves all its priority-1
   tasks before any priority-2 task, and so on. Tasks in progress (`pinned`) come before all
   of them, in the order given, with the crew they are pinned to.
2. Urgent tasks (priority 1) by arrival time: what counts for a burst main is how soon a
   crew is there, counting the time it is still busy (pinned work, service) and not only its
   travel. They are given out in rounds, each crew taking at most one task per round: the
   round is a linear assignment (scipy) minimising the sum of arrival times, so urgent tasks
   are worked side by side; a task is held back to a later round when a crew given another
   urgent task in this round would, going on from it, still arrive sooner than the crew the
   round offers (a distant crew does not beat finishing next door first).
3. Least travel for the other classes. VROOM (a vehicle routing solver: construction
   heuristics and local search) minimises the sum of travel seconds, each crew starting
   where and when its earlier tasks leave it and ending at its last task, taking at most
   `max_tasks` tasks in all (pinned ones count) and finishing by the end of its shift.
   Nothing else balances the work: without limits the nearest crews take whole clusters.

Tasks no crew can take (out of room, or no way by road to them) are returned unassigned.
Unreachable legs (None or infinite in the matrix) cost the solver a prohibitive time, so they
are used only when nothing else fits; a task planned through one is left unassigned.

`greedy_nearest_first` is the baseline: repeatedly the (crew, task) pair with the earliest
arrival (the crew's time free plus travel) is chosen, and the crew moves to that task, its
time free going on by the travel and the service; same priority classes and limits.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import vroom
from scipy.optimize import linear_sum_assignment

URGENT = 1  # the priority whose tasks are planned by arrival time
# Seconds the solver is charged for a leg with no way by road (about four months): far more
# than any real plan, well inside VROOM's integer costs.
_UNREACHABLE_S = 10_000_000
_NO_WAY = 1e15  # the same for the assignment of urgent tasks (which takes floats)


@dataclass(frozen=True)
class Crew:
    id: Hashable
    location: int  # index into the travel matrix: where the crew is now
    max_tasks: int | None = None  # tasks in all, pinned ones included; None: no limit
    # Seconds from now until the end of the crew's shift: every task it is given must be done
    # (travel and service) by then; None: no limit. Pinned tasks are kept regardless.
    shift_s: float | None = None


@dataclass(frozen=True)
class Task:
    id: Hashable
    location: int  # index into the travel matrix
    service_min: float
    priority: int  # 1 most urgent


@dataclass(frozen=True)
class Plan:
    routes: dict[Hashable, list[Hashable]]  # crew id -> task ids in the order to do them
    travel_s: float  # total travel of all crews
    unassigned: list[Hashable]
    # Seconds from now until the crew reaches each task: travel plus service of those before.
    arrival_s: dict[Hashable, float] = field(default_factory=dict)


def solve(
    crews: Sequence[Crew],
    tasks: Sequence[Task],
    travel_s: Sequence[Sequence[float | None]],
    pinned: Mapping[Hashable, Sequence[Hashable]] | None = None,
    *,
    # VROOM's search effort, 0-5. On 300 tasks and 60 crews (bench/bench_dispatch.py) 2 took
    # 2.6 s and 5 took 21 s for 0.5 % less travel.
    exploration_level: int = 2,
    threads: int = 2,
) -> Plan:
    """Routes for the crews (see the module's objective); `travel_s[a][b]` is the travel time
    from location a to location b, None where there is no way."""
    problem = _Problem(crews, tasks, travel_s, pinned or {})
    open_tasks = problem.open_tasks()
    durations = np.where(np.isfinite(problem.matrix), np.rint(problem.matrix), _UNREACHABLE_S)
    durations = np.minimum(durations, _UNREACHABLE_S).astype(np.uint32)
    for priority in sorted({tasks[t].priority for t in open_tasks}):
        in_class = [t for t in open_tasks if tasks[t].priority == priority]
        if priority == URGENT:
            left = _urgent_rounds(problem, in_class)
        else:
            left = _vroom_round(problem, in_class, durations, exploration_level, threads)
        problem.unassigned.extend(left)
    return problem.plan()


def greedy_nearest_first(
    crews: Sequence[Crew],
    tasks: Sequence[Task],
    travel_s: Sequence[Sequence[float | None]],
    pinned: Mapping[Hashable, Sequence[Hashable]] | None = None,
) -> Plan:
    """The baseline: the earliest arrival first, one task at a time (see the module)."""
    problem = _Problem(crews, tasks, travel_s, pinned or {})
    open_tasks = problem.open_tasks()
    for priority in sorted({tasks[t].priority for t in open_tasks}):
        left = [t for t in open_tasks if tasks[t].priority == priority]
        while left:
            room = problem.crews_with_room()
            if not room:
                break
            arrival = problem.arrivals(room, left)
            best = np.unravel_index(np.argmin(arrival), arrival.shape)
            if not np.isfinite(arrival[best]):
                break
            problem.assign(room[int(best[0])], left.pop(int(best[1])))
        problem.unassigned.extend(left)
    return problem.plan()


class _Problem:
    """The input checked, and each crew's route as it grows (crews and tasks by index)."""

    def __init__(
        self,
        crews: Sequence[Crew],
        tasks: Sequence[Task],
        travel_s: Sequence[Sequence[float | None]],
        pinned: Mapping[Hashable, Sequence[Hashable]],
    ) -> None:
        self.crews, self.tasks = list(crews), list(tasks)
        self.matrix = _matrix(travel_s)
        _check(self.crews, self.tasks, len(self.matrix), pinned)
        self.routes: list[list[int]] = [[] for _ in crews]
        self.location = [crew.location for crew in crews]
        self.free_s = [0.0] * len(crews)  # when each crew will have done its route so far
        self.unassigned: list[int] = []
        task_index = {task.id: t for t, task in enumerate(tasks)}
        crew_index = {crew.id: c for c, crew in enumerate(crews)}
        for crew_id, task_ids in pinned.items():
            for task_id in task_ids:
                self.assign(crew_index[crew_id], task_index[task_id])

    def open_tasks(self) -> list[int]:
        taken = {t for route in self.routes for t in route}
        return [t for t in range(len(self.tasks)) if t not in taken]

    def room(self, c: int) -> int | None:
        """Tasks crew `c` may still take; None: no limit."""
        limit = self.crews[c].max_tasks
        return None if limit is None else max(0, limit - len(self.routes[c]))

    def crews_with_room(self) -> list[int]:
        return [c for c in range(len(self.crews)) if self.room(c) != 0]

    def arrivals(self, crews: Sequence[int], tasks: Sequence[int]) -> np.ndarray:
        """When each crew would reach each task next: `[crew][task]`, infinite where there
        is no way or the task would end after the crew's shift."""
        free = np.array([self.free_s[c] for c in crews])[:, None]
        travel = self.matrix[
            np.ix_([self.location[c] for c in crews], [self.tasks[t].location for t in tasks])
        ]
        service = np.array([self.tasks[t].service_min * 60 for t in tasks])[None, :]
        shift_end = np.array(
            [math.inf if (end := self.crews[c].shift_s) is None else end for c in crews]
        )[:, None]
        arrival = free + travel
        return np.where(arrival + service <= shift_end, arrival, math.inf)

    def assign(self, c: int, t: int) -> None:
        task = self.tasks[t]
        self.free_s[c] += self.matrix[self.location[c], task.location] + task.service_min * 60
        self.location[c] = task.location
        self.routes[c].append(t)

    def plan(self) -> Plan:
        routes: dict[Hashable, list[Hashable]] = {}
        arrival_s: dict[Hashable, float] = {}
        unassigned = [self.tasks[t].id for t in self.unassigned]
        total = 0.0
        for crew, route in zip(self.crews, self.routes, strict=True):
            here, clock, kept = crew.location, 0.0, []
            for t in route:
                task = self.tasks[t]
                leg = self.matrix[here, task.location]
                if not math.isfinite(leg):  # planned through a leg with no way: not doable
                    unassigned.append(task.id)
                    continue
                total += leg
                clock += leg
                arrival_s[task.id] = clock
                clock += task.service_min * 60
                here = task.location
                kept.append(task.id)
            routes[crew.id] = kept
        return Plan(routes, total, unassigned, arrival_s)


def _urgent_rounds(problem: _Problem, task_indices: Sequence[int]) -> list[int]:
    """Plan urgent tasks by arrival time, one per crew per round; returns those left over."""
    left = list(task_indices)
    while left and (crews := problem.crews_with_room()):
        arrival = problem.arrivals(crews, left)
        rows, columns = linear_sum_assignment(np.where(np.isfinite(arrival), arrival, _NO_WAY))
        pairs = [(r, k) for r, k in zip(rows, columns, strict=True) if np.isfinite(arrival[r, k])]
        if not pairs:
            break
        given: list[int] = []  # crews given a task in this round so far, soonest first
        taken = []
        for r, k in sorted(pairs, key=lambda pair: arrival[pair]):
            if given and problem.arrivals(given, [left[k]]).min() < arrival[r, k]:
                continue  # a crew finishing next door first gets there sooner: next round
            problem.assign(crews[r], left[k])
            given.append(crews[r])
            taken.append(k)
        left = [t for k, t in enumerate(left) if k not in taken]
    return left


def _vroom_round(
    problem: _Problem,
    task_indices: Sequence[int],
    durations: np.ndarray,
    exploration_level: int,
    threads: int,
) -> list[int]:
    """Plan `task_indices` onto the crews' routes with VROOM; returns those left over."""
    crews = problem.crews_with_room()
    if not crews or not task_indices:
        return list(task_indices)
    model = vroom.Input()
    model.set_durations_matrix(profile="car", matrix_input=durations)
    for c in crews:
        room, shift_end = problem.room(c), problem.crews[c].shift_s
        extra: dict[str, object] = {} if room is None else {"max_tasks": room}
        if shift_end is not None:  # from when the crew is free to the end of its shift
            start = math.ceil(problem.free_s[c])
            extra["time_window"] = vroom.TimeWindow(start, max(start, math.floor(shift_end)))
        model.add_vehicle(vroom.Vehicle(c, start=problem.location[c], profile="car", **extra))
    model.add_job(
        [
            vroom.Job(
                t,
                location=problem.tasks[t].location,
                default_service=round(problem.tasks[t].service_min * 60),
            )
            for t in task_indices
        ]
    )
    steps = model.solve(exploration_level=exploration_level, nb_threads=threads).routes
    if steps.empty or "id" not in steps:  # no route at all: every task is left over
        return list(task_indices)
    jobs = steps[steps["type"] == "job"]
    done = set()
    # Rows come in route order, vehicle after vehicle.
    for crew, task in zip(jobs["vehicle_id"].tolist(), jobs["id"].tolist(), strict=True):
        c, t = int(crew), int(task)
        # Planned through a leg with no way, or past the shift by rounding: left over.
        if math.isfinite(problem.arrivals([c], [t])[0, 0]):
            problem.assign(c, t)
            done.add(t)
    return [t for t in task_indices if t not in done]


def _matrix(travel_s: Sequence[Sequence[float | None]]) -> np.ndarray:
    size = len(travel_s)
    if any(len(row) != size for row in travel_s):
        raise ValueError("the travel matrix must be square")
    matrix = np.array(
        [[math.inf if v is None else float(v) for v in row] for row in travel_s], dtype=float
    ).reshape(size, size)
    if np.isnan(matrix).any() or (matrix < 0).any():
        raise ValueError("travel times must be numbers of seconds, zero or more")
    return matrix


def _check(
    crews: Sequence[Crew],
    tasks: Sequence[Task],
    locations: int,
    pinned: Mapping[Hashable, Sequence[Hashable]],
) -> None:
    for kind, ids in (("crew", [c.id for c in crews]), ("task", [t.id for t in tasks])):
        if len(set(ids)) != len(ids):
            raise ValueError(f"{kind} ids must be unique")
    for crew in crews:
        if not 0 <= crew.location < locations:
            raise ValueError(f"crew {crew.id!r}: location {crew.location} is not in the matrix")
        if crew.max_tasks is not None and crew.max_tasks < 0:
            raise ValueError(f"crew {crew.id!r}: max_tasks must be 0 or more")
    for crew in crews:
        if crew.shift_s is not None and not crew.shift_s >= 0:
            raise ValueError(f"crew {crew.id!r}: shift_s must be 0 or more")
    for task in tasks:
        if not 0 <= task.location < locations:
            raise ValueError(f"task {task.id!r}: location {task.location} is not in the matrix")
        if not (math.isfinite(task.service_min) and task.service_min >= 0):
            raise ValueError(f"task {task.id!r}: service_min must be 0 or more")
        if task.priority < 1:
            raise ValueError(f"task {task.id!r}: priority must be 1 or more")
    crew_ids, task_ids = {c.id for c in crews}, {t.id for t in tasks}
    seen: set[Hashable] = set()
    for crew_id, pinned_ids in pinned.items():
        if crew_id not in crew_ids:
            raise ValueError(f"pinned: unknown crew {crew_id!r}")
        for task_id in pinned_ids:
            if task_id not in task_ids:
                raise ValueError(f"pinned: unknown task {task_id!r}")
            if task_id in seen:
                raise ValueError(f"pinned: task {task_id!r} is pinned twice")
            seen.add(task_id)
