"""Simulated crews taking jobs from their inbox, on the simulated clock: the statuses they send,
in order and at plausible times, and the trace that shows them getting there."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from itertools import count, pairwise
from pathlib import Path
from typing import Any

import pytest
import shapely
from pyproj import Transformer

from fieldline.device_gateway.simulator import CrewSpec, Publication, Simulator, WorkPace
from fieldline.device_gateway.simulator.jobs import ACCEPT_DELAY_S, ARRIVAL_RADIUS_M, WORK_MINUTES

CITY = Path(__file__).resolve().parents[2] / "fixtures" / "city"
TO_METRES = Transformer.from_crs(4326, 3067, always_xy=True)
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
_message_ids = count(1)


def features(layer: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads((CITY / f"{layer}.geojson").read_text())["features"]
    return found


def metres(lon: float, lat: float) -> tuple[float, float]:
    x, y = TO_METRES.transform(lon, lat)
    return float(x), float(y)


def asset(layer: str, feature: dict[str, Any], role: str) -> dict[str, Any]:
    """An asset as the server lists it to a handheld: a line by its middle."""
    geometry = shapely.geometry.shape(feature["geometry"])
    point = (
        geometry.interpolate(0.5, normalized=True) if geometry.geom_type != "Point" else geometry
    )
    return {"layer": layer, "id": feature["id"], "role": role, "lon": point.x, "lat": point.y}


def assigned(task_id: str, kind: str, priority: str, assets: list[dict[str, Any]]) -> bytes:
    """A `task.assigned` inbox message in the server's shape."""
    targets = [a for a in assets if a["role"] == "target"]
    site = {"lon": targets[0]["lon"], "lat": targets[0]["lat"]} if targets else None
    task = {"id": task_id, "kind": kind, "priority": priority, "state": "assigned"}
    task |= {"title": f"{kind} {task_id}", "site": site, "assets": assets, "mode": None}
    return message("task.assigned", task_id, task=task)


def message(kind: str, task_id: str, **fields: Any) -> bytes:
    body = {"message_id": f"m-{next(_message_ids)}", "kind": kind, "task_id": task_id}
    return json.dumps(body | {"action": "assign", "at": START.isoformat()} | fields).encode()


def statuses(publications: list[Publication], task_id: str | None = None) -> list[Publication]:
    return [
        p
        for p in publications
        if "/tasks/" in p.topic and (task_id is None or f"/tasks/{task_id}/" in p.topic)
    ]


def status_names(publications: list[Publication], task_id: str) -> list[str]:
    return [p.payload["status"] for p in statuses(publications, task_id)]


def at(publication: Publication) -> datetime:
    return datetime.fromisoformat(publication.payload["ts"])


def track(publications: list[Publication]) -> list[tuple[datetime, float, float, float]]:
    """The true track behind the position fixes: (time, x, y, measured speed)."""
    points = [
        (fix.ts, fix.true_x, fix.true_y, fix.speed_mps)
        for p in publications
        if p.fixes
        for fix in p.fixes
    ]
    return sorted(points)


def run_until(simulation: Simulator, seconds: float, step_s: float = 10.0) -> list[Publication]:
    return simulation.run(seconds, step_s=step_s)


def a_valve_away(simulation: Simulator, low_m: float, high_m: float) -> dict[str, Any]:
    """A valve between low_m and high_m from where the crew stands now."""
    pose = simulation.crews[0].mover.pose()
    for feature in features("valves"):
        distance = math.dist(metres(*feature["geometry"]["coordinates"]), (pose.x, pose.y))
        if low_m <= distance <= high_m:
            return feature
    raise AssertionError("no valve at that distance")


def test_an_assigned_job_is_accepted_driven_to_worked_and_completed() -> None:
    simulation = Simulator(START, [CrewSpec("C-1", gap_every_s=1e9)], seed=4, pace=WorkPace())
    valve = a_valve_away(simulation, 700, 1200)
    site = metres(*valve["geometry"]["coordinates"])
    before = run_until(simulation, 120)
    sent_at = simulation.now
    assert simulation.deliver(
        "C-1", assigned("T-1", "valve_operation", "P3", [asset("valves", valve, "target")])
    )
    publications = before + run_until(simulation, 3 * 3600)

    reports = statuses(publications, "T-1")
    assert [p.payload["status"] for p in reports] == [
        "accepted",
        "en_route",
        "on_site",
        "completed",
    ]
    accepted, en_route, on_site, completed = (at(p) for p in reports)
    assert ACCEPT_DELAY_S[0] <= (accepted - sent_at).total_seconds() <= ACCEPT_DELAY_S[1] + 5
    assert accepted < en_route < on_site < completed
    low, high = WORK_MINUTES["valve_operation"]
    assert low * 60 - 5 <= (completed - on_site).total_seconds() <= high * 60 + 5
    for report in reports:  # sent when tapped, with the handheld's latest fix
        assert abs(report.at - at(report)) < timedelta(milliseconds=1)
        assert report.topic == "fieldline/crews/C-1/tasks/T-1/status"
        assert {"lat", "lon"} <= set(report.payload)

    truth = track(publications)
    on_the_way = [(x, y) for ts, x, y, _ in truth if en_route <= ts <= on_site]
    distances = [math.dist(point, site) for point in on_the_way]
    assert distances[0] > 500 and distances[-1] <= ARRIVAL_RADIUS_M + 15  # 5 s of movement
    # It drives there: the distance keeps falling over each minute of the way.
    minutes = distances[::12]
    assert sum(b < a for a, b in pairwise(minutes)) >= 0.7 * (len(minutes) - 1)
    at_work = [
        (x, y, speed)
        for ts, x, y, speed in truth
        # after the last metres on foot, at about a metre a second
        if on_site + timedelta(seconds=ARRIVAL_RADIUS_M + 5) <= ts < completed
    ]
    assert at_work and max(math.dist((x, y), site) for x, y, _ in at_work) < 1.0
    assert all(speed == 0 for _, _, speed in at_work)
    done_x, done_y = metres(reports[-1].payload["lon"], reports[-1].payload["lat"])
    assert math.dist((done_x, done_y), site) < 60  # a GPS fix on the spot
    after = [
        math.dist((x, y), site) for ts, x, y, _ in truth if ts > completed + timedelta(minutes=30)
    ]
    assert max(after) > 100  # and it goes back to roaming


def test_a_job_cancelled_on_the_way_is_dropped_and_the_next_one_taken() -> None:
    simulation = Simulator(START, [CrewSpec("C-1", gap_every_s=1e9)], seed=8, pace=WorkPace())
    far = a_valve_away(simulation, 900, 1500)
    near = a_valve_away(simulation, 300, 600)
    simulation.deliver(
        "C-1", assigned("T-far", "inspection", "P2", [asset("valves", far, "target")])
    )
    publications = run_until(simulation, 60 * 5)
    assert status_names(publications, "T-far") == ["accepted", "en_route"]
    simulation.deliver(
        "C-1", assigned("T-near", "inspection", "P3", [asset("valves", near, "target")])
    )
    publications += run_until(simulation, 100)
    simulation.deliver("C-1", message("task.cancelled", "T-far", note="duplicate call"))
    publications += run_until(simulation, 2 * 3600)
    assert status_names(publications, "T-far") == ["accepted", "en_route"]
    assert status_names(publications, "T-near") == ["accepted", "en_route", "on_site", "completed"]
    crew = simulation.crews[0]
    assert not crew.mover.hold and crew.jobs.current is None


def test_a_cancel_while_working_frees_the_crew_at_once() -> None:
    simulation = Simulator(START, [CrewSpec("C-1", gap_every_s=1e9)], seed=2, pace=WorkPace())
    valve = a_valve_away(simulation, 200, 500)
    simulation.deliver("C-1", assigned("T-1", "repair", "P2", [asset("valves", valve, "target")]))
    publications = run_until(simulation, 20 * 60)
    assert status_names(publications, "T-1") == ["accepted", "en_route", "on_site"]
    simulation.deliver("C-1", message("task.transferred", "T-1", to_crew="C-2"))
    odometer = simulation.crews[0].mover.odometer_m
    publications += run_until(simulation, 3 * 3600)
    assert status_names(publications, "T-1") == ["accepted", "en_route", "on_site"]
    assert simulation.crews[0].mover.odometer_m > odometer + 500  # roaming again


def test_queued_jobs_go_most_urgent_first() -> None:
    simulation = Simulator(START, [CrewSpec("C-1", gap_every_s=1e9)], seed=5, pace=WorkPace())
    valves = [a_valve_away(simulation, low, low + 200) for low in (200, 500, 800)]
    simulation.deliver(
        "C-1", assigned("T-a", "repair", "P3", [asset("valves", valves[0], "target")])
    )
    publications = run_until(simulation, 20 * 60)
    assert status_names(publications, "T-a")[-1] == "on_site"  # busy for 30-90 minutes
    simulation.deliver(
        "C-1", assigned("T-low", "inspection", "P4", [asset("valves", valves[1], "target")])
    )
    publications += run_until(simulation, 3 * 60)
    assert status_names(publications, "T-low") == ["accepted"]  # first in the queue
    simulation.deliver(
        "C-1", assigned("T-urgent", "repair", "P1", [asset("valves", valves[2], "target")])
    )
    publications += run_until(simulation, 6 * 3600)
    order = [
        (p.payload["status"], p.topic.split("/")[4])
        for p in statuses(publications)
        if p.payload["status"] == "en_route"
    ]
    assert order == [("en_route", "T-a"), ("en_route", "T-urgent"), ("en_route", "T-low")]
    for task_id in ("T-a", "T-low", "T-urgent"):
        assert status_names(publications, task_id) == [
            "accepted",
            "en_route",
            "on_site",
            "completed",
        ]


def test_repeated_foreign_and_unreadable_messages_change_nothing() -> None:
    simulation = Simulator(START, [CrewSpec("C-1", gap_every_s=1e9)], seed=1, pace=WorkPace())
    valve = a_valve_away(simulation, 100, 2000)
    offer = assigned("T-1", "valve_operation", "P3", [asset("valves", valve, "target")])
    assert simulation.deliver("C-1", offer)
    assert simulation.deliver("C-1", offer)  # QoS 1 may deliver twice: one job
    assert not simulation.deliver("C-9", offer)  # no such crew here
    assert not simulation.deliver("C-1", b"\xff not json")
    assert not simulation.deliver("C-1", b"[1, 2]")
    assert simulation.deliver("C-1", message("task.due_soon", "T-1"))  # not for the simulation
    publications = run_until(simulation, 3 * 3600)
    assert status_names(publications, "T-1") == ["accepted", "en_route", "on_site", "completed"]


def test_a_share_of_offers_is_left_to_time_out() -> None:
    simulation = Simulator(
        START, [CrewSpec("C-1", gap_every_s=1e9)], seed=3, pace=WorkPace(decline_share=0.3)
    )
    valve = a_valve_away(simulation, 100, 2000)
    for number in range(200):
        simulation.deliver(
            "C-1", assigned(f"T-{number}", "inspection", "P4", [asset("valves", valve, "target")])
        )
    publications = run_until(simulation, 120)
    accepted = [p for p in statuses(publications) if p.payload["status"] == "accepted"]
    assert 0.6 * 200 <= len(accepted) <= 0.8 * 200
    with pytest.raises(ValueError):
        WorkPace(decline_share=1.5)
    with pytest.raises(ValueError):
        WorkPace(speed=0)


def test_work_speed_divides_reaction_and_work_not_travel() -> None:
    def durations(speed: float) -> tuple[float, float]:
        simulation = Simulator(
            START, [CrewSpec("C-1", gap_every_s=1e9)], seed=6, pace=WorkPace(speed)
        )
        valve = a_valve_away(simulation, 600, 900)
        simulation.deliver(
            "C-1", assigned("T-1", "repair", "P2", [asset("valves", valve, "target")])
        )
        reports = statuses(run_until(simulation, 3 * 3600, step_s=5))
        _accepted, en_route, on_site, completed = (at(p) for p in reports)
        return (on_site - en_route).total_seconds(), (completed - on_site).total_seconds()

    drive_1, work_1 = durations(1.0)
    drive_60, work_60 = durations(60.0)
    low, high = WORK_MINUTES["repair"]
    assert low * 60 <= work_1 <= high * 60 + 5
    assert low <= work_60 <= high + 6  # the next fix or wake-up after the work ends
    assert drive_60 > 40 and 0.5 < drive_60 / drive_1 < 2  # the road is as long as ever


def test_meter_reading_visits_each_meter() -> None:
    simulation = Simulator(START, [CrewSpec("C-1", gap_every_s=1e9)], seed=9, pace=WorkPace())
    by_pipe: dict[str, list[dict[str, Any]]] = {}
    for feature in features("meters"):
        by_pipe.setdefault(feature["properties"]["pipe"], []).append(feature)
    street = next(meters for meters in by_pipe.values() if len(meters) >= 3)[:3]
    simulation.deliver(
        "C-1", assigned("T-m", "meter_reading", "P4", [asset("meters", m, "meter") for m in street])
    )
    publications = run_until(simulation, 3 * 3600)
    reports = statuses(publications, "T-m")
    assert [p.payload["status"] for p in reports] == [
        "accepted",
        "en_route",
        "on_site",
        "completed",
    ]
    assert reports[-1].payload["note"] == "3 meter(s) read"
    on_site, completed = at(reports[2]), at(reports[3])
    truth = [(ts, x, y) for ts, x, y, _ in track(publications) if on_site <= ts <= completed]
    for meter in street:
        place = metres(*meter["geometry"]["coordinates"])
        standing = [ts for ts, x, y in truth if math.dist((x, y), place) < 1.0]
        # At each meter for a few minutes (fixes every 5 s).
        assert len(standing) * 5 >= WORK_MINUTES["meter_reading"][0] * 60 - 10, meter["id"]


def test_a_patrol_follows_its_pipes_and_stops_at_the_checkpoints() -> None:
    simulation = Simulator(
        START, [CrewSpec("C-1", mode="walk", gap_every_s=1e9)], seed=7, pace=WorkPace()
    )
    pipes = {f["id"]: f for f in features("pipes")}
    # Three pipes joined end to end, and a hydrant on one of them.
    hydrants_on = {h["properties"]["pipe"]: h for h in features("hydrants")}
    at_node: dict[str, list[str]] = {}
    for pipe in pipes.values():
        if pipe["properties"]["status"] == "in_service":
            for end in ("from_node", "to_node"):
                at_node.setdefault(pipe["properties"][end], []).append(pipe["id"])
    chain = []
    for first in pipes.values():
        if first["id"] not in hydrants_on:
            continue
        chain = [first["id"]]
        node = first["properties"]["to_node"]
        while len(chain) < 3:
            onward = [p for p in at_node.get(node, []) if p not in chain]
            if not onward:
                break
            chain.append(onward[0])
            props = pipes[onward[0]]["properties"]
            node = props["to_node"] if props["from_node"] == node else props["from_node"]
        if len(chain) == 3:
            break
    hydrant = hydrants_on[chain[0]]
    assets = [asset("pipes", pipes[p], "pipe") for p in chain] + [
        asset("hydrants", hydrant, "checkpoint")
    ]
    simulation.deliver("C-1", assigned("T-p", "patrol", "P4", assets))
    publications = run_until(simulation, 4 * 3600)
    reports = statuses(publications, "T-p")
    assert [p.payload["status"] for p in reports] == [
        "accepted",
        "en_route",
        "on_site",
        "completed",
    ]
    assert reports[-1].payload["note"] == "patrol done, 1 checkpoint(s) checked"
    on_site, completed = at(reports[2]), at(reports[3])
    walked = [
        (x, y)
        for ts, x, y, _ in track(publications)
        if on_site - timedelta(seconds=10) <= ts <= completed
    ]
    path = shapely.LineString(walked)
    for pipe_id in chain:
        line = shapely.LineString([metres(*xy) for xy in pipes[pipe_id]["geometry"]["coordinates"]])
        covered = line.intersection(path.buffer(15)).length / line.length
        assert covered > 0.9, pipe_id
    checkpoint = metres(*hydrant["geometry"]["coordinates"])
    still = [
        ts
        for ts, x, y, speed in track(publications)
        if math.dist((x, y), checkpoint) < 1 and speed == 0
    ]
    assert len(still) * 5 >= WORK_MINUTES["patrol"][0] * 60 - 10


def test_statuses_tapped_offline_go_out_in_order_when_back() -> None:
    simulation = Simulator(
        START, [CrewSpec("C-1", gap_every_s=90)], seed=11, pace=WorkPace(speed=5)
    )
    valve = a_valve_away(simulation, 500, 1500)
    simulation.deliver(
        "C-1", assigned("T-1", "inspection", "P3", [asset("valves", valve, "target")])
    )
    publications = run_until(simulation, 2 * 3600)
    reports = statuses(publications, "T-1")
    assert [p.payload["status"] for p in reports] == [
        "accepted",
        "en_route",
        "on_site",
        "completed",
    ]
    assert [at(p) for p in reports] == sorted(at(p) for p in reports)
    assert all(p.at >= at(p) for p in reports)
    assert any(p.at > at(p) for p in reports)  # at least one waited for the network
