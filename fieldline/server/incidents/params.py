"""Query strings of the incident list; a bad parameter is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping

from fieldline.server.incidents.services import IncidentQuery
from fieldline.server.incidents.states import ACTIVE_STATES, STATES
from fieldline.server.tasks.params import choices
from fieldline.server.telemetry.params import parse_limit
from fieldline.settings import Settings


def parse_incident_query(params: Mapping[str, str], settings: Settings) -> IncidentQuery:
    """`state=open,isolating` (repeated or comma-separated; `active` for every state before
    closed), `limit`."""
    states: tuple[str, ...] = ()
    if "state" in params:
        raw = ",".join(getattr(params, "getlist", lambda n: [params[n]])("state"))
        states = choices({"state": raw.replace("active", ",".join(ACTIVE_STATES))}, "state", STATES)
    return IncidentQuery(
        states=states, limit=parse_limit(params, settings.page_size, settings.max_page_size)
    )
