"""The pipes likely to have broken, ranked, each with why: in-service pipes near the
incident's reports, and the pipes its evidence names outright (the meter a caller is fed
from, the pipe an alarmed station sits on, the asset a crew's report names).

Score: per report near the pipe, 1 - distance / FIELDLINE_INCIDENT_PIPE_RADIUS_M (a report
right on the pipe counts 1, one at the edge of the radius nothing), plus 1 for each report
naming it. Several reports agreeing on a pipe outrank one report closer to another; a
dispatcher confirms the pipe before anything is shut (POST .../isolate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.models import Meter, Pipe, Station
from fieldline.gis.queries import geography
from fieldline.server.incidents.models import IncidentSource
from fieldline.settings import Settings

NAMED = 1.0  # the score a report naming the pipe adds


@dataclass
class Candidate:
    pipe_id: str
    diameter_mm: float | None
    material: str | None
    score: float = 0.0
    distance_m: float | None = None  # to the nearest report
    why: list[str] = field(default_factory=list)


def _label(source: IncidentSource) -> str:
    if source.kind == "call":
        return f"call #{source.id}"
    return f"{source.kind.replace('_', ' ')} {source.ref}"


def suggested_pipes(
    session: Session, sources: list[IncidentSource], settings: Settings, limit: int = 10
) -> list[dict[str, Any]]:
    if not sources:
        return []
    radius = settings.incident_pipe_radius_m
    by_id = {source.id: source for source in sources}
    found: dict[str, Candidate] = {}

    def candidate(pipe_id: str, diameter: float | None, material: str | None) -> Candidate:
        return found.setdefault(pipe_id, Candidate(pipe_id, diameter, material))

    distance = sa.func.ST_Distance(
        geography(Pipe.geom), geography(IncidentSource.position), type_=sa.Float
    )
    near: Sequence[tuple[int, str, float | None, str | None, float]] = session.execute(
        sa.select(IncidentSource.id, Pipe.public_id, Pipe.diameter_mm, Pipe.material, distance)
        .join(
            Pipe,
            sa.func.ST_DWithin(geography(Pipe.geom), geography(IncidentSource.position), radius),
        )
        .where(IncidentSource.id.in_(list(by_id)), Pipe.status == "in_service")
    ).all()
    for source_id, pipe_id, diameter, material, metres in near:
        found_pipe = candidate(pipe_id, diameter, material)
        found_pipe.score += max(0.0, 1 - metres / radius)
        if found_pipe.distance_m is None or metres < found_pipe.distance_m:
            found_pipe.distance_m = metres
        found_pipe.why.append(f"{metres:.0f} m from {_label(by_id[source_id])}")

    columns = (Pipe.public_id, Pipe.diameter_mm, Pipe.material)
    in_service = Pipe.status == "in_service"
    named: list[tuple[IncidentSource, Any, str]] = []
    for source in sources:
        if source.meter_id:
            fed = sa.select(*columns).join(Meter, Meter.pipe_id == Pipe.id)
            where = fed.where(Meter.public_id == source.meter_id, in_service)
            named.append((source, where, "feeds the meter called about"))
        if source.station_id:
            on = sa.select(*columns).join(Station, Station.pipe_id == Pipe.id)
            where = on.where(Station.public_id == source.station_id, in_service)
            named.append((source, where, "the alarmed station is on it"))
        if source.asset_id:
            where = sa.select(*columns).where(Pipe.public_id == source.asset_id, in_service)
            named.append((source, where, "the crew's report names it"))
    for source, query, why in named:
        row = session.execute(query).first()
        if row is None:
            continue
        found_pipe = candidate(str(row[0]), row[1], row[2])
        found_pipe.score += NAMED
        found_pipe.why.append(f"{why} ({_label(source)})")

    ranked = sorted(
        found.values(),
        key=lambda c: (-c.score, c.distance_m if c.distance_m is not None else radius, c.pipe_id),
    )
    return [
        {
            "pipe_id": c.pipe_id,
            "rank": rank,
            "score": round(c.score, 3),
            "distance_m": None if c.distance_m is None else round(c.distance_m, 1),
            "diameter_mm": c.diameter_mm,
            "material": c.material,
            "why": c.why,
        }
        for rank, c in enumerate(ranked[:limit], start=1)
    ]
