"""The isolation trace for a request: find the broken pipe, trace it on the process's cached
network (gis/isolation.py), and fetch what the answer shows: geometries, meters, hydrants."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField, NotFound
from fieldline.gis.isolation import (
    NETWORKS,
    Isolation,
    Located,
    OnPipe,
    geometries,
    nearest_pipe,
    on_pipes,
    pipe_status,
)
from fieldline.server.errors import NotFoundError, Unprocessable
from fieldline.server.network.params import IsolationQuery


@dataclass(frozen=True)
class IsolationAnswer:
    trace: Isolation
    query: IsolationQuery
    distance_m: float | None  # from the given point to the pipe found
    valves: dict[int, Located]
    pipes: dict[int, Located]
    meters: list[OnPipe]
    hydrants: list[OnPipe]


def _broken_pipe(session: Session, query: IsolationQuery) -> tuple[str, float | None]:
    connection = session.connection()
    if query.pipe_id is not None:
        try:
            status = pipe_status(connection, query.pipe_id)
        except NotFound as exc:
            raise NotFoundError(exc.detail, field="pipe_id") from None
        if status != "in_service":
            raise Unprocessable(
                f"{query.pipe_id} is {status}, not in service: it carries no water to shut off",
                field="pipe_id",
            )
        return query.pipe_id, None
    assert query.lon is not None and query.lat is not None
    found = nearest_pipe(connection, query.lon, query.lat, query.radius_m)
    if found is None:
        raise NotFoundError(
            f"no pipe in service within {query.radius_m:g} m of {query.lon}, {query.lat};"
            " give a larger radius_m or the pipe_id",
            field="radius_m",
        )
    return found


def isolation(session: Session, query: IsolationQuery) -> IsolationAnswer:
    pipe, distance_m = _broken_pipe(session, query)
    connection = session.connection()
    at = (query.lon, query.lat) if query.lon is not None and query.lat is not None else None
    try:
        trace = NETWORKS.get(connection).trace(pipe, at)
    except InvalidField as exc:  # no source in the network: about the input, so name it
        raise Unprocessable(exc.detail, field=query.field) from None
    pipe_ids = trace.isolated_pipe_ids + trace.dry_pipe_ids
    valve_ids = [v.id for v in trace.valves_to_close] + [v.id for v in trace.passed_valves]
    return IsolationAnswer(
        trace=trace,
        query=query,
        distance_m=distance_m,
        valves=geometries(connection, "valves", valve_ids),
        pipes=geometries(connection, "pipes", pipe_ids),
        meters=on_pipes(connection, "meters", pipe_ids),
        hydrants=on_pipes(connection, "hydrants", pipe_ids),
    )
