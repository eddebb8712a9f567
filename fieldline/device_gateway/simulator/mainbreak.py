"""A main break in the fixture city, replayed every few minutes for the demo, through the
server's API as the people involved would work it.

One break at a time: a main (a pipe of at least 300 mm in service) near a pressure station is
chosen; the station's pressure falls well below the low-pressure rule's threshold and stays
there, so the scheduler's alarm rule raises and its incidents job opens an incident; one or two
"no water" calls near the main join it (`POST /api/v1/incidents`); a dispatcher confirms the
broken pipe (`POST /api/v1/incidents/{id}/isolate`) and the valve and repair tasks go to the
crews by auto-dispatch. Once the repair task is completed the pressure comes back (the alarm
clears) and the incident goes on by itself to closed. The next break comes when that one has
ended and the interval since it began has passed. `MainBreak.step` makes one decision on the
caller's clock, so the scenario runs in tests without sleeping.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shapely import Point

from fieldline.device_gateway.simulator.callcentre import (
    BURST_MIN_DIAMETER_MM,
    ApiError,
    Catalogue,
    Pipe,
    _caller,
    send_json,
)

STATION_RADIUS_M = 150.0  # a main this close to a pressure station is seen by it
DEFAULT_THRESHOLD_KPA = 250.0  # when the server has no low-pressure rule to read
DEPTH = 0.4  # the pressure falls to this share of the threshold: well below, past any deadband
ALARM_WAIT_S = 300.0  # no alarm by then (no scheduler running?): the callers call anyway
INCIDENT_WAIT_S = 120.0  # the incidents job takes the alarm within its intake interval
CALL_GAP_S = 20.0
CONFIRM_AFTER_S = 20.0  # the dispatcher reads the map before confirming the pipe
GIVE_UP_S = 3 * 3600.0  # a break not over by then is cancelled, so the next one can come
FIRST_AFTER_S = 60.0  # the crews get going first
LOOK_EVERY_S = 5.0
REPAIRED = ("completed", "verified")
ENDED = ("closed", "cancelled")
METRES_PER_DEGREE = 111_320.0
NO_WATER = (
    "No water from any tap since a few minutes ago",
    "Taps just stopped, the street is flooding outside",
    "Only a trickle, then nothing; water running down the road",
)


@dataclass(frozen=True)
class Station:
    id: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Site:
    """A main that may break and the pressure station that sees it."""

    main: Pipe
    station: Station
    distance_m: float


def _metres(lon: float, lat: float, ref_lat: float) -> tuple[float, float]:
    """Local equirectangular metres: good to a metre or so across one city."""
    return lon * math.cos(math.radians(ref_lat)) * METRES_PER_DEGREE, lat * METRES_PER_DEGREE


def break_sites(catalogue: Catalogue, city: Path, radius_m: float = STATION_RADIUS_M) -> list[Site]:
    """Every main in service within `radius_m` of a station reporting pressure, with the
    nearest such station."""
    features = json.loads((city / "stations.geojson").read_text())["features"]
    stations = [
        Station(f["id"], *f["geometry"]["coordinates"][:2])
        for f in features
        if "pressure_kpa" in f["properties"].get("metrics", ())
    ]
    if not stations:
        return []
    ref_lat = stations[0].lat
    points = {s.id: Point(_metres(s.lon, s.lat, ref_lat)) for s in stations}
    sites = []
    for pipe in catalogue.pipes:
        if (pipe.props.get("diameter_mm") or 0) < BURST_MIN_DIAMETER_MM:
            continue
        line = type(pipe.line)([_metres(x, y, ref_lat) for x, y in pipe.line.coords])
        distance, station = min((line.distance(points[s.id]), s.id) for s in stations)
        if distance <= radius_m:
            nearest = next(s for s in stations if s.id == station)
            sites.append(Site(pipe, nearest, round(distance, 1)))
    return sites


def call_point(site: Site, rng: random.Random) -> dict[str, float]:
    """Where a caller is: on the main near the station, so the call groups with the alarm."""
    line = site.main.line
    at = line.project(Point(site.station.lon, site.station.lat), normalized=True)
    point = line.interpolate(min(1.0, max(0.0, at + rng.uniform(-0.15, 0.15))), normalized=True)
    return {"lon": round(point.x, 7), "lat": round(point.y, 7)}


def chosen_pipe(detail: dict[str, Any], main_id: str) -> str:
    """The pipe the dispatcher confirms: the main where the water shows when the incident
    suggests it, else the incident's first suggestion, else that main."""
    suggested = [pipe["pipe_id"] for pipe in detail.get("suggested_pipes") or []]
    if main_id in suggested or not suggested:
        return main_id
    return str(suggested[0])


class BreakApi(Protocol):
    def low_pressure_threshold(self) -> float | None: ...
    def open_alarms(self, station_id: str) -> list[dict[str, Any]]: ...
    def active_incidents(self) -> list[dict[str, Any]]: ...
    def incident(self, incident_id: str) -> dict[str, Any]: ...
    def report(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def isolate(self, incident_id: str, pipe_id: str) -> dict[str, Any]: ...
    def cancel(self, incident_id: str, reason: str) -> dict[str, Any]: ...


class IncidentApi:
    """The server's alarm and incident endpoints, over HTTP."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1"
        self.timeout_s = timeout_s

    def _get(self, path: str, **query: str) -> dict[str, Any]:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return send_json("GET", f"{self.url}{path}{suffix}", None, self.timeout_s)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return send_json("POST", f"{self.url}{path}", body, self.timeout_s)

    def low_pressure_threshold(self) -> float | None:
        """The highest threshold of the enabled low-pressure rules (the first to raise)."""
        rules = self._get("/alarm-rules")["rules"]
        thresholds = [
            float(rule["threshold"])
            for rule in rules
            if rule["enabled"] and rule["metric"] == "pressure_kpa" and rule["kind"] == "low"
        ]
        return max(thresholds, default=None)

    def open_alarms(self, station_id: str) -> list[dict[str, Any]]:
        alarms: list[dict[str, Any]] = self._get("/alarms", state="open", station=station_id)[
            "alarms"
        ]
        return alarms

    def active_incidents(self) -> list[dict[str, Any]]:
        incidents: list[dict[str, Any]] = self._get("/incidents", state="active")["incidents"]
        return incidents

    def incident(self, incident_id: str) -> dict[str, Any]:
        return self._get(f"/incidents/{urllib.parse.quote(incident_id)}")

    def report(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._post("/incidents", body)

    def isolate(self, incident_id: str, pipe_id: str) -> dict[str, Any]:
        return self._post(
            f"/incidents/{urllib.parse.quote(incident_id)}/isolate", {"pipe_id": pipe_id}
        )

    def cancel(self, incident_id: str, reason: str) -> dict[str, Any]:
        return self._post(
            f"/incidents/{urllib.parse.quote(incident_id)}/cancel", {"reason": reason}
        )


# (station id, the pressure it falls to, or None: back to normal)
SetPressure = Callable[[str, float | None], None]


class MainBreak:
    """The scenario, one decision per `step`; `phase` says where the current break is."""

    def __init__(
        self,
        sites: list[Site],
        set_pressure: SetPressure,
        rng: random.Random,
        every_s: float,
        first_after_s: float = FIRST_AFTER_S,
    ) -> None:
        if not sites:
            raise ValueError("no main near a pressure station to break")
        if not every_s > 0:
            raise ValueError("every_s must be positive")
        self.sites, self.set_pressure, self.rng = sites, set_pressure, rng
        self.every_s, self.first_after_s = every_s, first_after_s
        self.phase = "waiting"
        self.next_at: float | None = None
        self.site: Site | None = None
        self.started = self.since = self.next_call_at = 0.0
        self.calls_left = 0
        self.alarm_id: str | None = None
        self.incident_id: str | None = None
        self.incident_state: str | None = None
        self.pressure_low = False
        self.breaks = 0

    def step(self, api: BreakApi, now: float) -> list[str]:
        """Whatever is due now; returns what happened, one line each (nothing: waiting)."""
        if self.phase == "waiting":
            return self._begin(api, now)
        assert self.site is not None
        if now - self.started >= GIVE_UP_S:
            return self._give_up(api, now)
        act = {
            "falling": self._falling,
            "alarmed": self._alarmed,
            "calling": self._calling,
            "confirming": self._confirming,
            "repairing": self._following,
            "restoring": self._following,
        }[self.phase]
        return act(api, now)

    def _begin(self, api: BreakApi, now: float) -> list[str]:
        if self.next_at is None:
            self.next_at = now + self.first_after_s
        if now < self.next_at:
            return []
        site = self.site = self.rng.choice(self.sites)
        threshold = api.low_pressure_threshold() or DEFAULT_THRESHOLD_KPA
        target = round(threshold * DEPTH, 1)
        self._pressure(target)
        self.breaks += 1
        self.phase, self.started, self.since = "falling", now, now
        self.calls_left = self.rng.choice((1, 2))
        self.alarm_id = self.incident_id = self.incident_state = None
        diameter = site.main.props.get("diameter_mm")
        return [
            f"main break #{self.breaks} on {site.main.id} ({diameter} mm): station "
            f"{site.station.id} ({site.distance_m:g} m away) falls to {target:g} kPa "
            f"(low-pressure alarm below {threshold:g})"
        ]

    def _pressure(self, target: float | None) -> None:
        assert self.site is not None
        self.set_pressure(self.site.station.id, target)
        self.pressure_low = target is not None

    def _falling(self, api: BreakApi, now: float) -> list[str]:
        assert self.site is not None
        alarms = [
            alarm
            for alarm in api.open_alarms(self.site.station.id)
            if alarm["metric"] == "pressure_kpa" and alarm["kind"] in ("low", "rate")
        ]
        if alarms:
            alarm = alarms[-1]  # newest first: the oldest open one is this break's
            self.alarm_id, self.phase, self.since = alarm["id"], "alarmed", now
            return [
                f"alarm {alarm['id']} raised at {self.site.station.id}: {alarm['condition']} "
                f"({alarm['value']} kPa)"
            ]
        if now - self.since >= ALARM_WAIT_S:
            self.phase, self.since = "calling", now
            return [f"no alarm from {self.site.station.id} after {ALARM_WAIT_S:g} s: calls anyway"]
        return []

    def _alarmed(self, api: BreakApi, now: float) -> list[str]:
        for listed in api.active_incidents():
            detail = api.incident(listed["id"])
            sources = detail.get("sources") or []
            if any(s["kind"] == "alarm" and s["ref"] == self.alarm_id for s in sources):
                self.incident_id, self.incident_state = detail["id"], detail["state"]
                self.phase, self.since = "calling", now
                return [f"alarm {self.alarm_id} is in incident {detail['id']} ({detail['state']})"]
        if now - self.since >= INCIDENT_WAIT_S:
            self.phase, self.since = "calling", now
            return [f"no incident for alarm {self.alarm_id} after {INCIDENT_WAIT_S:g} s: calls"]
        return []

    def _calling(self, api: BreakApi, now: float) -> list[str]:
        assert self.site is not None
        if now < self.next_call_at:
            return []
        caller = _caller(self.rng)
        body = {
            **call_point(self.site, self.rng),
            "description": self.rng.choice(NO_WATER),
            "caller": caller,
        }
        taken = api.report(body)
        self.incident_id, self.incident_state = taken["id"], taken["state"]
        self.calls_left -= 1
        self.next_call_at = now + CALL_GAP_S
        if self.calls_left <= 0:
            self.phase, self.since = "confirming", now
        how = "opened" if taken.get("opened") else "joined"
        return [f"call from {caller['name']} {how} incident {taken['id']}: {body['description']!r}"]

    def _confirming(self, api: BreakApi, now: float) -> list[str]:
        assert self.site is not None and self.incident_id is not None
        if now - self.since < CONFIRM_AFTER_S:
            return []
        detail = api.incident(self.incident_id)
        if detail["state"] != "open":  # someone on the map was quicker
            self.phase = "repairing"
            return [f"incident {self.incident_id} is {detail['state']} already: following it"]
        pipe_id = chosen_pipe(detail, self.site.main.id)
        try:
            detail = api.isolate(self.incident_id, pipe_id)
        except ApiError as exc:
            lines = [f"isolating {pipe_id} refused: {exc}"]
            return lines + self._give_up(api, now)
        self.phase, self.incident_state = "repairing", detail["state"]
        tasks = detail.get("tasks") or []
        closes = sum(1 for task in tasks if task["role"] == "close_valve")
        repairs = [task["id"] for task in tasks if task["role"] == "repair"]
        return [
            f"dispatcher confirms {pipe_id} for incident {self.incident_id}: {closes} valve(s) "
            f"to close, repair {', '.join(repairs) or 'none'}; "
            f"{(detail.get('isolation') or {}).get('customers', '?')} customers without water"
        ]

    def _following(self, api: BreakApi, now: float) -> list[str]:
        assert self.site is not None and self.incident_id is not None
        detail = api.incident(self.incident_id)
        lines = []
        if detail["state"] != self.incident_state:
            lines.append(f"incident {self.incident_id}: {self.incident_state} -> {detail['state']}")
            self.incident_state = detail["state"]
        repaired = [
            task
            for task in detail.get("tasks") or []
            if task["role"] == "repair" and task["state"] in REPAIRED
        ]
        if self.pressure_low and (repaired or detail["state"] in ENDED):
            self._pressure(None)
            self.phase = "restoring"
            done = f"repair {repaired[0]['id']} {repaired[0]['state']}" if repaired else "ended"
            lines.append(f"{done}: pressure at {self.site.station.id} recovering")
        if detail["state"] in ENDED:
            lines.append(self._end(now))
        return lines

    def _give_up(self, api: BreakApi, now: float) -> list[str]:
        lines = []
        if self.incident_id is not None:
            try:
                api.cancel(self.incident_id, "the demo's main break did not run its course")
                lines.append(f"incident {self.incident_id} cancelled")
            except ApiError as exc:
                lines.append(f"incident {self.incident_id} not cancelled: {exc}")
        return [*lines, self._end(now)]

    def _end(self, now: float) -> str:
        if self.pressure_low:
            self._pressure(None)
        assert self.next_at is not None
        self.next_at = max(self.started + self.every_s, now)
        self.phase = "waiting"
        minutes = (now - self.started) / 60
        return (
            f"main break #{self.breaks} over after {minutes:.1f} min "
            f"({self.incident_id or 'no incident'} {self.incident_state or ''}); "
            f"next in {(self.next_at - now) / 60:.1f} min"
        )

    def stop(self) -> None:
        """The simulation ends: the station back to normal."""
        if self.pressure_low:
            self._pressure(None)


def replay_main_breaks(
    scenario: MainBreak,
    api: BreakApi,
    stop: threading.Event,
    report: Callable[[str], None] = lambda line: None,
    clock: Callable[[], float] = time.monotonic,
    look_every_s: float = LOOK_EVERY_S,
) -> int:
    """Step the scenario every `look_every_s` until `stop` is set; returns how many breaks
    began. A server that refuses or cannot be reached is reported and asked again later."""
    while True:
        try:
            lines = scenario.step(api, clock())
        except ApiError as exc:
            lines = [f"no answer: {exc}"]
        for line in lines:
            report(line)
        if stop.wait(look_every_s):
            scenario.stop()
            return scenario.breaks
