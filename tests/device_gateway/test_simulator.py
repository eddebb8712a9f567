"""The simulator of crews, SCADA stations and meters: plausible traces and telemetry, checked
against the fixture files read independently, and one run through the real broker."""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import networkx as nx
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

from fieldline.cli import main
from fieldline.device_gateway.simulator import (
    CrewSpec,
    Publication,
    Simulator,
    city_simulator,
    connect,
    crew_specs,
    publish_realtime,
    start_time,
)
from fieldline.device_gateway.simulator.motion import TURN_SPEED_MPS, Gait, Mover
from fieldline.device_gateway.simulator.network import RouteGraph
from fieldline.settings import load_settings

CITY = Path(__file__).resolve().parents[2] / "fixtures" / "city"
TO_METRES = Transformer.from_crs(4326, 3067, always_xy=True)
START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def projected_lines(layer: str) -> shapely.Geometry:
    features = json.loads((CITY / f"{layer}.geojson").read_text())["features"]
    lines = []
    for feature in features:
        lon, lat = np.array(feature["geometry"]["coordinates"]).T
        x, y = TO_METRES.transform(lon, lat)
        lines.append(shapely.LineString(np.column_stack([x, y])))
    return shapely.MultiLineString(lines)


def fixes_of(publications: list[Publication]) -> list[dict[str, Any]]:
    """Every position payload as a dict (backlogs flattened), with the truth attached."""
    out = []
    for publication in publications:
        payloads = (
            publication.payload if isinstance(publication.payload, list) else [publication.payload]
        )
        for payload, truth in zip(payloads, publication.fixes, strict=True):
            out.append({**payload, "truth": truth, "topic": publication.topic})
    return out


def ts_of(payload: dict[str, Any]) -> float:
    if "tst" in payload:
        return float(payload["tst"])
    if isinstance(payload["ts"], str):
        return datetime.fromisoformat(payload["ts"]).timestamp()
    return float(payload["ts"])


def distances_m(fixes: list[dict[str, Any]], lines: shapely.Geometry) -> np.ndarray:
    x, y = TO_METRES.transform([f["lon"] for f in fixes], [f["lat"] for f in fixes])
    return shapely.distance(shapely.points(np.column_stack([x, y])), lines)


def test_a_vehicle_slows_for_a_turn_and_stops_at_the_end() -> None:
    graph = nx.DiGraph()
    corner = [(0.0, 0.0), (0.0, 300.0), (300.0, 300.0)]
    for (a, b), limit_kph in (((0, 1), 50), ((1, 2), 50)):
        line = shapely.LineString([corner[a], corner[b]])
        graph.add_edge(a, b, line=line, limit_mps=limit_kph / 3.6, time_s=1.0)
        graph.add_edge(b, a, line=line.reverse(), limit_mps=limit_kph / 3.6, time_s=1.0)
    rng = random.Random(1)
    mover = Mover(RouteGraph(graph, 3067), Gait.for_mode("drive", rng), rng)
    mover.node = 0
    mover.start_trip(2)
    poses = []
    for _ in range(120):
        mover.advance(1.0)
        poses.append(mover.pose())
    near_corner = [p.speed_mps for p in poses if math.dist((p.x, p.y), corner[1]) < 8]
    assert near_corner and max(near_corner) <= TURN_SPEED_MPS + 1.5
    assert 0.65 * 50 / 3.6 < max(p.speed_mps for p in poses) <= 50 / 3.6
    assert (poses[-1].x, poses[-1].y, poses[-1].speed_mps) == (300.0, 300.0, 0.0)


@pytest.fixture(scope="module")
def day_of_crews() -> list[Publication]:
    crews = [
        CrewSpec("C-101", "drive", gap_every_s=400),
        CrewSpec("C-102", "drive", ts_style="epoch"),
        CrewSpec("C-103", "drive", protocol="owntracks", gap_every_s=400),
        CrewSpec("C-104", "walk", gap_every_s=400),
    ]
    return Simulator(START, crews, seed=7).run(3 * 3600)


def test_fixes_lie_near_roads_within_their_accuracy(day_of_crews: list[Publication]) -> None:
    fixes = [f for f in fixes_of(day_of_crews) if "C-104" not in f["topic"]]
    roads = projected_lines("roads")
    distance = distances_m(fixes, roads)
    truth = shapely.points([(f["truth"].true_x, f["truth"].true_y) for f in fixes])
    assert shapely.distance(truth, roads).max() < 0.5  # the track itself is on the roads
    accuracy = np.array([f.get("acc_m", f.get("acc")) for f in fixes], dtype=float)
    outlier = np.array([f["truth"].outlier for f in fixes])
    # The 68 % radius is 1.5 sigma: four of them is six sigma, which noise alone never reaches.
    assert (distance[~outlier] <= 4 * accuracy[~outlier] + 1).all()
    assert 0 < outlier.sum() < 0.01 * len(fixes)
    x, y = TO_METRES.transform([f["lon"] for f in fixes], [f["lat"] for f in fixes])
    error = shapely.distance(shapely.points(np.column_stack([x, y])), truth)
    assert error[outlier].min() > 30  # an outlier is a real jump, though it may land on a road
    assert np.median(distance) > 1  # and the rest is noisy, not on the line


def test_patrols_walk_along_pipes_at_walking_pace(day_of_crews: list[Publication]) -> None:
    fixes = [f for f in fixes_of(day_of_crews) if "C-104" in f["topic"]]
    fixes.sort(key=ts_of)
    truth = shapely.points([(f["truth"].true_x, f["truth"].true_y) for f in fixes])
    assert shapely.distance(truth, projected_lines("pipes")).max() < 0.5
    seconds = np.diff([ts_of(f) for f in fixes])
    true_speed = shapely.distance(truth[1:], truth[:-1]) / seconds
    assert 3.5 < np.median(seconds) < 6.5
    assert true_speed.max() <= 1.5 * 1.05 + 0.01
    moving = [f["speed_mps"] for f in fixes if f["speed_mps"] > 0.5]
    assert 1.1 < float(np.median(moving)) < 1.6


def test_vehicle_speeds_stay_below_limits_and_stop_on_site(
    day_of_crews: list[Publication],
) -> None:
    fixes = [f for f in fixes_of(day_of_crews) if "C-101" in f["topic"] or "C-102" in f["topic"]]
    speeds = np.array([f["speed_mps"] for f in fixes])
    fastest_limit_mps = (
        max(
            f["properties"]["maxspeed_kph"]
            for f in json.loads((CITY / "roads.geojson").read_text())["features"]
        )
        / 3.6
    )
    assert speeds.max() <= fastest_limit_mps + 1.0  # 1 m/s: the receiver's speed noise
    assert speeds.max() > 6  # it does drive
    assert (speeds == 0).mean() > 0.2  # and stops on site, reporting no course then
    assert all("heading_deg" not in f for f in fixes if f["speed_mps"] == 0)
    assert all(0 <= f["heading_deg"] < 360 for f in fixes if "heading_deg" in f)


def test_time_increases_per_device_except_inside_shuffled_backlogs(
    day_of_crews: list[Publication],
) -> None:
    by_topic: dict[str, list[Publication]] = defaultdict(list)
    for publication in day_of_crews:
        by_topic[publication.topic].append(publication)
    shuffled = 0
    for publications in by_topic.values():
        latest = float("-inf")
        for publication in publications:
            batch = (
                publication.payload
                if isinstance(publication.payload, list)
                else [publication.payload]
            )
            times = [ts_of(payload) for payload in batch]
            assert min(times) > latest
            latest = max(times)
            shuffled += times != sorted(times)
    assert shuffled > 0


def test_gaps_send_backlogs(day_of_crews: list[Publication]) -> None:
    own = [p for p in day_of_crews if p.topic == "fieldline/crews/C-101/position"]
    backlogs = [p for p in own if isinstance(p.payload, list)]
    assert backlogs
    for backlog in backlogs:
        times = sorted(ts_of(payload) for payload in backlog.payload)
        assert times[-1] - times[0] <= 120
        assert backlog.at.timestamp() >= times[-1]  # sent when the network came back
    owntracks = [p.payload for p in day_of_crews if p.topic == "owntracks/c103/phone"]
    queued = [payload for payload in owntracks if payload["conn"] == "o"]
    assert queued and len(queued) < len(owntracks) / 2


def test_owntracks_payload_is_what_the_app_sends(day_of_crews: list[Publication]) -> None:
    payload = next(p.payload for p in day_of_crews if p.topic.startswith("owntracks/"))
    assert payload["_type"] == "location"
    for key in ("tst", "acc", "vel", "batt", "alt"):
        assert isinstance(payload[key], int), key
    assert len(payload["tid"]) == 2
    assert -90 <= payload["lat"] <= 90 and -180 <= payload["lon"] <= 180


def test_scada_follows_the_daily_pattern() -> None:
    local_midnight = datetime(2026, 11, 23, tzinfo=ZoneInfo("Europe/Helsinki"))
    simulation = city_simulator(local_midnight, with_stations=True, meter_count=3, seed=3)
    publications = simulation.run(24 * 3600, step_s=3600)
    stations = {
        f["id"]: set(f["properties"]["metrics"])
        for f in json.loads((CITY / "stations.geojson").read_text())["features"]
    }

    def mean(station: str, metric: str, hours: range) -> float:
        values = [
            p.payload["metrics"][metric]
            for p in publications
            if p.topic == f"fieldline/scada/{station}"
            and p.at.astimezone(local_midnight.tzinfo).hour in hours
        ]
        return sum(values) / len(values)

    for publication in publications:
        if publication.topic.startswith("fieldline/scada/"):
            station = publication.topic.rsplit("/", 1)[1]
            assert set(publication.payload["metrics"]) == stations[station]
    night, morning = range(2, 4), range(7, 9)
    assert mean("S-000001", "flow_lps", morning) > 1.8 * mean("S-000001", "flow_lps", night)
    assert mean("S-000004", "pressure_kpa", morning) < mean("S-000004", "pressure_kpa", night) - 20
    assert mean("S-000008", "chlorine_mgl", night) < mean("S-000008", "chlorine_mgl", morning)
    readings = [
        p.payload["volume_m3"] for p in publications if p.topic.endswith("M-000001/reading")
    ]
    assert len(readings) == 24 * 4
    assert all(b > a for a, b in itertools.pairwise(readings))


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        simulation = city_simulator(START, crew_specs(["C-201", "C-202", "C-203"]), True, 2, seed)
        return [(p.topic, p.payload_bytes()) for p in simulation.run(1800)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_a_fast_run_ends_at_wall_clock_time() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert start_time(now, 10.0, 3600) == now - timedelta(seconds=3240)
    assert start_time(now, 10.0, None) == now
    assert start_time(now, 1.0, 3600) == now


def test_crews_publish_through_the_broker() -> None:
    tag = uuid.uuid4().hex[:8].upper()
    specs = crew_specs([f"T{tag}-1", f"T{tag}-2", f"T{tag}-3"])  # the third uses OwnTracks
    url = load_settings().mqtt_url
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{tag}")
    subscriber.on_message = lambda client, userdata, message: received.append(
        (message.topic, message.payload)
    )
    subscriber.on_subscribe = lambda *args: subscribed.set()
    parts = urlsplit(url)
    subscriber.connect(parts.hostname or "localhost", parts.port or 1883)
    subscriber.loop_start()
    publisher = connect(url, f"test-pub-{tag}")
    try:
        subscriber.subscribe([(spec.topic, 1) for spec in specs])
        assert subscribed.wait(5)
        sent: list[tuple[str, bytes]] = []
        simulation = Simulator(datetime.now(UTC), specs, seed=5)
        count = publish_realtime(
            simulation, publisher, speed=20, duration_s=40, on_publish=lambda *m: sent.append(m)
        )
        # A crew's device may be offline at the end, holding its fixes back: at least half.
        assert count == len(sent) >= 3 * 40 // 5 // 2
        deadline = threading.Event()
        for _ in range(50):
            if len(received) >= len(sent):
                break
            deadline.wait(0.1)
        assert sorted(received) == sorted(sent)
        assert {topic for topic, _ in received} == {spec.topic for spec in specs}
    finally:
        for client in (publisher, subscriber):
            client.loop_stop()
            client.disconnect()


def test_simulate_command_prints_the_topics_and_publishes() -> None:
    tag = uuid.uuid4().hex[:8].upper()
    ids = [f"T{tag}-{n}" for n in range(1, 4)]
    arguments = ["simulate", "--speed", "40", "--duration", "20", "--seed", "2"]
    for crew_id in ids:
        arguments += ["--crew", crew_id]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [ids[0], "drive", f"fieldline/crews/{ids[0]}/position"]
    assert lines[2].split() == [ids[2], "drive", f"owntracks/t{tag.lower()}3/phone"]
    assert lines[-1].startswith("published ") and int(lines[-1].split()[1]) > 0


def test_simulate_command_rejects_a_bad_speed() -> None:
    result = CliRunner().invoke(main, ["simulate", "--speed", "0"])
    assert result.exit_code == 2
    assert "--speed" in result.output
