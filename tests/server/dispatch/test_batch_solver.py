"""The batch-dispatch solver (server/dispatch/batch.py) and its greedy baseline, pure, on small
matrices made here: checked against exhaustive search, the priority and pinning rules, and
limits."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Hashable, Sequence

import pytest

from fieldline.server.dispatch.batch import Crew, Plan, Task, greedy_nearest_first, solve

Matrix = list[list[float | None]]


def plane(points: Sequence[tuple[float, float]], mps: float = 10.0) -> Matrix:
    """Whole seconds of straight travel between points in metres."""
    return [[float(round(math.dist(a, b) / mps)) for b in points] for a in points]


def route_travel(
    route: list[Hashable], start: int, tasks: dict[Hashable, Task], m: Matrix
) -> float:
    total, here = 0.0, start
    for task_id in route:
        leg = m[here][tasks[task_id].location]
        assert leg is not None
        total += leg
        here = tasks[task_id].location
    return total


def check_plan(plan: Plan, crews: list[Crew], tasks: list[Task], m: Matrix) -> None:
    """Every task once, the travel total adds up, limits kept."""
    by_id = {t.id: t for t in tasks}
    planned = [t for route in plan.routes.values() for t in route] + plan.unassigned
    assert sorted(map(str, planned)) == sorted(str(t.id) for t in tasks)
    total = sum(route_travel(plan.routes[c.id], c.location, by_id, m) for c in crews)
    assert plan.travel_s == pytest.approx(total)
    for crew in crews:
        if crew.max_tasks is not None:
            assert len(plan.routes[crew.id]) <= crew.max_tasks
        if crew.shift_s is not None:
            for task_id in plan.routes[crew.id]:
                done = plan.arrival_s[task_id] + by_id[task_id].service_min * 60
                assert done <= crew.shift_s


def brute_force(crews: list[Crew], tasks: list[Task], m: Matrix) -> float:
    """The least total travel over every split of the tasks and every order."""
    best = math.inf
    for owners in itertools.product(range(len(crews)), repeat=len(tasks)):
        total = 0.0
        for c, crew in enumerate(crews):
            mine = [t for t, owner in zip(tasks, owners, strict=True) if owner == c]
            cheapest = math.inf
            for order in itertools.permutations(mine):
                here, travel = crew.location, 0.0
                for task in order:
                    leg = m[here][task.location]
                    assert leg is not None
                    travel += leg
                    here = task.location
                cheapest = min(cheapest, travel)
            total += cheapest
        best = min(best, total)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_small_plans_are_optimal(seed: int) -> None:
    rng = random.Random(seed)
    points = [(rng.uniform(0, 2000), rng.uniform(0, 2000)) for _ in range(8)]
    m = plane(points)
    crews = [Crew("a", 0), Crew("b", 1)]
    tasks = [Task(f"t{i}", 2 + i, 30, 2) for i in range(6)]
    best = brute_force(crews, tasks, m)
    thorough = solve(crews, tasks, m, exploration_level=5)
    check_plan(thorough, crews, tasks, m)
    assert thorough.unassigned == []
    assert thorough.travel_s == pytest.approx(best)
    # The default search is quicker, and close.
    assert solve(crews, tasks, m).travel_s <= 1.05 * best
    assert greedy_nearest_first(crews, tasks, m).travel_s >= best - 1e-9


def test_urgent_tasks_come_first_even_when_others_are_on_the_way() -> None:
    # One crew on a line: a P3 task at 100 m, the P1 task at 1 km, another P3 beyond it.
    m = plane([(0, 0), (100, 0), (1000, 0), (1100, 0)])
    crews = [Crew("a", 0)]
    tasks = [Task("near", 1, 30, 3), Task("urgent", 2, 30, 1), Task("far", 3, 30, 3)]
    plan = solve(crews, tasks, m)
    assert plan.routes["a"] == ["urgent", "far", "near"]  # least travel after the urgent one
    assert plan.arrival_s["urgent"] == 100.0
    assert plan.arrival_s["far"] == 100.0 + 30 * 60 + 10.0


def test_urgent_tasks_are_worked_side_by_side() -> None:
    # Two urgent tasks beside crew a; crew b is 2 km away. Least travel alone would give a
    # both; one goes to b so that neither waits for the other's hour of service.
    m = plane([(0, 0), (2000, 0), (10, 0), (20, 0)])
    crews = [Crew("a", 0), Crew("b", 1)]
    tasks = [Task("u1", 2, 60, 1), Task("u2", 3, 60, 1)]
    plan = solve(crews, tasks, m)
    assert plan.routes == {"a": ["u1"], "b": ["u2"]}
    # Lower priorities go by travel: both to the nearer crew.
    routine = [Task("r1", 2, 60, 2), Task("r2", 3, 60, 2)]
    assert solve(crews, routine, m).routes == {"a": ["r1", "r2"], "b": []}


def test_a_distant_crew_does_not_beat_finishing_next_door_first() -> None:
    # As above, but b is 100 km away (almost 3 hours): a does both, one after the other.
    m = plane([(0, 0), (100_000, 0), (10, 0), (20, 0)])
    crews = [Crew("a", 0), Crew("b", 1)]
    tasks = [Task("u1", 2, 60, 1), Task("u2", 3, 60, 1)]
    plan = solve(crews, tasks, m)
    assert plan.routes == {"a": ["u1", "u2"], "b": []}
    assert plan.arrival_s == {"u1": 1.0, "u2": 1.0 + 3600 + 1.0}


def test_urgent_tasks_go_to_the_crew_that_arrives_first() -> None:
    # a is 90 m from the urgent task but busy for an hour; b is free, 290 s away.
    m = plane([(0, 0), (3000, 0), (100, 0), (10, 0)])
    crews = [Crew("a", 3), Crew("b", 1)]
    tasks = [Task("busy", 3, 60, 2), Task("urgent", 2, 30, 1)]
    plan = solve(crews, tasks, m, pinned={"a": ["busy"]})
    assert plan.routes == {"a": ["busy"], "b": ["urgent"]}
    assert plan.arrival_s["urgent"] == 290.0


def test_urgent_tasks_beyond_the_crews_still_get_one() -> None:
    # Four urgent tasks, two crews, a with room for one task only: b does the other three.
    m = plane([(0, 0), (500, 0), (10, 0), (20, 0), (30, 0), (40, 0)])
    crews = [Crew("a", 0, max_tasks=1), Crew("b", 1)]
    tasks = [Task(f"u{i}", 2 + i, 30, 1) for i in range(4)]
    plan = solve(crews, tasks, m)
    check_plan(plan, crews, tasks, m)
    assert plan.unassigned == []
    assert len(plan.routes["a"]) == 1 and len(plan.routes["b"]) == 3


def test_pinned_tasks_stay_first_with_their_crew() -> None:
    m = plane([(0, 0), (1000, 0), (1000, 10), (5, 0), (995, 0)])
    # Crew a is finishing a low-priority task at 1 km (a minute left); b is 5 m from the origin.
    crews = [Crew("a", 1, max_tasks=2), Crew("b", 3)]
    tasks = [Task("in_progress", 2, 1, 3), Task("p1", 4, 30, 1), Task("p2", 0, 30, 2)]
    plan = solve(crews, tasks, m, pinned={"a": ["in_progress"]})
    check_plan(plan, crews, tasks, m)
    # The urgent task beside a is a's next, after the pinned one (62 s against b's 99 s); a
    # has no room for more, b takes the other.
    assert plan.routes == {"a": ["in_progress", "p1"], "b": ["p2"]}
    greedy = greedy_nearest_first(crews, tasks, m, pinned={"a": ["in_progress"]})
    assert greedy.routes["a"][0] == "in_progress"


def test_limits_leave_tasks_unassigned() -> None:
    m = plane([(0, 0), (10, 0), (20, 0), (30, 0)])
    crews = [Crew("a", 0, max_tasks=2)]
    tasks = [Task(f"t{i}", 1 + i, 30, 2) for i in range(3)]
    for plan in (solve(crews, tasks, m), greedy_nearest_first(crews, tasks, m)):
        check_plan(plan, crews, tasks, m)
        assert plan.routes["a"] == ["t0", "t1"]
        assert plan.unassigned == ["t2"]


@pytest.mark.parametrize("priority", [1, 2])
def test_work_ends_with_the_shift(priority: int) -> None:
    # 45 minutes of shift left: one 30-minute task fits, the second would end after it.
    m = plane([(0, 0), (10, 0), (20, 0), (5000, 0)])
    crews = [Crew("a", 0, shift_s=45 * 60), Crew("b", 3, shift_s=45 * 60)]
    tasks = [Task("t0", 1, 30, priority), Task("t1", 2, 30, priority)]
    for plan in (solve(crews, tasks, m), greedy_nearest_first(crews, tasks, m)):
        check_plan(plan, crews, tasks, m)
        assert plan.routes == {"a": ["t0"], "b": ["t1"]}  # b, 8 minutes away, has the time
    short = [Crew("a", 0, shift_s=45 * 60), Crew("b", 3, shift_s=30 * 60)]
    for plan in (solve(short, tasks, m), greedy_nearest_first(short, tasks, m)):
        check_plan(plan, short, tasks, m)
        assert plan.routes == {"a": ["t0"], "b": []}
        assert plan.unassigned == ["t1"]


@pytest.mark.parametrize("priority", [1, 2])
def test_a_task_no_crew_can_reach_is_unassigned(priority: int) -> None:
    m = plane([(0, 0), (100, 0), (200, 0)])
    for row in m:
        row[2] = None  # no way to the last location
    m[2][2] = 0.0
    crews = [Crew("a", 0)]
    tasks = [Task("ok", 1, 30, 3), Task("island", 2, 30, priority)]
    for plan in (solve(crews, tasks, m), greedy_nearest_first(crews, tasks, m)):
        assert plan.routes == {"a": ["ok"]}
        assert plan.unassigned == ["island"]
        assert plan.travel_s == 10.0


def test_greedy_takes_the_earliest_arrival_each_time() -> None:
    # a at 0, b at 1000 m; tasks at 100, 900 and 1200 m, 10 m/s, 10 min each.
    m = plane([(0, 0), (1000, 0), (100, 0), (900, 0), (1200, 0)])
    crews = [Crew("a", 0), Crew("b", 1)]
    tasks = [Task("x", 2, 10, 2), Task("y", 3, 10, 2), Task("z", 4, 10, 2)]
    plan = greedy_nearest_first(crews, tasks, m)
    # a reaches x and b reaches y at 10 s (the tie goes to the first crew, a with x); then
    # b is free at 610 s at 900 m, 30 s from z: 640 s, before a (free at 610 s, 110 s away).
    assert plan.routes == {"a": ["x"], "b": ["y", "z"]}
    assert plan.arrival_s == {"x": 10.0, "y": 10.0, "z": 640.0}


@pytest.mark.parametrize("seed", range(3))
def test_priorities_never_invert_and_the_solver_beats_greedy(seed: int) -> None:
    rng = random.Random(100 + seed)
    points = [(rng.uniform(0, 4000), rng.uniform(0, 4000)) for _ in range(70)]
    m = plane(points)
    crews = [Crew(f"c{i}", i, max_tasks=8, shift_s=5 * 3600) for i in range(10)]
    tasks = [
        Task(f"t{i}", 10 + i, rng.choice([15, 30, 60]), rng.choice([1, 2, 2, 3, 3, 4]))
        for i in range(60)
    ]
    priority = {t.id: t.priority for t in tasks}
    plans = [solve(crews, tasks, m), greedy_nearest_first(crews, tasks, m)]
    for plan in plans:
        check_plan(plan, crews, tasks, m)
        assert plan.unassigned == []
        for route in plan.routes.values():
            assert [priority[t] for t in route] == sorted(priority[t] for t in route)
    assert plans[0].travel_s < 0.85 * plans[1].travel_s


def test_bad_input_is_refused() -> None:
    m = plane([(0, 0), (10, 0)])
    crews = [Crew("a", 0)]
    tasks = [Task("t", 1, 30, 1)]
    with pytest.raises(ValueError, match="unknown task"):
        solve(crews, tasks, m, pinned={"a": ["nope"]})
    with pytest.raises(ValueError, match="unknown crew"):
        solve(crews, tasks, m, pinned={"z": ["t"]})
    with pytest.raises(ValueError, match="not in the matrix"):
        solve(crews, [Task("t", 5, 30, 1)], m)
    with pytest.raises(ValueError, match="square"):
        greedy_nearest_first(crews, tasks, [[0.0, 1.0]])
    with pytest.raises(ValueError, match="unique"):
        solve(crews, [tasks[0], tasks[0]], m)
    with pytest.raises(ValueError, match="seconds"):
        solve(crews, tasks, [[0.0, -1.0], [1.0, 0.0]])
