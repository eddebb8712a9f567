"""`/api/v1/network`: the valve isolation trace."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from fieldline.server.auth import requires
from fieldline.server.network.params import parse_isolation_query
from fieldline.server.network.payloads import isolation_body
from fieldline.server.network.services import isolation
from fieldline.server.resources import db

blueprint = Blueprint("network", __name__)


@blueprint.get("/isolation")
@requires("assets:read")
def isolation_trace() -> Any:
    """A main bursts: which valves to close, and who is left without water."""
    return isolation_body(isolation(db(), parse_isolation_query(request.args)))
