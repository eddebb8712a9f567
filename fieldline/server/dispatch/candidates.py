"""Which crews could take a task, best first: those free (or, when asked, busy) with every
skill the task needs, ranked by travel time over the roads from where each is now.

All crews of one travel mode are routed in one many-to-one call, so ranking 200 crews costs
two routing queries at most. The routing layer falls back to a straight-line estimate where
there are no roads (`by_road` false); the ranking then says so.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from sqlalchemy.orm import Session

from fieldline.gis import routing
from fieldline.gis.errors import Conflict
from fieldline.gis.routing import Leg
from fieldline.server.crews.services import CrewState
from fieldline.server.tasks.models import Task, TaskAsset, TaskTransition
from fieldline.server.tasks.services import asset_positions

Point = tuple[float, float]  # lon, lat
# travel_to's shape: many origins, one destination, one mode -> a leg (or None) per origin.
Travel = Callable[[sa.Connection, Sequence[Point], Point, str], list[Leg | None]]

# Statuses a crew may be offered a task in; busy crews only when the dispatcher asks.
OFFERABLE = ("available",)
OFFERABLE_WHEN_BUSY = ("available", "busy")
# Where a task without a site is reached: its first pipe, else its area, else its first asset.
_ROLES_AFTER_PIPES = ("target", "checkpoint", "meter")


@dataclass(frozen=True)
class Candidate:
    crew: CrewState
    leg: Leg
    eta: datetime

    def position_age_s(self, now: datetime) -> float | None:
        """Seconds since the fix the crew was ranked from; None when it is the depot."""
        if self.crew.position_time is None:
            return None
        return max(0.0, (now - self.crew.position_time).total_seconds())


@dataclass(frozen=True)
class Ranking:
    site: Point
    # "road" when every ranked crew was routed over the roads, "straight_line" when any leg is
    # an estimate; None when there was nobody to rank.
    method: str | None
    candidates: list[Candidate]  # best first, at most the limit asked
    ranked: int  # crews ranked before the limit was applied
    # Crews left out, by reason: their status (off_shift, no_signal, busy), skills, declined,
    # no_position (neither a fix nor a depot), unreachable (no way by road).
    excluded: dict[str, int]


def task_site(session: Session, task: Task) -> Point:
    """Where a crew goes for `task`: its site; for a task without one (a patrol), the middle
    of its first pipe, else its area's centroid, else its first listed asset."""
    if task.site is not None:
        point = to_shape(task.site)
        return point.x, point.y
    found = _first_asset_point(session, task.id, ("pipe",))
    if found is None and task.area is not None:
        found = _point(
            session.scalar(sa.select(sa.func.ST_Centroid(Task.area)).where(Task.id == task.id))
        )
    if found is None:
        found = _first_asset_point(session, task.id, _ROLES_AFTER_PIPES)
    if found is None:
        raise Conflict(f"{task.public_id} has no site, pipe, area or asset to travel to")
    return found


def declined_crews(session: Session, task_id: int) -> set[int]:
    """Crews (db ids) that declined the task or let its offer run out: never offered it again."""
    return set(
        session.scalars(
            sa.select(TaskTransition.crew_id).where(
                TaskTransition.task_id == task_id,
                TaskTransition.action == "decline",
                TaskTransition.crew_id.is_not(None),
            )
        )
    )


def rank(
    connection: sa.Connection,
    site: Point,
    crews: Iterable[CrewState],
    now: datetime,
    limit: int,
    *,
    required_skills: Collection[str] = (),
    statuses: Collection[str] = OFFERABLE,
    exclude: Collection[int] = (),
    travel: Travel = routing.travel_to,
) -> Ranking:
    """The crews among `crews` in one of `statuses`, with all `required_skills` and not in
    `exclude` (db ids), by travel time to `site`; ties go to the lower public id."""
    excluded: dict[str, int] = {}
    by_mode: dict[str, list[tuple[CrewState, Point]]] = {}
    for crew in crews:
        reason = _exclusion(crew, required_skills, statuses, exclude)
        if reason is not None or crew.position is None:
            reason = reason or "no_position"
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        by_mode.setdefault(crew.mode, []).append((crew, crew.position))
    ranked: list[Candidate] = []
    for mode, group in sorted(by_mode.items()):
        legs = travel(connection, [position for _, position in group], site, mode)
        for (crew, _), leg in zip(group, legs, strict=True):
            if leg is None:
                excluded["unreachable"] = excluded.get("unreachable", 0) + 1
                continue
            ranked.append(Candidate(crew, leg, now + timedelta(seconds=leg.seconds)))
    ranked.sort(key=lambda c: (c.leg.seconds, c.crew.public_id))
    method = None
    if ranked:
        method = "road" if all(c.leg.by_road for c in ranked) else "straight_line"
    return Ranking(site, method, ranked[:limit], len(ranked), excluded)


def candidates(
    session: Session,
    connection: sa.Connection,
    task: Task,
    crews: Iterable[CrewState],
    now: datetime,
    limit: int,
    *,
    include_busy: bool = False,
    travel: Travel = routing.travel_to,
) -> Ranking:
    """The crews that could take `task` now, best first: available ones (and busy ones when
    `include_busy`) with the task's skills, except those that already turned it down."""
    return rank(
        connection,
        task_site(session, task),
        crews,
        now,
        limit,
        required_skills=task.required_skills,
        statuses=OFFERABLE_WHEN_BUSY if include_busy else OFFERABLE,
        exclude=declined_crews(session, task.id),
        travel=travel,
    )


def _exclusion(
    crew: CrewState,
    required_skills: Collection[str],
    statuses: Collection[str],
    exclude: Collection[int],
) -> str | None:
    if crew.status not in statuses:
        return crew.status
    if not set(required_skills) <= set(crew.skills):
        return "skills"
    if crew.id in exclude:
        return "declined"
    return None


def _point(geometry: Any) -> Point | None:
    if geometry is None:
        return None
    shape = to_shape(geometry)
    return shape.x, shape.y


def _first_asset_point(session: Session, task_id: int, roles: Sequence[str]) -> Point | None:
    """The place of the first (in the planner's order) of the task's assets in `roles` that
    still exists: a point asset's position, the middle of a line."""
    listed = session.execute(
        sa.select(TaskAsset.layer, TaskAsset.asset_id)
        .where(TaskAsset.task_id == task_id, TaskAsset.role.in_(roles))
        .order_by(TaskAsset.ordinal, TaskAsset.role)
    ).all()
    places = asset_positions(session, ((layer, asset_id) for layer, asset_id in listed))
    return next((places[key] for key in map(tuple, listed) if key in places), None)
