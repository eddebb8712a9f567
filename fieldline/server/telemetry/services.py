"""Reads of what devices reported, and the upkeep of the partitioned tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.models import Station
from fieldline.server.crews.services import get_crew
from fieldline.server.telemetry import history
from fieldline.server.telemetry.models import (
    PARTITIONED,
    DeadLetter,
    Position,
    PositionHistory,
    StationBinding,
    TelemetryReading,
)

PARTITION_DAYS_AHEAD = 7
MAX_SOURCE_LENGTH = 200


def ensure_partitions(connection: sa.Connection, today: date) -> int:
    """Daily partitions from yesterday to a week ahead; returns how many were created."""
    created = 0
    for table in PARTITIONED:
        created += connection.execute(
            sa.text("SELECT fieldline_create_partitions(CAST(:t AS regclass), :d, :n)"),
            {"t": table, "d": today - timedelta(days=1), "n": PARTITION_DAYS_AHEAD + 2},
        ).scalar_one()
    return created


def prune(
    connection: sa.Connection,
    retention_days: int,
    today: date,
    history_retention_days: int | None = None,
) -> list[str]:
    """Drop the daily partitions older than the retention (and such rows of DEFAULT); a day of
    positions not rolled up into the history yet is kept until it is. With
    `history_retention_days`, the history's months older than that go too."""
    before = today - timedelta(days=retention_days)
    dropped: list[str] = []
    for table, column in PARTITIONED.items():
        limit = history.prunable_before(connection, before) if table == "positions" else before
        dropped += connection.execute(
            sa.text("SELECT fieldline_drop_partitions(CAST(:t AS regclass), :c, :b)"),
            {"t": table, "c": column, "b": limit},
        ).scalars()
    if history_retention_days is not None:
        dropped += history.prune_history(connection, history_retention_days, today)
    return dropped


def get_station(session: Session, public_id: str) -> Station:
    station = session.scalar(sa.select(Station).where(Station.public_id == public_id))
    if station is None:
        raise NotFound(f"no station with id {public_id!r}")
    return station


def _check_source(source: Any) -> None:
    if not isinstance(source, str) or not source.strip() or source != source.strip():
        raise InvalidField("source", "must be a non-empty name without surrounding spaces")
    if len(source) > MAX_SOURCE_LENGTH or any(c in source for c in "+#\x00"):
        raise InvalidField(
            "source", f"must be at most {MAX_SOURCE_LENGTH} characters, without '+', '#' or NUL"
        )
    if source.startswith("spb:"):
        parts = source.removeprefix("spb:").split("/")
        if len(parts) not in (2, 3) or "" in parts:
            raise InvalidField(
                "source", "a Sparkplug name is spb:group/edge or spb:group/edge/device"
            )


def bind_station(session: Session, station_public_id: str, source: Any) -> StationBinding:
    """Bind the name a SCADA system or Sparkplug edge reports under (`PS-KAMPPI-1`,
    `spb:group/edge[/device]`) to a station; binding it again to the same station is a no-op."""
    _check_source(source)
    station = get_station(session, station_public_id)
    if source != station.public_id and session.scalar(
        sa.select(Station.id).where(Station.public_id == source)
    ):
        raise Conflict(f"{source} is the id of another station")
    binding = session.get(StationBinding, source)
    if binding is not None and binding.station_id != station.id:
        raise Conflict(f"{source} is bound to another station")
    if binding is None:
        binding = StationBinding(source=source, station_id=station.id)
        session.add(binding)
        session.flush()
    return binding


def unbind_station(session: Session, station_public_id: str, source: str) -> None:
    station = get_station(session, station_public_id)
    binding = session.get(StationBinding, source)
    if binding is None or binding.station_id != station.id:
        raise NotFound(f"{source!r} is not bound to {station_public_id}")
    session.delete(binding)
    session.flush()


def list_stations(session: Session) -> list[dict[str, Any]]:
    """The monitoring stations with the names SCADA and Sparkplug report them under (besides
    their public id, which always works)."""
    bindings: dict[int, list[str]] = {}
    for binding in session.scalars(sa.select(StationBinding).order_by(StationBinding.source)):
        bindings.setdefault(binding.station_id, []).append(binding.source)
    rows = session.execute(
        sa.select(
            Station.id,
            Station.public_id,
            Station.name,
            Station.kind,
            Station.metrics,
            sa.func.ST_X(Station.geom).label("lon"),
            sa.func.ST_Y(Station.geom).label("lat"),
        ).order_by(Station.public_id)
    )
    return [
        {
            "id": row.public_id,
            "name": row.name,
            "kind": row.kind,
            "metrics": list(row.metrics),
            "geometry": {"type": "Point", "coordinates": [row.lon, row.lat]},
            "bindings": bindings.get(row.id, []),
        }
        for row in rows
    ]


# The columns of a track point, in the detailed positions and the history alike (_points).
_TRACK_COLUMNS = (
    "device", "fix_time", "lat", "lon", "acc_m", "speed_mps", "heading_deg", "alt_m", "batt_pct"
)  # fmt: skip


def _detailed_fixes(
    session: Session, crew_id: str, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    # Bounded on fix_time, the partition key, so only the days asked for are read.
    columns = [getattr(Position, name) for name in _TRACK_COLUMNS]
    query = sa.select(*columns, sa.literal(1), Position.received_at, Position.device_time)
    query = query.where(Position.crew_id == crew_id)
    if since is not None:
        query = query.where(Position.fix_time >= since)
    if until is not None:
        query = query.where(Position.fix_time < until)
    return _points(session.execute(query.order_by(Position.fix_time, Position.device)), "fix")


def _history_fixes(
    session: Session, crew_id: str, since: datetime | None, until: datetime
) -> list[dict[str, Any]]:
    # Bounded on minute too, the history's partition key, so only those months are read.
    columns = [getattr(PositionHistory, name) for name in _TRACK_COLUMNS]
    query = sa.select(*columns, PositionHistory.fixes, sa.null(), sa.null()).where(
        PositionHistory.crew_id == crew_id,
        PositionHistory.fix_time < until,
        PositionHistory.minute < until,
    )
    if since is not None:
        query = query.where(
            PositionHistory.fix_time >= since, PositionHistory.minute > since - timedelta(minutes=1)
        )
    order = (PositionHistory.fix_time, PositionHistory.device)
    return _points(session.execute(query.order_by(*order)), "minute")


def _points(rows: Iterable[Sequence[Any]], resolution: str) -> list[dict[str, Any]]:
    """GeoJSON points of fixes; `resolution` says whether each is a fix or a minute's last."""
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {
                "device": device,
                "fix_time": fix_time.isoformat(),
                "resolution": resolution,
                "fixes": fixes,
                "received_at": received_at.isoformat() if received_at else None,
                "device_time": device_time.isoformat() if device_time else None,
                "acc_m": acc_m,
                "speed_mps": speed_mps,
                "heading_deg": heading_deg,
                "alt_m": alt_m,
                "batt_pct": batt_pct,
            },
        }
        for (
            device,
            fix_time,
            lat,
            lon,
            acc_m,
            speed_mps,
            heading_deg,
            alt_m,
            batt_pct,
            fixes,
            received_at,
            device_time,
        ) in rows  # the track columns, then the fixes it stands for and two times
    ]


def crew_track(
    session: Session, crew_public_id: str, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """The crew's accepted fixes as a GeoJSON FeatureCollection of points ordered by fix
    time, with the track as a LineString feature first when there are two fixes or more.

    Days rolled up into the position history (history.py) are drawn from it, a fix a minute;
    later ones from every fix. Each point says its `resolution` (`minute` or `fix`) and how many
    fixes it stands for; the line says `fix`, `minute` or `mixed`, and `history_until` where
    the history ends."""
    crew = get_crew(session, crew_public_id)
    boundary = history.history_until(session)
    points: list[dict[str, Any]] = []
    if boundary is not None and (since is None or since < boundary):
        end = boundary if until is None else min(until, boundary)
        points += _history_fixes(session, crew.public_id, since, end)
    if boundary is None or until is None or until > boundary:
        start = since if boundary is None or (since is not None and since >= boundary) else boundary
        points += _detailed_fixes(session, crew.public_id, start, until)
    features = points
    if len(points) > 1:
        first, last = points[0]["properties"], points[-1]["properties"]
        resolutions = {point["properties"]["resolution"] for point in points}
        line = {
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": [point["geometry"]["coordinates"] for point in points],
            },
            "properties": {
                "crew_id": crew.public_id,
                "start": first["fix_time"],
                "end": last["fix_time"],
                "resolution": resolutions.pop() if len(resolutions) == 1 else "mixed",
            },
        }
        features = [line, *points]
    return {
        "type": "FeatureCollection",
        "crew_id": crew.public_id,
        "history_until": boundary.isoformat() if boundary else None,
        "features": features,
    }


def station_telemetry(
    session: Session,
    station_public_id: str,
    metric: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = sa.select(TelemetryReading).where(TelemetryReading.station_id == station_public_id)
    if metric:
        query = query.where(TelemetryReading.metric == metric)
    if since is not None:
        query = query.where(TelemetryReading.ts >= since)
    if until is not None:
        query = query.where(TelemetryReading.ts < until)
    rows = session.scalars(
        query.order_by(TelemetryReading.ts, TelemetryReading.metric).limit(limit)
    )
    return [{"metric": r.metric, "ts": r.ts.isoformat(), "value": r.value} for r in rows]


def dead_letters(session: Session, reason: str | None, limit: int) -> list[dict[str, Any]]:
    query = sa.select(DeadLetter)
    if reason:
        query = query.where(DeadLetter.reason == reason)
    rows = session.scalars(query.order_by(DeadLetter.id.desc()).limit(limit))
    return [
        {
            "id": row.id,
            "received_at": row.received_at.isoformat(),
            "topic": row.topic,
            "reason": row.reason,
            "detail": row.detail,
            "payload": row.payload.decode("utf-8", "replace"),
            "payload_bytes": row.payload_bytes,
        }
        for row in rows
    ]
