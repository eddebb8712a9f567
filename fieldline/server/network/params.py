"""Query-string parsing for `/api/v1/network/isolation`; a bad parameter is a 400 naming it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from fieldline.server.errors import BadRequest

# A burst reported from the street is within a few metres of its main; a wider default would
# pick a neighbouring street's main as readily as the right one.
DEFAULT_RADIUS_M = 50.0
MAX_RADIUS_M = 500.0
MAX_ID_CHARS = 64


@dataclass(frozen=True)
class IsolationQuery:
    pipe_id: str | None = None
    lon: float | None = None
    lat: float | None = None
    radius_m: float = DEFAULT_RADIUS_M

    @property
    def field(self) -> str:
        """The input the broken pipe came from, to name in errors about it."""
        return "pipe_id" if self.pipe_id is not None else "lon"


def _number(params: Mapping[str, str], name: str, low: float, high: float) -> float:
    try:
        value = float(params[name])
    except ValueError:
        raise BadRequest("must be a number", field=name) from None
    if not (math.isfinite(value) and low <= value <= high):
        raise BadRequest(f"must be between {low:g} and {high:g}", field=name)
    return value


def parse_isolation_query(params: Mapping[str, str]) -> IsolationQuery:
    """Either `pipe_id`, or `lon` and `lat` (WGS 84) with an optional `radius_m`."""
    pipe_id = params.get("pipe_id")
    by_point = [name for name in ("lon", "lat") if name in params]
    if pipe_id is not None:
        if by_point or "radius_m" in params:
            raise BadRequest("give either pipe_id, or lon and lat, not both", field="pipe_id")
        pipe_id = pipe_id.strip()
        if not pipe_id or len(pipe_id) > MAX_ID_CHARS:
            raise BadRequest(
                f"must be a pipe id of 1 to {MAX_ID_CHARS} characters", field="pipe_id"
            )
        return IsolationQuery(pipe_id=pipe_id)
    if not by_point:
        raise BadRequest("give the broken pipe: pipe_id, or lon and lat", field="pipe_id")
    for name in ("lon", "lat"):
        if name not in params:
            raise BadRequest("is required with " + ({"lon", "lat"} - {name}).pop(), field=name)
    radius_m = DEFAULT_RADIUS_M
    if "radius_m" in params:
        radius_m = _number(params, "radius_m", 0, MAX_RADIUS_M)
    return IsolationQuery(
        lon=_number(params, "lon", -180, 180),
        lat=_number(params, "lat", -90, 90),
        radius_m=radius_m,
    )
