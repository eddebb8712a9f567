"""Sending crews to tasks: candidates by road, assignment with its ETA, offers that time out
and go to the next crew, auto-dispatch of urgent tasks, and batch plans for many tasks.

Every change of a task goes through the tasks service's `transition`, so the state machine,
the history, the live stream and the crews' inboxes stay the tasks domain's business. What
this module adds is the choice of crew. Callers commit, then publish the recorded task events
(`tasks.services.announce`); dispatch warnings (no crew for an urgent task) go out on the live
stream after the commit too, never for a change that was rolled back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy import event as orm_event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fieldline.gis import routing
from fieldline.gis.errors import Conflict, GisError, InvalidField
from fieldline.gis.routing import Leg, RoutePath
from fieldline.server.crews.models import Crew, CrewShift
from fieldline.server.crews.services import CrewState, roster
from fieldline.server.dispatch import batch
from fieldline.server.dispatch.candidates import (
    Candidate,
    Ranking,
    Travel,
    candidates,
    task_site,
)
from fieldline.server.live.services import Live
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.models import PRIORITIES, Task, TaskTransition
from fieldline.server.tasks.services import active_task_counts, get_task, transition
from fieldline.server.tasks.states import ACTIVE_STATES, next_state
from fieldline.settings import Settings, get_settings

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
AUTO_DISPATCH_ACTOR = "auto-dispatch"
OFFER_TIMED_OUT = "offer timed out"
# At most this many expired offers are handled per run; the rest wait for the next one.
EXPIRE_BATCH = 200
_WARNINGS_KEY = "fieldline_dispatch_warnings"

Latest = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Assignment:
    task: Task
    step: TaskTransition
    crew: CrewState
    leg: Leg | None  # None: the crew has no known position, or cannot reach the site
    eta: datetime | None


# --- where the crews are ------------------------------------------------------------------


@lru_cache(maxsize=4)
def _live_for(url: str, prefix: str) -> Live:
    return Live.from_url(url, prefix)


def process_live(settings: Settings) -> Live:
    """The process's Redis client for live data (latest fixes, the live stream)."""
    return _live_for(settings.redis_url, settings.redis_prefix)


def crew_states(
    session: Session,
    latest: Latest,
    now: datetime,
    settings: Settings,
    public_ids: Collection[str] | None = None,
) -> list[CrewState]:
    """Every crew (of `public_ids`, when given) and what it is doing at `now` (busy: it has
    tasks offered or in hand)."""
    return roster(
        session,
        latest,
        now,
        active_task_counts(session, public_ids),
        stale_after_s=settings.crew_stale_after_s,
        public_ids=public_ids,
    )


def _travel(settings: Settings) -> Travel:
    return partial(routing.travel_to, settings=settings)


# --- candidates ---------------------------------------------------------------------------


def task_candidates(
    session: Session,
    task_id: str,
    now: datetime,
    *,
    latest: Latest,
    limit: int,
    include_busy: bool = False,
    settings: Settings | None = None,
    travel: Travel | None = None,
) -> tuple[Task, Ranking]:
    """The crews that could take the task now, best first (see `candidates`)."""
    settings = settings or get_settings()
    task = get_task(session, task_id)
    crews = crew_states(session, latest, now, settings)
    ranking = candidates(
        session,
        session.connection(),
        task,
        crews,
        now,
        limit,
        include_busy=include_busy,
        travel=travel or _travel(settings),
    )
    return task, ranking


def _eta_json(leg: Leg | None, eta: datetime | None) -> dict[str, Any] | None:
    if leg is None or eta is None:
        return None
    return {
        "seconds": round(leg.seconds, 1),
        "at": eta.isoformat(),
        "distance_m": round(leg.metres, 1),
        "by_road": leg.by_road,
    }


def candidate_json(candidate: Candidate, now: datetime) -> dict[str, Any]:
    crew = candidate.crew
    position = crew.position or (None, None)
    return {
        "crew_id": crew.public_id,
        "name": crew.name,
        "mode": crew.mode,
        "status": crew.status,
        "skills": list(crew.skills),
        "eta_s": round(candidate.leg.seconds, 1),
        "eta_at": candidate.eta.isoformat(),
        "distance_m": round(candidate.leg.metres, 1),
        "by_road": candidate.leg.by_road,
        "position": {
            "lon": position[0],
            "lat": position[1],
            "time": crew.position_time.isoformat() if crew.position_time else None,
            "age_s": _rounded(candidate.position_age_s(now)),
            "source": "fix" if crew.position_time else "depot",
        },
    }


def ranking_json(task: Task, ranking: Ranking, now: datetime, include_busy: bool) -> dict[str, Any]:
    return {
        "task_id": task.public_id,
        "site": {"lon": ranking.site[0], "lat": ranking.site[1]},
        "ranking": ranking.method,
        "include_busy": include_busy,
        "at": now.isoformat(),
        "ranked": ranking.ranked,
        "candidates": [candidate_json(c, now) for c in ranking.candidates],
        "excluded": ranking.excluded,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- assigning ----------------------------------------------------------------------------


def eta_note(leg: Leg, eta: datetime) -> str:
    """The ETA as the transition records it (and the customer's assigned notice can use)."""
    how = "by road" if leg.by_road else "straight-line estimate"
    return f"ETA {eta.isoformat()} ({leg.seconds / 60:.0f} min, {leg.metres:.0f} m {how})"


def assign(
    session: Session,
    task_id: str,
    crew_id: str,
    *,
    actor: str,
    now: datetime,
    latest: Latest,
    settings: Settings | None = None,
    travel: Travel | None = None,
) -> Assignment:
    """Offer the task to the crew: `assign` when it is with nobody, `transfer` when another
    crew has it. The crew must have the task's skills; the offer carries the crew's ETA from
    where it is now. An illegal step is IllegalTransition (409 naming the state)."""
    settings = settings or get_settings()
    task = get_task(session, task_id)
    # That one crew's state: the whole roster costs seconds at 10,000 crews.
    states = crew_states(session, latest, now, settings, [crew_id])
    if not states:
        raise InvalidField("crew", f"there is no crew {crew_id}")
    crew = states[0]
    missing = [skill for skill in task.required_skills if skill not in crew.skills]
    if missing:
        raise InvalidField("crew", f"{crew_id} lacks the skills {', '.join(missing)}")
    action = "transfer" if task.crew_id is not None and task.crew_id != crew.id else "assign"
    next_state(task.state, action)  # an illegal step fails before any routing
    leg = _leg(session, task, crew, travel or _travel(settings))
    eta = None if leg is None else now + timedelta(seconds=leg.seconds)
    step = transition(
        session,
        task,
        action,
        actor=actor,
        actor_kind="dispatcher",
        at=now,
        crew=crew.public_id,
        note=None if leg is None or eta is None else eta_note(leg, eta),
        eta_at=eta,
        settings=settings,
    )
    return Assignment(task, step, crew, leg, eta)


def assignment_json(assignment: Assignment) -> dict[str, Any]:
    return {"crew_id": assignment.crew.public_id, "eta": _eta_json(assignment.leg, assignment.eta)}


def _leg(session: Session, task: Task, crew: CrewState, travel: Travel) -> Leg | None:
    if crew.position is None:
        return None
    return travel(session.connection(), [crew.position], task_site(session, task), crew.mode)[0]


# --- the way to a task ----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRoute:
    task: Task
    path: RoutePath
    mode: str
    eta: datetime
    origin: str  # "from": the position the request gave; "fix": the crew's latest fix
    fix_time: datetime | None  # the fix's time when `origin` is "fix"


def task_route(
    session: Session,
    task_id: str,
    now: datetime,
    *,
    latest: Latest,
    origin: routing.Point | None = None,
    mode: str | None = None,
    settings: Settings | None = None,
) -> TaskRoute:
    """The quickest way to the task's site (`task_site`) from `origin`, else from the
    assigned crew's latest fix; by `mode`, else the crew's (a task without a crew: its own
    mode, else vehicle). Conflict when there is nowhere to start from or no way by road."""
    task = get_task(session, task_id)
    crew = None if task.crew_id is None else session.get(Crew, task.crew_id)
    fix_time = None
    if origin is None:
        if crew is None:
            raise Conflict(f"{task.public_id} has no crew: give `from`, the position to start")
        fix = latest.get(crew.public_id)
        if fix is None:
            raise Conflict(f"{crew.public_id} has sent no position yet: give `from`")
        origin = (float(fix["lon"]), float(fix["lat"]))
        fix_time = datetime.fromisoformat(fix["fix_time"])
    mode = mode or (crew.mode if crew is not None else task.mode or "vehicle")
    site = task_site(session, task)
    path = routing.route(session.connection(), origin, site, mode, settings=settings)
    if path is None:
        raise Conflict(f"there is no way by road for {mode} from {origin} to {task.public_id}")
    eta = now + timedelta(seconds=path.seconds)
    return TaskRoute(task, path, mode, eta, "fix" if fix_time else "from", fix_time)


# --- auto-dispatch and offers that time out -----------------------------------------------


def auto_dispatches(task: Task, settings: Settings) -> bool:
    return task.priority in settings.auto_dispatch_priority_names


def auto_dispatch(
    session: Session,
    task: Task,
    now: datetime,
    *,
    latest: Latest | None = None,
    settings: Settings | None = None,
    live: Live | None = None,
    travel: Travel | None = None,
    warn: bool = True,
) -> Candidate | None:
    """Offer the task to the best available crew with its skills that has not turned it
    down; None, and (with `warn`) a live warning after the commit, when there is none.
    `latest` defaults to the latest fixes in Redis."""
    settings = settings or get_settings()
    live = live or process_live(settings)
    if latest is None:
        latest = live.latest()
    crews = crew_states(session, latest, now, settings)
    ranking = candidates(
        session, session.connection(), task, crews, now, 1, travel=travel or _travel(settings)
    )
    if not ranking.candidates:
        if not warn:
            return None
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(ranking.excluded.items()))
        _warn_after_commit(
            session,
            live,
            {
                "type": "dispatch",
                "level": "warning",
                "task_id": task.public_id,
                "priority": task.priority,
                "at": now.isoformat(),
                "detail": f"no crew to send to {task.public_id}"
                + (f" (crews left out: {reasons})" if reasons else " (no crews)"),
            },
        )
        return None
    best = ranking.candidates[0]
    transition(
        session,
        task,
        "assign",
        actor=AUTO_DISPATCH_ACTOR,
        actor_kind="system",
        at=now,
        crew=best.crew.public_id,
        note=eta_note(best.leg, best.eta),
        eta_at=best.eta,
        settings=settings,
    )
    return best


def expire_offers(
    session: Session,
    now: datetime,
    *,
    latest: Latest | None = None,
    settings: Settings | None = None,
    live: Live | None = None,
    travel: Travel | None = None,
) -> list[str]:
    """Take back every offer not accepted by its expiry (a `decline` by the system, "offer
    timed out") and offer the task again: to the next best crew when its priority is
    auto-dispatched, else it waits, created, for a dispatcher. The crews that let it expire
    are not offered it again. Returns the public ids of the tasks taken back."""
    settings = settings or get_settings()
    expired = list(
        session.scalars(
            sa.select(Task)
            .where(Task.state == "assigned", Task.offer_expires_at <= now)
            .order_by(Task.offer_expires_at, Task.id)
            .limit(EXPIRE_BATCH)
            # Two schedulers, or a crew accepting at this very moment: each task once.
            .with_for_update(skip_locked=True)
        )
    )
    for task in expired:
        transition(
            session,
            task,
            "decline",
            actor=SYSTEM_ACTOR,
            actor_kind="system",
            at=now,
            note=OFFER_TIMED_OUT,
            settings=settings,
        )
    urgent = [task for task in expired if auto_dispatches(task, settings)]
    if urgent:
        live = live or process_live(settings)
        if latest is None:
            latest = live.latest()
        for task in urgent:
            auto_dispatch(
                session, task, now, latest=latest, settings=settings, live=live, travel=travel
            )
    return [task.public_id for task in expired]


def dispatch_waiting(
    session: Session,
    now: datetime,
    *,
    latest: Latest | None = None,
    settings: Settings | None = None,
    live: Live | None = None,
    travel: Travel | None = None,
) -> list[str]:
    """Offer the tasks of auto-dispatched priorities that still wait for a crew (every crew
    was busy when they came in, or their offers ran out), most urgent and oldest first, as
    crews become free. They were warned about once already: no new warning here. Returns the
    public ids of the tasks offered."""
    settings = settings or get_settings()
    priorities = settings.auto_dispatch_priority_names
    if not priorities:
        return []
    waiting = list(
        session.scalars(
            sa.select(Task)
            .where(Task.state == "created", Task.priority.in_(priorities))
            .order_by(Task.priority, Task.created_at, Task.id)
            .limit(EXPIRE_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if not waiting:
        return []
    live = live or process_live(settings)
    if latest is None:
        latest = live.latest()
    offered = []
    for task in waiting:
        chosen = auto_dispatch(
            session,
            task,
            now,
            latest=latest,
            settings=settings,
            live=live,
            travel=travel,
            warn=False,
        )
        if chosen is not None:
            offered.append(task.public_id)
    return offered


@events.listen
def dispatch_new_task(session: Session, event: TaskEvent) -> None:
    """Auto-dispatch a task of an auto-dispatched priority as it is created. A failure here
    (Redis or routing down) must not lose the task: it is logged, the task stays created for
    a dispatcher, and only the attempt is rolled back."""
    if event.action != "create":
        return
    settings = get_settings()
    task = get_task(session, event.task_id)
    if not auto_dispatches(task, settings):
        return
    try:
        with session.begin_nested():
            auto_dispatch(session, task, event.at, settings=settings)
    except (SQLAlchemyError, redis.RedisError, OSError, GisError) as exc:
        log.warning(
            "auto-dispatch of %s failed; it waits for a dispatcher: %s", task.public_id, exc
        )


# --- warnings after the commit ------------------------------------------------------------


def _warn_after_commit(session: Session, live: Live, warning: dict[str, Any]) -> None:
    pending: list[tuple[Live, dict[str, Any]]] = session.info.setdefault(_WARNINGS_KEY, [])
    pending.append((live, warning))
    if not orm_event.contains(session, "after_commit", _publish_warnings):
        orm_event.listen(session, "after_commit", _publish_warnings)
        orm_event.listen(session, "after_rollback", _drop_warnings)


def _publish_warnings(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction may still roll back
    for live, warning in session.info.pop(_WARNINGS_KEY, []):
        try:
            live.publish(warning)
        except redis.RedisError as exc:
            log.warning("dispatch warning for %s not published: %s", warning["task_id"], exc)


def _drop_warnings(session: Session) -> None:
    session.info.pop(_WARNINGS_KEY, None)


# --- batch dispatch -----------------------------------------------------------------------

# Minutes on site a plan counts per task kind: typical durations, for ordering routes only.
SERVICE_MINUTES = {
    "repair": 90.0,
    "patrol": 120.0,
    "inspection": 30.0,
    "meter_reading": 45.0,
    "valve_operation": 20.0,
}
# Tasks with a crew, first to last in the order the crew goes on with them: pinned in front.
_PINNED_ORDER = ("on_site", "en_route", "accepted", "assigned")
# A crew takes at most this many times its fair share of the plan's tasks, so that the least
# total travel does not pile the work on the few crews nearest to it.
SHARE_SLACK = 1.5
BATCH_MODE = "vehicle"  # the solver takes one travel-time matrix: crews that drive


@dataclass(frozen=True)
class PlannedTask:
    task: Task
    sequence: int  # 1 first, counting the pinned tasks in front
    pinned: bool  # already with the crew: kept first, in its order
    arrival_s: float | None  # from now: travel plus the service of the tasks before


@dataclass(frozen=True)
class BatchPlan:
    routes: dict[str, list[PlannedTask]]  # crew public id -> its tasks in order
    travel_s: float
    unassigned: list[tuple[Task, str]]  # with the reason
    baseline_travel_s: float  # greedy nearest-first on the same matrix
    max_tasks: int
    at: datetime


def _open_tasks(session: Session, task_ids: Sequence[str] | None) -> list[Task]:
    if task_ids is None:
        query = sa.select(Task).where(Task.state == "created").order_by(Task.id)
        return list(session.scalars(query))
    found = {
        task.public_id: task
        for task in session.scalars(sa.select(Task).where(Task.public_id.in_(task_ids)))
    }
    for i, public_id in enumerate(task_ids):
        task = found.get(public_id)
        if task is None:
            raise InvalidField(f"tasks[{i}]", f"there is no task {public_id}")
        if task.state != "created":
            raise Conflict(f"{public_id} is {task.state}: only created tasks are planned")
    return [found[public_id] for public_id in task_ids]


def _plan_crews(states: Sequence[CrewState], crew_ids: Sequence[str] | None) -> list[CrewState]:
    """The crews a plan may use: those named, else every driving crew at work with a position."""
    at_work = ("available", "busy")
    if crew_ids is None:
        return [s for s in states if s.status in at_work and s.mode == BATCH_MODE and s.position]
    by_id = {state.public_id: state for state in states}
    chosen = []
    for i, public_id in enumerate(crew_ids):
        field = f"crews[{i}]"
        state = by_id.get(public_id)
        if state is None:
            raise InvalidField(field, f"there is no crew {public_id}")
        if state.status not in at_work or state.position is None:
            raise InvalidField(field, f"{public_id} is {state.status}: it cannot take work now")
        if state.mode != BATCH_MODE:
            raise InvalidField(field, f"{public_id} walks; batch plans route crews that drive")
        chosen.append(state)
    return chosen


def _pinned_tasks(session: Session, crews: Sequence[CrewState]) -> dict[int, list[Task]]:
    """Each crew's tasks in hand (db crew id -> tasks), in the order it goes on with them."""
    tasks = session.scalars(
        sa.select(Task).where(
            Task.crew_id.in_([crew.id for crew in crews]), Task.state.in_(ACTIVE_STATES)
        )
    )
    pinned: dict[int, list[Task]] = {}
    for task in tasks:
        assert task.crew_id is not None
        pinned.setdefault(task.crew_id, []).append(task)
    for held in pinned.values():
        held.sort(
            key=lambda t: (
                _PINNED_ORDER.index(t.state),
                t.promised_arrival_at or t.created_at,
                t.id,
            )
        )
    return pinned


def _shift_left_s(session: Session, crews: Sequence[CrewState], now: datetime) -> dict[int, float]:
    """Seconds until the end of each crew's current shift (db crew id); none: off shift."""
    rows = session.execute(
        sa.select(CrewShift.crew_id, CrewShift.ends_at).where(
            CrewShift.crew_id.in_([crew.id for crew in crews]),
            CrewShift.starts_at <= now,
            CrewShift.ends_at > now,
        )
    )
    return {crew_id: (ends_at - now).total_seconds() for crew_id, ends_at in rows}


def plan_batch(
    session: Session,
    now: datetime,
    *,
    latest: Latest,
    task_ids: Sequence[str] | None = None,
    crew_ids: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> BatchPlan:
    """Which crew does which open task, in what order: the road travel times between the
    crews and all the tasks (one matrix), the tasks each crew has in hand kept first, then
    `batch.solve`; the greedy nearest-first plan on the same matrix for comparison. Tasks a
    planned crew lacks the skills for are left unassigned (the solver knows no skills)."""
    settings = settings or get_settings()
    tasks = _open_tasks(session, task_ids)
    crews = _plan_crews(crew_states(session, latest, now, settings), crew_ids)
    pinned = _pinned_tasks(session, crews)
    held = [task for crew in crews for task in pinned.get(crew.id, [])]
    everything = tasks + held
    sites = [task_site(session, task) for task in everything]
    origins = [crew.position for crew in crews if crew.position] + sites
    seconds = (
        routing.travel_seconds(session.connection(), origins, sites, BATCH_MODE, settings=settings)
        if crews and everything
        else []
    )
    # Locations: the crews first, then the tasks; nobody travels to where a crew stands.
    size = len(crews) + len(everything)
    matrix: list[list[float | None]] = [[None] * size for _ in range(size)]
    for i in range(size):
        matrix[i][i] = 0.0
        if seconds:
            matrix[i][len(crews) :] = seconds[i]
    share = math.ceil(SHARE_SLACK * len(everything) / len(crews)) if crews else 0
    shift_left = _shift_left_s(session, crews, now)
    solver_crews = [
        batch.Crew(
            crew.public_id,
            c,
            max_tasks=max(share, len(pinned.get(crew.id, []))),
            shift_s=shift_left.get(crew.id),
        )
        for c, crew in enumerate(crews)
    ]
    solver_tasks = [
        batch.Task(
            task.public_id,
            len(crews) + t,
            SERVICE_MINUTES[task.kind],
            PRIORITIES.index(task.priority) + 1,
        )
        for t, task in enumerate(everything)
    ]
    in_hand = {
        crew.public_id: [task.public_id for task in pinned[crew.id]]
        for crew in crews
        if crew.id in pinned
    }
    solver_pinned: dict[Hashable, Sequence[Hashable]] = {c: ids for c, ids in in_hand.items()}
    plan = batch.solve(solver_crews, solver_tasks, matrix, solver_pinned)
    baseline = batch.greedy_nearest_first(solver_crews, solver_tasks, matrix, solver_pinned)
    return _checked_plan(plan, baseline, crews, everything, in_hand, share, now)


def _checked_plan(
    plan: batch.Plan,
    baseline: batch.Plan,
    crews: Sequence[CrewState],
    tasks: Sequence[Task],
    in_hand: Mapping[str, Sequence[str]],
    share: int,
    now: datetime,
) -> BatchPlan:
    by_id = {task.public_id: task for task in tasks}
    skills = {crew.public_id: set(crew.skills) for crew in crews}
    routes: dict[str, list[PlannedTask]] = {}
    unassigned = [
        (by_id[str(t)], "no crew can reach it with room and shift time left")
        for t in plan.unassigned
    ]
    for crew_id, route in plan.routes.items():
        kept: list[PlannedTask] = []
        for task_id in route:
            task = by_id[str(task_id)]
            pinned = task_id in in_hand.get(str(crew_id), ())
            if not pinned and not set(task.required_skills) <= skills[str(crew_id)]:
                unassigned.append((task, f"{crew_id}, whose route passes it, lacks its skills"))
                continue
            arrival = plan.arrival_s.get(task_id)
            kept.append(PlannedTask(task, len(kept) + 1, pinned, arrival))
        routes[str(crew_id)] = kept
    return BatchPlan(routes, plan.travel_s, unassigned, baseline.travel_s, share, now)


def apply_batch(session: Session, plan: BatchPlan, *, actor: str) -> dict[str, list[str]]:
    """Offer every planned task to its crew, in each crew's order (so the crew's inbox gets
    them in that order); returns crew public id -> the task ids newly offered."""
    offered: dict[str, list[str]] = {}
    for crew_id, route in plan.routes.items():
        total = len(route)
        for planned in route:
            if planned.pinned:
                continue
            eta = (
                ""
                if planned.arrival_s is None
                else f", ETA {(plan.at + timedelta(seconds=planned.arrival_s)).isoformat()}"
            )
            transition(
                session,
                planned.task,
                "assign",
                actor=actor,
                actor_kind="dispatcher",
                at=plan.at,
                crew=crew_id,
                note=f"batch plan: {planned.sequence} of {total}{eta}",
            )
            offered.setdefault(crew_id, []).append(planned.task.public_id)
    return offered


def plan_messages(plan: BatchPlan) -> list[tuple[str, dict[str, Any]]]:
    """Each crew's order of work, for its inbox after the offers: (crew id, message)."""
    return [
        (
            crew_id,
            {
                "kind": "dispatch.plan",
                "at": plan.at.isoformat(),
                "tasks": [
                    {"task_id": p.task.public_id, "sequence": p.sequence, "pinned": p.pinned}
                    for p in route
                ],
            },
        )
        for crew_id, route in plan.routes.items()
        if any(not p.pinned for p in route)
    ]


def plan_json(plan: BatchPlan) -> dict[str, Any]:
    crews = []
    for crew_id, route in plan.routes.items():
        crews.append(
            {
                "crew_id": crew_id,
                "tasks": [
                    {
                        "task_id": p.task.public_id,
                        "sequence": p.sequence,
                        "pinned": p.pinned,
                        "priority": p.task.priority,
                        "arrival_at": None
                        if p.arrival_s is None
                        else (plan.at + timedelta(seconds=p.arrival_s)).isoformat(),
                    }
                    for p in route
                ],
            }
        )
    saved = 1 - plan.travel_s / plan.baseline_travel_s if plan.baseline_travel_s else None
    return {
        "at": plan.at.isoformat(),
        "crews": crews,
        "unassigned": [{"task_id": t.public_id, "reason": why} for t, why in plan.unassigned],
        "totals": {
            "tasks": sum(len(route) for route in plan.routes.values()),
            "crews": sum(1 for route in plan.routes.values() if route),
            "travel_s": round(plan.travel_s, 1),
            "max_tasks_per_crew": plan.max_tasks,
        },
        "baseline": {
            "method": "greedy nearest first",
            "travel_s": round(plan.baseline_travel_s, 1),
            "less_travel": None if saved is None else round(saved, 4),
        },
    }
