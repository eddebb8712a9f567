"""The demo's main break: which main and station, the station's pressure, and each decision of
the scenario from the pressure falling to the incident closed, with a fake API and clock; then
its calls and isolation through the real API."""

from __future__ import annotations

import itertools
import math
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shapely import Point
from sqlalchemy.orm import Session

from fieldline.device_gateway.simulator import Catalogue, IncidentApi, MainBreak, break_sites
from fieldline.device_gateway.simulator import mainbreak as mb
from fieldline.device_gateway.simulator.callcentre import ApiError
from fieldline.device_gateway.simulator.telemetry import (
    BREAK_TIME_CONSTANT_S,
    SimulatedStation,
    StationSpec,
)
from tests.conftest import load_fixture

CITY = Path(__file__).resolve().parents[2] / "fixtures" / "city"


@pytest.fixture(scope="module")
def sites() -> list[mb.Site]:
    return break_sites(Catalogue(CITY), CITY)


def _metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine: independent of the scenario's local projection."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def test_the_sites_are_mains_in_service_near_a_station_that_reports_pressure(
    sites: list[mb.Site],
) -> None:
    pipes = {f["id"]: f for f in load_fixture("pipes")}
    stations = {f["id"]: f for f in load_fixture("stations")}
    assert len(sites) > 10
    for site in sites:
        props = pipes[site.main.id]["properties"]
        assert props["status"] == "in_service" and props["diameter_mm"] >= 300
        assert "pressure_kpa" in stations[site.station.id]["properties"]["metrics"]
        assert site.distance_m <= mb.STATION_RADIUS_M
        # The nearest vertex is no nearer than the line itself (to a metre's rounding).
        station = tuple(stations[site.station.id]["geometry"]["coordinates"][:2])
        vertices = pipes[site.main.id]["geometry"]["coordinates"]
        nearest_vertex = min(_metres_between(station, tuple(v[:2])) for v in vertices)
        assert site.distance_m <= nearest_vertex + 2.0
    assert not [s for s in sites if s.station.id in ("S-000008", "S-000009", "S-000010")]


def test_calls_come_from_the_main_near_its_station(sites: list[mb.Site]) -> None:
    rng = random.Random(3)
    for site in sites[:20]:
        point = mb.call_point(site, rng)
        on_line = site.main.line.distance(Point(point["lon"], point["lat"]))
        assert on_line < 1e-6
        # Within the incident's default grouping radius of the station, which the alarm is at.
        station = (site.station.lon, site.station.lat)
        assert _metres_between(station, (point["lon"], point["lat"])) < 300


def _station(seed: int = 0) -> tuple[SimulatedStation, datetime]:
    start = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    spec = StationSpec("S-000004", ("pressure_kpa",), interval_s=10.0)
    return SimulatedStation(spec, start, seed), start


def _pressures(station: SimulatedStation, start: datetime, seconds: int) -> list[float]:
    return [
        p.payload["metrics"]["pressure_kpa"]
        for p in station.advance_to(start + timedelta(seconds=seconds))
    ]


def test_a_station_falls_to_the_break_target_and_recovers_when_it_is_taken_away() -> None:
    broken, start = _station()
    normal, _ = _station()
    before = _pressures(broken, start, 60)
    assert before == _pressures(normal, start, 60)  # nothing changes without a break
    broken.loss.target_kpa = 100.0
    falling = _pressures(broken, start, 60 + 6 * int(BREAK_TIME_CONSTANT_S))
    usual = _pressures(normal, start, 60 + 6 * int(BREAK_TIME_CONSTANT_S))
    assert falling[0] == pytest.approx(usual[0], abs=0.2)  # noticed from the next report on
    assert all(b <= a + 0.01 for a, b in itertools.pairwise(falling))
    assert falling[-1] == pytest.approx(100.0, abs=2.0) and min(usual) > 350
    broken.loss.target_kpa = None
    rising = _pressures(broken, start, 60 + 16 * int(BREAK_TIME_CONSTANT_S))
    usual = _pressures(normal, start, 60 + 16 * int(BREAK_TIME_CONSTANT_S))
    assert rising[0] < 110 and rising[-1] == pytest.approx(usual[-1], abs=1.0)


class FakeApi:
    """The server as the scenario sees it: an alarm at the station once `alarm_at` passed, an
    incident the alarm opens, calls that join it, an isolation making a repair task."""

    def __init__(self, clock: list[float], alarm_at: float | None = 0.0) -> None:
        self.clock = clock
        self.alarm_at = alarm_at
        self.threshold: float | None = 250.0
        self.incidents: dict[str, dict[str, Any]] = {}
        self.reports: list[dict[str, Any]] = []
        self.isolated: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.suggested: list[str] = []
        self.refuse_isolation = False

    def low_pressure_threshold(self) -> float | None:
        return self.threshold

    def open_alarms(self, station_id: str) -> list[dict[str, Any]]:
        if self.alarm_at is None or self.clock[0] < self.alarm_at:
            return []
        self.incidents.setdefault(
            "I-000001",
            {
                "id": "I-000001",
                "state": "open",
                "title": "Low pressure",
                "sources": [{"kind": "alarm", "ref": "A-000009"}],
                "tasks": [],
            },
        )
        alarm = {"metric": "pressure_kpa", "kind": "low", "condition": "pressure_kpa < 250"}
        return [alarm | {"id": "A-000009", "value": 120.0, "station_id": station_id}]

    def active_incidents(self) -> list[dict[str, Any]]:
        return [i for i in self.incidents.values() if i["state"] not in mb.ENDED]

    def incident(self, incident_id: str) -> dict[str, Any]:
        return self.incidents[incident_id] | {
            "suggested_pipes": [{"pipe_id": p} for p in self.suggested]
        }

    def report(self, body: dict[str, Any]) -> dict[str, Any]:
        self.reports.append(body)
        opened = not self.incidents
        incident = self.incidents.setdefault(
            "I-000001", {"id": "I-000001", "state": "open", "sources": [], "tasks": []}
        )
        incident["sources"].append({"kind": "call", "ref": None})
        return incident | {"opened": opened, "title": "No water: " + body["description"]}

    def isolate(self, incident_id: str, pipe_id: str) -> dict[str, Any]:
        if self.refuse_isolation:
            raise ApiError("409 from isolate: nothing to isolate")
        self.isolated.append((incident_id, pipe_id))
        incident = self.incidents[incident_id]
        incident["state"] = "isolating"
        incident["tasks"] = [
            {"id": "T-1", "role": "close_valve", "state": "assigned"},
            {"id": "T-2", "role": "close_valve", "state": "assigned"},
            {"id": "T-3", "role": "repair", "state": "assigned"},
        ]
        return incident | {"isolation": {"customers": 12}}

    def cancel(self, incident_id: str, reason: str) -> dict[str, Any]:
        self.cancelled.append(incident_id)
        self.incidents[incident_id]["state"] = "cancelled"
        return self.incidents[incident_id]

    def task(self, task_id: str, state: str) -> None:
        for incident in self.incidents.values():
            for task in incident["tasks"]:
                if task["id"] == task_id:
                    task["state"] = state


class Run:
    """The scenario stepped on a fake clock, every 5 s as the thread does."""

    def __init__(self, scenario: MainBreak, api: FakeApi, clock: list[float]) -> None:
        self.scenario, self.api, self.clock = scenario, api, clock
        self.lines: list[str] = []

    def until(self, phase: str, limit_s: float = 4000.0) -> None:
        end = self.clock[0] + limit_s
        while self.scenario.phase != phase:
            assert self.clock[0] < end, f"stuck in {self.scenario.phase}: {self.lines}"
            self.lines += self.scenario.step(self.api, self.clock[0])
            self.clock[0] += 5.0


def _scenario(
    sites: list[mb.Site], every_s: float = 480.0
) -> tuple[MainBreak, list[tuple[str, float | None]], list[float]]:
    pressures: list[tuple[str, float | None]] = []
    scenario = MainBreak(
        sites, lambda s, kpa: pressures.append((s, kpa)), random.Random(1), every_s, 60.0
    )
    return scenario, pressures, [1000.0]


def test_a_break_runs_from_the_pressure_falling_to_the_incident_closed(
    sites: list[mb.Site],
) -> None:
    scenario, pressures, clock = _scenario(sites)
    api = FakeApi(clock, alarm_at=1150.0)
    run = Run(scenario, api, clock)
    run.until("falling")
    site = scenario.site
    assert site is not None and clock[0] - 5 >= 1060.0  # not before the first minute
    assert pressures == [(site.station.id, 100.0)]  # 40 % of the rule's 250 kPa
    api.suggested = ["P-999999", site.main.id]
    run.until("confirming")
    # The alarm came first and opened the incident; the calls joined it, near the main.
    assert [line for line in run.lines if "joined incident I-000001" in line]
    assert 1 <= len(api.reports) <= 2 and not api.isolated
    assert all(body["caller"]["phone"].startswith("+44 7700 900") for body in api.reports)
    run.until("repairing")
    # The main where the water shows is confirmed, not the first suggestion.
    assert api.isolated == [("I-000001", site.main.id)]
    for _ in range(20):  # valves closed, repair under way: the pressure stays low
        run.lines += scenario.step(api, clock[0])
        clock[0] += 5.0
    api.task("T-1", "completed")
    api.incidents["I-000001"]["state"] = "repairing"
    run.lines += scenario.step(api, clock[0])
    assert pressures == [(site.station.id, 100.0)] and scenario.phase == "repairing"
    api.task("T-3", "completed")
    run.until("restoring")
    assert pressures[-1] == (site.station.id, None)
    api.incidents["I-000001"]["state"] = "closed"
    run.until("waiting")
    assert any("isolating -> repairing" in line for line in run.lines)
    assert "over after" in run.lines[-1] and not api.cancelled
    # One at a time: the next break waits for the interval from this one's start.
    assert scenario.next_at == max(scenario.started + 480.0, clock[0] - 5.0)


def test_the_next_break_waits_for_the_interval_after_a_quick_one(sites: list[mb.Site]) -> None:
    scenario, pressures, clock = _scenario(sites, every_s=3600.0)
    api = FakeApi(clock)
    run = Run(scenario, api, clock)
    run.until("falling")
    started = scenario.started
    run.until("repairing")
    api.cancel("I-000001", "a person cancelled it")  # on the map, not by the scenario
    run.until("waiting")
    assert pressures[-1][1] is None and scenario.next_at == started + 3600.0
    assert scenario.step(api, started + 3599.0) == [] and scenario.phase == "waiting"
    assert scenario.step(api, started + 3600.0) and scenario.phase == "falling"
    assert scenario.breaks == 2


def test_without_an_alarm_the_calls_open_the_incident(sites: list[mb.Site]) -> None:
    scenario, _, clock = _scenario(sites)
    api = FakeApi(clock, alarm_at=None)
    api.threshold = None  # no rule on the server: the usual threshold
    run = Run(scenario, api, clock)
    run.until("falling")
    assert "falls to 100 kPa" in run.lines[0]
    run.until("calling", limit_s=mb.ALARM_WAIT_S + 10)
    run.until("confirming")
    assert "opened incident I-000001" in run.lines[2]
    api.suggested = ["P-000777"]  # the main is not suggested: the first suggestion is taken
    run.until("repairing")
    assert api.isolated == [("I-000001", "P-000777")]


def test_a_refused_isolation_cancels_the_incident_and_restores_the_pressure(
    sites: list[mb.Site],
) -> None:
    scenario, pressures, clock = _scenario(sites)
    api = FakeApi(clock)
    api.refuse_isolation = True
    run = Run(scenario, api, clock)
    run.until("falling")
    run.until("waiting")
    assert api.cancelled == ["I-000001"] and pressures[-1][1] is None
    assert any("refused" in line for line in run.lines)


def test_a_break_that_never_ends_is_given_up(sites: list[mb.Site]) -> None:
    scenario, pressures, clock = _scenario(sites)
    api = FakeApi(clock)
    run = Run(scenario, api, clock)
    run.until("falling")
    run.until("waiting", limit_s=mb.GIVE_UP_S + 60)
    assert api.cancelled == ["I-000001"] and pressures[-1][1] is None
    assert clock[0] - scenario.started >= mb.GIVE_UP_S


def test_an_unreachable_server_is_reported_and_the_station_restored_on_stop(
    sites: list[mb.Site],
) -> None:
    scenario, pressures, clock = _scenario(sites)
    api = FakeApi(clock)
    run = Run(scenario, api, clock)
    run.until("falling")

    class Down(FakeApi):
        def open_alarms(self, station_id: str) -> list[dict[str, Any]]:
            raise ApiError("cannot reach http://127.0.0.1:1/api/v1/alarms")

    lines: list[str] = []
    stop = threading.Event()
    ticks = iter(range(3))

    def clock_then_stop() -> float:
        if next(ticks, None) == 2:
            stop.set()
        return clock[0]

    mb.replay_main_breaks(scenario, Down(clock), stop, lines.append, clock_then_stop, 0.0)
    assert lines and all(line.startswith("no answer: cannot reach") for line in lines)
    assert pressures[-1][1] is None  # stopped: the station back to normal


# --- against the real server ---------------------------------------------------------------


def test_calls_and_the_isolation_go_through_the_api(
    sites: list[mb.Site], server: str, session: Session
) -> None:
    """No scheduler here: no alarm comes, so the calls open the incident; the dispatcher's
    isolation makes the valve and repair tasks; a break given up cancels it."""
    scenario, pressures, clock = _scenario(sites)
    api = IncidentApi(server)
    assert api.low_pressure_threshold() in (None, 250.0)
    scenario.step(api, clock[0])
    clock[0] += 60.0
    scenario.step(api, clock[0])
    site = scenario.site
    assert site is not None and scenario.phase == "falling"
    clock[0] += mb.ALARM_WAIT_S
    assert scenario.step(api, clock[0])[0].startswith("no alarm")
    while scenario.phase != "repairing":
        clock[0] += mb.CALL_GAP_S
        scenario.step(api, clock[0])
    assert scenario.incident_id is not None
    detail = api.incident(scenario.incident_id)
    assert detail["state"] == "isolating"
    assert 1 <= len([s for s in detail["sources"] if s["kind"] == "call"]) <= 2
    roles = [task["role"] for task in detail["tasks"]]
    assert "repair" in roles and roles.count("close_valve") >= 1
    assert detail["pipe_id"] in {site.main.id, detail["suggested_pipes"][0]["pipe_id"]}
    clock[0] += mb.GIVE_UP_S
    lines = scenario.step(api, clock[0])
    assert f"incident {scenario.incident_id} cancelled" in lines
    assert api.incident(scenario.incident_id)["state"] == "cancelled"
    assert pressures[-1] == (site.station.id, None)
