"""The progress of work in hand, for the crew's handheld: what the crew's trace so far shows.

The same trace and measures as a verification run (checks.py `trace_work`, `measure`), over
the crew's latest acceptance of the task until now: for a patrol, the pipes still to cover
(their missed parts) and every checkpoint, visited or not, with the share covered; for work
at a site, the site and whether the crew reached it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from shapely.geometry import MultiLineString, mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from fieldline.gis.coverage import Visit
from fieldline.server.crews.models import Crew
from fieldline.server.fields import iso
from fieldline.server.tasks.models import Task
from fieldline.server.verification.checks import measure, trace_work
from fieldline.server.verification.evidence import visit_row
from fieldline.server.verification.services import window_start
from fieldline.settings import Settings


def _feature(geometry: BaseGeometry, asset_id: str | None, /, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": asset_id,
        "geometry": mapping(geometry),
        "properties": {"asset_id": asset_id} | properties,
    }


def _places(
    places: Mapping[str, BaseGeometry], found: Iterable[Visit], role: str, need_s: float
) -> list[dict[str, Any]]:
    return [
        _feature(places[v.asset_id], v.asset_id, role=role, **visit_row(v, need_s)) for v in found
    ]


def task_progress(
    session: Session, task: Task, now: datetime, settings: Settings
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of what is left and where the crew has been, with the
    figures as members beside `features`."""
    crew = None if task.crew_id is None else session.get(Crew, task.crew_id)
    since = window_start(session, task, now) if crew is not None else None
    traced = trace_work(
        session, task, None if crew is None else crew.public_id, since or now, now, settings
    )
    measured, _ = measure(traced.trace, traced.work, task, settings)
    dwell = settings.verification_min_dwell
    least = settings.verification_min_coverage
    features: list[dict[str, Any]] = []

    remaining = [pipe for pipe in measured.pipes if pipe.ratio < least]
    for pipe in remaining:
        features.append(
            _feature(
                MultiLineString(pipe.missed),
                pipe.asset_id,
                role="pipe",
                length_m=round(pipe.length_m, 1),
                covered_m=round(pipe.covered_m, 1),
                ratio=round(pipe.ratio, 4),
            )
        )
    features += _places(
        traced.work.checkpoints, measured.checkpoints, "checkpoint", dwell["checkpoint"]
    )
    features += _places(traced.work.meters, measured.meters, "meter", dwell["meter_reading"])
    site = measured.site
    if traced.work.site is not None and site is not None:
        features.append(
            _feature(
                traced.work.site,
                traced.work.site_asset,
                role="site",
                reached=site.first_at is not None,
                **visit_row(site, dwell.get(task.kind, 0)),
            )
        )

    length = sum(pipe.length_m for pipe in measured.pipes)
    covered = sum(pipe.covered_m for pipe in measured.pipes)
    return {
        "type": "FeatureCollection",
        "features": features,
        "task_id": task.public_id,
        "kind": task.kind,
        "state": task.state,
        "crew_id": None if crew is None else crew.public_id,
        "since": iso(since),
        "until": now.isoformat(),
        "fixes": traced.trace.fixes,
        # Patrols: the share of the pipes' length covered, and what counts as done.
        "covered_share": (
            (round(covered / length, 4) if length > 0 else 1.0) if measured.pipes else None
        ),
        "min_coverage": least if measured.pipes else None,
        "pipes_total": len(measured.pipes),
        "pipes_remaining": len(remaining),
        "checkpoints_total": len(measured.checkpoints),
        "checkpoints_visited": sum(v.first_at is not None for v in measured.checkpoints),
        # Work at a site: whether the crew has been within reach of it, and when first.
        "reached": None if site is None else site.first_at is not None,
        "arrived_at": None if site is None else iso(site.first_at),
    }
