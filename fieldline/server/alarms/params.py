"""Query-string parsing for the alarm list; a bad parameter is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping

from fieldline.server.alarms.rules import SEVERITIES
from fieldline.server.alarms.services import AlarmQuery
from fieldline.server.alarms.states import STATES
from fieldline.server.tasks.params import choices
from fieldline.server.telemetry.params import parse_limit
from fieldline.settings import Settings


def parse_alarm_query(params: Mapping[str, str], settings: Settings) -> AlarmQuery:
    """`state=active,acknowledged` (or `state=open` for both), `station=S-1,S-2`,
    `severity=critical,high`, `limit`."""
    states: tuple[str, ...] = ()
    if "state" in params:
        raw = ",".join(getattr(params, "getlist", lambda n: [params[n]])("state"))
        states = choices({"state": raw.replace("open", "active,acknowledged")}, "state", STATES)
    stations = tuple(
        station.strip()
        for raw in getattr(params, "getlist", lambda n: [params[n]])("station")
        for station in raw.split(",")
        if station.strip()
    )
    return AlarmQuery(
        states=states,
        stations=stations,
        severities=choices(params, "severity", SEVERITIES) if "severity" in params else (),
        limit=parse_limit(params, settings.page_size, settings.max_page_size),
    )
