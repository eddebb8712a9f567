"""The query strings of the verification endpoints; a bad value names the parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fieldline.gis.errors import InvalidField
from fieldline.server.telemetry.params import parse_limit
from fieldline.server.verification.models import RESULTS

BOOLEANS = {"true": True, "false": False}
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class RunQuery:
    run: int | None  # None: the latest
    layers: bool


def parse_run_query(params: Mapping[str, str]) -> RunQuery:
    """`run` (a run's number; the latest by default) and `layers` (true or false)."""
    raw = params.get("run")
    # ASCII digits only (int() refuses some other scripts' digits); the column is an integer.
    if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 2**31 - 1):
        raise InvalidField("run", "must be a run's number: a whole number of at least 1")
    layers = params.get("layers", "true")
    if layers not in BOOLEANS:
        raise InvalidField("layers", "must be true or false")
    return RunQuery(None if raw is None else int(raw), BOOLEANS[layers])


def parse_list_query(params: Mapping[str, str]) -> tuple[str | None, int]:
    """`result` (pass or fail, after any override) and `limit`."""
    result = params.get("result") or None
    if result is not None and result not in RESULTS:
        raise InvalidField("result", "must be one of " + ", ".join(RESULTS))
    return result, parse_limit(params, DEFAULT_LIMIT, MAX_LIMIT)
