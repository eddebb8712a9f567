"""The simulated call centre: its mix of work and its rate, and its calls taken by the real
API over HTTP as tasks, with callers that reach nobody."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from pathlib import Path
from statistics import mean

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.device_gateway.simulator import CallCentre, Catalogue, TaskApi, take_calls
from fieldline.device_gateway.simulator.callcentre import MIX, ApiError, server_url
from fieldline.server.tasks.models import Task
from tests.conftest import load_fixture

CITY = Path(__file__).resolve().parents[2] / "fixtures" / "city"
DRAMA_PHONE = re.compile(r"\+44 7700 900\d{3}")  # Ofcom's numbers for drama


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue(CITY)


def test_the_mix_is_mostly_routine_work_with_a_rare_burst(catalogue: Catalogue) -> None:
    centre = CallCentre(catalogue, jobs_per_hour=12, speed=1, rng=random.Random(1))
    calls = [centre.call() for _ in range(3000)]
    share = {key: n / len(calls) for key, n in Counter(c["priority"] for c in calls).items()}
    assert 0.01 <= share["P1"] <= 0.035
    assert 0.08 <= share["P2"] <= 0.16
    assert share["P3"] + share["P4"] >= 0.8
    kinds = Counter((c["kind"], c["priority"]) for c in calls)
    routine = sum(n for (kind, p), n in kinds.items() if kind in ("inspection", "meter_reading"))
    assert routine / len(calls) > 0.6
    assert {kind for kind, _ in kinds} == {
        "repair",
        "inspection",
        "meter_reading",
        "valve_operation",
        "patrol",
    }
    assert all(c["kind"] == "repair" for c in calls if c["priority"] in ("P1", "P2"))
    known = {
        layer: {f["id"] for f in load_fixture(layer)}
        for layer in ("pipes", "valves", "hydrants", "meters")
    }
    for call in calls:
        assert call["assets"], call
        assert all(a["id"] in known[a["layer"]] for a in call["assets"])
        if call["source"] == "call_centre":
            assert DRAMA_PHONE.fullmatch(call["caller"]["phone"]), call["caller"]
        else:
            assert call["source"] == "plan" and "caller" not in call


def test_calls_come_at_the_rate_asked_times_the_speed(catalogue: Catalogue) -> None:
    centre = CallCentre(catalogue, jobs_per_hour=12, speed=30, rng=random.Random(2))
    gaps = [centre.next_gap_s() for _ in range(4000)]
    assert 10.0 * 0.95 <= mean(gaps) <= 10.0 * 1.05  # 360 an hour: one every 10 s
    with pytest.raises(ValueError):
        CallCentre(catalogue, jobs_per_hour=0, speed=1, rng=random.Random(2))


def test_every_kind_of_call_becomes_a_task_through_the_api(
    catalogue: Catalogue, server: str, session: Session
) -> None:
    rng = random.Random(3)
    api = TaskApi(server)
    created = []
    for _, build in MIX:
        for _ in range(3):
            body = build(catalogue, rng)
            task = api.create(body)
            assert (task["kind"], task["priority"], task["state"]) == (
                body["kind"],
                body["priority"],
                "created",
            )
            assert [a["id"] for a in task["assets"]] == [a["id"] for a in body["assets"]]
            created.append(task["id"])
    stored = session.scalars(sa.select(Task).where(Task.public_id.in_(created))).all()
    assert len(stored) == len(created) == 3 * len(MIX)
    for task in stored:
        assert task.promised_arrival_at is not None
        if task.source == "call_centre":
            assert task.caller is not None and DRAMA_PHONE.fullmatch(task.caller["phone"])
        if task.kind in ("repair", "inspection", "valve_operation"):
            assert task.site is not None


def test_take_calls_posts_until_stopped(catalogue: Catalogue, server: str) -> None:
    centre = CallCentre(catalogue, jobs_per_hour=36_000, speed=1, rng=random.Random(4))
    stop = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if len(lines) == 8:
            stop.set()

    assert take_calls(centre, TaskApi(server), stop, report) == 8
    assert all(re.match(r"T-\d+ +P[1-4] +\w+", line) for line in lines), lines


def test_a_server_away_is_reported_and_the_calls_go_on(catalogue: Catalogue) -> None:
    api = TaskApi("http://127.0.0.1:9", timeout_s=2)  # the discard port: nothing listens
    with pytest.raises(ApiError, match="cannot reach"):
        api.create({"kind": "repair"})
    centre = CallCentre(catalogue, jobs_per_hour=36_000, speed=1, rng=random.Random(5))
    stop = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if len(lines) == 3:
            stop.set()

    assert take_calls(centre, api, stop, report) == 0
    assert len(lines) == 3 and all(line.startswith("call not taken") for line in lines)


def test_a_refused_call_says_why(server: str) -> None:
    with pytest.raises(ApiError, match=r"4\d\d from .*priority"):
        TaskApi(server).create({"kind": "repair", "priority": "P9", "source": "plan"})


def test_the_server_is_reached_on_a_loopback_address() -> None:
    assert server_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert server_url("::", 8080) == "http://[::1]:8080"
    assert server_url("fieldline.example", 80) == "http://fieldline.example:80"
