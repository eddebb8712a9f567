"""Key performance indicators of tasks, computed in one SQL query.

Over the tasks created in [start, end), grouped by crew, district, kind or priority and/or by
day, week or month (in FIELDLINE_TIMEZONE, so a utility's days start at its midnight):

- completion rate: completed or verified tasks / tasks created, cancelled ones left out;
- on-time arrival rate: arrivals at or before the promise / tasks with a promised arrival that
  arrived, or that have not arrived, are not cancelled and are past the promise (overdue at
  `now`); the on-time completion rate likewise with the promised completion;
- median response time: minutes from creation to arrival, of the tasks that arrived;
- transfers and reopens: sums of the tasks' counters.

Each rate comes with its numerator and denominator so that rows can be added up.

Arrival is the first fix of the crew within reach of the site found by the verification of
its GPS trace (`tasks.trace_arrived_at`), else the crew's own report that it is on site
(`tasks.arrived_at`): COALESCE of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.tasks.models import Task

GROUPS: dict[str, Any] = {  # name -> column
    "crew": Crew.public_id,
    "district": Task.district,
    "kind": Task.kind,
    "priority": Task.priority,
}
PERIODS = ("day", "week", "month")
DONE_STATES = ("completed", "verified")


@dataclass(frozen=True)
class KpiQuery:
    start: datetime
    end: datetime
    group_by: str | None  # a key of GROUPS
    period: str | None  # one of PERIODS
    timezone: str


def _rate(numerator: sa.ColumnElement[Any], denominator: sa.ColumnElement[Any]) -> Any:
    return sa.cast(numerator, sa.Float) / sa.func.nullif(denominator, 0)


def _timeliness(promise: Any, end: Any, now: datetime) -> tuple[Any, Any]:
    """(on time, measured): tasks that reached their end by the promise, and tasks with a
    promise that reached their end or are overdue."""
    overdue = sa.and_(end.is_(None), Task.state != "cancelled", promise < now)
    on_time = sa.func.count().filter(promise.is_not(None), end <= promise)
    measured = sa.func.count().filter(promise.is_not(None), sa.or_(end.is_not(None), overdue))
    return on_time, measured


def kpis(session: Session, query: KpiQuery, now: datetime) -> list[dict[str, Any]]:
    arrived_at = sa.func.coalesce(Task.trace_arrived_at, Task.arrived_at)
    arrived_on_time, arrivals = _timeliness(Task.promised_arrival_at, arrived_at, now)
    completed_on_time, completions = _timeliness(
        Task.promised_completion_at, Task.completed_at, now
    )
    created = sa.func.count()
    cancelled = sa.func.count().filter(Task.state == "cancelled")
    done = sa.func.count().filter(Task.state.in_(DONE_STATES))
    response_min = sa.cast(sa.extract("epoch", arrived_at - Task.created_at), sa.Float) / 60
    keys: list[sa.ColumnElement[Any]] = []
    if query.group_by is not None:
        keys.append(GROUPS[query.group_by].label("group"))
    if query.period is not None:
        local = sa.func.timezone(query.timezone, Task.created_at)
        keys.append(sa.cast(sa.func.date_trunc(query.period, local), sa.Date).label("period"))
    statement = (
        sa.select(
            *keys,
            created.label("task_count"),
            cancelled.label("cancelled_count"),
            done.label("completed_count"),
            _rate(done, created - cancelled).label("completion_rate"),
            arrived_on_time.label("on_time_arrivals"),
            arrivals.label("arrivals_measured"),
            _rate(arrived_on_time, arrivals).label("on_time_arrival_rate"),
            completed_on_time.label("on_time_completions"),
            completions.label("completions_measured"),
            _rate(completed_on_time, completions).label("on_time_completion_rate"),
            sa.func.percentile_cont(0.5, type_=sa.Float)
            .within_group(response_min)
            .label("median_response_min"),
            sa.func.coalesce(sa.func.sum(Task.transfer_count), 0).label("transfer_count"),
            sa.func.coalesce(sa.func.sum(Task.reopen_count), 0).label("reopen_count"),
        )
        .select_from(Task)
        .outerjoin(Crew, Crew.id == Task.crew_id)
        .where(Task.created_at >= query.start, Task.created_at < query.end)
    )
    if keys:
        statement = statement.group_by(*keys).order_by(*(key.asc().nulls_last() for key in keys))
    rows = session.execute(statement).mappings().all()
    return [_row_json(row) for row in rows]


def _row_json(row: Any) -> dict[str, Any]:
    found = dict(row)
    if "period" in found:
        found["period"] = found["period"].isoformat()
    found["transfer_count"] = int(found["transfer_count"])
    found["reopen_count"] = int(found["reopen_count"])
    return found
