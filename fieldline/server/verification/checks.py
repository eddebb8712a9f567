"""What a crew's trace shows of a task's work: the judgement of one verification run.

`evaluate` loads the crew's fixes in the run's window and the task's assets, cleans the fixes
into a trace (gis/trace.py) and measures the work against the settings (gis/coverage.py):
arrival and dwell at a site, each meter visited, each patrolled pipe's coverage and each
checkpoint visited; jumps and quarantined fixes count against any kind. A failure's reasons are
sentences naming the assets, for the crew and the dispatcher alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from fieldline.gis.coverage import PipeCoverage, Visit, pipe_coverage, visits
from fieldline.gis.layers import LAYERS
from fieldline.gis.trace import Fixes, LocalProjection, Trace, TraceRules, prepare
from fieldline.server.crews.models import Crew
from fieldline.server.tasks.models import Task, TaskAsset, TaskTransition
from fieldline.server.telemetry.models import Position, QuarantinedFix
from fieldline.server.verification.evidence import layers, visit_row
from fieldline.server.verification.models import TaskVerification
from fieldline.settings import Settings

SITE_KINDS = ("repair", "inspection", "valve_operation")
# Quarantine reasons that say nothing against the trace: a phone reporting more often than
# needed (too_frequent); the gateway's online jump filter, which sees no fix after the one it
# judges, is judged again here with the fixes that followed (they enter the trace).
NOT_HELD_AGAINST = ("too_frequent", "jump")
MAX_AREA_PIPES = 5000


@dataclass
class Work:
    """What the crew had to do, as WGS 84 geometries by asset id."""

    site: BaseGeometry | None = None
    site_asset: str | None = None
    pipes: dict[str, BaseGeometry] = field(default_factory=dict)
    checkpoints: dict[str, BaseGeometry] = field(default_factory=dict)
    meters: dict[str, BaseGeometry] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # listed, but deleted since

    def geometries(self) -> list[BaseGeometry]:
        found = [*self.pipes.values(), *self.checkpoints.values(), *self.meters.values()]
        return found if self.site is None else [self.site, *found]


@dataclass
class Findings:
    result: str
    reasons: list[str]
    summary: dict[str, Any]
    evidence: dict[str, Any]
    arrived_at: datetime | None


def trace_rules(task: Task, settings: Settings) -> TraceRules:
    """The rules of the task's kind: a patrol's pipes count at its mode's speed (on foot when
    it has none) and within the tighter coverage radius."""
    patrol = task.kind == "patrol"
    max_speed = math.inf
    if patrol:
        max_speed = (
            settings.verification_patrol_speed_vehicle_mps
            if task.mode == "vehicle"
            else settings.verification_patrol_speed_foot_mps
        )
    return TraceRules(
        radius_floor_m=settings.verification_radius_floor_m,
        radius_cap_m=(
            settings.verification_coverage_radius_cap_m
            if patrol
            else settings.verification_radius_cap_m
        ),
        accuracy_factor=settings.verification_accuracy_factor,
        gap_s=settings.verification_gap_s,
        jump_speed_mps=settings.verification_jump_speed_mps,
        max_speed_mps=max_speed,
    )


def _run_crew(session: Session, task: Task, run: TaskVerification) -> Crew | None:
    """The crew that completed the work the run checks (the task may have moved on since)."""
    crew_id = session.scalar(
        sa.select(TaskTransition.crew_id)
        .where(
            TaskTransition.task_id == task.id,
            TaskTransition.action == "complete",
            TaskTransition.at <= run.window_to,
        )
        .order_by(TaskTransition.at.desc(), TaskTransition.id.desc())
        .limit(1)
    )
    crew_id = crew_id if crew_id is not None else task.crew_id
    return None if crew_id is None else session.get(Crew, crew_id)


def load_fixes(
    session: Session, crew: str, start: datetime, end: datetime
) -> tuple[Fixes, dict[str, int]]:
    """The crew's fixes in [start, end] from all its devices, as columns ordered by device and
    time, with the fixes the gateway's jump filter quarantined (judged again in the trace);
    and every quarantined fix counted by reason."""
    q = QuarantinedFix
    in_window = (q.crew_id == crew, q.fix_time.between(start, end))
    fixes = sa.union_all(
        sa.select(
            Position.device, Position.fix_time, Position.lon, Position.lat, Position.acc_m
        ).where(Position.crew_id == crew, Position.fix_time.between(start, end)),
        sa.select(q.device, q.fix_time, q.lon, q.lat, q.acc_m).where(
            *in_window, q.reason == "jump"
        ),
    ).subquery()
    rows = session.execute(
        sa.select(
            fixes.c.device,
            sa.extract("epoch", fixes.c.fix_time),
            fixes.c.lon,
            fixes.c.lat,
            fixes.c.acc_m,
        ).order_by(fixes.c.device, fixes.c.fix_time)
    ).all()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 5
    counts = session.execute(
        sa.select(q.reason, sa.func.count()).where(*in_window).group_by(q.reason).order_by(q.reason)
    ).all()
    found = Fixes(
        np.array(columns[0], dtype=object),
        np.array(columns[1], dtype=float),
        np.array(columns[2], dtype=float),
        np.array(columns[3], dtype=float),
        np.array([np.nan if acc is None else acc for acc in columns[4]], dtype=float),
    )
    return found, {reason: int(count) for reason, count in counts}


def _geometries(session: Session, layer: str, ids: Iterable[str]) -> dict[str, BaseGeometry]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    table = LAYERS[layer].table
    rows = session.execute(
        sa.select(table.c.public_id, sa.func.ST_AsBinary(table.c.geom)).where(
            table.c.public_id.in_(wanted)
        )
    )
    found = cast(Iterable[tuple[str, bytes]], rows)
    return {public_id: shapely.from_wkb(bytes(wkb)) for public_id, wkb in found}


def load_work(session: Session, task: Task) -> Work:
    rows = list(
        session.scalars(
            sa.select(TaskAsset).where(TaskAsset.task_id == task.id).order_by(TaskAsset.ordinal)
        )
    )
    by_layer: dict[str, list[str]] = {}
    for row in rows:
        by_layer.setdefault(row.layer, []).append(row.asset_id)
    found = {layer: _geometries(session, layer, ids) for layer, ids in by_layer.items()}
    work = Work()
    for row in rows:
        geometry = found[row.layer].get(row.asset_id)
        if geometry is None:
            work.missing.append(row.asset_id)
        elif row.role == "target" and work.site_asset is None:
            work.site_asset, work.site = row.asset_id, geometry
        elif row.role == "pipe":
            work.pipes[row.asset_id] = geometry
        elif row.role == "checkpoint":
            work.checkpoints[row.asset_id] = geometry
        elif row.role == "meter":
            work.meters[row.asset_id] = geometry
    if task.kind in SITE_KINDS:
        if task.site is not None:  # the reported point, or the target's position
            work.site = to_shape(task.site)
    else:
        work.site, work.site_asset = None, None
    if task.kind == "patrol" and not work.pipes and task.area is not None:
        # A patrol of an area: the pipes in it.
        pipes = LAYERS["pipes"].table
        ids: Iterable[str] = session.scalars(
            sa.select(pipes.c.public_id)
            .where(sa.func.ST_Intersects(pipes.c.geom, task.area))
            .order_by(pipes.c.public_id)
            .limit(MAX_AREA_PIPES)
        )
        work.pipes = _geometries(session, "pipes", ids)
    return work


def _projection(work: Work) -> LocalProjection | None:
    """Centred on the work, so that lengths are right even without a single fix."""
    geometries = work.geometries()
    if not geometries:
        return None
    west, south, east, north = shapely.total_bounds(geometries)
    return LocalProjection((west + east) / 2, (south + north) / 2)


def _duration(seconds: float) -> str:
    return f"{round(seconds)} s" if seconds < 120 else f"{round(seconds / 60)} min"


def _percent(share: float) -> str:
    """Rounded down, so that 89.6 % never reads as the 90 % it misses."""
    return f"{math.floor(share * 100 + 1e-9)} %"


@dataclass
class Measured:
    """The work as the trace shows it, in the order the task lists it."""

    site: Visit | None
    meters: list[Visit]
    pipes: list[PipeCoverage]
    checkpoints: list[Visit]


def measure(trace: Trace, work: Work, task: Task, settings: Settings) -> tuple[Measured, list[str]]:
    """What the trace shows of each asset, and the sentences saying what falls short."""
    dwell = settings.verification_min_dwell
    lacking: list[str] = []
    site = None
    if work.site is not None:
        site = visits(trace, {work.site_asset or "site": work.site})[0]
        need = dwell[task.kind]
        if site.first_at is None:
            away = (
                "" if site.closest_m is None else f" (closest fix {round(site.closest_m)} m away)"
            )
            lacking.append(f"the crew never came within reach of the site{away}")
        elif site.dwell_s < need:
            lacking.append(
                f"stayed {_duration(site.dwell_s)} at the site (needs {_duration(need)})"
            )
    elif task.kind in SITE_KINDS:
        lacking.append("the task has no site to check the trace against")
    meters = visits(trace, work.meters) if work.meters else []
    lacking += _visit_reasons(meters, "meter", dwell["meter_reading"])
    pipes = pipe_coverage(trace, work.pipes) if work.pipes else []
    least = settings.verification_min_coverage
    lacking += [
        f"pipe {pipe.asset_id} covered {_percent(pipe.ratio)} (needs {_percent(least)})"
        for pipe in pipes
        if pipe.ratio < least
    ]
    checkpoints = visits(trace, work.checkpoints) if work.checkpoints else []
    lacking += _visit_reasons(checkpoints, "checkpoint", dwell["checkpoint"])
    return Measured(site, meters, pipes, checkpoints), lacking


def _visit_reasons(found: Iterable[Visit], what: str, need_s: float) -> list[str]:
    reasons = []
    for visit in found:
        if visit.first_at is None:
            reasons.append(f"{what} {visit.asset_id} not visited")
        elif visit.dwell_s < need_s:
            stayed, needs = _duration(visit.dwell_s), _duration(need_s)
            reasons.append(f"stayed {stayed} at {what} {visit.asset_id} (needs {needs})")
    return reasons


def quarantined_share(fixes: int, quarantined: dict[str, int]) -> tuple[int, float]:
    """The fixes the crew's devices sent in the window (`fixes` holds the jump-quarantined
    ones), and the share of them quarantined for what counts against the trace."""
    received = fixes - quarantined.get("jump", 0) + sum(quarantined.values())
    held = sum(n for reason, n in quarantined.items() if reason not in NOT_HELD_AGAINST)
    return received, held / received if received else 0.0


@dataclass
class Traced:
    work: Work
    trace: Trace
    fixes: Fixes
    quarantined: dict[str, int]  # fixes the gateway quarantined, by reason


def trace_work(
    session: Session,
    task: Task,
    crew: str | None,
    start: datetime,
    end: datetime,
    settings: Settings,
) -> Traced:
    """The task's work and the crew's (public id) trace over [start, end] under the task's
    rules: how a verification run and the progress of work in hand both see it."""
    fixes, quarantined = (
        load_fixes(session, crew, start, end) if crew is not None else (Fixes.of([]), {})
    )
    work = load_work(session, task)
    trace = prepare(fixes, trace_rules(task, settings), _projection(work))
    return Traced(work, trace, fixes, quarantined)


def evaluate(session: Session, task: Task, run: TaskVerification, settings: Settings) -> Findings:
    """What the crew's trace in the run's window shows of the task's work."""
    crew = _run_crew(session, task, run)
    crew_id = None if crew is None else crew.public_id
    traced = trace_work(session, task, crew_id, run.window_from, run.window_to, settings)
    work, trace, fixes, quarantined = traced.work, traced.trace, traced.fixes, traced.quarantined
    rules = trace.rules
    measured, lacking = measure(trace, work, task, settings)
    # Without a single fix, every asset falls short: one sentence says why.
    reasons = (
        lacking if trace.fixes else ["no fixes from the crew between acceptance and completion"]
    )
    jumps = len(trace.jumps)
    if jumps > settings.verification_max_jumps:
        times = "once" if jumps == 1 else f"{jumps} times"
        reasons.append(f"the trace jumps {times} (a teleported or spoofed position)")
    received, share = quarantined_share(len(fixes.t), quarantined)
    if share > settings.verification_max_quarantined_share:
        most = _percent(settings.verification_max_quarantined_share)
        reasons.append(f"{_percent(share)} of the fixes were quarantined (at most {most})")

    counts = {
        "received": received,
        "fixes": trace.fixes,
        "outliers": trace.outliers,
        "quarantined": quarantined,
        "quarantined_share": round(share, 4),
        "gaps": len(trace.gaps),
        "jumps": jumps,
        "stops": len(trace.stops),
    }
    summary = {
        "kind": task.kind,
        "crew": None if crew is None else crew.public_id,
        "mode": task.mode,
        "counts": counts,
        **_rows(trace, work, measured, task, settings),
        "thresholds": _thresholds(task, rules, settings),
    }
    dwell = settings.verification_min_dwell
    evidence = layers(
        trace, work, measured.pipes, measured.checkpoints, measured.meters, measured.site, dwell
    )
    arrived_at = None if measured.site is None else measured.site.first_at
    return Findings("fail" if reasons else "pass", reasons, summary, evidence, arrived_at)


def _rows(
    trace: Trace, work: Work, measured: Measured, task: Task, settings: Settings
) -> dict[str, Any]:
    """The summary's tables: coverage, pipes, checkpoints, meters, site, gaps and jumps."""
    dwell = settings.verification_min_dwell
    least = settings.verification_min_coverage
    length = sum(p.length_m for p in measured.pipes)
    covered = sum(p.covered_m for p in measured.pipes)
    return {
        "coverage": (
            {
                "length_m": round(length, 1),
                "covered_m": round(covered, 1),
                "ratio": round(covered / length, 4) if length > 0 else 1.0,
            }
            if measured.pipes
            else None
        ),
        "pipes": [
            {
                "asset_id": p.asset_id,
                "length_m": round(p.length_m, 1),
                "covered_m": round(p.covered_m, 1),
                "ratio": round(p.ratio, 4),
                "passed": p.ratio >= least,
            }
            for p in measured.pipes
        ],
        "checkpoints": [visit_row(v, dwell["checkpoint"]) for v in measured.checkpoints],
        "meters": [visit_row(v, dwell["meter_reading"]) for v in measured.meters],
        "site": _site_row(work, measured.site, dwell.get(task.kind, 0)),
        "missing_assets": work.missing,
        "gaps": [
            {
                "device": g.device,
                "start": g.start.isoformat(),
                "end": g.end.isoformat(),
                "seconds": round(g.seconds, 1),
            }
            for g in trace.gaps
        ],
        "jumps": [
            {
                "device": j.device,
                "at": j.at.isoformat(),
                "distance_m": round(j.distance_m, 1),
                "speed_mps": round(j.speed_mps, 1),
            }
            for j in trace.jumps
        ],
    }


def _site_row(work: Work, visit: Visit | None, need_s: float) -> dict[str, Any] | None:
    if work.site is None or visit is None:
        return None
    place = work.site.representative_point()
    row = visit_row(visit, need_s)
    row |= {"asset_id": work.site_asset, "lon": place.x, "lat": place.y, "min_dwell_s": need_s}
    return row


def _thresholds(task: Task, rules: TraceRules, settings: Settings) -> dict[str, Any]:
    dwell = settings.verification_min_dwell
    return {
        "radius_floor_m": rules.radius_floor_m,
        "radius_cap_m": rules.radius_cap_m,
        "accuracy_factor": rules.accuracy_factor,
        "gap_s": rules.gap_s,
        "jump_speed_mps": rules.jump_speed_mps,
        "max_speed_mps": None if math.isinf(rules.max_speed_mps) else rules.max_speed_mps,
        "min_dwell_s": dwell.get(task.kind),
        "checkpoint_min_dwell_s": dwell["checkpoint"],
        "meter_min_dwell_s": dwell["meter_reading"],
        "min_coverage": settings.verification_min_coverage,
        "max_jumps": settings.verification_max_jumps,
        "max_quarantined_share": settings.verification_max_quarantined_share,
    }
