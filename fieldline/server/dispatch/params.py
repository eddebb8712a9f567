"""Request parsing for the dispatch endpoints; a bad value is a 4xx naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fieldline.gis.routing import MODES
from fieldline.server.crews.services import check_point
from fieldline.server.errors import BadRequest, Unprocessable
from fieldline.server.fields import choice
from fieldline.server.telemetry.params import parse_limit

DEFAULT_CANDIDATES = 10
MAX_CANDIDATES = 200
# One plan covers a day's open work of a utility; larger sets are split by district.
MAX_BATCH_TASKS = 1000
MAX_BATCH_CREWS = 300
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class CandidatesQuery:
    limit: int
    include_busy: bool


@dataclass(frozen=True)
class RouteQuery:
    origin: tuple[float, float] | None  # lon, lat; None: the assigned crew's latest fix
    mode: str | None  # None: the assigned crew's mode


@dataclass(frozen=True)
class BatchRequest:
    tasks: list[str] | None  # public ids; None: every open task not yet with a crew
    crews: list[str] | None  # public ids; None: every crew that may take work
    dry_run: bool


def parse_flag(params: Mapping[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise BadRequest("must be true or false", field=name)


def parse_candidates_query(params: Mapping[str, str]) -> CandidatesQuery:
    return CandidatesQuery(
        limit=parse_limit(params, DEFAULT_CANDIDATES, MAX_CANDIDATES),
        include_busy=parse_flag(params, "include_busy", False),
    )


def parse_route_query(params: Mapping[str, str]) -> RouteQuery:
    """`from=LON,LAT` (the handheld's position) and `mode=vehicle|foot`, each optional."""
    origin = None
    raw = params.get("from")
    if raw is not None:
        parts = raw.split(",")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            numbers = []
        if len(numbers) != 2:
            raise Unprocessable("must be LON,LAT: two numbers, longitude first", field="from")
        origin = check_point(numbers, "from")
    mode = params.get("mode")
    return RouteQuery(origin, None if mode is None else choice(mode, "mode", MODES))


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise Unprocessable("must be a JSON object", field="body")
    return body


def _unknown(body: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for key in body:
        if key not in known:
            raise Unprocessable(f"unknown field; known: {', '.join(known)}", field=key)


def _public_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise Unprocessable("must be a public id such as C-000001", field=field)
    return value.strip()


def parse_assign(body: Any) -> str:
    """The crew to assign a task to: `{"crew": "C-000001"}`."""
    body = _object(body)
    _unknown(body, ("crew",))
    if "crew" not in body:
        raise Unprocessable("is required: the crew's id", field="crew")
    return _public_id(body["crew"], "crew")


def _id_list(body: Mapping[str, Any], name: str, most: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise Unprocessable("must be a non-empty list of ids, or left out", field=name)
    if len(value) > most:
        raise Unprocessable(f"at most {most} at once", field=name)
    ids = [_public_id(item, f"{name}[{i}]") for i, item in enumerate(value)]
    return list(dict.fromkeys(ids))


def parse_batch(body: Any) -> BatchRequest:
    """`{"tasks": [ids], "crews": [ids], "dry_run": true}`, each optional."""
    body = _object(body)
    _unknown(body, ("tasks", "crews", "dry_run"))
    dry_run = body.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise Unprocessable("must be true or false", field="dry_run")
    return BatchRequest(
        tasks=_id_list(body, "tasks", MAX_BATCH_TASKS),
        crews=_id_list(body, "crews", MAX_BATCH_CREWS),
        dry_run=dry_run,
    )
